"""The staging side of the raw payloads (:mod:`...raw_payloads`) and of the optional pricing fetch.

Small hooks the staging steps call with what they already fetched, so the raw JSON is written in
the same step as the typed rows, for the same projects."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import dagster as dg
from dagster_duckdb import DuckDBResource

from ...clients import AuroraClient, AuthenticationError, NotProvisionedError, PermanentApiError
from ...raw_payloads import replace_raw
from .staging import fetch_each


def keep_raw(duckdb: DuckDBResource, kind: str, project_ids: Sequence[str], found: Sequence[tuple[Any, Any]],
             items: Callable[[Any, Any], list[tuple[str, str, Any]]]) -> int:
    """Stage the raw payloads of ``found`` ([(item, answer)]); ``items(item, answer)`` gives the
    (project id, object id, payload) rows of one answer."""
    rows = [row for item, answer in found if answer is not None for row in items(item, answer)]
    return replace_raw(duckdb, kind, project_ids, rows)


def project_raw(pid: str, project: Any) -> list[tuple[str, str, Any]]:
    return [(pid, pid, project)] if isinstance(project, dict) else []


def designs_raw(pid: str, designs: Any) -> list[tuple[str, str, Any]]:
    return [(pid, str(d["id"]), d) for d in designs if isinstance(d, dict) and isinstance(d.get("id"), str)]


def design_raw(key: tuple[str, str], answer: Any) -> list[tuple[str, str, Any]]:
    return [(key[0], key[1], answer)] if isinstance(answer, dict) else []


def stage_pricing(context: dg.AssetExecutionContext, duckdb: DuckDBResource, aurora: AuroraClient,
                  keys: Sequence[tuple[str, str]], project_ids: Sequence[str], enabled: bool) -> Optional[int]:
    """Fetch and stage each design's pricing when ``enabled``; returns the designs priced, or None
    when pricing is off. A key not provisioned for pricing (403) switches it off with one log line:
    not a quarantine, not a failure, and the client's credential stays usable. A design whose
    pricing cannot be read (404, a malformed answer) has no pricing row; pricing never holds a design."""
    if not enabled:
        return None
    if not keys:
        replace_raw(duckdb, "pricing", project_ids, [])
        return 0
    try:
        first = aurora.get_design_pricing(keys[0][1])
    except NotProvisionedError as exc:
        context.log.warning(f"pricing is switched off for this run: the Aurora key is not provisioned for it "
                            f"({exc.status} on GET /designs/{{id}}/pricing). Designs are synced without pricing; "
                            "ask Aurora to enable pricing for the key, or set AURORA_QB_FETCH_PRICING=false.")
        return None
    except AuthenticationError:
        raise
    except PermanentApiError as exc:
        context.log.info(f"no pricing for design {keys[0][1]}: {aurora.redact(str(exc))}")
        first = None

    def fetch(key: tuple[str, str]) -> Any:
        try:
            return aurora.get_design_pricing(key[1])
        except NotProvisionedError:
            return None

    found, failures = fetch_each(aurora, keys[1:], fetch, lambda k: {"project_id": k[0], "design_id": k[1]})
    for failure in failures[:5]:
        context.log.info(f"no pricing for design {failure['design_id']}: {failure['reason']}")
    found = [(keys[0], first), *found]
    return keep_raw(duckdb, "pricing", project_ids, found, design_raw)
