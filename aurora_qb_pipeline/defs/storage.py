"""DuckDB resources that survive a killed run: atomic partition writes, and the run worker's record.

* :class:`AtomicDuckDBPandasIOManager`: ``dagster-duckdb``'s IO manager replaces a partition
  slice with a ``DELETE`` and then an ``INSERT`` on one connection in autocommit mode, two
  transactions (dagster-io/dagster#14091): a run killed between the two leaves the projects of its
  range with no rows at all, and a step that failed there kept the file's lock until garbage
  collection. Here the delete and the insert are one transaction, rolled back (and the
  connection closed) on any error, so a killed writer leaves the previous rows, which DuckDB
  keeps when it replays its write-ahead log on the next open. An output over a range of
  partitions gets only the metadata true of each partition (:class:`RangeDbIOManager`).
* :class:`PipelineDuckDB`: the ``duckdb`` resource every step of the pipeline uses (staging,
  checks, export). It starts the run's worker record and heartbeat
  (:class:`~.run_worker.WorkerHeartbeat`), so every run records its worker without each asset
  naming another resource.
"""


import contextlib
from contextlib import contextmanager
from typing import Iterator, Optional

import dagster as dg
from dagster._core.definitions.metadata import TableMetadataSet
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


class RangeDbIOManager(DbIOManager):
    """``DbIOManager`` that, for an output over several partitions, writes the same rows and adds
    only the table name (and storage kind) as output metadata.

    Dagster copies an output's metadata onto the materialization of EACH partition it covers. The
    stock metadata is the frame's column list (already on the asset as its static column schema,
    ``catalog.py``), its row count (the whole range's, wrong for any one partition; the staging
    steps record each partition's own counts) and ``Query``: a select naming every partition key
    of the range. For a range of N projects that is N copies (per staged asset) of an N-key query
    in the event log, quadratic in N (40 kB an event at 1,000 projects: 200 MB a full sync, 16 GB
    at 9,000), and serialising it was the largest part of a range run's CPU after the event
    writes (README, "Benchmark")."""

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        if not (context.has_asset_partitions and len(context.asset_partition_keys) > 1) or obj is None:
            super().handle_output(context, obj)
            return
        self._check_supported_type(type(obj))
        table_slice = self._get_table_slice(context, context)
        with self._db_client.connect(context, table_slice) as conn:
            self._db_client.ensure_schema_exists(context, table_slice, conn)
            self._db_client.delete_table_slice(context, table_slice, conn)
            write_frame(conn, table_slice, obj)
        context.add_output_metadata(dict(TableMetadataSet(
            table_name=self._db_client.get_table_name(table_slice), storage_kind="duckdb")))


def write_frame(conn, table_slice, frame) -> None:
    """What ``DuckDBPandasTypeHandler.handle_output`` writes: the table made from the frame if it
    does not exist, else the frame's rows inserted (an empty frame writes nothing)."""
    if frame.empty:
        return
    target = f"{table_slice.schema}.{table_slice.table}"
    conn.register("range_rows", frame)
    try:
        conn.execute(f"create table if not exists {target} as select * from range_rows")
        if not conn.fetchall():  # the table existed already
            conn.execute(f"insert into {target} select * from range_rows")
    finally:
        conn.unregister("range_rows")


class AtomicDuckDBPandasIOManager(DuckDBPandasIOManager):
    """``DuckDBPandasIOManager`` replacing a partition slice in one transaction, with per-partition
    metadata for range outputs (see module docstring)."""

    def create_io_manager(self, context) -> DbIOManager:
        return RangeDbIOManager(
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
