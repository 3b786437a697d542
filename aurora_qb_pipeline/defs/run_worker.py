"""The run worker's record and heartbeat, kept while a run executes.

Dagster's run monitoring can only tell that a run's worker died if the run launcher can check
the worker's health, and the default launcher cannot (its workers are plain processes). So each
run records who executes it: :class:`WorkerHeartbeat` writes the worker record (host, pid,
process start time, where that pid is valid) as the run tag ``aurora_qb/run_worker`` and
refreshes its heartbeat from a background thread until it is stopped. The ``duckdb`` resource,
which every step of the pipeline uses, starts it when Dagster starts the run's resources (once
per run, before any step waits for the ``duckdb`` pool) and stops it when they are torn down
(``defs/storage.py``). ``run_launcher.py`` (daemon) and ``recovery.py`` (no daemon) read the
record. The tag also tells an operator, on the run's page, which process ran the run.
"""

from __future__ import annotations

import logging
import threading

import dagster as dg

from ..run_health import WORKER_TAG, WorkerRecord

log = logging.getLogger(__name__)


class WorkerHeartbeat:
    """The worker record of one run, written at :meth:`start` and refreshed every
    ``interval_s`` until :meth:`stop`."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str, interval_s: float):
        self.instance, self.interval_s = instance, interval_s
        self.record = WorkerRecord.of_this_process(run_id)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="aurora_qb-heartbeat", daemon=True)

    def start(self) -> "WorkerHeartbeat":
        self.instance.add_run_tags(self.record.run_id, {WORKER_TAG: self.record.dump()})
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.instance.add_run_tags(self.record.run_id, {WORKER_TAG: self.record.beat().dump()})
            except Exception:  # a busy database: the next beat tries again, and staleness allows for misses
                log.debug("heartbeat of run %s not written", self.record.run_id, exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
