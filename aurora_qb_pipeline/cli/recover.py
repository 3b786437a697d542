"""``aurora-qb recover``: end runs whose worker is gone and free their pool slots, without the daemon.

Under ``dagster dev`` or ``dagster-daemon``, run monitoring does this by itself. Without a
daemon (runs executed by the demo, the benchmark or a script), a killed run stays "started" and
keeps its slot in the ``duckdb`` pool, and every later run waits behind it. This command lists
the runs it finds in that state and what it did about them (``--dry-run``: what it would do).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from tabulate import tabulate

from ..instance import open_instance
from ..recovery import recover
from ..settings import Settings

COLUMNS = ("run_id", "job_name", "status", "worker", "problem", "action")


def cmd_recover(args: argparse.Namespace) -> int:
    home = Path(args.home) if args.home else Settings.from_env().dagster_home
    if home is None:
        print("aurora-qb recover: no Dagster home; pass --home or set DAGSTER_HOME", file=sys.stderr)
        return 2
    if not (home / "dagster.yaml").exists():
        print(f"aurora-qb recover: {home} holds no dagster.yaml (not a Dagster home)", file=sys.stderr)
        return 2
    instance = open_instance(home)
    try:
        report = recover(instance, dry_run=args.dry_run)
    finally:
        instance.dispose()
    if args.json:
        print(json.dumps({"home": str(home), "dry_run": report.dry_run, "checked_runs": report.checked_runs,
                          "findings": [asdict(f) for f in report.findings]}, indent=2))
        return 0
    verb = "would be done" if args.dry_run else "done"
    print(f"Dagster home {home}: {report.checked_runs} run(s) in progress checked, "
          f"{len(report.findings)} problem(s) found{' (dry run: nothing changed)' if args.dry_run else ''}.")
    if report.findings:
        rows = [[getattr(f, c) if c != "run_id" else f.run_id[:8] for c in COLUMNS] for f in report.findings]
        print(tabulate(rows, headers=[c.replace("_", " ") if c != "action" else f"action ({verb})" for c in COLUMNS],
                       maxcolwidths=[None, None, None, 24, 60, 24]))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("recover", help="end runs whose worker died and free their pool slots (no daemon needed)",
                       description=__doc__)
    p.add_argument("--home", default=None, help="Dagster home to recover (default: $DAGSTER_HOME)")
    p.add_argument("--dry-run", action="store_true", help="list what is wrong and what would be done; change nothing")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.set_defaults(func=cmd_recover)
