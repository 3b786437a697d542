"""``aurora-qb bench``: how fast and how frugal a sync is, against the sandbox with latency and
rate limits on (Aurora 90 requests/min per key, Quickbase 100 per 10 s per token).

Every duration the sandbox and the clients know (rate windows, latency, backoff) is multiplied
by ``--time-scale`` (default 0.01: an Aurora "minute" lasts 0.6 s; ``--mode tenants`` 0.1, see
``tenants.py``), so the ratios between rate
limit, latency and work stay as in production. Times are also shown divided by the time scale
("real-world"); that is honest for rate-limited waiting, and overstates fixed CPU costs.

The scenario, run by each mode on its own fresh sandbox (same seed, so the same data):

1. full sync of all projects;
2. a rerun with nothing changed;
3. a rerun after 1% of the designs changed (``AuroraState.mutate``, which also records accepted
   design requests).

``incremental`` drives the Dagster pipeline as the daemon would (``runner.tick``):
step 1 is a ``project_discovery_sensor`` tick, step 2 a discovery tick plus a
``design_request_sensor`` tick, step 3 a design-request tick. Before step 2 it takes the first
design-request tick (no cursor yet, so a full scan) and reports it on its own row. After step 3
it also measures a full reconcile: the daily schedule's range run over every partition.

``naive`` does what the original per-project script did, with the same API clients (same rate
limiter and retries): for each project in turn, list its designs, fetch each design's summary
and default proposal and the project, and POST one upsert per project (with mergeFieldId, so
reruns update instead of duplicating), every design every run.

Each mode runs in a subprocess of its own, so its peak RSS is its own; the sandbox servers run
in that subprocess too (threads), and so count in its memory and CPU.

Modules: ``measure`` (one step's figures), ``modes`` (the two modes, one mode in this process),
``report`` (the table); this one parses the options and runs each mode in a subprocess.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from ..instance import batch_asset_events
from ..processes import stop_process_group
from .measure import default_timeout
from .modes import MODES, child_main
from .report import format_table, machine_facts

# --- options --------------------------------------------------------------------------------


DESCRIPTION = __doc__.split("\n\n")[0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (``aurora-qb bench`` and ``python -m aurora_qb_pipeline.bench``)."""
    parser.add_argument("--projects", type=int, default=1000, help="Aurora projects in the sandbox tenant")
    parser.add_argument("--designs", type=int, default=2500, help="designs in all (spread unevenly over projects)")
    parser.add_argument("--time-scale", type=float, default=None,
                        help="multiplies every rate window and latency (default 0.01; --mode tenants 0.1; "
                        "1.0 is the APIs' real pace)")
    parser.add_argument("--latency-ms", type=float, default=150.0, help="per-request latency before scaling")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic tenant (same seed, same data)")
    parser.add_argument("--mode", choices=(*MODES, "both", "tenants"), default="both",
                        help="which mode(s) to run ('tenants': many tenants at once, bench/tenants.py; not in 'both')")
    parser.add_argument("--tenants", type=int, default=4, help="--mode tenants: how many Aurora tenants")
    parser.add_argument("--tenant-projects", type=int, default=250, help="--mode tenants: projects of each tenant")
    parser.add_argument("--tenant-servers", choices=("own", "shared"), default="own",
                        help="--mode tenants: an Aurora sandbox server process per tenant, as real Aurora serves "
                        "each tenant from its own fleet (own), or one in-process server for all (shared: the "
                        "tenants then queue in the sandbox, a benchmark artifact)")
    parser.add_argument("--json", help="write every figure to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines, only the table")
    parser.add_argument("--timeout", type=float, help="seconds a mode may take (default: from the size)")
    parser.add_argument("--profile", help="write a cProfile of each mode's full sync to PROFILE.<mode>.pstats "
                        "(read it with python -m pstats; the profiler itself slows the step)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # run one mode in this process
    parser.add_argument("--workdir", help=argparse.SUPPRESS)


DEFAULT_TIME_SCALE = {"tenants": 0.1}  # where the per-key budgets, not this machine's CPU, set the pace


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    if args.time_scale is None:
        args.time_scale = DEFAULT_TIME_SCALE.get(args.mode, 0.01)
    if args.projects <= 0 or args.designs < 0 or args.time_scale <= 0:
        parser.error("--projects must be > 0, --designs >= 0 and --time-scale > 0")
    if args.tenants <= 0 or args.tenant_projects <= 0:
        parser.error("--tenants and --tenant-projects must be > 0")
    return args


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="aurora-qb bench", description=DESCRIPTION)
    add_arguments(parser)
    return check_args(parser, parser.parse_args(argv))


# --- both modes, each in a subprocess -------------------------------------------------------


def child_command(args: argparse.Namespace, mode: str, json_path: Path, workdir: Path) -> list[str]:
    command = [sys.executable, "-m", "aurora_qb_pipeline.bench", "--child", "--mode", mode,
               "--json", str(json_path), "--workdir", str(workdir)]
    for option in ("projects", "designs", "time_scale", "latency_ms", "seed", "timeout", "profile", "tenants",
                   "tenant_projects", "tenant_servers"):
        value = getattr(args, option)
        if value is not None:
            command += [f"--{option.replace('_', '-')}", str(value)]
    return command + (["--quiet"] if args.quiet else [])


def run_child(args: argparse.Namespace, mode: str, tmp: Path) -> dict[str, Any]:
    """Run one mode in a subprocess of its own session, so that it and whatever it started
    (Dagster's compute-log tails) can be killed together when it overruns or on Ctrl-C."""
    json_path, log_path = tmp / f"{mode}.json", tmp / f"{mode}.log"
    timeout = (args.timeout or default_timeout(args)) + 30  # the child dumps its stacks first
    with log_path.open("w") as log:
        child = subprocess.Popen(child_command(args, mode, json_path, tmp / mode), stderr=log,
                                 start_new_session=True)
        try:
            code: Any = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process_group(child, first=signal.SIGKILL)
            code = "timeout"
        except BaseException:  # Ctrl-C
            stop_process_group(child, first=signal.SIGKILL)
            raise
    if code == 0 and json_path.exists():
        return json.loads(json_path.read_text())
    tail = log_path.read_text()[-3000:]
    print(f"[{mode}] failed ({code}); last lines of its log:\n{tail}", file=sys.stderr)
    return {"mode": mode, "error": f"exit {code}", "log_tail": tail, "steps": []}


@contextmanager
def terminate_as_exit() -> Iterator[None]:
    """Make SIGTERM end this process like Ctrl-C does, so the running child is killed too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace, argv: Sequence[str] = ()) -> int:
    """Run the chosen modes, each in a subprocess; print the table (and write the JSON)."""
    batch_asset_events()  # as the CLI does: range runs write a partition's asset events in batches
    if args.child:
        return child_main(args)
    modes = MODES if args.mode == "both" else (args.mode,)
    with terminate_as_exit(), tempfile.TemporaryDirectory(prefix="aurora-qb-bench-") as tmp:
        results = {mode: run_child(args, mode, Path(tmp)) for mode in modes}
    report = {
        "command": ["aurora-qb", "bench", *argv],
        "config": {k: getattr(args, k) for k in ("projects", "designs", "time_scale", "latency_ms", "seed")},
        "machine": machine_facts(),
        "modes": results,
    }
    print(format_table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    ok = all("error" not in r and all(s["ok"] for s in r["steps"]) for r in results.values())
    return 0 if ok else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run(parse_args(argv), argv)
