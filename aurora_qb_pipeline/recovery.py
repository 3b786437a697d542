"""Recovery without the daemon: end the runs whose worker is gone and free their pool slots.

Under the Dagster daemon, run monitoring does this (``run_launcher.py`` and the ``run_monitoring``
section of ``config/dagster.yaml``). The demo, the benchmark and ``runner.py`` execute runs in
their own process, with no daemon watching: a run killed there (``kill -9``, an OOM kill, a
closed laptop) stays ``STARTED`` and keeps its slot in the ``duckdb`` pool, so every later run
waits for ever behind it ("Step blocked by limit for pool duckdb"). :func:`recover` applies the
rules of run monitoring once, and :func:`aurora_qb_pipeline.runner.run_job` calls it before every
run; ``aurora-qb recover`` runs it by hand and prints what it found and did.

The rules (the same as the daemon's, from the same worker verdict, ``run_health.judge``):

* ``STARTED`` and its worker is gone (its process no longer runs on this host, or a worker on
  another host sent no heartbeat for ``stale_after_seconds``): marked failed, with the reason;
* ``STARTED`` for longer than its maximum runtime (run tag ``dagster/max_runtime``, else the
  instance's ``run_monitoring.max_runtime_seconds``): its worker on this host is killed, and the
  run is marked failed;
* ``CANCELING`` and its worker is gone: marked canceled;
* ``NOT_STARTED`` / ``STARTING`` for longer than ``run_monitoring.start_timeout_seconds``: failed;
* pool slots held by a run that has ended (or no longer exists) and whose worker is not
  running: freed, as the UI's "Free concurrency slots" would.

Nothing is done to a run whose worker is alive, so running this beside live runs (another
demo, ``dagster dev``) is safe.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

import dagster as dg

from .run_health import STALE_AFTER_S, Verdict, judge, process_alive
from .run_launcher import MonitoredRunLauncher

MAX_RUNTIME_TAG = "dagster/max_runtime"
START_TIMEOUT_S = 180
Status = dg.DagsterRunStatus


@dataclass
class Finding:
    """One run recovery found something wrong with, and what was (or would be) done."""

    run_id: str
    job_name: str
    status: str
    problem: str
    action: str
    worker: str = "-"


@dataclass
class RecoveryReport:
    dry_run: bool
    checked_runs: int = 0
    findings: list[Finding] = field(default_factory=list)


def _stale_after(instance: dg.DagsterInstance) -> float:
    launcher = instance.run_launcher
    return launcher.stale_after_s if isinstance(launcher, MonitoredRunLauncher) else STALE_AFTER_S


def _max_runtime(instance: dg.DagsterInstance, run: dg.DagsterRun) -> float:
    raw = run.tags.get(MAX_RUNTIME_TAG, run.tags.get("dagster/max_runtime_seconds"))
    try:
        return float(raw) if raw else float(instance.run_monitoring_max_runtime_seconds or 0)
    except ValueError:
        return float(instance.run_monitoring_max_runtime_seconds or 0)


def _worker_text(verdict: Verdict) -> str:
    return verdict.record.where if verdict.record else "-"


def recover(instance: dg.DagsterInstance, dry_run: bool = False, by: str = "aurora-qb recover") -> RecoveryReport:
    """Apply the rules of the module docstring once; ``by`` names the caller in run messages."""
    report = RecoveryReport(dry_run)
    stale_after = _stale_after(instance)
    now = time.time()
    in_progress = [Status.NOT_STARTED, Status.STARTING, Status.STARTED, Status.CANCELING]
    for record in instance.get_run_records(dg.RunsFilter(statuses=in_progress)):
        report.checked_runs += 1
        finding = _check_run(instance, record, now, stale_after, dry_run, by)
        if finding:
            report.findings.append(finding)
    ending = {f.run_id for f in report.findings}  # in a dry run they are still in progress
    report.findings += _free_slots(instance, stale_after, dry_run, ending)
    return report


def _check_run(
    instance: dg.DagsterInstance, record: dg.RunRecord, now: float, stale_after: float, dry_run: bool, by: str
) -> Optional[Finding]:
    run = record.dagster_run
    status = run.status
    found = dict(run_id=run.run_id, job_name=run.job_name, status=status.value)
    if status in (Status.NOT_STARTED, Status.STARTING):
        age = now - record.create_timestamp.timestamp()
        timeout = instance.run_monitoring_start_timeout_seconds or START_TIMEOUT_S
        if age <= timeout:
            return None
        problem = f"created {age:.0f} s ago and never started (start timeout {timeout} s)"
        if not dry_run:
            instance.report_run_failed(run, f"Marked failed by {by}: the run was {problem}.")
        return Finding(**found, problem=problem, action="would mark failed" if dry_run else "marked failed")

    verdict = judge(run.run_id, run.tags, record.start_time, now=now, stale_after_s=stale_after)
    worker = _worker_text(verdict)
    if not verdict.alive:
        if status == Status.CANCELING:
            if not dry_run:
                instance.report_run_canceled(run, f"Marked canceled by {by}: {verdict.reason}.")
            return Finding(**found, problem=verdict.reason, worker=worker,
                           action="would mark canceled" if dry_run else "marked canceled")
        if not dry_run:
            instance.report_run_failed(
                run, f"Marked failed by {by}: {verdict.reason}, so the run cannot finish. Its pool slots are "
                "freed; run its projects again (the sensors and the daily reconcile do) to finish its work.",
            )
        return Finding(**found, problem=verdict.reason, worker=worker,
                       action="would mark failed" if dry_run else "marked failed")

    limit = _max_runtime(instance, run)
    elapsed = now - record.start_time if record.start_time else 0.0
    if status != Status.STARTED or not limit or elapsed <= limit:
        return None
    problem = f"running for {elapsed:.0f} s, longer than its maximum runtime of {limit:g} s"
    if dry_run:
        return Finding(**found, problem=problem, worker=worker, action="would end the run and mark it failed")
    launcher = instance.run_launcher
    ended = isinstance(launcher, MonitoredRunLauncher) and launcher.terminate(run.run_id)
    instance.report_run_failed(run, f"Marked failed by {by}: {problem}.")
    action = "ended its worker, marked failed" if ended else "marked failed (its worker is not on this host)"
    return Finding(**found, problem=problem, worker=worker, action=action)


def _free_slots(instance: dg.DagsterInstance, stale_after: float, dry_run: bool, ending: set[str]) -> list[Finding]:
    """Free the pool slots (and queued slot requests) of runs that ended or no longer exist, or
    that this pass ends (``ending``)."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    held: dict[str, list[str]] = {}
    for pool in sorted(storage.get_concurrency_keys()):
        info = storage.get_concurrency_info(pool)
        for slot in info.claimed_slots:
            held.setdefault(slot.run_id, []).append(f"{pool} ({slot.step_key})")
    findings = []
    for run_id in sorted(storage.get_concurrency_run_ids() | set(held)):
        record = instance.get_run_record_by_id(run_id)
        run = record.dagster_run if record else None
        if run is not None and not run.is_finished and run_id not in ending:
            continue  # in progress and alive: _check_run left it alone
        if run is not None and run_id not in ending:
            verdict = judge(run_id, run.tags, record.start_time, stale_after_s=stale_after)
            if verdict.record is not None and verdict.local and process_alive(verdict.record):
                continue  # its worker still runs (e.g. finishing a step after a forced failure)
        slots = ", ".join(held.get(run_id, [])) or "queued slot requests only"
        state = ("no longer exists" if run is None else "is ending" if not run.is_finished
                 else f"ended {run.status.value}")
        problem = f"run {state} but holds pool slots: {slots}"
        if not dry_run:
            storage.free_concurrency_slots_for_run(run_id)
        findings.append(Finding(run_id, run.job_name if run else "?", run.status.value if run else "missing",
                                problem, "would free its slots" if dry_run else "freed its slots"))
    return findings
