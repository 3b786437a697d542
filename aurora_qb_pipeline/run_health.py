"""Is a run's worker still there? The worker record, and the verdict on it (plain Python).

Every run of this pipeline writes a *worker record* as the run tag :data:`WORKER_TAG` when its
resources start (``defs/run_worker.py``) and refreshes its ``heartbeat`` every
:data:`HEARTBEAT_INTERVAL_S` while it runs::

    {"run_id": "...", "host": "worker-7", "pid": 4242, "started": 1767000000.1, "heartbeat": 1767000030.2,
     "domain": "worker-7/<boot id>/<pid namespace>"}

``started`` is the process's start time as the OS reports it, so a pid the OS has since given to
another process is not mistaken for the worker; ``domain`` says where that pid means that
process (:func:`process_domain`). ``run_id`` is there because a run retried by the
daemon inherits its parent's tags: a record naming another run says nothing about this one.

:func:`judge` turns a record into a verdict, the same way for Dagster's run monitoring (the run
launcher in ``run_launcher.py``) and for recovery without the daemon (``recovery.py``):

* the worker ran here (this host, boot and pid namespace): alive exactly while that process
  exists (same pid, same start time); a dead process is known at once, without waiting for a
  heartbeat to go stale;
* it ran elsewhere (another host, container or Kubernetes pod): alive while its heartbeat is
  younger than ``stale_after_s``;
* no record for this run: the worker died before its resources started (or the run is from a
  version that did not record one); it counts as dead once the run has been started for
  ``stale_after_s``.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass, replace
from typing import Mapping, Optional

import psutil

WORKER_TAG = "aurora_qb/run_worker"
"""Run tag holding the worker record (JSON)."""

HEARTBEAT_INTERVAL_S = 30.0
"""How often a running worker refreshes its heartbeat."""

STALE_AFTER_S = 180.0
"""A worker on another host whose heartbeat is older than this is taken for dead (six missed
beats: a loaded database or a long garbage collection does not make a live worker look dead)."""


def process_domain() -> str:
    """Where a pid means the same process: this host's name, boot and pid namespace. Two pods of
    one Kubernetes node can share a host name but not a pid namespace; a rebooted host keeps its
    name but not its boot id."""
    parts = [socket.gethostname()]
    try:
        with open("/proc/sys/kernel/random/boot_id") as boot:
            parts.append(boot.read().strip())
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:  # not Linux: the host name is all there is
        pass
    return "/".join(parts)


@dataclass(frozen=True)
class WorkerRecord:
    run_id: str
    host: str
    pid: int
    started: float
    heartbeat: float
    domain: str = ""

    @classmethod
    def of_this_process(cls, run_id: str, now: Optional[float] = None) -> "WorkerRecord":
        me = psutil.Process()
        return cls(run_id, socket.gethostname(), me.pid, me.create_time(), time.time() if now is None else now,
                   process_domain())

    def beat(self, now: Optional[float] = None) -> "WorkerRecord":
        return replace(self, heartbeat=time.time() if now is None else now)

    @property
    def local(self) -> bool:
        """Whether its pid can be looked up from here (same host, boot and pid namespace)."""
        return self.domain == process_domain() if self.domain else self.host == socket.gethostname()

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def parse(cls, raw: Optional[str]) -> Optional["WorkerRecord"]:
        """The record in a tag value; None if there is none or it cannot be read."""
        if not raw:
            return None
        try:
            values = json.loads(raw)
            return cls(str(values["run_id"]), str(values["host"]), int(values["pid"]), float(values["started"]),
                       float(values["heartbeat"]), str(values.get("domain", "")))
        except (ValueError, KeyError, TypeError):
            return None

    @property
    def where(self) -> str:
        return f"process {self.pid} on {self.host}"


def record_of(run_id: str, tags: Mapping[str, str]) -> Optional[WorkerRecord]:
    """The worker record of run ``run_id`` in its tags (not one inherited from a parent run)."""
    record = WorkerRecord.parse(tags.get(WORKER_TAG))
    return record if record is not None and record.run_id == run_id else None


def process_start_time(pid: int) -> Optional[float]:
    """When process ``pid`` started (epoch seconds), or None if there is no such process."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None  # exited; its parent has not reaped it yet
        return process.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def process_alive(record: WorkerRecord) -> bool:
    """Whether the recorded process still runs on this host (the same process, not a reused pid)."""
    started = process_start_time(record.pid)
    return started is not None and (not record.started or abs(started - record.started) < 1.0)


@dataclass(frozen=True)
class Verdict:
    alive: bool
    reason: str
    record: Optional[WorkerRecord] = None

    @property
    def local(self) -> bool:
        """Whether its worker's pid can be looked up (and signalled) from here."""
        return self.record is not None and self.record.local


def judge(
    run_id: str,
    tags: Mapping[str, str],
    run_started: Optional[float],
    now: Optional[float] = None,
    stale_after_s: float = STALE_AFTER_S,
) -> Verdict:
    """Whether the worker of a run that storage says is in progress is still there (see the
    module docstring for the rules). ``run_started``: when the run started (epoch seconds)."""
    now = time.time() if now is None else now
    record = record_of(run_id, tags)
    if record is None:
        age = now - run_started if run_started else 0.0
        if age > stale_after_s:
            return Verdict(False, f"no worker has recorded a heartbeat in the {age:.0f} s since the run started")
        return Verdict(True, f"started {age:.0f} s ago; its worker has not recorded itself yet")
    silent = now - record.heartbeat
    if record.local:
        if process_alive(record):
            return Verdict(True, f"{record.where} is running", record)
        return Verdict(False, f"its worker, {record.where}, is gone (last heartbeat {silent:.0f} s ago)", record)
    if silent > stale_after_s:
        return Verdict(False, f"its worker, {record.where}, has sent no heartbeat for {silent:.0f} s", record)
    return Verdict(True, f"{record.where} sent a heartbeat {silent:.0f} s ago", record)
