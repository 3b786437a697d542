"""``aurora-qb``: run the sandbox, the demo, the benchmark, or install the test browser."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from importlib import resources
from pathlib import Path
from typing import Optional, Sequence


warnings.filterwarnings("ignore", message=".*is currently in (beta|preview).*")


def prepare_dagster_home(home: Path, fresh: bool) -> None:
    if fresh and home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    template = resources.files("aurora_qb_pipeline") / "config" / "dagster.yaml"
    (home / "dagster.yaml").write_text(template.read_text())
    os.environ["DAGSTER_HOME"] = str(home.resolve())
    os.environ["AURORA_QB_DUCKDB"] = str((home / "aurora_qb.duckdb").resolve())


def _start(args):
    from .sandbox.launcher import start_sandbox

    sandbox = start_sandbox(
        projects=args.projects,
        designs_per_project=args.designs_per_project,
        seed=args.seed,
        time_scale=args.time_scale,
        latency_ms=args.latency_ms,
        aurora_port=getattr(args, "aurora_port", 0),
        quickbase_port=getattr(args, "quickbase_port", 0),
    )
    print(f"Aurora sandbox:    {sandbox.aurora_url}  ({args.projects} projects)")
    print(f"Quickbase sandbox: {sandbox.quickbase_url}  (table {sandbox.quickbase.table_id})")
    return sandbox


def _wait_for_interrupt(child: Optional[subprocess.Popen] = None) -> None:
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        while not stop["now"] and (child is None or child.poll() is None):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    if child is not None and child.poll() is None:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:  # dagster dev spawns a webserver, a daemon and code servers
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def cmd_sandbox(args) -> int:
    sandbox = _start(args)
    if args.env_file:
        path = Path(args.env_file)
        path.write_text("".join(f"{k}={v}\n" for k, v in sandbox.env().items()))
        path.chmod(0o600)
        print(f"Environment for the pipeline written to {path} (mode 600)")
    print("Serving; Ctrl-C to stop.")
    _wait_for_interrupt()
    sandbox.stop()
    return 0


def _summary(sandbox, duckdb_path: str) -> str:
    import duckdb

    with duckdb.connect(duckdb_path, read_only=True) as conn:
        counts = {
            t: conn.execute(f"select count(*) from {t}").fetchone()[0]
            for t in ("staging.project_addresses", "staging.designs", "staging.design_summaries",
                      "staging.design_arrays", "staging.latest_proposals", "ops.quarantine")
        }
        log = dict(conn.execute("select status, count(*) from ops.export_log group by 1").fetchall())
    records = len(sandbox.quickbase.records(sandbox.quickbase.table_id))
    lines = [f"  {table:<28} {n:>6} rows" for table, n in counts.items()]
    lines.append(f"  export log (all runs)        {log}")
    lines.append(f"  Quickbase table now holds    {records:>6} records")
    return "\n".join(lines)


def cmd_demo(args) -> int:
    prepare_dagster_home(Path(args.home), fresh=not args.keep)
    sandbox = _start(args)
    os.environ.update(sandbox.env())
    if args.ui:
        os.environ["AURORA_QB_AUTOMATION"] = "running"
        print("Starting `dagster dev` on http://127.0.0.1:%d (sensors and schedule on); Ctrl-C stops." % args.port)
        # dagster dev must react to Ctrl-C even when this process was started with it ignored
        signal.signal(signal.SIGINT, signal.default_int_handler)
        child = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-p", str(args.port), "-h", "127.0.0.1"],
            env=os.environ.copy(),
            start_new_session=True,
        )
        _wait_for_interrupt(child)
        sandbox.stop()
        return child.returncode or 0

    import dagster as dg

    from .definitions import defs
    from .local_runner import tick

    instance = dg.DagsterInstance.get()
    print("\n1) Discovery: new Aurora projects become partitions; one range run syncs them all.")
    first = tick(defs, instance, "project_discovery_sensor")
    ok = all(r.success for r in first.runs)
    print(f"   {len(first.new_partitions)} projects discovered, {len(first.runs)} run(s), success={ok}")
    print(_summary(sandbox, os.environ["AURORA_QB_DUCKDB"]))

    print("\n2) Designers revise 10% of designs; the design-request sensor syncs only those projects.")
    cursor = tick(defs, instance, "design_request_sensor").cursor  # first scan sets the watermark
    changed = sandbox.aurora.mutate(0.10, seed=args.seed + 1)
    time.sleep(0.01)
    second = tick(defs, instance, "design_request_sensor", cursor=cursor)
    ok = ok and all(r.success for r in second.runs)
    print(f"   {len(changed['changed_design_ids'])} designs changed in {len(changed['project_ids'])} projects; "
          f"{len(second.runs)} run(s), success={all(r.success for r in second.runs)}")
    print(_summary(sandbox, os.environ["AURORA_QB_DUCKDB"]))
    print(f"\nDagster home: {os.environ['DAGSTER_HOME']} (run `aurora-qb demo --ui --keep` to browse these runs)")
    sandbox.stop()
    return 0 if ok else 1


def cmd_install_browser(args) -> int:
    """Debian's chromium for the headless UI test (the test tools' own browser downloads fail here)."""
    if shutil.which("chromium"):
        print(f"chromium already installed: {shutil.which('chromium')}")
        return 0
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
    return 0


def _sandbox_options(parser: argparse.ArgumentParser, projects: int, time_scale: float) -> None:
    parser.add_argument("--projects", type=int, default=projects)
    parser.add_argument("--designs-per-project", type=float, default=2.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-scale", type=float, default=time_scale,
                        help="shrink rate windows/latency (1 = as the real services)")
    parser.add_argument("--latency-ms", type=float, default=150.0, help="per-request latency before scaling")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="aurora-qb", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sandbox", help="serve the Aurora and Quickbase sandboxes in the foreground")
    _sandbox_options(p, projects=50, time_scale=1.0)
    p.add_argument("--aurora-port", type=int, default=8801)
    p.add_argument("--quickbase-port", type=int, default=8802)
    p.add_argument("--env-file", default=".sandbox.env", help="where to write the pipeline's environment")
    p.set_defaults(func=cmd_sandbox)

    p = sub.add_parser("demo", help="run the whole pipeline against the sandbox (or open the UI with --ui)")
    _sandbox_options(p, projects=40, time_scale=0.05)
    p.add_argument("--home", default=".dagster_home", help="DAGSTER_HOME for the demo")
    p.add_argument("--keep", action="store_true", help="keep the previous demo's runs and data")
    p.add_argument("--ui", action="store_true", help="start `dagster dev` against the sandbox instead")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("install-browser", help="install Debian chromium for the UI test")
    p.set_defaults(func=cmd_install_browser)

    sub.add_parser("bench", help="benchmark against the sandbox (see README; `aurora-qb bench --help`)")

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # the benchmark parses its own options
        from .bench import main as bench_main

        return bench_main(argv[1:])
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
