"""Under the daemon (`dagster dev` with the shipped instance settings): a run killed outside it is
ended by run monitoring and its slot freed, so the next run finishes; a hung run is ended at its
maximum runtime.

The instance is the shipped ``config/dagster.yaml`` with run monitoring's intervals shortened to
a second (``--shipped-monitoring`` keeps them as shipped and prints how long recovery took, for
the README figure).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from dagster import DagsterRunStatus

from aurora_qb_pipeline.defs.jobs import aurora_quickbase_sync
from aurora_qb_pipeline.defs.partitions import MAX_RUNTIME_TAG, RANGE_END, RANGE_START
from aurora_qb_pipeline.instance import open_instance
from aurora_qb_pipeline.run_health import process_alive, record_of

from ..ui.conftest import DagsterDev, dagster_dev_env, free_port, poll, start_dagster_dev
from .conftest import crash_sandbox
from .support import (
    MAX_RECORDS,
    UPSERT,
    add_projects,
    export_state,
    held_pool_slots,
    kill_at_gate,
    new_home,
    quickbase_snapshot,
    record_ids,
    runs_by_status,
    start_sync,
)

pytestmark = [pytest.mark.timeout(420), pytest.mark.filterwarnings("ignore:Using variable_values:DeprecationWarning")]
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
QUICK_MONITORING = {"poll_interval_seconds": 1, "free_slots_after_run_end_seconds": 1}


@dataclass
class Daemon(DagsterDev):
    """`dagster dev` on a home of its own, the sandbox projects as partitions."""

    home: Path = Path()
    shipped: bool = False
    keys: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, request):
    """`dagster dev` (webserver + daemon) on a home with the shipped instance settings, and the sandbox."""
    home = new_home(tmp_path_factory.mktemp("daemon_home"))
    shipped = request.config.getoption("--shipped-monitoring")
    if not shipped:
        config = yaml.safe_load((home / "dagster.yaml").read_text())
        config["run_monitoring"].update(QUICK_MONITORING)
        config["run_launcher"]["config"]["terminate_grace_seconds"] = 1
        (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    log_path = home / "dagster_dev.log"
    with crash_sandbox() as sandbox, open(log_path, "wb") as log:
        env = {**dagster_dev_env(sandbox, home), "AURORA_QB_RATE_LIMIT_DB": str(home / "rate_limits.sqlite"),
               "AURORA_QB_EXPORT_MAX_RECORDS": str(MAX_RECORDS)}
        port = free_port()
        server = Daemon(start_dagster_dev(port, env, log), port, log_path, sandbox, home=home, shipped=shipped)
        try:
            server.wait_until_ready()
            server.keys = add_projects(home, sandbox)
            yield server
        finally:
            server.stop()


def submit(daemon, **tags) -> str:
    return daemon.client.submit_job_execution(
        aurora_quickbase_sync.name, repository_location_name=daemon.location_name,
        repository_name=daemon.repository_name, tags={RANGE_START: daemon.keys[0], RANGE_END: daemon.keys[-1], **tags},
    )


def wait_finished(daemon, run_id: str, timeout_s: float) -> DagsterRunStatus:
    def finished():
        status = daemon.client.get_run_status(run_id)
        return status if status in FINISHED else None

    return poll(finished, timeout_s, f"run {run_id} to finish", daemon.log_tail, interval_s=0.5)


def failure_message(daemon, run_id: str) -> str:
    instance = open_instance(daemon.home)
    try:
        events = [e.dagster_event for e in instance.all_logs(run_id) if e.is_dagster_event]
        return " | ".join(e.message or "" for e in events if e.event_type_value in ("PIPELINE_FAILURE", "ENGINE_EVENT"))
    finally:
        instance.dispose()


def slots_of(daemon, run_id: str) -> list[str]:
    instance = open_instance(daemon.home)
    try:
        return [pool for pool, holders in held_pool_slots(instance).items() if run_id in holders]
    finally:
        instance.dispose()


def test_a_run_killed_outside_the_daemon_is_ended_and_the_next_run_finishes(daemon, reference):
    """The issue's trial: a sync started in its own process is killed with SIGKILL while it holds
    the duckdb pool (between two export batches); a run launched afterwards through the UI's
    GraphQL API waits for the slot, run monitoring finds the dead worker, marks the run failed
    and frees its slot, and the new run finishes with Quickbase exactly as a fault-free sync."""
    gate = daemon.sandbox.quickbase.gates.add(*UPSERT, "before", skip=1)
    kill_at_gate(start_sync(daemon.home, daemon.sandbox, "--max-records", str(MAX_RECORDS)), gate, daemon.home)
    killed_at = time.monotonic()
    (dead,) = runs_by_status(daemon.home)["STARTED"]
    assert slots_of(daemon, dead.run_id) == ["duckdb"]

    run_id = submit(daemon)
    timeout = 600.0 if daemon.shipped else 150.0
    status = wait_finished(daemon, run_id, timeout)
    recovered_after = time.monotonic() - killed_at
    print(f"\nkill -> next run SUCCESS: {recovered_after:.1f} s "
          f"({'shipped' if daemon.shipped else 'one-second'} run-monitoring intervals)")
    assert status == DagsterRunStatus.SUCCESS, failure_message(daemon, run_id) + daemon.log_tail()

    (failed,) = [r for r in runs_by_status(daemon.home)["FAILURE"] if r.run_id == dead.run_id]
    message = failure_message(daemon, failed.run_id)
    assert "is gone" in message and "cannot finish" in message, message
    assert slots_of(daemon, dead.run_id) == []
    assert quickbase_snapshot(daemon.sandbox) == reference.records
    state = export_state(daemon.home / "aurora_qb.duckdb")
    assert {d: rid for d, (_, rid) in state.items()} == record_ids(daemon.sandbox)


def test_a_run_hung_on_a_socket_is_ended_at_its_max_runtime_and_its_slot_freed(daemon):
    """A run whose first Aurora request hangs (the sandbox trickles a byte at a time, so no read
    timeout ends it) holds the duckdb pool and never finishes; run monitoring ends it at its
    ``dagster/max_runtime``: the worker is asked to stop, and killed if it does not, the run is
    marked failed and its slot freed."""
    # the run's first Aurora request: a list page of projects (a range run takes its projects from
    # the pages) or one project
    gate = daemon.sandbox.aurora.gates.add("GET", r"/tenants/[^/]+/projects(/[^/]+)?", "before", trickle=True)
    max_runtime = 40 if daemon.shipped else 10
    run_id = submit(daemon, **{MAX_RUNTIME_TAG: str(max_runtime)})
    record = None
    try:
        assert gate.wait_reached(120), f"run {run_id} never asked Aurora for a project\n{daemon.log_tail()}"
        instance = open_instance(daemon.home)
        record = record_of(run_id, instance.get_run_by_id(run_id).tags)
        instance.dispose()
        assert record is not None, "the run's worker did not record itself"
        assert slots_of(daemon, run_id) == ["duckdb"]

        status = wait_finished(daemon, run_id, max_runtime + 120)
        assert status == DagsterRunStatus.FAILURE
        message = failure_message(daemon, run_id)
        assert f"maximum runtime of {max_runtime} seconds" in message, message
        poll(lambda: True if not process_alive(record) else None, 60, f"worker {record.where} to end",
             daemon.log_tail)
        poll(lambda: True if not slots_of(daemon, run_id) else None, 90, "the hung run's slot to be freed",
             daemon.log_tail)
    finally:
        gate.release()
        if record is not None and process_alive(record):
            os.kill(record.pid, signal.SIGKILL)
