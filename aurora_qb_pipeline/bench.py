"""``aurora-qb bench``: how fast and how frugal a sync is, against the sandbox with latency and
rate limits on (Aurora 90 requests/min per key, Quickbase 100 per 10 s per token).

Every duration the sandbox and the clients know (rate windows, latency, backoff) is multiplied
by ``--time-scale`` (default 0.01: an Aurora "minute" lasts 0.6 s), so the ratios between rate
limit, latency and work stay as in production. Times are also shown divided by the time scale
("real-world"); that is honest for rate-limited waiting, and overstates fixed CPU costs.

The scenario, run by each mode on its own fresh sandbox (same seed, so the same data):

1. full sync of all projects;
2. a rerun with nothing changed;
3. a rerun after 1% of the designs changed (``AuroraState.mutate``, which also records accepted
   design requests).

``incremental`` drives the Dagster pipeline as the daemon would (``local_runner.tick``):
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
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import dagster as dg

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

# imported after the filters: defining the assets warns about beta parameters
from .assets.staging import projects_partitions
from .automation import RANGE_END, RANGE_START
from .cli import prepare_dagster_home
from .definitions import make_definitions
from .local_runner import run_job, tick
from .mapping import ResolvedMapping, encode_row, load_mapping, resolve_mapping
from .resources import AuroraClient, PermanentApiError, QuickbaseClient
from .sandbox.launcher import Sandbox, start_sandbox
from .transform import array_rows, design_row, project_address_row, proposal_row, summary_row

MODES = ("incremental", "naive")
AURORA_LIMIT, AURORA_WINDOW_S = 90, 60.0  # as the sandbox enforces it, before scaling
CHANGED_FRACTION = 0.01
UPSERT_PATH = "/v1/records"


# --- options --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="aurora-qb bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--designs", type=int, default=2500, help="designs in all (spread unevenly over projects)")
    parser.add_argument("--time-scale", type=float, default=0.01, help="multiplies every rate window and latency")
    parser.add_argument("--latency-ms", type=float, default=150.0, help="per-request latency before scaling")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", choices=(*MODES, "both"), default="both")
    parser.add_argument("--json", help="write every figure to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines, only the table")
    parser.add_argument("--timeout", type=float, help="seconds a mode may take (default: from the size)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # run one mode in this process
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.projects <= 0 or args.designs < 0 or args.time_scale <= 0:
        parser.error("--projects must be > 0, --designs >= 0 and --time-scale > 0")
    return args


def aurora_seconds_per_request(time_scale: float) -> float:
    """The pace Aurora's rate limit allows, in (scaled) seconds per request."""
    return AURORA_WINDOW_S * time_scale / AURORA_LIMIT


def default_timeout(args: argparse.Namespace) -> float:
    """Generous: five full fetches (2 requests a project, 2 a design) at the rate limit, times three."""
    full_fetch_s = (2 * args.projects + 2 * args.designs) * aurora_seconds_per_request(args.time_scale)
    return 300.0 + 3 * 5 * full_fetch_s


# --- measuring one step -----------------------------------------------------------------------


class PeakRss:
    """Peak resident memory of this process. On Linux the high-water mark can be reset
    (``/proc/self/clear_refs``), which gives a peak per step; elsewhere it is the peak so far."""

    def __init__(self) -> None:
        self.per_step = self.reset()

    @staticmethod
    def reset() -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def peak_mb(self) -> float:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            pass
        return max_rss_mb()


