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
  the run itself shows failed, and the sensors and the nightly reconcile run them again.

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
from typing import Any, Iterator

from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool


MAX_ENGINES = 32


class LeanSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log, with engines kept per shard and one planned event per asset
    for a range run (see the module doc)."""

    def __init__(self, base_dir: str, inst_data: Any = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
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

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()
        super().dispose()
