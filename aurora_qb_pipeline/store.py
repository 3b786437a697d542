"""Tables the pipeline keeps in DuckDB beside the staged assets.

* ``ops.quarantine``   rows that failed validation or could not be fetched, with the reason
  (and ``problems``: a JSON list of ``{field, rule, value}``);
* ``ops.staging_notes`` values the staging repaired losslessly but reports (text with unpaired
  surrogates, lists given as JSON text), one line per field;
* ``ops.export_state`` per Aurora design: hash of what Quickbase last accepted, its record id and
  its Date Modified after that write;
* ``ops.export_log``   one line per record per export attempt (created / updated / unchanged /
  failed / rejected / skipped) with Quickbase's messages;
* ``ops.export_meta``  what the export keeps between runs beyond records (the mapped fields' ids
  and types at the last export; a reconcile asked for by a run that found the table changed).

Connections are opened for one short statement batch and closed at once, so no step holds the
DuckDB file lock while it waits on an API, and closed on an error too (:func:`connect`): the
DuckDB resource closes its connection only when the block ends without one, so a failing step
kept the file lock until garbage collection.
"""

from __future__ import annotations

import json
import math
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Iterable, Iterator, Optional, Sequence

import pandas as pd
from dagster_duckdb import DuckDBResource

from .coerce import preview, safe_text

STAGING_SCHEMA = "staging"
OPS_SCHEMA = "ops"

DDL = f"""
create schema if not exists {OPS_SCHEMA};
create table if not exists {OPS_SCHEMA}.quarantine (
    asset varchar, project_id varchar, record_key varchar, reason varchar,
    record_json varchar, run_id varchar, quarantined_at timestamptz, problems varchar);
alter table {OPS_SCHEMA}.quarantine add column if not exists problems varchar;
create table if not exists {OPS_SCHEMA}.staging_notes (
    asset varchar, project_id varchar, record_key varchar, field varchar, rule varchar,
    value varchar, run_id varchar, noted_at timestamptz);
create table if not exists {OPS_SCHEMA}.export_state (
    design_id varchar primary key, content_hash varchar, qb_record_id bigint,
    outcome varchar, exported_at timestamptz, run_id varchar, qb_modified varchar);
alter table {OPS_SCHEMA}.export_state add column if not exists qb_modified varchar;
create table if not exists {OPS_SCHEMA}.export_log (
    run_id varchar, design_id varchar, status varchar, message varchar,
    qb_record_id bigint, content_hash varchar, logged_at timestamptz);
create table if not exists {OPS_SCHEMA}.export_meta (
    key varchar primary key, value varchar, updated_at timestamptz);
"""


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


@contextmanager
def connect(duckdb: DuckDBResource) -> Iterator:
    """A connection of the DuckDB resource that is closed however the block ends."""
    with duckdb.get_connection() as conn, closing(conn):
        yield conn


def ensure_tables(duckdb: DuckDBResource) -> None:
    with connect(duckdb) as conn:
        conn.execute(DDL)


@contextmanager
def ops_transaction(duckdb: DuckDBResource) -> Iterator:
    """A short connection with the ops tables in place, committed as one transaction."""
    with connect(duckdb) as conn:
        conn.execute(DDL)
        conn.execute("begin")
        try:
            yield conn
        except BaseException:
            conn.execute("rollback")
            raise
        conn.execute("commit")


def insert_rows(conn, table: str, columns: Sequence[str], rows: Sequence[tuple], on_conflict: str = "") -> None:
    """Insert ``rows`` (tuples in the order of ``columns``) into ``table`` with one statement
    (``on_conflict``: e.g. ``on conflict (key) do update set ...``; rows must then not repeat a key).

    The rows go in as a registered DataFrame (all object columns, so DuckDB types each from its
    values, ids stay exact). DuckDB's ``executemany`` runs the statement once per row: about
    2.5 ms of CPU each, 3.3 s for the 1,300 line items of a 500-design sync, against 12 ms so."""
    if not rows:
        return
    frame = pd.DataFrame.from_records(list(rows), columns=list(columns)).astype(object)
    names = ", ".join(columns)
    conn.register("new_rows", frame)
    try:
        conn.execute(f"insert into {table} ({names}) select {names} from new_rows {on_conflict}")
    finally:
        conn.unregister("new_rows")


