"""DuckDB resources that survive a killed run: atomic partition writes, and the run worker's record.

* :class:`AtomicDuckDBPandasIOManager`: ``dagster-duckdb``'s IO manager replaces a partition
  slice with a ``DELETE`` and then an ``INSERT`` on one connection in autocommit mode, two
  transactions (dagster-io/dagster#14091): a run killed between the two leaves the projects of its
  range with no rows at all, and a step that failed there kept the file's lock until garbage
  collection. Here the delete and the insert are one transaction, rolled back (and the
  connection closed) on any error, so a killed writer leaves the previous rows, which DuckDB
  keeps when it replays its write-ahead log on the next open.
* :class:`PipelineDuckDB`: the ``duckdb`` resource every step of the pipeline uses (staging,
  checks, export). It starts the run's worker record and heartbeat
  (:class:`~.run_worker.WorkerHeartbeat`), so every run records its worker without each asset
  naming another resource.
"""


import contextlib
from contextlib import contextmanager
from typing import Iterator, Optional

import dagster as dg
from dagster._core.storage.db_io_manager import DbIOManager  # not exported; dagster is pinned exactly
from dagster_duckdb import DuckDBResource
from dagster_duckdb.io_manager import DuckDbClient, _get_cleanup_statement
from dagster_duckdb_pandas import DuckDBPandasIOManager
from pydantic import Field, PrivateAttr

from ..run_health import HEARTBEAT_INTERVAL_S
from .run_worker import WorkerHeartbeat


class AtomicDuckDbClient(DuckDbClient):
    """``DuckDbClient`` whose connection is one transaction: committed when the IO manager's work
    on it succeeded, rolled back otherwise, closed in every case."""

    @staticmethod
    def delete_table_slice(context, table_slice, connection) -> None:
        # the stock client runs the delete and ignores "no such table"; in a transaction that error
        # would abort the transaction, so look first
        found = connection.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [table_slice.schema, table_slice.table],
        ).fetchone()
        if found and found[0]:
            connection.execute(_get_cleanup_statement(table_slice))

    @staticmethod
    @contextmanager
    def connect(context, table_slice) -> Iterator:
        with DuckDbClient.connect(context, table_slice) as conn:
            try:
                conn.execute("begin transaction")
                yield conn
                conn.execute("commit")
            except BaseException:
                with contextlib.suppress(Exception):
                    conn.execute("rollback")
                raise
            finally:
                conn.close()


class AtomicDuckDBPandasIOManager(DuckDBPandasIOManager):
    """``DuckDBPandasIOManager`` replacing a partition slice in one transaction (see module docstring)."""

    def create_io_manager(self, context) -> DbIOManager:
        return DbIOManager(
            db_client=AtomicDuckDbClient(),
            database=self.database,
            schema=self.schema_,
            type_handlers=self.type_handlers(),
            default_load_type=self.default_load_type(),
            io_manager_name="DuckDBIOManager",
        )


class PipelineDuckDB(DuckDBResource):
    """The pipeline's DuckDB file (ops tables, reads of staged data). Dagster starts it once per
    run, before any step waits for the ``duckdb`` pool; it then keeps the run's worker record and
    heartbeat (run tag ``aurora_qb/run_worker``) until the run's resources are torn down."""

    heartbeat_interval_s: float = Field(
        default=HEARTBEAT_INTERVAL_S, gt=0, description="Seconds between two heartbeats of the run's worker record."
    )

    _heartbeat: Optional[WorkerHeartbeat] = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if context.run is not None and context.instance is not None:  # not in a sensor tick
            self._heartbeat = WorkerHeartbeat(context.instance, context.run.run_id, self.heartbeat_interval_s).start()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
