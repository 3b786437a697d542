"""The integration log: what happened to each design and project, read from the ops tables.

One list of entries, newest first, from three sources in DuckDB (see :mod:`.store`):

* ``ops.export_log`` — what each export did with a design: ``created``, ``updated``,
  ``unchanged``, ``skipped`` (the ``skip`` strategy found it in Quickbase), ``truncated`` (a value
  cut to the field's length, a note) and ``refused``: Quickbase refused the record (a 207 line
  error, stored as ``failed``) or the export did not send it because Quickbase would refuse it
  (a choice the field does not offer, a required value missing; stored as ``rejected``). A refused
  record keeps no state, so the next export tries it again.
* ``ops.quarantine`` — ``quarantined``: a row Aurora answered that failed validation or could not
  be fetched, with the reason; it is not staged.
* ``held`` — a staged design the export holds back because some of its rows (or, under the
  ``project`` hold policy, its project's address) are quarantined; the reason is the quarantine's.
  A state, not an event: its time is the newest of those quarantine rows.

Plain Python on a DuckDB connection: ``aurora-qb log`` and ``aurora-qb status`` open the file
read-only (:func:`open_read_only`), the ``integration_problems`` check uses the run's resource.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from .store import OPS_SCHEMA, STAGING_SCHEMA, HoldPolicy, held_sql, table_exists

STATUSES = ("created", "updated", "unchanged", "skipped", "truncated", "refused", "held", "quarantined")
PROBLEMS = ("refused", "held", "quarantined")
"""Statuses that need someone's attention (the rest are what a healthy sync does)."""

_STORED = {"failed": "refused", "rejected": "refused"}
_REASON_PREFIX = {"failed": "Quickbase refused it: ", "rejected": "not sent, Quickbase would refuse it: "}


class DatabaseBusy(RuntimeError):
    """The DuckDB file is held by a process writing it (a run) for longer than we were willing to wait."""


@dataclass(frozen=True)
class Entry:
    """One line of the integration log."""

    at: Optional[datetime]
    status: str
    project_id: Optional[str]
    design_id: Optional[str]
    run_id: Optional[str]
    reason: str
    asset: Optional[str] = None
    qb_record_id: Optional[int] = None
    tenant: Optional[str] = None  # many tenants: whose DuckDB file it came from (set by the reader)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat() if self.at else None
        return data


@dataclass(frozen=True)
class LogFilter:
    """Which entries to show; every given criterion must hold."""

    statuses: Sequence[str] = ()
    project_id: Optional[str] = None
    design_id: Optional[str] = None
    run_id: Optional[str] = None  # a prefix of the run id is enough
    since: Optional[datetime] = None
    limit: Optional[int] = 50
    latest_only: bool = False  # only the newest entry per design (or project), status and asset

    def keeps(self, entry: Entry) -> bool:
        return ((not self.statuses or entry.status in self.statuses)
                and (self.project_id is None or entry.project_id == self.project_id)
                and (self.design_id is None or entry.design_id == self.design_id)
                and (self.run_id is None or (entry.run_id or "").startswith(self.run_id))
                and (self.since is None or (entry.at is not None and entry.at >= self.since)))


def _utc(value: Any) -> Optional[datetime]:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return None


def _where(flt: LogFilter, columns: dict[str, str]) -> tuple[str, list]:
    """SQL conditions for the criteria a source can apply itself (the rest are applied after)."""
    clauses, params = [], []
    for attr, column in columns.items():
        value = getattr(flt, attr)
        if value is None:
            continue
        if attr == "run_id":
            clauses.append(f"starts_with(coalesce({column}, ''), ?)")
        elif attr == "since":
            clauses.append(f"{column} >= ?")
        else:
            clauses.append(f"{column} = ?")
        params.append(value)
    return (" and ".join(clauses) or "true"), params


def _wanted(flt: LogFilter, *statuses: str) -> bool:
    return not flt.statuses or any(s in flt.statuses for s in statuses)


