"""The staging side of the raw payloads (:mod:`...raw_payloads`) and of the optional pricing fetch.

Small hooks the staging steps call with what they already fetched, so the raw JSON is written in
the same step as the typed rows, for the same projects."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import dagster as dg
from dagster_duckdb import DuckDBResource

from ...clients import AuroraClient, AuthenticationError, NotFoundError, NotProvisionedError, PermanentApiError
from ...deletions import record_deletions, staged_designs_of
from ...raw_payloads import replace_raw
from .staging import fetch_each


def project_raw(pid: str, project: Any) -> list[tuple[str, str, Any]]:
    return [(pid, pid, project)] if isinstance(project, dict) else []


def designs_raw(pid: str, designs: Any) -> list[tuple[str, str, Any]]:
    return [(pid, str(d["id"]), d) for d in designs if isinstance(d, dict) and isinstance(d.get("id"), str)]


def design_raw(key: tuple[str, str], answer: Any) -> list[tuple[str, str, Any]]:
    return [(key[0], key[1], answer)] if isinstance(answer, dict) else []


def stage_pricing(context: dg.AssetExecutionContext, duckdb: DuckDBResource, aurora: AuroraClient,
                  keys: Sequence[tuple[str, str]], project_ids: Sequence[str], enabled: bool) -> Optional[int]:
    """Fetch and stage each design's pricing when ``enabled`` (:func:`pricing_rows`); returns the
    designs priced, or None when pricing is off. The range path's step; the event path stages the
    same rows in its own transaction (``project_set.stage_projects``)."""
    rows = pricing_rows(context.log, aurora, keys, enabled)
    return None if rows is None else replace_raw(duckdb, "pricing", project_ids, rows)


def pricing_rows(log, aurora: AuroraClient, keys: Sequence[tuple[str, str]],
                 enabled: bool) -> Optional[list[tuple[str, str, Any]]]:
    """Each design's pricing as raw payload rows (project id, design id, pricing), or None when
    pricing is off. A key not provisioned for pricing (403) switches it off with one log line:
    not a quarantine, not a failure, and the client's credential stays usable. A design whose
    pricing cannot be read (404, a malformed answer) has no pricing row; pricing never holds a design."""
    if not enabled:
        return None
    if not keys:
        return []
    try:
        first = aurora.get_design_pricing(keys[0][1])
    except NotProvisionedError as exc:
        log.warning(f"pricing is switched off for this run: the Aurora key is not provisioned for it "
                            f"({exc.status} on GET /designs/{{id}}/pricing). Designs are synced without pricing; "
                            "ask Aurora to enable pricing for the key, or set AURORA_QB_FETCH_PRICING=false.")
        return None
    except AuthenticationError:
        raise
    except PermanentApiError as exc:
        log.info(f"no pricing for design {keys[0][1]}: {aurora.redact(str(exc))}")
        first = None

    def fetch(key: tuple[str, str]) -> Any:
        try:
            return aurora.get_design_pricing(key[1])
        except NotProvisionedError:
            return None

    found, failures = fetch_each(aurora, keys[1:], fetch, lambda k: {"project_id": k[0], "design_id": k[1]})
    for failure in failures[:5]:
        log.info(f"no pricing for design {failure['design_id']}: {failure['reason']}")
    return [row for key, answer in [(keys[0], first), *found] if answer is not None for row in design_raw(key, answer)]


def note_deletions(log, duckdb: DuckDBResource, aurora: AuroraClient, project_ids: Sequence[str], table) -> None:
    """For the project and design-list tables (``project_set.TableRows``): note what Aurora deleted
    (:mod:`...deletions`): a project answering 404, and a design its project's list no longer
    names that answers 404 itself (200 means it moved). The 404s are taken out of the table's
    failures: a deletion is not bad data, so nothing is quarantined for it."""
    if table.raw_kind not in ("project", "design"):
        return
    before = staged_designs_of(duckdb, project_ids)
    gone_projects = [f["project_id"] for f in table.failures if f.get("status") == 404]
    table.failures[:] = [f for f in table.failures if f.get("status") != 404]
    how = {p: "404 on the project" for p in gone_projects}
    deleted = {d: p for d, p in before.items() if p in gone_projects}
    if table.raw_kind == "design":
        failed = {f.get("project_id") for f in table.failures} | set(gone_projects)
        listed = {oid for _, oid, _ in table.raw}
        for design_id, project_id in before.items():
            if project_id in failed or design_id in listed or design_id in deleted:
                continue
            try:
                moved_to = aurora.get_design(design_id).get("project_id")
                log.info(f"design {design_id} left project {project_id} (now in {moved_to})")
            except NotFoundError:
                deleted[design_id] = project_id
                how[design_id] = "absent from its project's design list, 404 on the design"
    record_deletions(duckdb, deleted, gone_projects, how)
    for object_id, reason in list(how.items())[:20]:
        log.info(f"deleted in Aurora: {object_id} ({reason})")


def project_fetcher(context: dg.AssetExecutionContext, aurora: AuroraClient, project_ids: Sequence[str],
                    known_count: int) -> Callable[[str], Any]:
    """``fetch(project_id)`` for the project step that asks only what it must.

    Aurora's project list pages carry whole project objects, ``location`` included. When the run
    covers more projects than the listing has pages (``known_count`` projects, ``per_page`` a
    page), the step reads the pages once and takes the run's projects from them; a project the
    pages do not show, or show without a ``location``, is fetched by ``GET /projects/{id}`` as
    before (a deleted one then answers 404). A run over a few projects fetches them one by one."""
    wanted = set(project_ids)
    pages_needed = -(-max(known_count, len(wanted)) // aurora.per_page)
    listed: dict[str, dict] = {}
    if len(wanted) > pages_needed:
        try:
            for page in aurora.pages("projects"):
                for project in page.items:
                    if isinstance(project, dict) and project.get("id") in wanted \
                            and isinstance(project.get("location"), dict):
                        listed[project["id"]] = project
                if len(listed) == len(wanted):
                    break
        except AuthenticationError:
            raise
        except PermanentApiError as exc:
            context.log.warning(f"project list pages unusable ({aurora.redact(str(exc))}); fetching projects one by one")
            listed = {}
        context.log.info(f"{len(listed)} of {len(wanted)} projects taken from the list pages; "
                         f"{len(wanted) - len(listed)} fetched one by one")

    def fetch(project_id: str) -> Any:
        return listed.get(project_id) or aurora.get_project(project_id)

    return fetch
