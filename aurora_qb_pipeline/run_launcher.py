"""The run launcher of this pipeline's Dagster instance: Dagster's default one, plus a worker
health check, so the daemon's run monitoring ends runs whose worker died.

With ``DefaultRunLauncher`` (the launcher of ``dagster dev`` and of a single-host deployment),
run monitoring only enforces the maximum runtime: the launcher cannot say whether a run's worker
is alive, so a run whose process was killed together with its code server (OOM kill, host
restart, deploy), or a run executed in another process (the demo, ``aurora-qb bench``, a script)
and killed there, stays ``STARTED`` for ever and keeps its slot in the ``duckdb`` pool.
:class:`MonitoredRunLauncher` launches runs exactly as the default launcher does and answers
``check_run_worker_health`` from the worker record every run writes (``run_health.py``), so
run monitoring marks such a run failed; then ``free_slots_after_run_end_seconds`` frees its
slots and ``run_retries`` starts it again (``config/dagster.yaml``).

Configured in ``dagster.yaml``::

    run_launcher:
      module: aurora_qb_pipeline.run_launcher
      class: MonitoredRunLauncher
      config:
        stale_after_seconds: 180      # a worker on another host is dead after this long without a heartbeat
        terminate_grace_seconds: 10   # a terminated worker on this host is killed after this long
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any, Mapping, Optional

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._serdes import ConfigurableClassData

from .run_health import STALE_AFTER_S, Verdict, judge, process_alive

TERMINATE_GRACE_S = 10.0


class MonitoredRunLauncher(dg.DefaultRunLauncher):
    """``DefaultRunLauncher`` whose workers run monitoring can check (see module docstring)."""

    def __init__(
        self,
        inst_data: Optional[ConfigurableClassData] = None,
        stale_after_seconds: float = STALE_AFTER_S,
        terminate_grace_seconds: float = TERMINATE_GRACE_S,
    ):
        super().__init__(inst_data=inst_data)
        self.stale_after_s = float(stale_after_seconds)
        self.terminate_grace_s = float(terminate_grace_seconds)

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "stale_after_seconds": dg.Field(
                dg.IntSource, is_required=False, default_value=int(STALE_AFTER_S),
                description="A worker on another host is taken for dead after this long without a heartbeat.",
            ),
            "terminate_grace_seconds": dg.Field(
                dg.IntSource, is_required=False, default_value=int(TERMINATE_GRACE_S),
                description="A terminated run's worker on this host that still runs after this long is killed.",
            ),
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]):
        return cls(inst_data=inst_data, **config_value)

    # --- health -------------------------------------------------------------------------------

    def verdict(self, run: dg.DagsterRun) -> Verdict:
        record = self._instance.get_run_record_by_id(run.run_id)
        started = record.start_time if record is not None else None
        return judge(run.run_id, run.tags, started, stale_after_s=self.stale_after_s)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        verdict = self.verdict(run)
        if verdict.alive:
            return CheckRunHealthResult(WorkerStatus.RUNNING, verdict.reason)
        return CheckRunHealthResult(WorkerStatus.FAILED, f"the run cannot finish: {verdict.reason}")

    def get_run_worker_debug_info(self, run: dg.DagsterRun, include_container_logs: Optional[bool] = True) -> str:
        return f"Worker: {self.verdict(run).reason}."

    # --- termination --------------------------------------------------------------------------

    def terminate(self, run_id: str) -> bool:
        """Ask the worker to stop as the default launcher does (through its code server); a worker
        on this host that still runs ``terminate_grace_seconds`` later, or that no code server
        knows (a run executed in another process), is killed: a hung run must not keep calling the
        APIs or writing DuckDB after its slot was given to another run."""
        run = self._instance.get_run_by_id(run_id) if self.has_instance else None
        if run is None or run.is_finished:
            return False
        verdict = self.verdict(run)
        try:
            asked = super().terminate(run_id)
        except Exception:
            asked = False
            if not (verdict.local and verdict.alive):
                raise
        if not (verdict.local and verdict.alive and verdict.record is not None):
            return asked
        return kill_if_still_running(self._instance, run, verdict, self.terminate_grace_s if asked else 0.0) or asked


def kill_if_still_running(instance: dg.DagsterInstance, run: dg.DagsterRun, verdict: Verdict, grace_s: float) -> bool:
    """SIGKILL the run's worker (on this host) if it is still running after ``grace_s``."""
    record = verdict.record
    assert record is not None
    deadline = time.monotonic() + grace_s
    while process_alive(record) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not process_alive(record):
        return True
    os.kill(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while process_alive(record) and time.monotonic() < deadline:
        time.sleep(0.05)
    instance.report_engine_event(f"Killed the run's worker, {record.where}: it did not stop when asked.", run)
    return True