def _export_entries(conn, flt: LogFilter) -> list[Entry]:
    if not _wanted(flt, "created", "updated", "unchanged", "skipped", "truncated", "refused"):
        return []
    designs = table_exists(conn, STAGING_SCHEMA, "designs")
    project = "d.project_id" if designs else "null"
    join = f"left join {STAGING_SCHEMA}.designs d using (design_id)" if designs else ""
    where, params = _where(flt, {"project_id": project, "design_id": "l.design_id", "run_id": "l.run_id",
                                 "since": "l.logged_at"})
    stored = [s for s in ("created", "updated", "unchanged", "skipped", "truncated") if _wanted(flt, s)]
    if _wanted(flt, "refused"):
        stored += ["failed", "rejected"]
    sql = (f"select l.logged_at, l.status, {project}, l.design_id, l.run_id, l.message, l.qb_record_id "
           f"from {OPS_SCHEMA}.export_log l {join} where {where} and list_contains(?, l.status) "
           f"order by l.logged_at desc, l.design_id limit ?")
    rows = conn.execute(sql, [*params, stored, _cap(flt)]).fetchall()
    return [Entry(_utc(at), _STORED.get(status, status), pid, did, run, _REASON_PREFIX.get(status, "") + (msg or ""),
                  "quickbase/designs_export", None if rid is None else int(rid))
            for at, status, pid, did, run, msg, rid in rows]


def _quarantine_entries(conn, flt: LogFilter) -> list[Entry]:
    if not _wanted(flt, "quarantined"):
        return []
    where, params = _where(flt, {"project_id": "project_id", "design_id": "record_key", "run_id": "run_id",
                                 "since": "quarantined_at"})
    rows = conn.execute(
        f"select quarantined_at, project_id, record_key, run_id, reason, asset from {OPS_SCHEMA}.quarantine "
        f"where {where} order by quarantined_at desc, asset, record_key limit ?", [*params, _cap(flt)]).fetchall()
    return [Entry(_utc(at), "quarantined", pid, key if key != pid else None, run, f"{asset}: {reason or ''}",
                  f"aurora/{asset}")
            for at, pid, key, run, reason, asset in rows]


def _held_entries(conn, flt: LogFilter, policy: HoldPolicy) -> list[Entry]:
    if not _wanted(flt, "held") or not all(table_exists(conn, STAGING_SCHEMA, t) for t in ("designs", "design_summaries")):
        return []
    project_rows = (" or (q.asset = 'project_addresses' and q.project_id = d.project_id)"
                    if HoldPolicy(policy) is HoldPolicy.PROJECT else "")
    where, params = _where(flt, {"project_id": "d.project_id", "design_id": "d.design_id", "run_id": "q.run_id",
                                 "since": "q.quarantined_at"})
    rows = conn.execute(
        f"""select max(q.quarantined_at), d.project_id, d.design_id, arg_max(q.run_id, q.quarantined_at),
                   list(q.asset || ': ' || q.reason order by q.asset, q.reason)
            from {STAGING_SCHEMA}.designs d join {STAGING_SCHEMA}.design_summaries s using (design_id)
            join {OPS_SCHEMA}.quarantine q on (q.record_key = d.design_id{project_rows})
            where {held_sql(policy)} and {where}
            group by d.project_id, d.design_id order by 1 desc, d.design_id limit ?""",
        [*params, _cap(flt)]).fetchall()
    return [Entry(_utc(at), "held", pid, did, run, "held back until Aurora's data passes: " + "; ".join(reasons),
                  "quickbase/designs_export")
            for at, pid, did, run, reasons in rows]


def _cap(flt: LogFilter) -> int:
    return flt.limit if flt.limit is not None else 2**62


