"""Child processes in a session of their own (``dagster dev``, a benchmark mode), stopped
together with everything they started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


def live_group_members(pgid: int) -> list[int]:
    """Pids of the process group that still run. Zombies do not count: an orphan whose new
    parent never reaps it stays one, and it holds nothing."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
        if int(pgrp) == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def stop_process_group(child: subprocess.Popen, grace_s: float = 15.0, first: int = signal.SIGTERM) -> list[int]:
    """Send ``first`` to the child's process group (it was started with ``start_new_session``, so
    the group id is its pid), give it ``grace_s`` to exit, then SIGKILL what is left. Returns the
    pids still alive afterwards (none, normally)."""
    pgid = child.pid
    for sig in (first, signal.SIGKILL):
        if child.poll() is None or live_group_members(pgid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
        deadline = time.monotonic() + (grace_s if sig != signal.SIGKILL else 5.0)
        while time.monotonic() < deadline and (child.poll() is None or live_group_members(pgid)):
            time.sleep(0.2)
        if child.poll() is not None and not live_group_members(pgid):
            break
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=5.0)
    return live_group_members(pgid)
