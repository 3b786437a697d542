"""What the sandbox and demo commands share: sandbox options, starting it, waiting for Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import subprocess
import time
from typing import Optional

from ..processes import stop_process_group
from ..sandbox.launcher import Sandbox, start_sandbox


def add_sandbox_options(parser: argparse.ArgumentParser, projects: int, time_scale: float) -> None:
    parser.add_argument("--projects", type=int, default=projects, help="Aurora projects in the sandbox tenant")
    parser.add_argument("--designs-per-project", type=float, default=2.5,
                        help="designs per project on average (spread unevenly)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic tenant (same seed, same data)")
    parser.add_argument("--time-scale", type=float, default=time_scale,
                        help="shrink rate windows, latency and backoff (1 = as the real services)")
    parser.add_argument("--latency-ms", type=float, default=150.0, help="per-request latency before scaling")


def start(args: argparse.Namespace, aurora_port: int = 0, quickbase_port: int = 0) -> Sandbox:
    sandbox = start_sandbox(
        projects=args.projects,
        designs_per_project=args.designs_per_project,
        seed=args.seed,
        time_scale=args.time_scale,
        latency_ms=args.latency_ms,
        aurora_port=aurora_port,
        quickbase_port=quickbase_port,
    )
    print(f"Aurora sandbox:    {sandbox.aurora_url}  ({args.projects} projects)")
    print(f"Quickbase sandbox: {sandbox.quickbase_url}  (table {sandbox.quickbase.table_id})")
    return sandbox


def wait_for_interrupt(child: Optional[subprocess.Popen] = None) -> None:
    """Until Ctrl-C or SIGTERM (or the child exits); then stop the child's whole process group
    (``dagster dev`` spawns a webserver, a daemon and code servers)."""
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        while not stop["now"] and (child is None or child.poll() is None):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    if child is not None:
        stop_process_group(child, grace_s=30.0, first=signal.SIGINT)
