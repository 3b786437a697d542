"""Aurora's answers as they came, staged as JSON beside the typed tables (``staging.aurora_raw``).

The typed staging tables hold the ~30 columns the standard mapping needs; a custom mapping may name
any field of Aurora's answers (``project.customer_email``, ``summary.system_size_ac``,
``pricing.system_price``: :mod:`.mapping_paths`). So every staging step that fetched an answer also
keeps it here, one row per object:

==========  ==============================================  ==========================  ==========
kind        answer                                          object_id                   written by
==========  ==============================================  ==========================  ==========
project     ``GET /projects/{id}`` (or its list-page item)  project id                  aurora/project_addresses
design      an item of ``GET /projects/{id}/designs``       design id                   aurora/designs
summary     ``GET /designs/{id}/summary``                   design id                   aurora/design_summaries
proposal    ``GET /designs/{id}/proposals/default``         design id                   aurora/latest_proposals
pricing     ``GET /designs/{id}/pricing``                   design id                   aurora/design_summaries
==========  ==============================================  ==========================  ==========

Rows are replaced per (kind, project) exactly as the IO manager replaces the typed rows of the
run's projects, in the same step. JSON is kept faithfully, except what JSON text cannot hold
(NaN and Infinity become null, unpaired surrogates the replacement character), since issue 15's
answers carry both.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, Optional, Sequence

from dagster_duckdb import DuckDBResource

from .coerce import safe_text
from .store import STAGING_SCHEMA, connect, insert_rows, now_utc, table_exists

RAW_TABLE = "aurora_raw"
RAW_KINDS = ("project", "design", "summary", "proposal", "pricing")
RAW_WRITERS = {"project": "project_addresses", "design": "designs", "summary": "design_summaries",
               "proposal": "latest_proposals", "pricing": "design_summaries"}
"""kind -> the staging asset whose step fetches and keeps it (column lineage names these)."""

DDL = f"""
create schema if not exists {STAGING_SCHEMA};
create table if not exists {STAGING_SCHEMA}.{RAW_TABLE} (
    kind varchar, project_id varchar, object_id varchar, payload varchar, fetched_at timestamptz);
"""


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {safe_text(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def payload_json(payload: Any) -> str:
    """``payload`` as JSON text; what JSON cannot hold is replaced (see the module doc)."""
    try:
        return _utf8(json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")))
    except (ValueError, TypeError):
        return _utf8(json.dumps(_clean(payload), ensure_ascii=False, default=str, separators=(",", ":")))


def _utf8(text: str) -> str:
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return safe_text(text)


def replace_raw(
    duckdb: DuckDBResource, kind: str, project_ids: Sequence[str], items: Iterable[tuple[str, str, Any]]
) -> int:
    """Make ``staging.aurora_raw`` hold exactly ``items`` ((project id, object id, payload)) of
    ``kind`` for ``project_ids``, in one transaction. Returns the rows written."""
    with connect(duckdb) as conn:
        conn.execute(DDL)
        conn.execute("begin")
        try:
            written = replace_raw_in(conn, kind, project_ids, items)
        except BaseException:
            conn.execute("rollback")
            raise
        conn.execute("commit")
    return written


def replace_raw_in(conn, kind: str, project_ids: Sequence[str], items: Iterable[tuple[str, str, Any]]) -> int:
    """:func:`replace_raw` on an open connection, in the caller's transaction."""
    if kind not in RAW_KINDS:
        raise ValueError(f"unknown raw payload kind {kind!r}")
    conn.execute(DDL)
    stamp = now_utc()
    rows = [(kind, str(pid), str(oid), payload_json(p), stamp) for pid, oid, p in items]
    if project_ids:
        conn.execute(f"delete from {STAGING_SCHEMA}.{RAW_TABLE} where kind = ? and list_contains(?, project_id)",
                     [kind, list(project_ids)])
    insert_rows(conn, f"{STAGING_SCHEMA}.{RAW_TABLE}", ("kind", "project_id", "object_id", "payload", "fetched_at"), rows)
    return len(rows)


def read_documents(duckdb: DuckDBResource, kinds: Iterable[str]) -> dict[str, dict[str, Any]]:
    """{design id: {kind: payload}} for every staged design (``staging.designs``), with the raw
    payloads of ``kinds``: its project's, and its own under its current project."""
    kinds = sorted(set(kinds) & set(RAW_KINDS))
    if not kinds:
        return {}
    with connect(duckdb) as conn:
        if not (table_exists(conn, STAGING_SCHEMA, RAW_TABLE) and table_exists(conn, STAGING_SCHEMA, "designs")):
            return {}
        rows = conn.execute(
            f"""select d.design_id, r.kind, r.payload
                from {STAGING_SCHEMA}.designs d join {STAGING_SCHEMA}.{RAW_TABLE} r
                  on r.project_id = d.project_id and (r.kind = 'project' or r.object_id = d.design_id)
                where list_contains(?, r.kind)""",
            [kinds],
        ).fetchall()
    documents: dict[str, dict[str, Any]] = {}
    for design_id, kind, payload in rows:
        documents.setdefault(design_id, {})[kind] = json.loads(payload)
    return documents


def read_payload(duckdb: DuckDBResource, kind: str, object_id: str) -> Optional[Any]:
    """One staged payload (tests, troubleshooting)."""
    with connect(duckdb) as conn:
        if not table_exists(conn, STAGING_SCHEMA, RAW_TABLE):
            return None
        found = conn.execute(f"select payload from {STAGING_SCHEMA}.{RAW_TABLE} where kind = ? and object_id = ?",
                             [kind, object_id]).fetchone()
    return json.loads(found[0]) if found else None
