"""The run worker's record and heartbeat, kept while a run executes.

Dagster's run monitoring can only tell that a run's worker died if the run launcher can check
the worker's health, and the default launcher cannot (its workers are plain processes). So each
run records who executes it: :class:`RunWorker` is started by Dagster with the run's other
resources (once per run, before any step waits for the ``duckdb`` pool: see
``defs/storage.py``), writes the worker record (host, pid, process start time) as the run tag
``aurora_qb/run_worker`` and refreshes its heartbeat from a background thread until the run's
resources are torn down. ``run_launcher.py`` (daemon) and ``recovery.py`` (no daemon) read it.
The tag also tells an operator, on the run's page, which process ran the run.
"""

from __future__ import annotations

import logging
import threading
from typing import Optional

import dagster as dg
from pydantic import Field, PrivateAttr

from ..run_health import HEARTBEAT_INTERVAL_S, WORKER_TAG, WorkerRecord

log = logging.getLogger(__name__)


class RunWorker(dg.ConfigurableResource):
    """Records the process executing the run (run tag ``aurora_qb/run_worker``) and keeps its
    heartbeat, so a run whose process died is found and ended (run monitoring, ``aurora-qb recover``)."""

    heartbeat_interval_s: float = Field(
        default=HEARTBEAT_INTERVAL_S, gt=0, description="Seconds between two heartbeats of a running worker."
    )

    _stop: Optional[threading.Event] = PrivateAttr(default=None)
    _thread: Optional[threading.Thread] = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        run, instance = context.run, context.instance
        if run is None or instance is None:  # a sensor tick or a test building resources: no run to record
            return
        run_id = run.run_id
        record = WorkerRecord.of_this_process(run_id)
        instance.add_run_tags(run_id, {WORKER_TAG: record.dump()})
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, args=(instance, record, self._stop), name="aurora_qb-heartbeat", daemon=True
        )
        self._thread.start()

    def _beat(self, instance: dg.DagsterInstance, record: WorkerRecord, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_interval_s):
            try:
                instance.add_run_tags(record.run_id, {WORKER_TAG: record.beat().dump()})
            except Exception:  # a busy database: the next beat tries again, and staleness allows for misses
                log.debug("heartbeat of run %s not written", record.run_id, exc_info=True)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._stop is not None:
            self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._stop = self._thread = None