def max_rss_mb() -> float:
    """ru_maxrss of this process (kB on Linux): its peak since it started, or since
    :meth:`PeakRss.reset` last reset the high-water mark."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


@dataclass
class StepFigures:
    key: str
    label: str
    wall_s: float
    real_world_s: float  # wall / time scale: an upper estimate
    real_world_est_s: float  # bound / time scale + time beyond the bound (taken as unscaled overhead)
    cpu_s: float
    aurora_requests: int
    aurora_429: int
    quickbase_requests: int
    quickbase_429: int
    upsert_requests: int
    records_sent: int
    records_per_upsert: Optional[float]
    aurora_lower_bound_s: float
    ratio_to_lower_bound: Optional[float]
    peak_rss_mb: float
    ok: bool = True
    detail: dict[str, Any] = field(default_factory=dict)


def _ratio(a: float, b: float, digits: int = 2) -> Optional[float]:
    return round(a / b, digits) if b else None


COUNTED = ("wall_s", "cpu_s", "aurora_requests", "aurora_429", "quickbase_requests", "quickbase_429",
           "upsert_requests", "records_sent")


def step_figures(key: str, label: str, counted: dict[str, Any], peak_rss_mb: float, ok: bool,
                 detail: dict[str, Any], time_scale: float) -> StepFigures:
    """Add what follows from the counted figures: real-world time, records per upsert, the bound.

    Real-world time: dividing the wall time by the time scale is right for time spent waiting on
    rate limits and latency, but CPU work (Dagster's bookkeeping, DuckDB, validation) does not
    shrink with the time scale. ``real_world_est_s`` takes the time beyond the rate-limit bound as
    such unscaled overhead: checked for the full sync by running it at two time scales."""
    lower = (counted["aurora_requests"] - counted["aurora_429"]) * aurora_seconds_per_request(time_scale)
    wall = counted["wall_s"]
    return StepFigures(
        key=key, label=label, **{k: round(v, 3) if isinstance(v, float) else v for k, v in counted.items()},
        real_world_s=round(wall / time_scale, 1),
        real_world_est_s=round(lower / time_scale + max(0.0, wall - lower), 1),
        records_per_upsert=_ratio(counted["records_sent"], counted["upsert_requests"], 1),
        aurora_lower_bound_s=round(lower, 3),
        ratio_to_lower_bound=_ratio(counted["wall_s"], lower),
        peak_rss_mb=peak_rss_mb, ok=ok, detail=detail,
    )


def combine(key: str, label: str, parts: list[StepFigures], time_scale: float) -> StepFigures:
    """Figures of steps taken one after the other, as one step."""
    counted = {f: sum(getattr(p, f) for p in parts) for f in COUNTED}
    return step_figures(key, label, counted, max(p.peak_rss_mb for p in parts), all(p.ok for p in parts),
                        {"parts": [p.key for p in parts]}, time_scale)


StepAction = Callable[[], dict[str, Any]]  # does the work; returns records_sent, ok and anything worth keeping


class Meter:
    """Times a step and reads what it cost from the sandbox's request logs."""

    def __init__(self, sandbox: Sandbox, time_scale: float, say: Callable[[str], None]):
        self.sandbox, self.time_scale, self.say = sandbox, time_scale, say
        self.rss = PeakRss()

    def settle(self) -> None:
        """Wait out one Aurora rate window (plus the clients' margin), so every step starts with
        the whole budget, as after a pause in production. Not counted in any step."""
        time.sleep(AURORA_WINDOW_S * self.time_scale * 1.1 + 0.05)
        for state in (self.sandbox.aurora, self.sandbox.quickbase):
            state.log.clear()

    def measure(self, step: Step) -> StepFigures:
        self.settle()
        prepared = step.before() if step.before else {}
        self.rss.reset()
        cpu, started = time.process_time(), time.perf_counter()
        detail = {**prepared, **step.action()}
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        aurora, quickbase = self.sandbox.aurora.log.entries(), self.sandbox.quickbase.log.entries()
        counted = {
            "wall_s": wall, "cpu_s": cpu,
            "aurora_requests": len(aurora), "aurora_429": sum(e.status == 429 for e in aurora),
            "quickbase_requests": len(quickbase), "quickbase_429": sum(e.status == 429 for e in quickbase),
            "upsert_requests": sum(e.method == "POST" and e.path == UPSERT_PATH and e.status != 429 for e in quickbase),
            "records_sent": int(detail.pop("records_sent", 0)),
        }
        ok = bool(detail.pop("ok", True))
        figures = step_figures(step.key, step.label, counted, self.rss.peak_mb(), ok, detail, self.time_scale)
        self.say(f"  {step.label.strip()}: {figures.wall_s:.2f} s, {figures.aurora_requests} Aurora / "
                 f"{figures.quickbase_requests} Quickbase requests{'' if ok else '  (FAILED)'}")
        return figures


# --- the two modes ----------------------------------------------------------------------------


@dataclass
class Step:
    key: str
    label: str
    action: StepAction = dict
    before: Optional[StepAction] = None  # run before the clock starts (e.g. the 1% change)
    parts: list[Step] = field(default_factory=list)  # measured one by one, reported also as one


def change_designs(sandbox: Sandbox, seed: int) -> StepAction:
    """Designers change 1% of the designs; accepted design requests are recorded for them."""

    def run() -> dict[str, Any]:
        changed = sandbox.aurora.mutate(CHANGED_FRACTION, seed=seed + 1)
        time.sleep(0.01)  # later design requests must carry a later timestamp than the sensor's watermark
        return {"changed_designs": len(changed["changed_design_ids"]), "changed_projects": len(changed["project_ids"])}

    return run


def _asset_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return {k: v.value for k, v in events[-1].materialization.metadata.items()} if events else {}


def runs_detail(runs: list[dg.ExecuteInProcessResult]) -> dict[str, Any]:
    exports = [_asset_metadata(r, "quickbase_export") for r in runs]
    return {
        "ok": all(r.success for r in runs),
        "runs": len(runs),
        "projects_fetched": sum(_asset_metadata(r, "project_addresses").get("projects", 0) for r in runs),
        "records_sent": sum(m.get("sent", 0) for m in exports),
        "records_unchanged_not_sent": sum(m.get("unchanged_since_last_export", 0) for m in exports),
    }


class IncrementalMode:
    """The Dagster pipeline, ticked as the daemon would on a fresh instance."""

    def __init__(self, sandbox: Sandbox, workdir: Path, seed: int):
        prepare_dagster_home(workdir / "dagster_home", fresh=True)
        self.sandbox, self.seed = sandbox, seed
        self.instance = dg.DagsterInstance.get()
        resources = sandbox.resources(os.environ["AURORA_QB_DUCKDB"], rate_limit_db=str(workdir / "rate_limits.sqlite"))
        self.defs = make_definitions(resources)
        self.cursor: Optional[str] = None  # the design-request sensor's

    def _tick(self, sensor: str, cursor: Optional[str] = None) -> tuple[dict[str, Any], Optional[str]]:
        outcome = tick(self.defs, self.instance, sensor, cursor=cursor)
        detail = {**runs_detail(outcome.runs), "new_partitions": len(outcome.new_partitions)}
        if outcome.skip_reason:
            detail["skip_reason"] = outcome.skip_reason
        return detail, outcome.cursor

    def discovery(self) -> dict[str, Any]:
        return self._tick("project_discovery_sensor")[0]

    def design_requests(self) -> dict[str, Any]:
        detail, self.cursor = self._tick("design_request_sensor", self.cursor)
        return {**detail, "cursor": self.cursor}

    def full_reconcile(self) -> dict[str, Any]:
        keys = self.instance.get_dynamic_partitions(projects_partitions.name)
        tags = {RANGE_START: keys[0], RANGE_END: keys[-1], "aurora_qb/trigger": "bench_full_reconcile"}
        return runs_detail([run_job(self.defs, self.instance, tags)])

    def steps(self) -> list[Step]:
        return [
            Step("full_sync", "1. full sync (discovery tick)", self.discovery),
            Step("first_scan", "   setup: first design-request tick, no cursor", self.design_requests),
            Step("rerun_unchanged", "2. rerun, nothing changed", parts=[
                Step("rerun_unchanged_discovery", "   2a. discovery tick", self.discovery),
                Step("rerun_unchanged_design_requests", "   2b. design-request tick", self.design_requests),
            ]),
            Step("rerun_1pct", "3. rerun after 1% changed (design-req. tick)", self.design_requests,
                 before=change_designs(self.sandbox, self.seed)),
            Step("full_reconcile", "   full reconcile (range run, all partitions)", self.full_reconcile),
        ]

    def close(self) -> None:
        self.instance.dispose()


def export_row(project_id: str, address: dict, design: dict, summary: dict, proposal: Optional[dict]) -> dict:
    """One design's columns, as the pipeline's export query would join them."""
    design_id = design["id"]
    arrays = array_rows(project_id, design_id, summary)
    row = {**address, **design_row(project_id, design), **summary_row(project_id, design_id, summary, arrays)}
    if proposal:
        row.update(proposal_row(project_id, design_id, proposal))
    return row


def naive_project_records(aurora: AuroraClient, mapping: ResolvedMapping, project_id: str) -> list[dict]:
    """The old script's requests for one project: designs, then each design's summary and default
    proposal, then the project. Records are encoded with the pipeline's mapping."""
    designs = aurora.list_designs(project_id)
    if not designs:
        return []
    fetched = [(d, aurora.get_design_summary(d["id"]), aurora.get_default_proposal(d["id"])) for d in designs]
    address = project_address_row(project_id, aurora.get_project(project_id))
    return [encode_row(mapping, export_row(project_id, address, *parts)).record for parts in fetched]


class NaiveMode:
    """The original script's approach over the same clients: sequential, per project, everything every run."""

    def __init__(self, sandbox: Sandbox, workdir: Path, seed: int):
        rate_limit_db = str(workdir / "rate_limits.sqlite")
        self.aurora: AuroraClient = sandbox.aurora_client(rate_limit_db)
        self.quickbase: QuickbaseClient = sandbox.quickbase_client(rate_limit_db)
        self.sandbox, self.seed = sandbox, seed

    def sync(self) -> dict[str, Any]:
        """One run of the script. Records Quickbase would refuse are sent anyway (it answers 207 with
        line errors), as the script did; a project whose fetch fails is logged and skipped."""
        mapping = resolve_mapping(load_mapping(), self.quickbase.get_fields())
        tally = {"projects_fetched": 0, "projects_posted": 0, "projects_without_designs": 0, "projects_failed": 0,
                 "records_sent": 0, "records_refused": 0}
        for project in self.aurora.iter_projects():
            tally["projects_fetched"] += 1
            try:
                records = naive_project_records(self.aurora, mapping, project["id"])
                if not records:
                    tally["projects_without_designs"] += 1
                    continue
                result = self.quickbase.upsert(records, mapping.merge_field_id)
            except PermanentApiError:
                tally["projects_failed"] += 1
                continue
            tally["projects_posted"] += 1
            tally["records_sent"] += len(records)
            tally["records_refused"] += len(result.line_errors)
        return tally

    def steps(self) -> list[Step]:
        return [
            Step("full_sync", "1. full sync", self.sync),
            Step("rerun_unchanged", "2. rerun, nothing changed", self.sync),
            Step("rerun_1pct", "3. rerun after 1% changed", self.sync, before=change_designs(self.sandbox, self.seed)),
        ]

    def close(self) -> None:
        for client in (self.aurora, self.quickbase):
            client.teardown_after_execution(None)


MODE_CLASSES = {"incremental": IncrementalMode, "naive": NaiveMode}


# --- one mode, in this process ----------------------------------------------------------------


def measure_steps(meter: Meter, steps: list[Step]) -> list[StepFigures]:
    figures: list[StepFigures] = []
    for step in steps:
        if step.parts:
            parts = measure_steps(meter, step.parts)
            figures += [combine(step.key, step.label, parts, meter.time_scale), *parts]
        else:
            figures.append(meter.measure(step))
    return figures


def run_mode(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Start a sandbox, run one mode's steps, stop the sandbox; the figures as a dict."""
    say = (lambda _: None) if args.quiet else (lambda text: print(text, flush=True))
    workdir.mkdir(parents=True, exist_ok=True)
    say(f"[{args.mode}] sandbox: {args.projects} projects, {args.designs} designs")
    sandbox = start_sandbox(projects=args.projects, designs_per_project=args.designs / args.projects,
                            seed=args.seed, time_scale=args.time_scale, latency_ms=args.latency_ms)
    try:
        tenant = sandbox.aurora.primary
        mode = MODE_CLASSES[args.mode](sandbox, workdir, args.seed)
        baseline_mb = max_rss_mb()
        meter = Meter(sandbox, args.time_scale, say)
        try:
            steps = measure_steps(meter, mode.steps())
        finally:
            mode.close()
    finally:
        sandbox.stop()
    return {
        "mode": args.mode,
        "data": {"projects": len(tenant.projects), "designs": len(tenant.designs),
                 "projects_with_designs": sum(1 for p in tenant.projects if tenant.designs_of(p)),
                 "design_requests": len(tenant.design_requests)},
        "rss_after_setup_mb": baseline_mb,
        "max_rss_mb": max([baseline_mb, *(s.peak_rss_mb for s in steps)]),
        "rss_per_step": meter.rss.per_step,
        "steps": [asdict(s) for s in steps],
    }


def child_main(args: argparse.Namespace) -> int:
    """Entry of the subprocess that runs one mode; dumps every thread's stack if it overruns."""
    faulthandler.dump_traceback_later(args.timeout or default_timeout(args), exit=True)
    with nullcontext(args.workdir) if args.workdir else tempfile.TemporaryDirectory(prefix="aurora-qb-bench-") as tmp:
        figures = run_mode(args, Path(tmp))
    Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    return 0


# --- both modes, each in a subprocess -------------------------------------------------------


def child_command(args: argparse.Namespace, mode: str, json_path: Path, workdir: Path) -> list[str]:
    command = [sys.executable, "-m", "aurora_qb_pipeline.bench", "--child", "--mode", mode,
               "--json", str(json_path), "--workdir", str(workdir)]
    for option in ("projects", "designs", "time_scale", "latency_ms", "seed", "timeout"):
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
            kill_session(child)
            code = "timeout"
        except BaseException:  # Ctrl-C
            kill_session(child)
            raise
    if code == 0 and json_path.exists():
        return json.loads(json_path.read_text())
    tail = log_path.read_text()[-3000:]
    print(f"[{mode}] failed ({code}); last lines of its log:\n{tail}", file=sys.stderr)
    return {"mode": mode, "error": f"exit {code}", "log_tail": tail, "steps": []}


def kill_session(child: subprocess.Popen) -> None:
    """Kill the child (not yet reaped, so its id is still its own) and everything in its session."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.wait()


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


def machine_facts() -> dict[str, Any]:
    return {"nproc": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "dagster": dg.__version__}


# --- reporting -------------------------------------------------------------------------------


def clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


COLUMNS: list[tuple[str, str, Callable[[dict], str]]] = [
    ("wall s", "{:>8}", lambda s: f"{s['wall_s']:.2f}"),
    ("real h:m:s", "{:>10}", lambda s: clock(s["real_world_s"])),
    ("est h:m:s", "{:>9}", lambda s: clock(s["real_world_est_s"])),
    ("cpu s", "{:>7}", lambda s: f"{s['cpu_s']:.1f}"),
    ("Aurora", "{:>7}", lambda s: str(s["aurora_requests"])),
    ("429", "{:>4}", lambda s: str(s["aurora_429"])),
    ("QB", "{:>5}", lambda s: str(s["quickbase_requests"])),
    ("429", "{:>4}", lambda s: str(s["quickbase_429"])),
    ("upserts", "{:>7}", lambda s: str(s["upsert_requests"])),
    ("rec/ups", "{:>7}", lambda s: "-" if s["records_per_upsert"] is None else f"{s['records_per_upsert']:g}"),
    ("bound s", "{:>8}", lambda s: f"{s['aurora_lower_bound_s']:.2f}"),
    ("x bound", "{:>7}", lambda s: "-" if s["ratio_to_lower_bound"] is None else f"{s['ratio_to_lower_bound']:.2f}"),
    ("RSS MB", "{:>7}", lambda s: f"{s['peak_rss_mb']:.0f}"),
]


def format_table(report: dict[str, Any]) -> str:
    """Rows grouped by step, one per mode, so the modes stand side by side."""
    modes = report["modes"]
    labels: dict[str, str] = {}  # step key -> label, in the order the modes ran them
    for result in modes.values():
        for step in result["steps"]:
            labels.setdefault(step["key"], step["label"])
    header = f"{'step':<46} {'mode':<11} " + " ".join(fmt.format(name) for name, fmt, _ in COLUMNS)
    lines = [header, "-" * len(header)]
    for key, label in labels.items():
        for name, result in modes.items():
            step = next((s for s in result["steps"] if s["key"] == key), None)
            if step:
                cells = " ".join(fmt.format(render(step)) for _, fmt, render in COLUMNS)
                flag = "" if step["ok"] else "  FAILED"
                lines.append(f"{label:<46} {name:<11} {cells}{flag}")
                label = ""
    config = report["config"]
    per_step = all(m.get("rss_per_step") for m in modes.values())
    lines += [
        "",
        (f"bound s = Aurora requests (429s excluded) / {AURORA_LIMIT} per {AURORA_WINDOW_S * config['time_scale']:g} s "
         "(steps under 90 requests fit in the first window, so their ratio means little);"),
        (f"real = wall / time scale {config['time_scale']:g}: right for rate-limited waiting, too high for CPU time "
         "(which does not scale); est = bound / time scale + (wall - bound), taking the rest as unscaled overhead;"),
        ("cpu s = process CPU, sandbox threads included; RSS = peak resident memory "
         f"({'of the step' if per_step else 'since the mode started'}), sandbox included."),
    ]
    for name, result in modes.items():
        if "error" in result:
            lines.append(f"{name}: {result['error']}")
        else:
            lines.append(f"{name}: {result['data']}; RSS after setup {result['rss_after_setup_mb']:.0f} MB, "
                         f"max {result['max_rss_mb']:.0f} MB")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:  # `aurora-qb bench -- --json x`: argparse's REMAINDER keeps the separator
        argv = argv[1:]
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    modes = MODES if args.mode == "both" else (args.mode,)
    with terminate_as_exit(), tempfile.TemporaryDirectory(prefix="aurora-qb-bench-") as tmp:
        results = {mode: run_child(args, mode, Path(tmp)) for mode in modes}
    report = {
        "command": ["aurora-qb", "bench", "--", *argv],
        "config": {k: getattr(args, k) for k in ("projects", "designs", "time_scale", "latency_ms", "seed")},
        "machine": machine_facts(),
        "modes": results,
    }
    print(format_table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    ok = all("error" not in r and all(s["ok"] for s in r["steps"]) for r in results.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
