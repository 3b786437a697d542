"""``aurora-qb bench --mode tenants``: many Aurora tenants syncing at once (issue 13).

The sandbox serves ``--tenants`` tenants of ``--tenant-projects`` projects each (its own API key
each, every key limited to Aurora's 90 requests a minute, scaled by ``--time-scale`` like every
mode), and a Quickbase designs table per tenant. Each tenant's code location runs in a process of
its own, as a tenant's run worker would (``AURORA_QB_TENANT``-style settings: its keys, partitions,
pool and DuckDB file; one Dagster instance for all), and does what the daemon would do first: a
``project_discovery_sensor`` tick and the range run it launches. All tenants start together.

Reported, for one more tenant (t0) syncing alone first and then for all the others at once: each
tenant's wall time against its own per-key bound (its Aurora requests at 90 a minute), and the
whole step's wall time against the slowest tenant's bound (goal: 1.1x or less, i.e. tenants never
wait for each other), also as a real-world estimate (bound / time scale + the time beyond the
bound, taken as unscaled overhead; ``bench/measure.py``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from ..sandbox.launcher import start_sandbox
from .measure import Meter, StepFigures, step_figures

TENANT_SEED_STEP = 1000


class Phase:
    """Tenants' first syncs started together, each in a worker process of its own."""

    def __init__(self, sandbox, workdir: Path, home: Path, tenants_file: Path, tenants: dict[str, dict[str, str]],
                 time_scale: float, timeout: Optional[float], say: Callable[[str], None]):
        self.sandbox, self.workdir, self.home, self.tenants_file = sandbox, workdir, home, tenants_file
        self.tenants, self.time_scale, self.timeout, self.say = tenants, time_scale, timeout, say

    def run(self, names: list[str], key: str, label: str) -> list[StepFigures]:
        """The whole phase's figures (bound: the slowest tenant's), then each tenant's."""
        go, workers = self.workdir / f"go_{key}", {}
        for name in names:
            tenant = self.tenants[name]
            job = {"home": str(self.home), "tenant": name, "tenants_file": str(self.tenants_file),
                   "env": self.sandbox.env(), "tenant_id": tenant["tenant_id"], "api_token": tenant["api_token"],
                   "table_id": tenant["table_id"], "rate_limit_db": str(self.workdir / "rate_limits.sqlite"),
                   "out": str(self.workdir / f"{name}.json"), "ready": str(self.workdir / f"{name}.ready"),
                   "go": str(go)}
            (self.workdir / f"{name}.job.json").write_text(json.dumps(job))
            workers[name] = subprocess.Popen([sys.executable, "-m", "aurora_qb_pipeline.bench.tenants",
                                              str(self.workdir / f"{name}.job.json")])
        # the clock starts once every worker has loaded its code location (process start and imports
        # are a code server's, not a sync's), and after a whole rate window (Meter.settle)
        while not all((self.workdir / f"{n}.ready").exists() or w.poll() is not None for n, w in workers.items()):
            time.sleep(0.05)
        Meter(self.sandbox, self.time_scale, self.say).settle()
        started = time.time()
        go.touch()
        codes = {name: w.wait(timeout=self.timeout) for name, w in workers.items()}
        results = {n: json.loads((self.workdir / f"{n}.json").read_text()) if codes[n] == 0 else {"ok": False}
                   for n in names}
        wall = max((r.get("ended_at", time.time()) for r in results.values()), default=time.time()) - started
        entries, quickbase = self.sandbox.aurora.log.entries(), self.sandbox.quickbase.log.entries()
        steps = []
        for name in names:
            result = results[name]
            mine = [e for e in entries if f"/tenants/{self.tenants[name]['tenant_id']}/" in e.path]
            counted = {"wall_s": result.get("wall_s", wall), "cpu_s": result.get("cpu_s", 0.0),
                       "aurora_requests": len(mine), "aurora_429": sum(e.status == 429 for e in mine),
                       "quickbase_requests": 0, "quickbase_429": 0, "upsert_requests": result.get("upserts", 0),
                       "records_sent": result.get("records_sent", 0)}
            steps.append(step_figures(f"{key}_{name}", f"   tenant {name} (its own key)", counted, 0.0,
                                      bool(result.get("ok")), {k: v for k, v in result.items() if k != "ok"},
                                      self.time_scale))
        slowest = max(s.aurora_lower_bound_s for s in steps)
        counted = {"wall_s": wall, "cpu_s": sum(s.cpu_s for s in steps), "aurora_requests": len(entries),
                   "aurora_429": sum(e.status == 429 for e in entries), "quickbase_requests": len(quickbase),
                   "quickbase_429": sum(e.status == 429 for e in quickbase),
                   "upsert_requests": sum(s.upsert_requests for s in steps),
                   "records_sent": sum(s.records_sent for s in steps)}
        total = step_figures(key, label, counted, 0.0, all(s.ok for s in steps),
                             {"runs": sum(s.detail.get("runs", 0) for s in steps), "tenants": len(names)},
                             self.time_scale)
        # the tenants' budgets are separate: the bound of the whole is the slowest tenant's, not the sum
        est = slowest / self.time_scale + max(0.0, wall - slowest)
        total = replace(total, aurora_lower_bound_s=round(slowest, 3),
                        ratio_to_lower_bound=round(wall / slowest, 2) if slowest else None,
                        real_world_est_s=round(est, 1))
        total.detail["real_world_est_to_bound"] = round(est * self.time_scale / slowest, 3) if slowest else None
        self.say(f"  {label.strip()}: {wall:.2f} s against the slowest tenant's bound {slowest:.2f} s "
                 f"({total.ratio_to_lower_bound}x; real-world estimate {total.detail['real_world_est_to_bound']}x)")
        return [total, *steps]


