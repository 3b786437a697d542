"""The deployment of deploy/, really started: a Dagster instance on PostgreSQL (deploy/dagster.yaml),
the gRPC code server and the daemon as separate processes (the compose file's commands), a
workspace pointing at the code server, and runs executed by workers the code server starts. The
test process is one more host: it reads runs, events and pool slots from the same database.

Shows: a sensor started by an operator launches a sync that lands in Quickbase, with the rate
budget in Postgres; and the ``duckdb`` pool (limit 1) keeps two runs launched together from ever
writing DuckDB at the same time, its slots kept in Postgres.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from aurora_qb_pipeline.clients import AuroraClient
from aurora_qb_pipeline.defs.partitions import RANGE_END, RANGE_START, TRIGGER_TAG, known_projects
from aurora_qb_pipeline.sandbox.launcher import Sandbox, start_sandbox

from ..conftest import TIME_SCALE
from .stack import BIN, LOCATION, Stack, running_stack, wait_for

JOB = "aurora_quickbase_sync"
DESIGN_ID_FID = 20  # the Aurora Design ID field of the sandbox's table
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
STEP_ENDS = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}


@dataclass
class Deployment:
    stack: Stack
    instance: dg.DagsterInstance
    sandbox: Sandbox
    postgres: object
    database: str
    duckdb_file: Path

    def finished_runs(self, **tags: str) -> list[dg.DagsterRun]:
        runs = self.instance.get_runs(dg.RunsFilter(job_name=JOB, tags=tags))
        return runs if runs and all(r.status in FINISHED for r in runs) else None

    def run_failure_detail(self, runs) -> str:
        lines = []
        for run in runs:
            for record in self.instance.all_logs(run.run_id):
                event = record.dagster_event
                if event and event.event_type in (dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE):
                    lines.append(f"{run.run_id[:8]} {event.event_type_value}: {event.message}")
        return "\n".join(lines) + "\n" + self.stack.logs()


@pytest.fixture(scope="module")
def deployment(postgres, tmp_path_factory):
    database = postgres.create_database("dagster_deployment")
    pg_env = postgres.env(database)
    root = tmp_path_factory.mktemp("deployment")
    with start_sandbox(projects=24, designs_per_project=2.5, seed=11, time_scale=TIME_SCALE) as sandbox, \
            pytest.MonkeyPatch.context() as env:
        for name, value in pg_env.items():  # this process is one more host: the same PG variables
            env.setenv(name, value)
        with running_stack(root / "dagster_home", pg_env, sandbox.env(), root / "aurora_qb.duckdb") as stack:
            instance = dg.DagsterInstance.from_config(str(stack.home))
            try:
                required = set(instance.get_required_daemon_types())
                wait_for(lambda: True if required <= set(instance.get_daemon_heartbeats()) else None, 120,
                         f"the daemon's heartbeats ({sorted(required)})", stack.logs)
                yield Deployment(stack, instance, sandbox, postgres, database, root / "aurora_qb.duckdb")
            finally:
                instance.dispose()


def _worker_pid(instance: dg.DagsterInstance, run_id: str) -> int:
    start = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_START)
    return start[0].dagster_event.pid


def _quickbase_design_ids(sandbox: Sandbox) -> list[str]:
    return [r[DESIGN_ID_FID] for r in sandbox.quickbase.records(sandbox.quickbase.table_id)]


def _exportable(duckdb_file: Path, missing_choice: str) -> set[str]:
    """Staged designs the export should have sent (as in test_pipeline.py)."""
    with duckdb.connect(str(duckdb_file), read_only=True) as conn:
        rows = conn.execute(
            """select d.design_id, s.module_model from staging.designs d join staging.design_summaries s using (design_id)
               where d.design_id not in (select record_key from ops.quarantine where record_key is not null)
                 and d.project_id not in (select project_id from ops.quarantine where asset = 'project_addresses')"""
        ).fetchall()
    return {d for d, model in rows if model != missing_choice}


def _rate_budget_tables(deployment: Deployment) -> list[str]:
    with deployment.postgres.connect(deployment.database) as conn:
        return [r[0] for r in conn.execute(
            "select tablename from pg_tables where schemaname = 'public' and tablename like 'ratelimit%' order by 1")]


def test_a_sensor_launches_a_sync_that_the_daemon_runs_on_a_worker_of_the_code_server(deployment):
    from aurora_qb_pipeline.sandbox.launcher import MISSING_CHOICE

    stack, instance = deployment.stack, deployment.instance
    stack.cli("sensor", "start", "project_discovery_sensor", "-w", str(stack.workspace), "-l", LOCATION)
    runs = wait_for(lambda: deployment.finished_runs(**{TRIGGER_TAG: "discovery"}), 240,
                    "the discovery sensor's run to finish", stack.logs, interval_s=1.0)
    assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS], deployment.run_failure_detail(runs)

    # executed by a worker process of its own: not the daemon, the code server nor this process
    worker = _worker_pid(instance, runs[0].run_id)
    assert worker not in {p.pid for p in stack.processes.values()} | {os.getpid()}

    in_quickbase = _quickbase_design_ids(deployment.sandbox)
    assert in_quickbase and len(in_quickbase) == len(set(in_quickbase))
    assert set(in_quickbase) == _exportable(deployment.duckdb_file, MISSING_CHOICE)

    # the run's clients kept their budget in Postgres (hashed bucket names), not in a SQLite file
    tables = _rate_budget_tables(deployment)
    assert len(tables) == 2 and all(t.startswith("ratelimit___rl_") for t in tables), tables
    assert not list(stack.home.glob("*rate_limits*"))


def _launch(stack: Stack, run_id: str, first: str, last: str) -> subprocess.Popen:
    tags = {RANGE_START: first, RANGE_END: last, TRIGGER_TAG: "pool_test"}
    return subprocess.Popen(
        [str(BIN / "dagster"), "job", "launch", "-w", str(stack.workspace), "-l", LOCATION, "-j", JOB,
         "--run-id", run_id, "--tags", json.dumps(tags)],
        env=stack.daemon_env, cwd=stack.home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _step_intervals(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, float, float]]:
    started: dict[str, float] = {}
    intervals = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or not event.step_key:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            started[event.step_key] = record.timestamp
        elif event.event_type in STEP_ENDS:
            intervals.append((event.step_key, started.pop(event.step_key), record.timestamp))
    return intervals


def _ensure_partitions(deployment: Deployment) -> list[str]:
    keys = known_projects(deployment.instance)
    if not keys:  # run on its own: add the projects as the discovery sensor would
        env = deployment.sandbox.env()
        client = AuroraClient(base_url=env["AURORA_BASE_URL"], tenant_id=env["AURORA_TENANT_ID"],
                              api_token=env["AURORA_API_TOKEN"])
        try:
            ids = [p["id"] for p in client.iter_projects()]
        finally:
            client.close()
        deployment.instance.add_dynamic_partitions("aurora_projects", ids)
        keys = known_projects(deployment.instance)
    return keys


def test_the_duckdb_pool_keeps_two_runs_launched_together_from_writing_at_once(deployment):
    stack, instance = deployment.stack, deployment.instance
    keys = _ensure_partitions(deployment)
    half = len(keys) // 2
    run_ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    deployment.sandbox.configure(latency_ms=2000)  # 20 ms a request at this time scale: steps of a second or more
    try:
        launches = [_launch(stack, run_ids[0], keys[0], keys[half - 1]), _launch(stack, run_ids[1], keys[half], keys[-1])]
        for launch in launches:
            output, _ = launch.communicate(timeout=180)
            assert launch.returncode == 0, output
        wait_for(lambda: deployment.finished_runs(**{TRIGGER_TAG: "pool_test"}), 300,
                 "both runs to finish", stack.logs, interval_s=1.0)
    finally:
        deployment.sandbox.configure(latency_ms=0)

    records = [instance.get_run_record_by_id(run_id) for run_id in run_ids]
    assert [r.dagster_run.status for r in records] == [dg.DagsterRunStatus.SUCCESS] * 2, \
        deployment.run_failure_detail([r.dagster_run for r in records])
    # both were queued before either had ended: without the pool they would have run side by side
    assert max(r.create_timestamp.timestamp() for r in records) < min(r.end_time for r in records)
    assert len({_worker_pid(instance, run_id) for run_id in run_ids}) == 2  # two worker processes

    # every step of the job writes DuckDB (pool "duckdb"): no step of one run overlapped one of the other
    first, second = (_step_intervals(instance, run_id) for run_id in run_ids)
    assert first and second
    overlaps = [(a, b) for a in first for b in second if a[1] < b[2] and b[1] < a[2]]
    assert not overlaps, overlaps

    # the pool's limit and slots are in Postgres, shared by every process of the deployment
    info = instance.event_log_storage.get_concurrency_info("duckdb")
    assert info.slot_count == 1 and info.active_slot_count == 0