def table_exists(conn, schema: str, table: str) -> bool:
    found = conn.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, table]
    ).fetchone()
    return bool(found and found[0])


class HoldPolicy(str, Enum):
    """Which quarantined rows hold a design back from the export (setting ``AURORA_QB_HOLD_POLICY``)."""

    DESIGN = "design"
    """Only the design's own rows (design, summary, arrays, proposal). A project whose address is
    quarantined still exports its designs, without the address columns (``enrich`` then leaves
    Quickbase's address as it is; ``replace`` clears it)."""
    PROJECT = "project"
    """Also anything quarantined for the design's project address: all its designs wait."""


def held_sql(policy: HoldPolicy, design: str = "d") -> str:
    """SQL true when design ``{design}`` (an alias with design_id, project_id) is held under ``policy``."""
    project = (f" or (q.asset = 'project_addresses' and q.project_id = {design}.project_id)"
               if HoldPolicy(policy) is HoldPolicy.PROJECT else "")
    return f"exists (select 1 from {OPS_SCHEMA}.quarantine q where q.record_key = {design}.design_id{project})"


def _key(value: Any) -> Optional[str]:
    """A key as stored: None (never the text 'nan') for a missing value."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return safe_text(str(value))


def _jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` made storable as JSON text: valid UTF-8, finite numbers, bounded size and depth."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 10**30 else preview(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return safe_text(value if len(value) <= 2000 else value[:2000] + "…")
    if depth >= 8:
        return preview(value)
    if isinstance(value, dict):
        items = list(value.items())
        return {safe_text(str(k)): _jsonable(v, depth + 1) for k, v in items[:100]}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in value[:100]]
    return safe_text(str(value))


def _json(value: Any) -> str:
    return json.dumps(_jsonable(value), ensure_ascii=False, default=str)


def replace_quarantine(
    duckdb: DuckDBResource,
    asset: str,
    project_ids: Sequence[str],
    rejected: Sequence[dict],
    key_column: str,
    run_id: str,
    notes: Sequence[dict] = (),
) -> None:
    """Make the quarantine (and the staging notes) hold exactly this run's rows for these projects
    and this asset. ``rejected``: dicts with "reason" (and "problems"); ``notes``: dicts with
    project_id, record_key, field, rule, value."""
    with ops_transaction(duckdb) as conn:
        replace_quarantine_in(conn, asset, project_ids, rejected, key_column, run_id, notes)


def replace_quarantine_in(
    conn, asset: str, project_ids: Sequence[str], rejected: Sequence[dict], key_column: str, run_id: str,
    notes: Sequence[dict] = (),
) -> None:
    """:func:`replace_quarantine` on an open connection (the caller's transaction, ops tables in place)."""
    stamp = now_utc()
    rows = [
        (
            asset,
            _key(rec.get("project_id")),
            _key(rec.get(key_column)),
            safe_text(str(rec["reason"])),
            _json({k: v for k, v in rec.items() if k not in ("reason", "problems")}),
            run_id,
            stamp,
            _json(rec.get("problems") or []),
        )
        for rec in rejected
    ]
    note_rows = [
        (asset, _key(n.get("project_id")), _key(n.get("record_key")), safe_text(str(n["field"])),
         safe_text(str(n["rule"])), safe_text(str(n["value"])), run_id, stamp)
        for n in notes
    ]
    if project_ids:
        for table in ("quarantine", "staging_notes"):
            conn.execute(
                f"delete from {OPS_SCHEMA}.{table} where asset = ? and list_contains(?, project_id)",
                [asset, list(project_ids)],
            )
    insert_rows(conn, f"{OPS_SCHEMA}.quarantine", ("asset", "project_id", "record_key", "reason", "record_json",
                                                   "run_id", "quarantined_at", "problems"), rows)
    insert_rows(conn, f"{OPS_SCHEMA}.staging_notes", ("asset", "project_id", "record_key", "field", "rule", "value",
                                                      "run_id", "noted_at"), note_rows)


def prune_export_log(duckdb: DuckDBResource, retention_days: int) -> int:
    """Drop ``ops.export_log`` lines older than ``retention_days`` (0: keep every line)."""
    if retention_days <= 0:
        return 0
    with ops_transaction(duckdb) as conn:
        found = conn.execute(f"delete from {OPS_SCHEMA}.export_log where logged_at < now() - to_days(?)",
                             [int(retention_days)]).fetchone()
    return int(found[0]) if found else 0


def read_meta(duckdb: DuckDBResource) -> dict[str, str]:
    """Everything in ``ops.export_meta``."""
    ensure_tables(duckdb)
    with connect(duckdb) as conn:
        return dict(conn.execute(f"select key, value from {OPS_SCHEMA}.export_meta").fetchall())


def write_meta(duckdb: DuckDBResource, values: dict[str, Optional[str]]) -> None:
    """Set keys of ``ops.export_meta``; a value None removes the key."""
    with ops_transaction(duckdb) as conn:
        for key, value in values.items():
            conn.execute(f"delete from {OPS_SCHEMA}.export_meta where key = ?", [key])
            if value is not None:
                conn.execute(f"insert into {OPS_SCHEMA}.export_meta values (?, ?, ?)", [key, value, now_utc()])


DESIGN_KEYED_TABLES = ("designs", "latest_proposals", "design_summaries", "design_arrays")


def release_moved_designs(duckdb: DuckDBResource, project_ids: Sequence[str], design_ids: Sequence[str]) -> list[tuple]:
    """Designs now staged under ``project_ids`` that are still staged under another project moved
    there in Aurora: drop their rows under the old project from every design-keyed staged table,
    and their quarantine rows there, so each design is staged once, under its project now.
    ``design_ids``: the valid designs of ``project_ids``; those this run quarantined there count too.
    Returns [(design id, old project id)]."""
    with connect(duckdb) as conn:
        if table_exists(conn, OPS_SCHEMA, "quarantine"):
            quarantined = conn.execute(
                f"select record_key from {OPS_SCHEMA}.quarantine where asset = 'designs' and record_key is not null "
                "and list_contains(?, project_id)", [list(project_ids)]).fetchall()
            design_ids = [*design_ids, *(key for (key,) in quarantined)]
        conn.execute("begin")
        moved = release_moved_designs_in(conn, project_ids, design_ids)
        conn.execute("commit")
    return moved


def release_moved_designs_in(conn, project_ids: Sequence[str], design_ids: Sequence[str]) -> list[tuple]:
    """:func:`release_moved_designs` on an open connection, in the caller's transaction;
    ``design_ids``: every design of ``project_ids`` this run staged or quarantined."""
    if not design_ids or not table_exists(conn, STAGING_SCHEMA, "designs"):
        return []
    where = "list_contains(?, design_id) and not list_contains(?, project_id)"
    params = [list(design_ids), list(project_ids)]
    moved = conn.execute(f"select distinct design_id, project_id from {STAGING_SCHEMA}.designs where {where}",
                         params).fetchall()
    if not moved:
        return []
    for table in DESIGN_KEYED_TABLES:
        if table_exists(conn, STAGING_SCHEMA, table):
            conn.execute(f"delete from {STAGING_SCHEMA}.{table} where {where}", params)
    if table_exists(conn, OPS_SCHEMA, "quarantine"):
        conn.execute(f"delete from {OPS_SCHEMA}.quarantine where "
                     "list_contains(?, record_key) and not list_contains(?, project_id)", params)
    return [tuple(row) for row in moved]


def replace_project_rows_in(conn, table: str, project_ids: Sequence[str], frame: pd.DataFrame) -> None:
    """Make ``staging.<table>`` hold exactly ``frame`` for ``project_ids`` (delete, then insert by
    column name), on an open connection in the caller's transaction; the table exists
    (:func:`ensure_staging_table`)."""
    conn.execute(f"delete from {STAGING_SCHEMA}.{table} where list_contains(?, project_id)", [list(project_ids)])
    if len(frame):
        view = f"_staged_{table}"
        conn.register(view, frame)
        # on an error the view is left to die with the connection: unregistering it in the aborted
        # transaction would raise and hide the error
        conn.execute(f"insert into {STAGING_SCHEMA}.{table} by name select * from {view}")
        conn.unregister(view)


def read_table(duckdb: DuckDBResource, sql: str, params: Optional[list] = None) -> pd.DataFrame:
    with connect(duckdb) as conn:
        return conn.execute(sql, params or []).fetch_df()


def staged_tables_present(duckdb: DuckDBResource, tables: Iterable[str]) -> dict[str, bool]:
    with connect(duckdb) as conn:
        return {t: table_exists(conn, STAGING_SCHEMA, t) for t in tables}


def write_export_results(
    duckdb: DuckDBResource,
    run_id: str,
    log_rows: list[tuple],
    state_rows: list[tuple],
) -> None:
    """Append to the export log and upsert the export state in one transaction.

    log_rows: (design_id, status, message, qb_record_id, content_hash)
    state_rows: (design_id, content_hash, qb_record_id, outcome, qb_modified)"""
    stamp = now_utc()
    # one state row per design: the last one given wins, as row-by-row upserts would have it
    state = {d: (d, h, rid, outcome, stamp, run_id, modified) for d, h, rid, outcome, modified in state_rows}
    with ops_transaction(duckdb) as conn:
        insert_rows(conn, f"{OPS_SCHEMA}.export_log", ("run_id", "design_id", "status", "message", "qb_record_id",
                                                       "content_hash", "logged_at"),
                    [(run_id, *row, stamp) for row in log_rows])
        insert_rows(conn, f"{OPS_SCHEMA}.export_state", ("design_id", "content_hash", "qb_record_id", "outcome",
                                                         "exported_at", "run_id", "qb_modified"), list(state.values()),
                    on_conflict="""on conflict (design_id) do update set content_hash = excluded.content_hash,
                    qb_record_id = coalesce(excluded.qb_record_id, export_state.qb_record_id),
                    outcome = excluded.outcome, exported_at = excluded.exported_at, run_id = excluded.run_id,
                    qb_modified = excluded.qb_modified""")


_DUCKDB_TYPES = {
    "str": "VARCHAR",
    "float64": "DOUBLE",
    "int64": "BIGINT",
    "Int64": "BIGINT",
    "boolean": "BOOLEAN",
    "datetime64[us, UTC]": "TIMESTAMPTZ",
}


class StagingSchemaMismatch(RuntimeError):
    """A staged table has other columns than its schema: deterministic, never worth a retry."""


def staging_ddl(table: str, schema_model) -> str:
    columns = schema_model.to_schema().columns
    body = ", ".join(f'"{name}" {_DUCKDB_TYPES[str(col.dtype)]}' for name, col in columns.items())
    return f"create table if not exists {STAGING_SCHEMA}.{table} ({body})"


def ensure_staging_table(duckdb: DuckDBResource, table: str, schema_model) -> None:
    """Create the staged table from its pandera schema if it is missing, so readers never find it
    absent (the DuckDB IO manager skips writing empty frames), and refuse to go on when an
    existing table has other columns than the schema: the IO manager inserts by position."""
    wanted = list(schema_model.to_schema().columns)
    with connect(duckdb) as conn:
        conn.execute(f"create schema if not exists {STAGING_SCHEMA}")
        conn.execute(staging_ddl(table, schema_model))
        have = [
            r[0]
            for r in conn.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
                "order by ordinal_position",
                [STAGING_SCHEMA, table],
            ).fetchall()
        ]
    if have != wanted:
        raise StagingSchemaMismatch(
            f"DuckDB table {STAGING_SCHEMA}.{table} has columns {have}, but the pipeline now stages {wanted}. "
            f"Drop the table (it is re-fetched from Aurora) and materialize its partitions again."
        )
