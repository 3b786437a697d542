"""Designs and projects deleted in Aurora, and what happens to their Quickbase records.

Aurora fires no webhook for a deletion and documents no delete endpoint; a deleted object answers
404 and drops out of listings. So the staging notices two things:
* a project whose design list answers 404 (a known id): the project and every design staged under
  it were deleted;
* a design staged under a project whose design list no longer names it (absent from a full
  listing): one ``GET /designs/{id}`` tells deleted (404) from moved to another project (200),
  and only a deleted one counts.
Both are written to ``ops.aurora_deletions`` and the design's staged rows (typed and raw) are
dropped, in the staging step that noticed it; the 404 is not quarantined (nothing is wrong with
the data).

The export then applies the **policy** of each Quickbase table (the mapping file's
``deletions:`` section for the designs table; ``deletion_policy`` in the line items declaration):
``mark`` (set a status field, e.g. *Aurora Status* = "Deleted in Aurora"), ``delete`` (delete the
record) or ``leave`` (keep it as it is: the default for designs, as before). Line items of a
deleted design are deleted by default. Each deletion is applied once (``applied_at``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import yaml
from dagster_duckdb import DuckDBResource

from .store import OPS_SCHEMA, STAGING_SCHEMA, connect, insert_rows, now_utc, table_exists

DDL = f"""
create schema if not exists {OPS_SCHEMA};
create table if not exists {OPS_SCHEMA}.aurora_deletions (
    kind varchar, object_id varchar, project_id varchar, how varchar, detected_at timestamptz,
    applied_at timestamptz, outcome varchar);
