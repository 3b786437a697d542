"""``aurora-qb bench --mode tenants``: many Aurora tenants syncing at once (issue 13).

Every tenant has its own API key (limited to Aurora's 90 requests a minute, scaled by
``--time-scale`` like every mode, 429 beyond), its own Aurora sandbox server process (real Aurora
serves each tenant from its own fleet; ``tenant_servers.py`` says why one shared sandbox process
would be a benchmark artifact) and its own designs table in the one Quickbase sandbox. Each
tenant's code location runs in a worker process of its own, as a tenant's run worker would
(``AURORA_QB_TENANT``-style settings: its keys, partitions, pool and DuckDB file; one Dagster
instance for all), and does what the daemon would do first: a ``project_discovery_sensor`` tick
and the range run it launches.

Two phases in one run, side by side: one more tenant (t0) syncs alone (the baseline), then all
the others start together. Reported for each: every tenant's wall time against its own per-key
bound (its Aurora requests at 90 a minute), the whole phase's wall time against the slowest
tenant's bound (goal: 1.1x or less, i.e. tenants never wait for each other), the phase against
one tenant alone, and where each tenant's time went (``timeline``: before its first Aurora
request, between its first and last, after its last; its run's steps) with the CPU of the
workers and of the sandbox. Measure at a time scale where the per-key budgets set the pace
(``--time-scale 1.0`` is Aurora's real rate): at small scales the CPU of this machine is measured.
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

from ..api_facts import AURORA_RATE_LIMIT
from ..sandbox.launcher import MISSING_CHOICE, start_sandbox
from ..sandbox.synthetic import MODULE_CATALOGUE
from .measure import StepFigures, step_figures
from .tenant_servers import TenantServer, start_tenant_servers

TENANT_SEED_STEP = 1000


def timeline(entries: list[Any], started: float, ended_at: float) -> dict[str, Any]:
    """Where a tenant's wall time went, from its server's request log: before its first Aurora
    request (tick, partitions, run start), from first to last (fetching: the budget's part), after
    its last (validation, DuckDB, the Quickbase export)."""
    stamps = sorted(e.ts for e in entries)
    if not stamps:
        return {}
    return {"before_first_request_s": round(stamps[0] - started, 2),
            "first_to_last_request_s": round(stamps[-1] - stamps[0], 2),
            "after_last_request_s": round(ended_at - stamps[-1], 2)}


class Phase:
    """Tenants' first syncs started together, each in a worker process of its own."""

    def __init__(self, sandbox, servers: dict[str, TenantServer], workdir: Path, home: Path, tenants_file: Path,
                 tables: dict[str, str], time_scale: float, timeout: Optional[float], say: Callable[[str], None]):
        self.sandbox, self.servers, self.workdir, self.home = sandbox, servers, workdir, home
        self.tenants_file, self.tables, self.time_scale, self.timeout, self.say = (
            tenants_file, tables, time_scale, timeout, say)

    def settle(self, names: list[str]) -> None:
        """Wait out one Aurora rate window (plus the clients' margin), so every tenant starts with
        its whole budget, as after a pause in production; then forget the logs. Not counted."""
        time.sleep(AURORA_RATE_LIMIT.scaled(self.time_scale).window_s * 1.1 + 0.05)
        for name in names:
            self.servers[name].clear()
        self.sandbox.aurora.log.clear()
        self.sandbox.quickbase.log.clear()

    def _sandbox_cpu(self, names: list[str]) -> float:
        """CPU of every sandbox server: the tenants' own processes and this one (Quickbase's server
        and, with shared servers, every tenant's Aurora; this process otherwise only sleeps)."""
        return time.process_time() + sum(self.servers[n].cpu_s() or 0.0 for n in names)

    def start_worker(self, name: str, go: Path) -> subprocess.Popen:
        server, env = self.servers[name], {**self.sandbox.env(), "AURORA_BASE_URL": self.servers[name].url}
        job = {"home": str(self.home), "tenant": name, "tenants_file": str(self.tenants_file), "env": env,
               "tenant_id": server.tenant_id, "api_token": server.token, "table_id": self.tables[name],
               "rate_limit_db": str(self.workdir / "rate_limits.sqlite"), "out": str(self.workdir / f"{name}.json"),
               "ready": str(self.workdir / f"{name}.ready"), "go": str(go)}
        (self.workdir / f"{name}.job.json").write_text(json.dumps(job))
        return subprocess.Popen([sys.executable, "-m", "aurora_qb_pipeline.bench.tenants",
                                 str(self.workdir / f"{name}.job.json")])

    def run(self, names: list[str], key: str, label: str) -> list[StepFigures]:
        """The whole phase's figures (bound: the slowest tenant's), then each tenant's."""
        go = self.workdir / f"go_{key}"
        workers = {name: self.start_worker(name, go) for name in names}
        # the clock starts once every worker has loaded its code location (process start and imports
        # are a code server's, not a sync's), and after a whole rate window (settle)
        while not all((self.workdir / f"{n}.ready").exists() or w.poll() is not None for n, w in workers.items()):
            time.sleep(0.05)
        self.settle(names)
        cpu, started = self._sandbox_cpu(names), time.time()
        go.touch()
        codes = {name: w.wait(timeout=self.timeout) for name, w in workers.items()}
        sandbox_cpu = self._sandbox_cpu(names) - cpu
        results = {n: json.loads((self.workdir / f"{n}.json").read_text()) if codes[n] == 0 else {"ok": False}
                   for n in names}
        wall = max((r.get("ended_at", time.time()) for r in results.values()), default=time.time()) - started
        quickbase = self.sandbox.quickbase.log.entries()
        steps, entries = [], []
        for name in names:
            result, mine = results[name], self.servers[name].entries()
            entries += mine
            counted = {"wall_s": result.get("wall_s", wall), "cpu_s": result.get("cpu_s", 0.0),
                       "aurora_requests": len(mine), "aurora_429": sum(e.status == 429 for e in mine),
                       "quickbase_requests": 0, "quickbase_429": 0, "upsert_requests": result.get("upserts", 0),
                       "records_sent": result.get("records_sent", 0)}
            detail = {k: v for k, v in result.items() if k != "ok"}
            detail["timeline"] = timeline(mine, started, result.get("ended_at", started + wall))
            steps.append(step_figures(f"{key}_{name}", f"   tenant {name} (its own key)", counted, 0.0,
                                      bool(result.get("ok")), detail, self.time_scale))
        slowest = max(s.aurora_lower_bound_s for s in steps)
        counted = {"wall_s": wall, "cpu_s": sum(s.cpu_s for s in steps), "aurora_requests": len(entries),
                   "aurora_429": sum(e.status == 429 for e in entries), "quickbase_requests": len(quickbase),
                   "quickbase_429": sum(e.status == 429 for e in quickbase),
                   "upsert_requests": sum(s.upsert_requests for s in steps),
                   "records_sent": sum(s.records_sent for s in steps)}
        total = step_figures(key, label, counted, 0.0, all(s.ok for s in steps),
                             {"runs": sum(s.detail.get("runs", 0) for s in steps), "tenants": len(names),
                              "sandbox_cpu_s": round(sandbox_cpu, 1)}, self.time_scale)
        # the tenants' budgets are separate: the bound of the whole is the slowest tenant's, not the sum.
        # Secondary: a real-world estimate (bound / time scale + the time beyond it, taken as unscaled
        # overhead), only meaningful when the run was not measured at time scale 1.
        est = slowest / self.time_scale + max(0.0, wall - slowest)
        total = replace(total, aurora_lower_bound_s=round(slowest, 3),
                        ratio_to_lower_bound=round(wall / slowest, 3) if slowest else None,
                        real_world_est_s=round(est, 1))
        total.detail["real_world_est_to_bound"] = round(est * self.time_scale / slowest, 3) if slowest else None
        self.say(f"  {label.strip()}: {wall:.2f} s against the slowest tenant's bound {slowest:.2f} s "
                 f"({total.ratio_to_lower_bound}x; {total.aurora_429} Aurora 429s; workers' CPU {total.cpu_s:.1f} s, "
                 f"sandbox CPU {sandbox_cpu:.1f} s)")
        return [total, *steps]


def quickbase_tables(sandbox, names: list[str]) -> dict[str, str]:
    """A designs table per tenant in the one Quickbase app (its traffic is a few requests a tenant)."""
    choices = [m for m in MODULE_CATALOGUE if m != MISSING_CHOICE]
    return {name: str(sandbox.quickbase.add_design_table(str(sandbox.quickbase.app_id), choices,
                                                         name=f"Aurora Designs {name}").id) for name in names}


def run_tenants_mode(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Start a sandbox server per tenant (the tenants plus one more, t0, the baseline alone), run
    t0's first sync alone, then every other tenant's at once; measure both."""
    from ..instance import prepare_dagster_home

    say = (lambda _: None) if args.quiet else (lambda text: print(text, flush=True))
    workdir.mkdir(parents=True, exist_ok=True)
    per_project = args.designs / args.projects
    kind = getattr(args, "tenant_servers", "own")
    say(f"[tenants] {args.tenants} tenants x {args.tenant_projects} projects (+ t0 alone, the baseline), "
        f"time scale {args.time_scale:g}, Aurora sandbox: {'a server process per tenant' if kind == 'own' else 'one shared'}")
    sandbox = start_sandbox(projects=2, designs_per_project=per_project, seed=args.seed,
                            time_scale=args.time_scale, latency_ms=args.latency_ms)
    names = [f"t{i}" for i in range(0, args.tenants + 1)]
    specs = {name: {"seed": args.seed + (i + 1) * TENANT_SEED_STEP, "projects": args.tenant_projects,
                    "designs_per_project": per_project, "time_scale": args.time_scale,
                    "latency_ms": args.latency_ms} for i, name in enumerate(names)}
    servers: dict[str, TenantServer] = {}
    try:
        servers = start_tenant_servers(kind, sandbox, workdir, specs)
        home = prepare_dagster_home(workdir / "dagster_home", fresh=True)
        tenants_file = workdir / "tenants.yaml"
        tenants_file.write_text(yaml.safe_dump({"tenants": [
            {"name": name, "aurora_tenant_id": s.tenant_id, "api_token_env": f"AURORA_API_TOKEN_{name.upper()}"}
            for name, s in servers.items()]}))
        phase = Phase(sandbox, servers, workdir, home, tenants_file, quickbase_tables(sandbox, names),
                      args.time_scale, args.timeout, say)
        alone = phase.run(["t0"], "one_tenant", "1. one tenant's full sync, alone")
        together = phase.run(names[1:], "tenants_full_sync", f"2. {len(names) - 1} tenants' full syncs at once")
        if alone[0].wall_s:
            together[0].detail["x_one_alone"] = round(together[0].wall_s / alone[0].wall_s, 3)
            say(f"  {len(names) - 1} tenants at once took {together[0].detail['x_one_alone']}x one tenant alone")
        data = {name: {"projects": s.projects, "designs": s.designs} for name, s in servers.items()}
    finally:
        for server in servers.values():
            server.stop()
        sandbox.stop()
    return {"mode": "tenants", "data": {"tenants": data, "tenant_servers": kind}, "rss_after_setup_mb": 0.0,
            "max_rss_mb": 0.0, "rss_per_step": False, "steps": [asdict(s) for s in [*alone, *together]]}


def run_timings(instance, run_id: str, started: float) -> dict[str, list[float]]:
    """Each step of a run: [start, end] in seconds from the phase's start."""
    return {s.step_key: [round((s.start_time or started) - started, 2), round((s.end_time or started) - started, 2)]
            for s in instance.get_run_step_stats(run_id)}


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
    cpu, started, started_at = time.process_time(), time.perf_counter(), time.time()
    try:
        outcome = tick(defs, instance, "project_discovery_sensor")
    finally:
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        ended_at = time.time()
    try:
        steps = {r.run_id: run_timings(instance, r.run_id, started_at) for r in outcome.runs}
    finally:
        instance.dispose()
    export = tenant_key(EXPORT_KEY, settings.names)
    metadata = [{k: v.value for k, v in e.materialization.metadata.items()}
                for run in outcome.runs for e in run.get_asset_materialization_events() if e.asset_key == export]
    result = {"ok": bool(outcome.runs) and all(r.success for r in outcome.runs), "wall_s": wall, "cpu_s": cpu,
              "ended_at": ended_at,
              "runs": len(outcome.runs), "new_partitions": len(outcome.new_partitions),
              "records_sent": sum(m.get("sent", 0) for m in metadata),
              "upserts": sum(m.get("requests", 0) for m in metadata),
              "tenant_tag": [r.dagster_run.tags.get("aurora_qb/tenant") for r in outcome.runs],
              "run_steps": steps}
    Path(job["out"]).write_text(json.dumps(result, default=str))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")
    sys.exit(worker(sys.argv[1]))
