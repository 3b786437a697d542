"""The durable webhook inbox: what the receiver appends and the sensor reads, in SQL.

Not the DuckDB file: its single-writer lock belongs to runs, and the receiver must answer Aurora
within a second whatever a run is doing. SQLAlchemy Core over SQLite (WAL mode, ``synchronous``
FULL: a 200 is answered only after the row is on disk) by default, under ``DAGSTER_HOME``; the same
code runs on Postgres when the URL says so (several hosts: issue 13).

Tables
* ``webhook_inbox``: one row per distinct delivery (id ascending = commit order, see
  :meth:`Inbox.append`), the event, its parameters (never the shared secret), a dedupe key and
  how many deliveries it stood for.
* ``webhook_inbox_consumers``: how far each reader got (the sensor writes its cursor here too;
  Dagster's cursor stays the authoritative one for reading).
* ``tracked_design_requests``: design requests the pipeline follows until they are final
  (from webhooks, or created by the pipeline), polled one by one. Each keeps the Aurora tenant it
  belongs to (many tenants): a tenant's sensor polls only its own, with its own key (another
  tenant's key would get a 404 and end the follow-up). A database made before the column is
  given it when opened (:func:`_add_tenant_column`); its rows have no tenant and are polled by
  the single-tenant sensor only.
* ``design_projects``: design id -> project id, learned while resolving events and taught by every
  staging of designs (``defs/aurora``), so a simulation event for a design the pipeline has
  staged costs no request, and one for a new design is looked up in Aurora once.

Duplicates: an event identical to one that no reader has reached yet is a duplicate (its
delivery count goes up). Once a reader has read the first one, an identical event is stored
again: it may be a real second change (a project set to "Design Ready" twice), and a sync it
causes is cheap and harmless, while a change dropped as a "duplicate" would be lost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .events import InboundEvent

metadata = sa.MetaData()
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only

events = sa.Table(
    "webhook_inbox", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("event", sa.String(100), nullable=False),
    sa.Column("event_as_sent", sa.String(100), nullable=False),
    sa.Column("known", sa.Boolean, nullable=False),
    sa.Column("tenant_id", sa.String(128)),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("dedupe_key", sa.String(64), nullable=False, index=True),
    sa.Column("deliveries", sa.Integer, nullable=False),
    sa.Column("last_delivery_at", sa.Float, nullable=False),
)
consumers = sa.Table(
    "webhook_inbox_consumers", metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
tracked = sa.Table(
    "tracked_design_requests", metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("project_id", sa.String(128)),
    sa.Column("design_id", sa.String(128)),
    sa.Column("status", sa.String(64)),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("final", sa.Boolean, nullable=False),
    sa.Column("first_seen_at", sa.Float, nullable=False),
    sa.Column("last_checked_at", sa.Float),
    sa.Column("next_check_at", sa.Float, nullable=False),
    sa.Column("checks", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("tenant_id", sa.String(128)),
    sa.Index("ix_tracked_due", "final", "next_check_at"),
)
design_projects = sa.Table(
    "design_projects", metadata,
    sa.Column("design_id", sa.String(128), primary_key=True),
    sa.Column("project_id", sa.String(128), nullable=False),
    sa.Column("learned_at", sa.Float, nullable=False),
)

_PG_APPEND_LOCK = 0x41515F494E  # advisory lock serialising appends on Postgres (ids then follow commit order)


@dataclass(frozen=True)
class Appended:
    id: int
    duplicate: bool


@dataclass(frozen=True)
class InboxRow:
    id: int
    received_at: float
    source: str
    event: str
    event_as_sent: str
    known: bool
    tenant_id: Optional[str]
    params: dict[str, str]
    dedupe_key: str
    deliveries: int


@dataclass(frozen=True)
class TrackedRequest:
    id: str
    project_id: Optional[str]
    design_id: Optional[str]
    status: Optional[str]
    source: str
    final: bool
    first_seen_at: float
    last_checked_at: Optional[float]
    next_check_at: float
    checks: int
    last_error: Optional[str]
    tenant_id: Optional[str] = None


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" below starts transactions
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000", "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection):
        # take the write lock up front: a read-then-write transaction cannot then fail half way
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _add_tenant_column(engine: sa.Engine) -> None:
    """Give a ``tracked_design_requests`` table made before the tenant column that column."""
    columns = {c["name"] for c in sa.inspect(engine).get_columns(tracked.name)}
    if "tenant_id" in columns:
        return
    exists = " IF NOT EXISTS" if engine.dialect.name == "postgresql" else ""
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE {tracked.name} ADD COLUMN{exists} tenant_id VARCHAR(128)")
    except sa.exc.OperationalError as exc:  # SQLite: another process added it first
        if "duplicate column" not in str(exc):
            raise


def make_engine(url: str) -> sa.Engine:
    """An engine for an inbox URL (``sqlite:///path`` or ``postgresql+psycopg://host/db``)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return sa.create_engine(parsed, pool_pre_ping=True)


def display_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    return sa.make_url(url).render_as_string(hide_password=True)


class Inbox:
    """The inbox database. Thread-safe (one pooled engine); every method is one short transaction."""

    def __init__(self, url: str, create: bool = True):
        self.url = url
        self.engine = make_engine(url)
        if create:
            metadata.create_all(self.engine)
            _add_tenant_column(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Inbox({display_url(self.url)})"

    def ping(self) -> None:
        """Raises when the database cannot be reached (the receiver's health check)."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("select 1"))

    # --- events ---------------------------------------------------------------------------------
    def _insert(self, conn: sa.Connection, table: sa.Table):
        return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)

    def append(self, event: InboundEvent, now: Optional[float] = None) -> Appended:
        """Store one delivery; a duplicate of an unread identical event only counts as a delivery."""
        now = time.time() if now is None else now
        key = event.dedupe_key
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("select pg_advisory_xact_lock(:key)"), {"key": _PG_APPEND_LOCK})
            floor = sa.select(sa.func.coalesce(sa.func.max(consumers.c.position), 0)).scalar_subquery()
            existing = conn.execute(
                sa.select(events.c.id).where(events.c.dedupe_key == key, events.c.id > floor)
                .order_by(events.c.id).limit(1)
            ).scalar()
            if existing is not None:
                conn.execute(sa.update(events).where(events.c.id == existing)
                             .values(deliveries=events.c.deliveries + 1, last_delivery_at=now))
                return Appended(existing, duplicate=True)
            result = conn.execute(sa.insert(events).values(
                received_at=now, source=event.source, event=event.event, event_as_sent=event.event_as_sent,
                known=event.known, tenant_id=event.tenant_id, params=event.all_params(), dedupe_key=key,
                deliveries=1, last_delivery_at=now,
            ))
            return Appended(int(result.inserted_primary_key[0]), duplicate=False)

    def read(self, after_id: int, limit: int = 1000, sources: Optional[Iterable[str]] = None,
             tenant_id: Optional[str] = None) -> list[InboxRow]:
        """Rows after ``after_id``, oldest first (``tenant_id``: only that Aurora tenant's, many tenants)."""
        query = sa.select(events).where(events.c.id > after_id).order_by(events.c.id).limit(limit)
        if sources is not None:
            query = query.where(events.c.source.in_(list(sources)))
        if tenant_id is not None:
            query = query.where(events.c.tenant_id == tenant_id)
        with self.engine.begin() as conn:
            return [InboxRow(**{k: row._mapping[k] for k in InboxRow.__dataclass_fields__}) for row in conn.execute(query)]

    def latest(self, limit: int) -> list[InboxRow]:
        """The newest ``limit`` rows, oldest of them first."""
        query = sa.select(events).order_by(events.c.id.desc()).limit(limit)
        with self.engine.begin() as conn:
            rows = [InboxRow(**{k: row._mapping[k] for k in InboxRow.__dataclass_fields__}) for row in conn.execute(query)]
        return rows[::-1]

    def mark_read(self, consumer: str, position: int, now: Optional[float] = None) -> None:
        """Record how far ``consumer`` has read (never moves back)."""
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            stmt = self._insert(conn, consumers).values(name=consumer, position=position, updated_at=now)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=[consumers.c.name],
                set_={"position": sa.func.max(consumers.c.position, stmt.excluded.position)
                      if conn.dialect.name == "sqlite" else sa.func.greatest(consumers.c.position,
                                                                             stmt.excluded.position),
                      "updated_at": now},
            ))

    def position(self, consumer: str) -> int:
        with self.engine.begin() as conn:
            value = conn.execute(sa.select(consumers.c.position).where(consumers.c.name == consumer)).scalar()
        return int(value or 0)

    def purge(self, older_than: float) -> int:
        """Delete events received before ``older_than`` that every reader has read; returns how many."""
        with self.engine.begin() as conn:
            floor = conn.execute(sa.select(sa.func.min(consumers.c.position))).scalar()
            if floor is None:
                return 0
            result = conn.execute(sa.delete(events).where(events.c.received_at < older_than, events.c.id <= floor))
            return result.rowcount or 0

    def summary(self) -> dict[str, Any]:
        """Counts for status output: events, deliveries, unread events, open tracked requests."""
        with self.engine.begin() as conn:
            read_to = conn.execute(sa.select(sa.func.coalesce(sa.func.max(consumers.c.position), 0))).scalar()
            total, deliveries, newest = conn.execute(sa.select(
                sa.func.count(), sa.func.coalesce(sa.func.sum(events.c.deliveries), 0),
                sa.func.max(events.c.received_at))).one()
            unread = conn.execute(sa.select(sa.func.count()).where(events.c.id > read_to)).scalar()
            open_requests = conn.execute(sa.select(sa.func.count()).select_from(tracked)
                                         .where(tracked.c.final.is_(False))).scalar()
        return {"events": total, "deliveries": int(deliveries), "unread": unread, "newest_received_at": newest,
                "tracked_design_requests_open": open_requests}

    # --- design requests the pipeline follows ------------------------------------------------
    def track_design_request(self, request_id: str, *, source: str, project_id: Optional[str] = None,
                             design_id: Optional[str] = None, status: Optional[str] = None, final: bool = False,
                             next_check_at: Optional[float] = None, now: Optional[float] = None,
                             tenant_id: Optional[str] = None) -> None:
        """Start following a design request, or add what is now known about one already followed
        (a value is never replaced by None; a final request stays final). ``tenant_id``: the Aurora
        tenant it belongs to (many tenants; None: the deployment's one tenant)."""
        now = time.time() if now is None else now
        values = {"id": request_id, "project_id": project_id, "design_id": design_id, "status": status,
                  "source": source, "final": final, "first_seen_at": now,
                  "next_check_at": now if next_check_at is None else next_check_at, "checks": 0,
                  "tenant_id": tenant_id}
        with self.engine.begin() as conn:
            stmt = self._insert(conn, tracked).values(**values)
            ex = stmt.excluded
            conn.execute(stmt.on_conflict_do_update(index_elements=[tracked.c.id], set_={
                "project_id": sa.func.coalesce(ex.project_id, tracked.c.project_id),
                "design_id": sa.func.coalesce(ex.design_id, tracked.c.design_id),
                "status": sa.func.coalesce(ex.status, tracked.c.status),
                "final": sa.or_(tracked.c.final, ex.final),
                "next_check_at": ex.next_check_at,
                "tenant_id": sa.func.coalesce(tracked.c.tenant_id, ex.tenant_id),
            }))

    def tracked_design_requests(self, ids: Iterable[str]) -> dict[str, TrackedRequest]:
        ids = list(ids)
        if not ids:
            return {}
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(tracked).where(tracked.c.id.in_(ids))).all()
        return {row.id: TrackedRequest(**row._mapping) for row in rows}

    def due_design_requests(self, now: float, limit: int, tenant_id: Optional[str] = None) -> list[TrackedRequest]:
        """Followed requests not final whose next check is due, the longest waiting first
        (``tenant_id``: only that Aurora tenant's, many tenants)."""
        query = (sa.select(tracked).where(tracked.c.final.is_(False), tracked.c.next_check_at <= now)
                 .order_by(tracked.c.next_check_at).limit(limit))
        if tenant_id is not None:
            query = query.where(tracked.c.tenant_id == tenant_id)
        with self.engine.begin() as conn:
            return [TrackedRequest(**row._mapping) for row in conn.execute(query)]

    def record_check(self, request_id: str, *, status: Optional[str], project_id: Optional[str],
                     design_id: Optional[str], final: bool, next_check_at: float, error: Optional[str] = None,
                     now: Optional[float] = None) -> None:
        """What one poll of a followed request found."""
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            conn.execute(sa.update(tracked).where(tracked.c.id == request_id).values(
                status=sa.func.coalesce(status, tracked.c.status),
                project_id=sa.func.coalesce(project_id, tracked.c.project_id),
                design_id=sa.func.coalesce(design_id, tracked.c.design_id),
                final=final, next_check_at=next_check_at, last_checked_at=now, checks=tracked.c.checks + 1,
                last_error=error,
            ))

    # --- design id -> project id ----------------------------------------------------------------
    def design_projects(self, design_ids: Iterable[str]) -> dict[str, str]:
        ids = list(set(design_ids))
        if not ids:
            return {}
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(design_projects.c.design_id, design_projects.c.project_id)
                                .where(design_projects.c.design_id.in_(ids))).all()
        return {design: project for design, project in rows}

    def remember_designs(self, mapping: dict[str, str], now: Optional[float] = None, overwrite: bool = False,
                         chunk: int = 500) -> None:
        """Record which project each design belongs to. ``overwrite``: what staging just read from
        Aurora wins over what was learned before (a design moved to another project)."""
        if not mapping:
            return
        now = time.time() if now is None else now
        items = list(mapping.items())
        with self.engine.begin() as conn:
            for start in range(0, len(items), chunk):
                stmt = self._insert(conn, design_projects).values(
                    [{"design_id": d, "project_id": p, "learned_at": now} for d, p in items[start:start + chunk]])
                if overwrite:
                    stmt = stmt.on_conflict_do_update(index_elements=[design_projects.c.design_id],
                                                      set_={"project_id": stmt.excluded.project_id,
                                                            "learned_at": stmt.excluded.learned_at})
                else:
                    stmt = stmt.on_conflict_do_nothing(index_elements=[design_projects.c.design_id])
                conn.execute(stmt)
