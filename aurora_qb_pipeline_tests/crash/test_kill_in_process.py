"""A sync killed with SIGKILL at an exact point, then the next run, without a daemon.

Each test starts the whole sync in a process of its own (as the demo or a script would), kills
it at a point held by a sandbox gate (or the process kills itself inside a DuckDB write), and
then runs the sync again in this process through ``runner.run_job``, which first ends the dead
run and frees its slot in the ``duckdb`` pool. The next run must finish, and Quickbase must then
hold exactly what a fault-free sync leaves: one record per design, same values, with the export
state naming every record.
"""

import json
import subprocess
import sys

import pytest

from aurora_qb_pipeline.cli import main as cli_main
from aurora_qb_pipeline.instance import open_instance

from .conftest import crash_sandbox, sync_in_process
from .support import (
    MAX_RECORDS,
    REPO_ROOT,
    UPSERT,
    add_projects,
    export_state,
    held_pool_slots,
    kill_at_gate,
    new_home,
    quickbase_snapshot,
    record_ids,
    runs_by_status,
    staged_rows,
    start_sync,
    wait_killed,
)

pytestmark = pytest.mark.timeout(240)


def failure_message(home, run) -> str:
    instance = open_instance(home)
    try:
        events = [e.dagster_event for e in instance.all_logs(run.run_id) if e.is_dagster_event]
        return next(e.message for e in reversed(events) if e.event_type_value == "PIPELINE_FAILURE")
    finally:
        instance.dispose()


def assert_converged(home, sandbox, reference) -> None:
    """Quickbase equals the fault-free sync; the export state names every record it holds."""
    assert quickbase_snapshot(sandbox) == reference.records
    state = export_state(home / "aurora_qb.duckdb")
    assert {d: rid for d, (_, rid) in state.items()} == record_ids(sandbox)


def assert_killed_run_is_recovered(home, killed_run_id: str) -> None:
    runs = runs_by_status(home)
    (failed,) = runs["FAILURE"]
    assert failed.run_id == killed_run_id
    message = failure_message(home, failed)
    assert "is gone" in message and "cannot finish" in message, message
    assert [r.status.value for r in runs["SUCCESS"]] == ["SUCCESS"]
    instance = open_instance(home)
    try:
        assert all(not holders for holders in held_pool_slots(instance).values())
    finally:
        instance.dispose()


def the_dead_run(home) -> str:
    """The killed run: still STARTED, and holding its slot in the duckdb pool."""
    (run,) = runs_by_status(home)["STARTED"]
    instance = open_instance(home)
    try:
        assert held_pool_slots(instance).get("duckdb") == [run.run_id]
    finally:
        instance.dispose()
    return run.run_id


def test_a_killed_write_leaves_the_previous_rows(tmp_path):
    """The IO manager's delete and insert are one transaction: a process killed between them
    leaves the partition's previous rows (the stock manager left none, dagster#14091)."""
    database = str(tmp_path / "toy.duckdb")
    module = [sys.executable, "-m", "aurora_qb_pipeline_tests.crash.atomic_write", database]
    subprocess.run([*module, "old"], cwd=REPO_ROOT, check=True, capture_output=True)
    killed = subprocess.run([*module, "new", "--kill-after-delete"], cwd=REPO_ROOT, capture_output=True)
    assert killed.returncode == -9, killed.stdout.decode()[-2000:]

    import duckdb

    with duckdb.connect(database) as conn:  # opens the file the killed writer left, replaying its log
        assert conn.execute("select project_id, value from staging.toy").fetchall() == [("p1", "old")] * 3


def test_killed_in_staging_then_the_next_run_converges(tmp_path, reference):
    """Killed inside the write of ``staging.design_summaries``, its old rows deleted and the new
    ones not yet inserted (the DuckDB file is left by a writer killed mid-transaction); the recover
    command lists the dead run, then marks it failed and frees its slot; the next run finishes."""
    home = new_home(tmp_path / "home")
    with crash_sandbox() as sandbox:
        add_projects(home, sandbox)
        wait_killed(start_sync(home, sandbox, "--kill-after-delete", "design_summaries"), home)
        dead = the_dead_run(home)
        assert staged_rows(home / "aurora_qb.duckdb", "designs") > 0  # the steps before it were kept
        assert staged_rows(home / "aurora_qb.duckdb", "design_summaries") == 0
        assert quickbase_snapshot(sandbox) == {}

        listed = subprocess.run([sys.executable, "-m", "aurora_qb_pipeline.cli", "recover", "--home", str(home),
                                 "--dry-run", "--json"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
        finding, slot = json.loads(listed.stdout)["findings"]
        assert (finding["run_id"], finding["status"], finding["action"]) == (dead, "STARTED", "would mark failed")
        assert "is gone" in finding["problem"]
        assert (slot["run_id"], slot["action"]) == (dead, "would free its slots") and "duckdb" in slot["problem"]
        assert runs_by_status(home)["STARTED"][0].run_id == dead  # a dry run changes nothing

        assert cli_main(["recover", "--home", str(home)]) == 0
        assert set(runs_by_status(home)) == {"FAILURE"}

        assert sync_in_process(home, sandbox).success
        assert_killed_run_is_recovered(home, dead)
        assert_converged(home, sandbox, reference)


def test_killed_between_two_export_batches_then_the_next_run_sends_the_rest(tmp_path, reference):
    home = new_home(tmp_path / "home")
    with crash_sandbox() as sandbox:
        add_projects(home, sandbox)
        gate = sandbox.quickbase.gates.add(*UPSERT, "before", skip=1)  # the second upsert, not yet sent
        kill_at_gate(start_sync(home, sandbox, "--max-records", str(MAX_RECORDS)), gate, home)
        dead = the_dead_run(home)
        first_batch = export_state(home / "aurora_qb.duckdb")
        assert len(first_batch) == MAX_RECORDS and len(quickbase_snapshot(sandbox)) == MAX_RECORDS

        sandbox.quickbase.log.clear()
        assert sync_in_process(home, sandbox).success  # recovers the dead run first
        assert_killed_run_is_recovered(home, dead)
        assert_converged(home, sandbox, reference)
        # the first batch was not sent again: its state survived the kill
        upserts = [e for e in sandbox.quickbase.log.entries() if (e.method, e.path) == UPSERT]
        assert len(upserts) == -(-(len(reference.records) - MAX_RECORDS) // MAX_RECORDS)
        assert {d: v for d, v in export_state(home / "aurora_qb.duckdb").items() if d in first_batch} == first_batch


def test_killed_after_quickbase_applied_an_upsert_then_the_next_run_converges(tmp_path, reference):
    """Killed while Quickbase's answer to an applied upsert is on its way: Quickbase holds the
    batch, the export state does not (for what is stored, the same as a kill between the answer
    and the state write). The next run sends the batch again; the merge key keeps one record
    per design."""
    home = new_home(tmp_path / "home")
    with crash_sandbox() as sandbox:
        add_projects(home, sandbox)
        gate = sandbox.quickbase.gates.add(*UPSERT, "after", skip=1)  # the second upsert, applied
        kill_at_gate(start_sync(home, sandbox, "--max-records", str(MAX_RECORDS)), gate, home)
        dead = the_dead_run(home)
        assert len(quickbase_snapshot(sandbox)) == 2 * MAX_RECORDS
        assert len(export_state(home / "aurora_qb.duckdb")) == MAX_RECORDS

        assert sync_in_process(home, sandbox).success
        assert_killed_run_is_recovered(home, dead)
        assert_converged(home, sandbox, reference)
