"""What the crash tests share: a sync in a process of its own, killed at a gate; snapshots of
what Quickbase and the export state hold, to compare with a fault-free sync."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import dagster as dg
import duckdb

from aurora_qb_pipeline.api_facts import QUICKBASE_BUILT_IN_FIELD_IDS, QUICKBASE_RECORD_ID_FIELD
from aurora_qb_pipeline.defs.partitions import projects_partitions
from aurora_qb_pipeline.instance import open_instance, prepare_dagster_home
from aurora_qb_pipeline.sandbox.gates import Gate
from aurora_qb_pipeline.sandbox.launcher import Sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECTS = 10
SEED = 7
TIME_SCALE = 0.01
MAX_RECORDS = 6  # records per upsert: several batches, so a run can be killed between two
UPSERT = ("POST", "/v1/records")


def new_home(path: Path) -> Path:
    """A Dagster home with the shipped instance settings."""
    return prepare_dagster_home(path, fresh=True)


def add_projects(home: Path, sandbox: Sandbox) -> list[str]:
    """Every sandbox project as a partition of ``home``'s instance; returns them in partition order."""
    keys = sorted(sandbox.aurora.primary.projects)
    instance = open_instance(home)
    try:
        known = set(instance.get_dynamic_partitions(projects_partitions.name))
        instance.add_dynamic_partitions(projects_partitions.name, [k for k in keys if k not in known])
    finally:
        instance.dispose()
    return keys


def start_sync(home: Path, sandbox: Sandbox, *args: str) -> subprocess.Popen:
    """``run_sync`` (a whole sync, executed in its own process) against ``sandbox``."""
    log = open(home / "run_sync.log", "ab")
    env = {**os.environ, **sandbox.env(), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "aurora_qb_pipeline_tests.crash.run_sync", str(home), *args],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def log_tail(home: Path, lines: int = 40) -> str:
    path = home / "run_sync.log"
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def kill_at_gate(process: subprocess.Popen, gate: Gate, home: Path, timeout_s: float = 90.0) -> None:
    """Wait until the run holds a request at ``gate``, then SIGKILL its process and let the gate go."""
    try:
        if not gate.wait_reached(timeout_s):
            process.kill()
            raise AssertionError(f"the run never reached the gate ({gate.method} {gate.path.pattern}, "
                                 f"{gate.stage}); exit code {process.poll()}\n{log_tail(home)}")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        gate.release()


def wait_killed(process: subprocess.Popen, home: Path, timeout_s: float = 90.0) -> None:
    """Wait for a run process that kills itself; fail if it exited any other way."""
    try:
        code = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert code == -signal.SIGKILL, f"expected the run process to be killed, it exited with {code}\n{log_tail(home)}"


def quickbase_snapshot(sandbox: Sandbox) -> dict[str, dict[int, Any]]:
    """{design id: the record's field values (built-in fields left out, and *Aurora Last Synced*: like
    Date Modified, the time of the write, which differs between any two syncs)}; fails on a duplicate."""
    qb = sandbox.quickbase
    key_field = qb.field_by_label(qb.table_id, "Aurora Design ID").id
    times = {f.id for f in qb.table(qb.table_id).fields.values() if f.label == "Aurora Last Synced"}
    snapshot: dict[str, dict[int, Any]] = {}
    for record in qb.records(qb.table_id):
        key = record[key_field]
        assert key not in snapshot, f"two Quickbase records for design {key}"
        snapshot[key] = {fid: v for fid, v in record.items() if fid not in QUICKBASE_BUILT_IN_FIELD_IDS | times}
    return snapshot


def record_ids(sandbox: Sandbox) -> dict[str, int]:
    qb = sandbox.quickbase
    key_field = qb.field_by_label(qb.table_id, "Aurora Design ID").id
    return {r[key_field]: r[QUICKBASE_RECORD_ID_FIELD] for r in qb.records(qb.table_id)}


def export_state(duckdb_file: Path) -> dict[str, tuple[str, Optional[int]]]:
    """{design id: (content hash, Quickbase record id)} of ``ops.export_state``."""
    with duckdb.connect(str(duckdb_file), read_only=True) as conn:
        rows = conn.execute("select design_id, content_hash, qb_record_id from ops.export_state").fetchall()
    return {d: (h, rid) for d, h, rid in rows}


def staged_rows(duckdb_file: Path, table: str) -> int:
    with duckdb.connect(str(duckdb_file), read_only=True) as conn:
        return conn.execute(f"select count(*) from staging.{table}").fetchone()[0]


def runs_by_status(home: Path) -> dict[str, list[dg.DagsterRun]]:
    instance = open_instance(home)
    try:
        found: dict[str, list[dg.DagsterRun]] = {}
        for run in instance.get_runs():
            found.setdefault(run.status.value, []).append(run)
        return found
    finally:
        instance.dispose()


def held_pool_slots(instance: dg.DagsterInstance) -> dict[str, list[str]]:
    """{pool: run ids holding a slot of it}."""
    storage = instance.event_log_storage
    return {pool: [s.run_id for s in storage.get_concurrency_info(pool).claimed_slots]
            for pool in storage.get_concurrency_keys()}
