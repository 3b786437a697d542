"""A sync run in a process of its own, for the crash tests to kill: ``python -m
aurora_qb_pipeline_tests.crash.run_sync HOME [--max-records N] [--kill-after-delete TABLE]``.

It executes ``aurora_quickbase_sync`` over every known project partition of the Dagster home
``HOME`` in process, through ``runner.run_job`` (as the demo and the benchmark do), against the
sandbox named by the environment (``Sandbox.env()``). ``--kill-after-delete TABLE`` makes the
process SIGKILL itself inside the DuckDB IO manager's write of ``staging.TABLE``, right after it
deleted the partition slice and before it inserted the new rows (the gap of dagster#14091).
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

from aurora_qb_pipeline.definitions import build_definitions
from aurora_qb_pipeline.defs.partitions import known_projects, range_tags
from aurora_qb_pipeline.defs.resources import build_resources
from aurora_qb_pipeline.defs.storage import AtomicDuckDbClient, AtomicDuckDBPandasIOManager
from aurora_qb_pipeline.instance import open_instance
from aurora_qb_pipeline.runner import run_job
from aurora_qb_pipeline.settings import Credentials, Settings
from dagster._core.storage.db_io_manager import DbIOManager


class KillAfterDeleteClient(AtomicDuckDbClient):
    table = ""

    @staticmethod
    def delete_table_slice(context, table_slice, connection) -> None:
        AtomicDuckDbClient.delete_table_slice(context, table_slice, connection)
        if table_slice.table == KillAfterDeleteClient.table:
            os.kill(os.getpid(), signal.SIGKILL)


class KillAfterDeleteIOManager(AtomicDuckDBPandasIOManager):
    def create_io_manager(self, context) -> DbIOManager:
        return DbIOManager(db_client=KillAfterDeleteClient(), database=self.database, schema=self.schema_,
                           type_handlers=self.type_handlers(), default_load_type=self.default_load_type(),
                           io_manager_name="DuckDBIOManager")


def settings_for(home: Path, environ, max_records=None) -> Settings:
    return Settings.from_env(environ, dagster_home=home, duckdb_path=home / "aurora_qb.duckdb",
                             rate_limit_db=home / "rate_limits.sqlite", export_max_records_per_request=max_records)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("home", type=Path)
    parser.add_argument("--max-records", type=int, default=None)
    parser.add_argument("--kill-after-delete", default=None)
    args = parser.parse_args()
    settings = settings_for(args.home, os.environ, args.max_records)
    resources = build_resources(settings, Credentials.from_env(os.environ))
    if args.kill_after_delete:
        KillAfterDeleteClient.table = args.kill_after_delete
        resources["io_manager"] = KillAfterDeleteIOManager(database=settings.duckdb_file, schema="staging")
    instance = open_instance(args.home)
    keys = known_projects(instance)
    result = run_job(build_definitions(settings, resources), instance, range_tags(keys[0], keys[-1], "crash_test"))
    return 0 if result.success else 1


if __name__ == "__main__":
    raise SystemExit(main())
