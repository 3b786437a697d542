"""Per-record sync status in Quickbase (issue 11): CRM users see a design's sync state and its
problem where they work, in the design's own record.

Three optional mapping lines name the fields (``config/field_mapping.yaml``)::

    sync_status: {field: Aurora Sync Status, optional: true}    # text, or a choice of STATUS_VALUES
    sync_problem: {field: Aurora Sync Problem, optional: true}  # text: what holds it back, in words
    last_synced: {field: Aurora Last Synced, optional: true}    # date-time the record last got Aurora's values

A table without them exports as before. With them:

* a record sent with Aurora's values carries "Synced", an empty problem and the time, **in the same
  upsert** (no request of its own). The values are added after the content hash is taken, so the
  time that changes every run never makes a design look changed: a rerun with nothing changed
  sends nothing;
* a design held back (quarantined) or refused before sending (a value Quickbase would refuse),
  whose record exists (the export state knows its record id), gets "Held back" / "Not sent" and
  the reason in plain words. Such a status-only row (merge key and the status fields) rides in
  the export's upserts; it is sent once, when the status changes: ``ops.sync_status`` keeps what
  each record was last given, so an unchanged status is never sent again; a design that passes
  again gets "Synced" back even when its values did not change;
* a record whose status was never written (the fields were added to a table already exported)
  gets "Synced" once: the one-time cost of adding the fields.

What a status cannot ride on: a record Quickbase itself refuses in the upsert (a line error) is
not given a status in that request (the same line is refused); it is sent again next run and
stays in the integration log (``aurora-qb log``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

import pandas as pd
from dagster_duckdb import DuckDBResource

from .export import ExportPlan
from .mapping import EncodedRow, ResolvedMapping
from .status_fields import HELD, NOT_SENT, SYNCED
from .store import OPS_SCHEMA, STAGING_SCHEMA, HoldPolicy, connect, ensure_tables, now_utc, ops_transaction, table_exists
MAX_PROBLEM_CHARS = 2000


def _cut(text: str, limit: Optional[int]) -> str:
    limit = min(limit or MAX_PROBLEM_CHARS, MAX_PROBLEM_CHARS)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_statuses(duckdb: DuckDBResource) -> dict[str, tuple[str, str]]:
    """{design id: (status, problem)} as each record was last given them."""
    ensure_tables(duckdb)
    with connect(duckdb) as conn:
        rows = conn.execute(f"select design_id, status, problem from {OPS_SCHEMA}.sync_status").fetchall()
    return {d: (s, p or "") for d, s, p in rows}


def held_reasons(duckdb: DuckDBResource, policy: HoldPolicy) -> dict[str, str]:
    """{design id: why it is held back} of every design with a Quickbase record that quarantined
    rows hold back (its own; under the ``project`` policy also its project's address). A design
    whose summary is quarantined is not even an export candidate, so this reads the quarantine,
    not the plan."""
    project = HoldPolicy(policy) is HoldPolicy.PROJECT
    with connect(duckdb) as conn:
        if project and not table_exists(conn, STAGING_SCHEMA, "designs"):
            project = False
        join = f"left join {STAGING_SCHEMA}.designs d on d.design_id = e.design_id" if project else ""
        on = " or (q.asset = 'project_addresses' and q.project_id = d.project_id)" if project else ""
        rows = conn.execute(
            f"""select e.design_id, list(distinct q.asset || ': ' || coalesce(q.reason, 'quarantined'))
                from {OPS_SCHEMA}.export_state e {join}
                join {OPS_SCHEMA}.quarantine q on (q.record_key = e.design_id{on})
                where e.qb_record_id is not null group by 1""").fetchall()
    return {d: "; ".join(sorted(reasons)) for d, reasons in rows}


def _values(mapping: ResolvedMapping, status: str, problem: str, synced_at: Optional[str]) -> dict[int, Any]:
    values: dict[int, Any] = {}
    if "sync_status" in mapping.status:
        values[mapping.status["sync_status"].field_id] = status
    if "sync_problem" in mapping.status:
        values[mapping.status["sync_problem"].field_id] = _cut(problem, mapping.status["sync_problem"].max_length)
    if synced_at is not None and "last_synced" in mapping.status:
        values[mapping.status["last_synced"].field_id] = synced_at
    return values


def add_sync_status(plan: ExportPlan, duckdb: DuckDBResource, policy: HoldPolicy,
                    now: Optional[datetime] = None) -> int:
    """Put the status values on the rows the plan sends and add status-only rows for records whose
    status changed (see the module's docstring); returns how many status-only rows were added."""
    mapping = plan.mapping
    if not mapping.status:
        return 0
    stamp = (now or datetime.now(timezone.utc)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    previous = read_statuses(duckdb)
    for row in plan.to_send:
        row.record.update(_values(mapping, SYNCED, "", stamp))
        row.status = (SYNCED, "")
    wanted: dict[str, tuple[str, str]] = {r.design_id: (SYNCED, "") for r in plan.unchanged}
    for design_id, why in held_reasons(duckdb, policy).items():
        wanted[design_id] = (HELD, f"Aurora's data did not pass the checks, so it is held back until it does: {why}")
    for design_id, status, message, *_ in plan.log_rows:
        if status == "rejected":
            wanted[design_id] = (NOT_SENT, f"Quickbase would refuse this record, so it was not sent: {message}")
    sending = {r.design_id for r in plan.to_send}
    added = 0
    for design_id, (status, problem) in wanted.items():
        last = plan.last.get(design_id)
        if design_id in sending or last is None or last.record_id is None or previous.get(design_id) == (status, problem):
            continue  # sent anyway, no record to mark, or already marked so
        record = {mapping.merge_field_id: design_id, **_values(mapping, status, problem, None)}
        plan.to_send.append(EncodedRow(design_id, record, last.content_hash or "", [], status=(status, problem),
                                       status_only=True))
        added += 1
    return added


def status_rows(batch: list[EncodedRow], record_ids: list[Optional[int]], failed: set[int]) -> list[tuple]:
    """(design id, status, problem, record id) of the rows of a landed batch that carried a status."""
    return [(row.design_id, row.status[0], row.status[1], record_ids[i]) for i, row in enumerate(batch)
            if row.status is not None and i not in failed]


def write_statuses(duckdb: DuckDBResource, rows: list[tuple]) -> None:
    """Upsert (design id, status, problem, record id) rows into ``ops.sync_status`` in one statement
    (DuckDB's executemany costs about 2 ms of CPU a row; a registered frame, a few for all)."""
    if not rows:
        return
    frame = pd.DataFrame(rows, columns=["design_id", "status", "problem", "qb_record_id"])
    frame["qb_record_id"] = frame["qb_record_id"].astype("Int64")
    frame["written_at"] = now_utc()
    with ops_transaction(duckdb) as conn:
        conn.register("sync_status_rows", frame)
        try:
            conn.execute(
                f"""insert into {OPS_SCHEMA}.sync_status (design_id, status, problem, qb_record_id, written_at)
                    select design_id, status, problem, qb_record_id, written_at from sync_status_rows
                    on conflict (design_id) do update set status = excluded.status, problem = excluded.problem,
                    qb_record_id = excluded.qb_record_id, written_at = excluded.written_at""")
        finally:
            conn.unregister("sync_status_rows")
