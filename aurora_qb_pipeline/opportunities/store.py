"""What the opportunity sync keeps between runs, in the inbox database (SQLAlchemy Core; SQLite
or Postgres, as the webhook inbox; not DuckDB, whose writer lock belongs to the staging runs).

Tables
* ``opportunity_sync``: one row per Quickbase opportunity the pipeline has acted on. The row is
  written (``claim``) BEFORE Aurora is asked to create anything, so a crash between Aurora's
  answer and the write-back leaves a trace: the next attempt then looks the project up by
  ``external_provider_id`` before creating one. Also what a failed attempt wrote back
  (``error_modified``: the opportunity's Date Modified after the error was written, so the record
  is tried again only once someone changed it).
* ``opportunity_requests``: button clicks the receiver queued ("Create in Aurora", "Sync from
  Aurora now"), read by the opportunities sensor after its cursor.

Claims: a claim older than ``lease_s`` belongs to a process that died; another run takes it over.
Two runs that see the same opportunity at once: one claims it, the other passes it over.

Many tenants: each tenant's store has tables of its own, named with the tenant
(``opportunity_sync__acme``, ``opportunity_requests__acme``), in the same database. Record ids are
per Quickbase table, so two tenants' opportunities tables can both have a record 7: separate tables
keep their claims and clicks apart, and a tenant's sensor reads only its own clicks. Without a
tenant the table names are the ones above, so a single-tenant database is used as it is.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Iterable, Optional

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..webhooks.inbox import make_engine

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SYNC_TABLE, REQUESTS_TABLE = "opportunity_sync", "opportunity_requests"


def table_name(base: str, tenant: Optional[str]) -> str:
    """A store table's name in ``tenant``'s store (``base`` itself without a tenant)."""
    return f"{base}__{tenant}" if tenant else base


def _tables(tenant: Optional[str]) -> tuple[sa.MetaData, sa.Table, sa.Table]:
    """The store's tables of ``tenant`` (one MetaData each: the names differ per tenant)."""
    metadata = sa.MetaData()
    sync_rows = sa.Table(
        table_name(SYNC_TABLE, tenant), metadata,
        sa.Column("record_id", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(32), nullable=False),  # claimed, project_created, requested, done, error
        sa.Column("claim", sa.String(64)),
        sa.Column("claimed_at", sa.Float),
        sa.Column("project_id", sa.String(128)),
        sa.Column("design_request_id", sa.String(128)),
        sa.Column("design_request_started", sa.Boolean, nullable=False, default=False),
        sa.Column("error", sa.Text),
        sa.Column("error_modified", sa.String(64)),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    requests = sa.Table(
        table_name(REQUESTS_TABLE, tenant), metadata,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("record_id", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
    )
    return metadata, sync_rows, requests


DONE_STATES = frozenset({"done"})


@dataclass(frozen=True)
class SyncRow:
    record_id: str
    state: str
    claim: Optional[str]
    claimed_at: Optional[float]
    project_id: Optional[str]
    design_request_id: Optional[str]
    design_request_started: bool
    error: Optional[str]
    error_modified: Optional[str]
    attempts: int
    updated_at: float


@dataclass(frozen=True)
class QueuedRequest:
    id: int
    record_id: str
    action: str
    received_at: float


class OpportunityStore:
    """Thread-safe; every method is one short transaction."""

    def __init__(self, url: str, lease_s: float = 600.0, tenant: Optional[str] = None):
        """``tenant``: a tenant's store (many tenants; module doc), None: the deployment's one."""
        self.url, self.lease_s, self.tenant = url, lease_s, tenant
        self.engine = make_engine(url)
        metadata, self.sync_rows, self.requests = _tables(tenant)
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def _insert(self, conn: sa.Connection, table: sa.Table):
        return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)

    # --- sync rows --------------------------------------------------------------------------
    def get(self, record_ids: Iterable[str]) -> dict[str, SyncRow]:
        ids = [str(r) for r in record_ids]
        if not ids:
            return {}
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(self.sync_rows).where(self.sync_rows.c.record_id.in_(ids))).all()
        return {row.record_id: SyncRow(**row._mapping) for row in rows}

    def claim(self, record_id: str, now: Optional[float] = None) -> Optional[tuple[str, SyncRow]]:
        """Take the opportunity for this attempt: (claim token, the row as it was before) or None
        when another attempt holds a live claim. The row is committed before this returns."""
        now = time.time() if now is None else now
        token = uuid.uuid4().hex
        with self.engine.begin() as conn:
            current = conn.execute(sa.select(self.sync_rows).where(self.sync_rows.c.record_id == record_id)).first()
            if current is None:
                conn.execute(sa.insert(self.sync_rows).values(
                    record_id=record_id, state="claimed", claim=token, claimed_at=now, attempts=1,
                    design_request_started=False, updated_at=now))
                before = SyncRow(record_id, "new", None, None, None, None, False, None, None, 0, now)
                return token, before
            before = SyncRow(**current._mapping)
            live = before.claim is not None and before.claimed_at is not None and now - before.claimed_at < self.lease_s
            if live:
                return None
            conn.execute(sa.update(self.sync_rows).where(self.sync_rows.c.record_id == record_id).values(
                claim=token, claimed_at=now, attempts=self.sync_rows.c.attempts + 1, updated_at=now))
            return token, before

    def update(self, record_id: str, token: str, **values) -> None:
        """Record progress of the attempt holding ``token``."""
        with self.engine.begin() as conn:
            rows = self.sync_rows
            conn.execute(sa.update(rows).where(rows.c.record_id == record_id, rows.c.claim == token)
                         .values(updated_at=time.time(), **values))

    def release(self, record_id: str, token: str, **values) -> None:
        """End the attempt (``values``: its outcome)."""
        self.update(record_id, token, claim=None, claimed_at=None, **values)

    def linked_projects(self, project_ids: Iterable[str]) -> set[str]:
        """Those of ``project_ids`` the pipeline made for an opportunity."""
        ids = [p for p in set(project_ids) if p]
        if not ids:
            return set()
        with self.engine.begin() as conn:
            column = self.sync_rows.c.project_id
            rows = conn.execute(sa.select(column).where(column.in_(ids))).all()
        return {r for (r,) in rows}

    def unfinished(self, now: Optional[float] = None, max_attempts: int = 10) -> list[str]:
        """Opportunities an attempt began and did not finish (it failed, or its process died and
        its claim is older than the lease): the sensor hands them to the next run."""
        now = time.time() if now is None else now
        query = sa.select(self.sync_rows.c.record_id).where(
            self.sync_rows.c.state.in_(["claimed", "project_created", "requested"]),
            self.sync_rows.c.attempts < max_attempts,
            sa.or_(self.sync_rows.c.claim.is_(None), self.sync_rows.c.claimed_at < now - self.lease_s))
        with self.engine.begin() as conn:
            return [r for (r,) in conn.execute(query)]

    # --- button clicks ------------------------------------------------------------------------
    def queue(self, record_id: str, action: str, now: Optional[float] = None) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(sa.insert(self.requests).values(
                record_id=str(record_id), action=action, received_at=time.time() if now is None else now))
            return int(result.inserted_primary_key[0])

    def queued(self, after_id: int, limit: int = 500) -> list[QueuedRequest]:
        query = sa.select(self.requests).where(self.requests.c.id > after_id).order_by(self.requests.c.id).limit(limit)
        with self.engine.begin() as conn:
            return [QueuedRequest(**row._mapping) for row in conn.execute(query)]
