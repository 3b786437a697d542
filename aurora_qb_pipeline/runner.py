"""Drive the pipeline without the daemon: evaluate a sensor once, apply what it asks for, and
execute its runs in this process. The demo and the benchmark use it; in production the
Dagster daemon does the same thing. With no daemon's run monitoring, :func:`run_job` first ends
runs whose worker died and frees their pool slots (``recovery.py``), so a run killed earlier
never blocks the next one; :func:`tick` also runs their projects once more, as the daemon's run
retries would."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Optional

import dagster as dg

from .defs.aurora.changed import PROJECT_COUNT_TAG
from .defs.jobs import aurora_quickbase_sync
from .defs.partitions import MAX_RUNTIME_TAG, RANGE_END, RANGE_START, TRIGGER_TAG
from .recovery import Finding, recover

log = logging.getLogger(__name__)

RETRY_OF_TAG = "aurora_qb/retry_of"
"""On a run the local runner started again for a run whose worker died: that run's id."""
RETRIED_TAGS = (RANGE_START, RANGE_END, TRIGGER_TAG, MAX_RUNTIME_TAG, PROJECT_COUNT_TAG, "dagster/partition")


@dataclass
class TickOutcome:
    cursor: Optional[str]
    new_partitions: list[str] = field(default_factory=list)
    runs: list[dg.ExecuteInProcessResult] = field(default_factory=list)
    skip_reason: Optional[str] = None


def apply_partition_requests(instance: dg.DagsterInstance, requests) -> list[str]:
    added: list[str] = []
    for request in requests or []:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            known = set(instance.get_dynamic_partitions(request.partitions_def_name))
            new = [k for k in request.partition_keys if k not in known]
            instance.add_dynamic_partitions(request.partitions_def_name, new)
            added += new
    return added


def _recover(instance: dg.DagsterInstance) -> list[Finding]:
    # no daemon here: end runs whose worker died and free their pool slots, or this run would wait behind them
    findings = recover(instance, by="the local runner").findings
    for finding in findings:
        log.warning("recovered run %s (%s): %s; %s", finding.run_id, finding.job_name, finding.problem, finding.action)
    return findings


def _execute(defs: dg.Definitions, instance: dg.DagsterInstance, tags: dict[str, str], job_name: Optional[str],
             log_level: str, run_config: Optional[dict] = None) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def(job_name or aurora_quickbase_sync.name)
    config = {**(run_config or {}), "loggers": {"console": {"config": {"log_level": log_level}}}}
    return job.execute_in_process(instance=instance, tags=tags, run_config=config, raise_on_error=False)


def run_job(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    tags: dict[str, str],
    job_name: Optional[str] = None,
    log_level: str = "WARNING",
    run_config: Optional[dict] = None,
) -> dg.ExecuteInProcessResult:
    """Execute a job in this process, first recovering from runs that died (``recovery.py``);
    ``run_config``: e.g. the project ids of an ``aurora_event_sync`` run."""
    _recover(instance)
    return _execute(defs, instance, tags, job_name, log_level, run_config)


def recover_and_retry(
    defs: dg.Definitions, instance: dg.DagsterInstance, log_level: str = "WARNING"
) -> list[dg.ExecuteInProcessResult]:
    """What the daemon's run monitoring and ``run_retries`` (one retry) do, for runs executed in
    process: end the runs whose worker died, then run each of them once more over the same
    projects (not a run that was itself such a retry)."""
    retries = []
    for finding in _recover(instance):
        run = instance.get_run_by_id(finding.run_id)
        if finding.action != "marked failed" or run is None or RETRY_OF_TAG in run.tags:
            continue
        if not any(job.name == run.job_name for job in defs.resolve_all_job_defs()):
            continue
        tags = {key: run.tags[key] for key in RETRIED_TAGS if key in run.tags}
        log.warning("running the projects of dead run %s again", run.run_id)
        ops = {"ops": run.run_config["ops"]} if (run.run_config or {}).get("ops") else None  # an event run's projects
        retries.append(_execute(defs, instance, {**tags, RETRY_OF_TAG: run.run_id}, run.job_name, log_level, ops))
    return retries


def tick(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    sensor_name: str,
    cursor: Optional[str] = None,
    resources: Optional[dict[str, Any]] = None,
) -> TickOutcome:
    """One sensor evaluation and the runs it requests, executed one after the other; first, as the
    daemon would, runs whose worker died are ended and run once more (:func:`recover_and_retry`)."""
    retries = recover_and_retry(defs, instance)
    sensor = defs.resolve_sensor_def(sensor_name)
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources=resources or dict(defs.resources or {})
    ) as context:
        result = sensor(context)
        cursor = context.cursor
    if isinstance(result, dg.SkipReason):
        return TickOutcome(cursor, runs=retries, skip_reason=result.skip_message)
    outcome = TickOutcome(result.cursor or cursor, runs=retries)
    outcome.new_partitions = apply_partition_requests(instance, result.dynamic_partitions_requests)
    for request in result.run_requests or []:
        job_name = request.job_name or (sensor.job_name if sensor.has_jobs else None)
        outcome.runs.append(run_job(defs, instance, dict(request.tags), job_name,
                                    run_config=dict(request.run_config or {}) or None))
    return outcome
