"""``aurora-qb demo``: the whole pipeline against the sandbox, or the Dagster UI on it (``--ui``).

The demo drives the sensors and runs in this process (as the daemon would, see ``runner.py``)
on its own Dagster home; ``--ui`` starts ``dagster dev`` with the sensors and schedule on.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..instance import open_instance, prepare_dagster_home
from ..sandbox.launcher import Sandbox
from ..settings import Credentials, Settings
from .common import add_sandbox_options, start, wait_for_interrupt

SUMMARY_TABLES = ("staging.project_addresses", "staging.designs", "staging.design_summaries",
                  "staging.design_arrays", "staging.latest_proposals", "ops.quarantine")


def summary(sandbox: Sandbox, duckdb_path: str) -> str:
    import duckdb

    with duckdb.connect(duckdb_path, read_only=True) as conn:
        counts = {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in SUMMARY_TABLES}
        log = dict(conn.execute("select status, count(*) from ops.export_log group by 1").fetchall())
    records = len(sandbox.quickbase.records(sandbox.quickbase.table_id))
    lines = [f"  {table:<28} {n:>6} rows" for table, n in counts.items()]
    lines.append(f"  export log (all runs)        {log}")
    lines.append(f"  Quickbase table now holds    {records:>6} records")
    return "\n".join(lines)


def run_ui(args: argparse.Namespace, sandbox: Sandbox, home: Path) -> int:
    """``dagster dev`` on the sandbox, sensors and schedule on, until Ctrl-C."""
    env = {**os.environ, **sandbox.env(), "DAGSTER_HOME": str(home),
           "AURORA_QB_DUCKDB": str(home / "aurora_qb.duckdb"), "AURORA_QB_AUTOMATION": "running"}
    print(f"Starting `dagster dev` on http://127.0.0.1:{args.port} (sensors and schedule on); Ctrl-C stops.")
    # dagster dev must react to Ctrl-C even when this process was started with it ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    child = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-p", str(args.port), "-h", "127.0.0.1"],
        env=env,
        start_new_session=True,
    )
    wait_for_interrupt(child)
    return child.returncode or 0


def run_demo(args: argparse.Namespace, sandbox: Sandbox, home: Path) -> bool:
    from ..definitions import build_definitions
    from ..defs.resources import build_resources
    from ..runner import tick

    env = sandbox.env()
    settings = Settings.from_env(env, dagster_home=home)
    defs = build_definitions(settings, build_resources(settings, Credentials.from_env(env)))
    instance = open_instance(home)
    print("\n1) Discovery: new Aurora projects become partitions; one range run syncs them all.")
    first = tick(defs, instance, "project_discovery_sensor")
    ok = all(r.success for r in first.runs)
    print(f"   {len(first.new_partitions)} projects discovered, {len(first.runs)} run(s), success={ok}")
    print(summary(sandbox, settings.duckdb_file))

    print("\n2) Designers revise 10% of designs; the design-request sensor syncs only those projects.")
    cursor = tick(defs, instance, "design_request_sensor").cursor  # first scan sets the watermark
    changed = sandbox.aurora.mutate(0.10, seed=args.seed + 1)
    time.sleep(0.01)
    second = tick(defs, instance, "design_request_sensor", cursor=cursor)
    ok = ok and all(r.success for r in second.runs)
    print(f"   {len(changed['changed_design_ids'])} designs changed in {len(changed['project_ids'])} projects; "
          f"{len(second.runs)} run(s), success={all(r.success for r in second.runs)}")
    print(summary(sandbox, settings.duckdb_file))
    print(f"\nDagster home: {home} (run `aurora-qb demo --ui --keep` to browse these runs)")
    instance.dispose()
    return ok


def cmd_demo(args: argparse.Namespace) -> int:
    home = prepare_dagster_home(Path(args.home), fresh=not args.keep)
    sandbox = start(args)
    try:
        if args.ui:
            return run_ui(args, sandbox, home)
        return 0 if run_demo(args, sandbox, home) else 1
    finally:
        sandbox.stop()


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline against the sandbox (or open the UI with --ui)",
                       description=__doc__)
    add_sandbox_options(p, projects=40, time_scale=0.05)
    p.add_argument("--home", default=".dagster_home", help="DAGSTER_HOME of the demo (runs, DuckDB file)")
    p.add_argument("--keep", action="store_true", help="keep the previous demo's runs and data instead of starting anew")
    p.add_argument("--ui", action="store_true", help="start `dagster dev` against the sandbox instead, sensors on")
    p.add_argument("--port", type=int, default=3000, help="port of the Dagster UI with --ui")
    p.set_defaults(func=cmd_demo)
