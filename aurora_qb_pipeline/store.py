"""Tables the pipeline keeps in DuckDB beside the staged assets.

* ``ops.quarantine``   rows that failed validation or could not be fetched, with the reason
  (and ``problems``: a JSON list of ``{field, rule, value}``);
* ``ops.staging_notes`` values the staging repaired losslessly but reports (text with unpaired
  surrogates, lists given as JSON text), one line per field;
* ``ops.export_state`` per Aurora design: hash of what Quickbase last accepted, and its record id;
* ``ops.export_log``   one line per record per export attempt (created / updated / unchanged /
  failed / rejected / skipped) with Quickbase's messages.

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
    outcome varchar, exported_at timestamptz, run_id varchar);
create table if not exists {OPS_SCHEMA}.export_log (
    run_id varchar, design_id varchar, status varchar, message varchar,
    qb_record_id bigint, content_hash varchar, logged_at timestamptz);
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
    with ops_transaction(duckdb) as conn:
        if project_ids:
            for table in ("quarantine", "staging_notes"):
                conn.execute(
                    f"delete from {OPS_SCHEMA}.{table} where asset = ? and list_contains(?, project_id)",
                    [asset, list(project_ids)],
                )
        if rows:
            conn.executemany(
                f"insert into {OPS_SCHEMA}.quarantine (asset, project_id, record_key, reason, record_json, run_id, "
                "quarantined_at, problems) values (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        if note_rows:
            conn.executemany(f"insert into {OPS_SCHEMA}.staging_notes values (?, ?, ?, ?, ?, ?, ?, ?)", note_rows)


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
    state_rows: (design_id, content_hash, qb_record_id, outcome)"""
    stamp = now_utc()
    with ops_transaction(duckdb) as conn:
        if log_rows:
            conn.executemany(
                f"insert into {OPS_SCHEMA}.export_log values (?, ?, ?, ?, ?, ?, ?)",
                [(run_id, *row, stamp) for row in log_rows],
            )
        if state_rows:
            conn.executemany(
                f"""insert into {OPS_SCHEMA}.export_state values (?, ?, ?, ?, ?, ?)
                    on conflict (design_id) do update set content_hash = excluded.content_hash,
                    qb_record_id = coalesce(excluded.qb_record_id, export_state.qb_record_id),
                    outcome = excluded.outcome, exported_at = excluded.exported_at, run_id = excluded.run_id""",
                [(d, h, rid, outcome, stamp, run_id) for d, h, rid, outcome in state_rows],
            )


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
