"""A leaner SQLite event log for single-host instances (the demo's, the benchmark's).

Profiled on a full sync (``README``, "Benchmark"), most of a range run's CPU went to Dagster
writing its event log: every event opens a new SQLAlchemy engine on the run's SQLite file, so no
statement is ever compiled from the engine's cache, and a run over N partitions of five staged
outputs writes 5 N "materialization planned" events before the first step starts. This storage
is Dagster's :class:`SqliteEventLogStorage` with two changes:

* one engine per shard (run file or index), kept for the storage's life: connections are still
  opened and closed per write (``NullPool``, as Dagster does, so other processes and the
  webserver's file watchers see the same files), but statements compile once;
* ``supports_partition_subset_in_asset_materialization_planned_events``: one planned event per
  asset for a run over a range of partitions (Dagster's own option, otherwise only reachable
  through the environment variable ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS``). The
  trade-off Dagster documents: the partitions of a run that fails show as missing, not failed;
  the run itself shows failed, and the sensors and the nightly reconcile run them again;
* :meth:`~LeanSqliteEventLogStorage.store_event_batch`: the N asset events of one multi-partition
  output (a range run writes one materialization per partition and staged asset) are written in
  one transaction on the run's file and one on the index file, instead of two commits each.
  Dagster hands events over in batches only when ``DAGSTER_EVENT_BATCH_SIZE`` is set in the
  process that executes the run (:data:`..instance.EVENT_BATCH_SIZE`, set by
  :func:`..instance.batch_asset_events`); without it every event is stored alone, as before;
* the existence of index tables and columns, checked by Dagster before every asset event (a new
  engine and connection each time), is remembered once found.

It is configured by :func:`..instance.prepare_dagster_home` (``base_dir`` must be absolute) and
can be named in any single-host ``dagster.yaml``::

    event_log_storage:
      module: aurora_qb_pipeline.event_log
      class: LeanSqliteEventLogStorage
      config:
        base_dir: /path/to/dagster_home/history/runs

A deployment on Postgres (``deploy/``) keeps Dagster's Postgres storage: its engine is pooled.
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from dagster._core.definitions.events import AssetKey
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool


MAX_ENGINES = 32

BATCHED_TYPES = frozenset({
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_OBSERVATION,
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    DagsterEventType.ASSET_FAILED_TO_MATERIALIZE,
})
"""Asset events :meth:`SqliteEventLogStorage.store_event` stores the same way (a row in the run's
file, its mirror in the index file, its tags, the asset's entry): these are written as one batch.
Anything else in a batch (e.g. a planned asset check) makes the batch be stored event by event."""


class LeanSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log, with engines kept per shard and one planned event per asset
    for a range run (see the module doc)."""

    def __init__(self, base_dir: str, inst_data: Any = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._tables_present: set[str] = set()
        self._asset_key_index_cols = False
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> "LeanSqliteEventLogStorage":
        return cls(inst_data=inst_data, **config_value)

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        return True

    def _engine(self, shard: str) -> Engine:
        """The shard's engine; the least recently used are let go beyond :data:`MAX_ENGINES`, so a
        long-lived webserver or daemon that reads many runs keeps a bounded number."""
        engine = self._engines.get(shard)
        if engine is None:
            engine = create_engine(self.conn_string_for_shard(shard), poolclass=NullPool,
                                   connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
            self._engines[shard] = engine
            while len(self._engines) > MAX_ENGINES:
                self._engines.popitem(last=False)[1].dispose()
        else:
            self._engines.move_to_end(shard)
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn

    # --- batches ---------------------------------------------------------------------------

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store ``events`` as :meth:`store_event` would one by one, in two transactions.

        Same rows as one by one: each event in the run's file and mirrored in the index file (in
        order, so storage ids grow as before), the indexed tags of each, and the asset's entry
        (last materialization, last run, last event time) as it stands after the last event of
        the batch. Dagster's Postgres storage drops failed-to-materialize events from a batch;
        this one keeps them, as one-by-one storage does.

        If a batch fails, Dagster stores its events again one by one. The run's file is written
        first: should the index write fail after it, the run's log shows those events twice,
        while the index (asset records, partition status) gets each once."""
        if not events:
            return
        if len({e.run_id for e in events}) != 1 or not all(self._batchable(e) for e in events):
            super().store_event_batch(events)  # one by one
            return
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        with self.index_transaction() as conn:
            insert = SqlEventLogStorageTable.insert()
            event_ids = [conn.execute(insert, row).inserted_primary_key[0] for row in rows]
            self._store_asset_event_tags(conn, events, event_ids)
            for index in _entry_writes(events):
                self._store_asset_event(conn, events[index], event_ids[index])

    @staticmethod
    def _batchable(event: EventLogEntry) -> bool:
        dagster_event = event.dagster_event
        return (dagster_event is not None and dagster_event.event_type in BATCHED_TYPES
                and dagster_event.asset_key is not None)

    # --- schema checks, remembered once true ----------------------------------------------------

    def has_table(self, table_name: str) -> bool:
        if table_name in self._tables_present:
            return True
        present = super().has_table(table_name)
        if present:
            self._tables_present.add(table_name)
        return present

    def _has_asset_key_index_cols_on_connection(self, conn: Connection) -> bool:
        if not self._asset_key_index_cols:
            self._asset_key_index_cols = super()._has_asset_key_index_cols_on_connection(conn)
        return self._asset_key_index_cols

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()
        super().dispose()


def _entry_writes(events: Sequence[EventLogEntry]) -> list[int]:
    """Positions of the events whose asset entry writes decide the entries' final state, in order.

    One by one, every asset event overwrites its asset's entry with the columns its type sets
    (a materialization: last materialization, run and time; a planned event: run and time; ...).
    The final entry is therefore set by the last event of each type per asset, applied in their
    order: that is all a batch writes (one or two writes per asset instead of one per event)."""
    last: dict[tuple[AssetKey, DagsterEventType], int] = {}
    for index, event in enumerate(events):
        dagster_event = event.get_dagster_event()
        last[(dagster_event.asset_key, dagster_event.event_type)] = index  # type: ignore[index]
    return sorted(last.values())
