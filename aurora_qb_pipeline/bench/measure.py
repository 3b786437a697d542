"""Measuring one step of a benchmark mode: wall and CPU time, requests and 429s read from the
sandbox's request logs, peak memory, and what follows from them (real-world estimate, the
bound Aurora's rate limit sets)."""

from __future__ import annotations

import argparse
import cProfile
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from ..api_facts import AURORA_RATE_LIMIT
from ..sandbox.launcher import Sandbox

UPSERT_PATH = "/v1/records"


def aurora_seconds_per_request(time_scale: float) -> float:
    """The pace Aurora's rate limit allows, in (scaled) seconds per request."""
    scaled = AURORA_RATE_LIMIT.scaled(time_scale)
    return scaled.window_s / scaled.requests


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
    records_per_upsert: Optional[float]  # design records over upserts to every table (the report shows per table)
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


@dataclass
class Step:
    key: str
    label: str
    action: StepAction = dict
    before: Optional[StepAction] = None  # run before the clock starts (e.g. the 1% change)
    parts: list[Step] = field(default_factory=list)  # measured one by one, reported also as one


class Meter:
    """Times a step and reads what it cost from the sandbox's request logs."""

    def __init__(self, sandbox: Sandbox, time_scale: float, say: Callable[[str], None],
                 profile: Optional[Path] = None, profiled_step: str = "full_sync"):
        self.sandbox, self.time_scale, self.say = sandbox, time_scale, say
        self.profile, self.profiled_step = profile, profiled_step  # a cProfile of that step goes to `profile`
        self.rss = PeakRss()

    def _run(self, step: Step) -> dict[str, Any]:
        if self.profile is None or step.key != self.profiled_step:
            return step.action()
        profiler = cProfile.Profile(time.thread_time)  # CPU of the thread running the step, not wall time
        try:
            return profiler.runcall(step.action)
        finally:
            profiler.dump_stats(str(self.profile))

    def settle(self) -> None:
        """Wait out one Aurora rate window (plus the clients' margin), so every step starts with
        the whole budget, as after a pause in production. Not counted in any step."""
        time.sleep(AURORA_RATE_LIMIT.scaled(self.time_scale).window_s * 1.1 + 0.05)
        for state in (self.sandbox.aurora, self.sandbox.quickbase):
            state.log.clear()

    def measure(self, step: Step) -> StepFigures:
        self.settle()
        prepared = step.before() if step.before else {}
        self.rss.reset()
        cpu, started = time.process_time(), time.perf_counter()
        detail = {**prepared, **self._run(step)}
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


def measure_steps(meter: Meter, steps: list[Step]) -> list[StepFigures]:
    figures: list[StepFigures] = []
    for step in steps:
        if step.parts:
            parts = measure_steps(meter, step.parts)
            figures += [combine(step.key, step.label, parts, meter.time_scale), *parts]
        else:
            figures.append(meter.measure(step))
    return figures