def read_log(conn, flt: LogFilter = LogFilter(), hold_policy: HoldPolicy = HoldPolicy.DESIGN) -> list[Entry]:
    """The entries ``flt`` keeps, newest first, at most ``flt.limit``."""
    if not table_exists(conn, OPS_SCHEMA, "export_log"):
        return []
    query = replace(flt, limit=None) if flt.latest_only else flt
    entries = [*_export_entries(conn, query), *_quarantine_entries(conn, query),
               *_held_entries(conn, query, hold_policy)]
    floor = datetime.min.replace(tzinfo=timezone.utc)
    entries = sorted((e for e in entries if flt.keeps(e)), key=lambda e: (e.at or floor, e.status), reverse=True)
    if flt.latest_only:
        seen: set[tuple] = set()
        entries = [e for e in entries if (key := (e.design_id, e.project_id, e.status, e.asset)) not in seen
                   and not seen.add(key)]
    return entries[:flt.limit] if flt.limit is not None else entries


@dataclass
class Counts:
    """Where things stand now (``aurora-qb status``, the demo's summary, the UI check)."""

    quarantined_by_asset: dict[str, int] = field(default_factory=dict)
    held_designs: int = 0
    refused_designs: int = 0  # whose latest export outcome is a refusal
    synced_designs: int = 0  # with a record Quickbase accepted
    last_export_at: Optional[datetime] = None
    last_export_run: Optional[str] = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["last_export_at"] = self.last_export_at.isoformat() if self.last_export_at else None
        return data


def read_counts(conn, hold_policy: HoldPolicy = HoldPolicy.DESIGN) -> Counts:
    counts = Counts()
    if not table_exists(conn, OPS_SCHEMA, "export_log"):
        return counts
    counts.quarantined_by_asset = dict(conn.execute(
        f"select asset, count(*) from {OPS_SCHEMA}.quarantine group by 1 order by 1").fetchall())
    if all(table_exists(conn, STAGING_SCHEMA, t) for t in ("designs", "design_summaries")):
        counts.held_designs = conn.execute(
            f"select count(*) from {STAGING_SCHEMA}.designs d join {STAGING_SCHEMA}.design_summaries s "
            f"using (design_id) where {held_sql(hold_policy)}").fetchone()[0]
    counts.refused_designs = conn.execute(
        f"""select count(*) from (select design_id, arg_max(status, logged_at) latest from {OPS_SCHEMA}.export_log
            where status in ('created', 'updated', 'unchanged', 'skipped', 'failed', 'rejected') group by 1)
            where latest in ('failed', 'rejected')""").fetchone()[0]
    counts.synced_designs = conn.execute(
        f"select count(*) from {OPS_SCHEMA}.export_state where qb_record_id is not null").fetchone()[0]
    last = conn.execute(f"select logged_at, run_id from {OPS_SCHEMA}.export_log "
                        "order by logged_at desc limit 1").fetchone()
    if last:
        counts.last_export_at, counts.last_export_run = _utc(last[0]), last[1]
    return counts


def parse_since(text: str, now: Optional[datetime] = None) -> datetime:
    """``30m``, ``6h``, ``2d``, ``1w`` (that long ago) or an ISO date/time (UTC unless it says otherwise)."""
    now = now or datetime.now(timezone.utc)
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    value = text.strip()
    if value[-1:].lower() in units and value[:-1].replace(".", "", 1).isdigit():
        return now - timedelta(**{units[value[-1].lower()]: float(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--since takes 30m, 6h, 2d, 1w or an ISO date/time, not {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@contextmanager
def open_read_only(path: str, wait_s: float = 10.0) -> Iterator[Any]:
    """A read-only DuckDB connection to ``path``, closed when the block ends (keep it short: while
    it is open, a run cannot write the file). DuckDB lets a process open a file only when no other
    process holds it for writing; runs hold it for seconds at a time, so this retries with backoff
    for up to ``wait_s`` and then raises :class:`DatabaseBusy`. None when the file does not exist."""
    import duckdb

    if not Path(path).exists():
        yield None
        return
    deadline, delay = time.monotonic() + wait_s, 0.1
    while True:
        try:
            conn = duckdb.connect(path, read_only=True)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() + delay > deadline:
                raise DatabaseBusy(
                    f"the DuckDB file {path} is locked by a running run (it writes the file for a few seconds at a "
                    f"time); waited {wait_s:.0f} s. Try again, or wait longer with --wait 60") from None
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    try:
        yield conn
    finally:
        conn.close()