def run_tenants_mode(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Start the sandbox with the tenants plus one more (t0, the baseline alone), run t0's first
    sync alone, then every other tenant's at once; measure both."""
    from ..instance import prepare_dagster_home

    say = (lambda _: None) if args.quiet else (lambda text: print(text, flush=True))
    workdir.mkdir(parents=True, exist_ok=True)
    per_project = args.designs / args.projects
    say(f"[tenants] sandbox: {args.tenants} tenants x {args.tenant_projects} projects (+ t0 alone, the baseline)")
    sandbox = start_sandbox(projects=2, designs_per_project=per_project, seed=args.seed,
                            time_scale=args.time_scale, latency_ms=args.latency_ms)
    try:
        tenants = {f"t{i}": sandbox.add_tenant(seed=args.seed + (i + 1) * TENANT_SEED_STEP,
                                               projects=args.tenant_projects, designs_per_project=per_project)
                   for i in range(0, args.tenants + 1)}
        home = prepare_dagster_home(workdir / "dagster_home", fresh=True)
        tenants_file = workdir / "tenants.yaml"
        tenants_file.write_text(yaml.safe_dump({"tenants": [
            {"name": name, "aurora_tenant_id": t["tenant_id"], "api_token_env": f"AURORA_API_TOKEN_{name.upper()}"}
            for name, t in tenants.items()]}))
        phase = Phase(sandbox, workdir, home, tenants_file, tenants, args.time_scale, args.timeout, say)
        others = [n for n in tenants if n != "t0"]
        steps = phase.run(["t0"], "one_tenant", "1. one tenant's full sync, alone")
        steps += phase.run(others, "tenants_full_sync", f"2. {len(others)} tenants' full syncs at once")
        data = {name: {"projects": len(sandbox.aurora.tenants[t["tenant_id"]].projects),
                       "designs": len(sandbox.aurora.tenants[t["tenant_id"]].designs)} for name, t in tenants.items()}
    finally:
        sandbox.stop()
    return {"mode": "tenants", "data": {"tenants": data}, "rss_after_setup_mb": 0.0, "max_rss_mb": 0.0,
            "rss_per_step": False, "steps": [asdict(s) for s in steps]}


def worker(job_path: str) -> int:
    """One tenant's first sync in this process, as its code location's daemon tick and run would."""

    from ..definitions import build_definitions
    from ..defs.quickbase.assets import EXPORT_KEY
    from ..defs.resources import build_resources
    from ..defs.tenancy import tenant_key
    from ..instance import open_instance
    from ..runner import tick
    from ..settings import Credentials, Settings

    job = json.loads(Path(job_path).read_text())
    env = job["env"]
    settings = Settings.from_env(env, dagster_home=Path(job["home"]), tenants_file=Path(job["tenants_file"]),
                                 tenant=job["tenant"], rate_limit_db=Path(job["rate_limit_db"]))
    credentials = Credentials(job["tenant_id"], job["api_token"], env["QB_REALM_HOSTNAME"], env["QB_USER_TOKEN"],
                              job["table_id"])
    defs = build_definitions(settings, build_resources(settings, credentials))
    instance = open_instance(Path(job["home"]))
    defs.get_repository_def()  # resolve the definitions before the clock starts
    Path(job["ready"]).touch()
    while not Path(job["go"]).exists():
        time.sleep(0.01)
    cpu, started = time.process_time(), time.perf_counter()
    try:
        outcome = tick(defs, instance, "project_discovery_sensor")
    finally:
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        ended_at = time.time()
        instance.dispose()
    export = tenant_key(EXPORT_KEY, settings.names)
    metadata = [{k: v.value for k, v in e.materialization.metadata.items()}
                for run in outcome.runs for e in run.get_asset_materialization_events() if e.asset_key == export]
    result = {"ok": bool(outcome.runs) and all(r.success for r in outcome.runs), "wall_s": wall, "cpu_s": cpu,
              "ended_at": ended_at,
              "runs": len(outcome.runs), "new_partitions": len(outcome.new_partitions),
              "records_sent": sum(m.get("sent", 0) for m in metadata),
              "upserts": sum(m.get("requests", 0) for m in metadata),
              "tenant_tag": [r.dagster_run.tags.get("aurora_qb/tenant") for r in outcome.runs]}
    Path(job["out"]).write_text(json.dumps(result, default=str))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")
    sys.exit(worker(sys.argv[1]))
