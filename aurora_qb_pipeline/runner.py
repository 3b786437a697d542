"""Drive the pipeline without the daemon: evaluate a sensor once, apply what it asks for, and
execute its runs in this process. The demo and the benchmark use it; in production the
Dagster daemon does the same thing. With no daemon's run monitoring, :func:`run_job` first ends
runs whose worker died and frees their pool slots (``recovery.py``), so a run killed earlier
never blocks the next one."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Optional

import dagster as dg

from .defs.jobs import aurora_quickbase_sync
from .recovery import recover

log = logging.getLogger(__name__)


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


def run_job(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    tags: dict[str, str],
    job_name: Optional[str] = None,
    log_level: str = "WARNING",
) -> dg.ExecuteInProcessResult:
    """Execute a job in this process, first recovering from runs that died (``recovery.py``)."""
    # no daemon here: end runs whose worker died and free their pool slots, or this run would wait behind them
    for finding in recover(instance, by="the local runner").findings:
        log.warning("recovered run %s (%s): %s; %s", finding.run_id, finding.job_name, finding.problem, finding.action)
    job = defs.resolve_job_def(job_name or aurora_quickbase_sync.name)
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    return job.execute_in_process(instance=instance, tags=tags, run_config=run_config, raise_on_error=False)


def tick(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    sensor_name: str,
    cursor: Optional[str] = None,
    resources: Optional[dict[str, Any]] = None,
) -> TickOutcome:
    """One sensor evaluation and the runs it requests, executed one after the other."""
    sensor = defs.resolve_sensor_def(sensor_name)
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources=resources or dict(defs.resources or {})
    ) as context:
        result = sensor(context)
        cursor = context.cursor
    if isinstance(result, dg.SkipReason):
        return TickOutcome(cursor, skip_reason=result.skip_message)
    outcome = TickOutcome(result.cursor or cursor)
    outcome.new_partitions = apply_partition_requests(instance, result.dynamic_partitions_requests)
    for request in result.run_requests or []:
        outcome.runs.append(run_job(defs, instance, dict(request.tags)))
    return outcome