"""
STAGED_BY_DESIGN = ("designs", "latest_proposals", "design_summaries", "design_arrays")


class DeletionPolicy(str, Enum):
    MARK = "mark"
    DELETE = "delete"
    LEAVE = "leave"


@dataclass(frozen=True)
class DeletionConfig:
    policy: DeletionPolicy = DeletionPolicy.LEAVE
    status_field: Optional[Union[str, int]] = None  # for mark
    status_value: str = "Deleted in Aurora"


def load_deletion_config(path: Optional[Union[str, Path]]) -> DeletionConfig:
    """The ``deletions:`` section of a mapping file (absent: leave records as they are)."""
    from .mapping import MappingError, default_mapping_path  # noqa: PLC0415 - mapping imports raw_payloads

    path = Path(path) if path else default_mapping_path()
    raw = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("deletions") or {}
    problems = []
    try:
        policy = DeletionPolicy(raw.get("policy", DeletionPolicy.LEAVE.value))
    except ValueError:
        problems.append(f"{path}: deletions.policy must be one of mark, delete, leave (got {raw.get('policy')!r})")
        policy = DeletionPolicy.LEAVE
    if policy is DeletionPolicy.MARK and not raw.get("status_field"):
        problems.append(f"{path}: deletions.policy mark needs deletions.status_field (the field to set)")
    if problems:
        raise MappingError(problems)
    return DeletionConfig(policy, raw.get("status_field"), str(raw.get("status_value", "Deleted in Aurora")))


def staged_designs_of(duckdb: DuckDBResource, project_ids: Iterable[str]) -> dict[str, str]:
    """{design id: project id} staged now under ``project_ids``."""
    with connect(duckdb) as conn:
        if not table_exists(conn, STAGING_SCHEMA, "designs"):
            return {}
        rows = conn.execute(f"select design_id, project_id from {STAGING_SCHEMA}.designs "
                            "where list_contains(?, project_id)", [list(project_ids)]).fetchall()
    return dict(rows)


def record_deletions(duckdb: DuckDBResource, designs: dict[str, str], projects: Iterable[str], how: dict[str, str]
                     ) -> None:
    """Note ``designs`` ({id: project}) and ``projects`` as deleted in Aurora and drop their staged
    rows (typed and raw), in one transaction. ``how``: object id -> how it was noticed."""
    projects = list(projects)
    if not designs and not projects:
        return
    stamp = now_utc()
    rows = [("design", d, p, how.get(d, ""), stamp) for d, p in designs.items()]
    rows += [("project", p, p, how.get(p, ""), stamp) for p in projects]
    with connect(duckdb) as conn:
        conn.execute(DDL)
        conn.execute("begin")
        insert_rows(conn, f"{OPS_SCHEMA}.aurora_deletions", ("kind", "object_id", "project_id", "how", "detected_at"), rows)
        ids = list(designs)
        for table in STAGED_BY_DESIGN:
            if ids and table_exists(conn, STAGING_SCHEMA, table):
                conn.execute(f"delete from {STAGING_SCHEMA}.{table} where list_contains(?, design_id)", [ids])
        if table_exists(conn, STAGING_SCHEMA, "aurora_raw"):
            conn.execute(f"delete from {STAGING_SCHEMA}.aurora_raw where kind <> 'project' and "
                         "list_contains(?, object_id)", [ids])
            conn.execute(f"delete from {STAGING_SCHEMA}.aurora_raw where list_contains(?, project_id)", [projects])
        if projects and table_exists(conn, STAGING_SCHEMA, "project_addresses"):
            conn.execute(f"delete from {STAGING_SCHEMA}.project_addresses where list_contains(?, project_id)",
                         [projects])
        conn.execute("commit")


def pending_design_deletions(duckdb: DuckDBResource) -> dict[str, Optional[int]]:
    """{design id: its Quickbase record id (None if never exported)} of deletions not yet applied."""
    with connect(duckdb) as conn:
        conn.execute(DDL)
        if not table_exists(conn, OPS_SCHEMA, "export_state"):
            return {}
        rows = conn.execute(
            f"""select distinct x.object_id, e.qb_record_id from {OPS_SCHEMA}.aurora_deletions x
                left join {OPS_SCHEMA}.export_state e on e.design_id = x.object_id
                where x.kind = 'design' and x.applied_at is null""").fetchall()
    return {d: (None if r is None else int(r)) for d, r in rows}


def mark_applied(duckdb: DuckDBResource, design_ids: list[str], outcome: str, forget_state: bool) -> None:
    """Book deletions as applied; ``forget_state``: the records are gone, drop their export state."""
    if not design_ids:
        return
    with connect(duckdb) as conn:
        conn.execute("begin")
        conn.execute(f"update {OPS_SCHEMA}.aurora_deletions set applied_at = ?, outcome = ? "
                     "where kind = 'design' and applied_at is null and list_contains(?, object_id)",
                     [now_utc(), outcome, design_ids])
        if forget_state:
            conn.execute(f"delete from {OPS_SCHEMA}.export_state where list_contains(?, design_id)", [design_ids])
        conn.execute("commit")


@dataclass
class DeletionTally:
    designs: int = 0
    marked: int = 0
    deleted: int = 0
    left: int = 0
    line_items_deleted: int = 0

    def as_metadata(self) -> dict[str, Any]:
        return {f"aurora_deleted_{k}": v for k, v in vars(self).items()}


def apply_deletions(duckdb: DuckDBResource, client, mapping, config: DeletionConfig) -> DeletionTally:
    """Apply ``config``'s policy to the designs table for every deletion not applied yet.
    ``client``: the designs table's QuickbaseClient; ``mapping``: its ResolvedMapping."""
    from .mapping import MappingError, _find_field  # noqa: PLC0415 - mapping imports raw_payloads

    pending = pending_design_deletions(duckdb)
    tally = DeletionTally(designs=len(pending))
    never = [d for d, rid in pending.items() if rid is None]
    mark_applied(duckdb, never, "never exported", forget_state=True)
    exported = sorted(d for d, rid in pending.items() if rid is not None)
    if not exported:
        return tally
    if config.policy is DeletionPolicy.LEAVE:
        tally.left = len(exported)
        mark_applied(duckdb, exported, "left", forget_state=False)
    elif config.policy is DeletionPolicy.DELETE:
        tally.deleted = client.delete_keys(mapping.merge_field_id, exported)
        mark_applied(duckdb, exported, "deleted", forget_state=True)
    else:
        status = _find_field(client.get_fields(), config.status_field)
        if status is None:
            raise MappingError([f"deletions.status_field {config.status_field!r} does not exist in the table"])
        records = [{mapping.merge_field_id: d, int(status["id"]): config.status_value} for d in exported]
        done: list[str] = []
        for batch in client.batches(records):
            result = client.upsert([records[i] for i in batch], mapping.merge_field_id)
            done += [exported[i] for pos, i in enumerate(batch) if result.outcome(pos) != "failed"]
        tally.marked = len(done)
        mark_applied(duckdb, done, "marked", forget_state=False)
    return tally
