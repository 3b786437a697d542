"""``aurora-qb log``: the integration log, newest first: what each export did with each design
(created, updated, unchanged, skipped, refused with Quickbase's reason), the designs held back
because part of their Aurora data is quarantined, and the quarantined rows with the reason.

Read from the DuckDB file (read-only, for a moment: a run that wants to write it meanwhile waits
for it); ``--json`` for scripts. See README, "What an operator sees".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tabulate import tabulate

from ..integration_log import STATUSES, DatabaseBusy, LogFilter, open_read_only, parse_since, read_log
from ..settings import Settings, environment

COLUMNS = ("at", "status", "project_id", "design_id", "run_id", "reason")


def settings_for(args: argparse.Namespace) -> tuple[Settings, dict[str, str]]:
    """The settings of the pipeline's environment (``--env-file``, ``--home``, ``--duckdb`` over it)."""
    env = environment(Path(args.env_file) if args.env_file else None)
    overrides = {}
    if args.home:
        overrides["dagster_home"] = Path(args.home).resolve()
    if args.duckdb:
        overrides["duckdb_path"] = Path(args.duckdb)
    return Settings.from_env(env, **overrides), env


def add_location_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", default=None, help="Dagster home of the pipeline (default: $DAGSTER_HOME); "
                   "the DuckDB file and the webhook inbox default to it")
    p.add_argument("--duckdb", default=None, help="DuckDB file (default: $AURORA_QB_DUCKDB, else beside the home)")
    p.add_argument("--env-file", default=None, help="dotenv file whose variables are added to the environment")
    p.add_argument("--wait", type=float, default=10.0,
                   help="seconds to wait while a running run holds the DuckDB file (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _statuses(text: str) -> list[str]:
    wanted = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in STATUSES and s != "problems"]
    if unknown:
        known = ", ".join(STATUSES)
        raise argparse.ArgumentTypeError(f"unknown status {', '.join(unknown)} (known: {known}, problems)")
    return [s for w in wanted for s in (("refused", "held", "quarantined") if w == "problems" else (w,))]


def cmd_log(args: argparse.Namespace) -> int:
    settings, _ = settings_for(args)
    try:
        flt = LogFilter(statuses=args.status or (), project_id=args.project, design_id=args.design, run_id=args.run,
                        since=parse_since(args.since) if args.since else None, limit=args.limit or None,
                        latest_only=args.latest)
    except ValueError as exc:
        print(f"aurora-qb log: {exc}", file=sys.stderr)
        return 2
    try:
        with open_read_only(settings.duckdb_file, args.wait) as conn:
            entries = [] if conn is None else read_log(conn, flt, settings.hold_policy)
    except DatabaseBusy as exc:
        print(f"aurora-qb log: {exc}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps({"duckdb_file": settings.duckdb_file, "entries": [e.as_json() for e in entries]}, indent=2))
        return 0
    if not entries:
        where = settings.duckdb_file if Path(settings.duckdb_file).exists() else f"{settings.duckdb_file} (no file yet)"
        print(f"No entries in the integration log of {where} for these filters.")
        return 0
    rows = [[e.at.strftime("%Y-%m-%d %H:%M:%S") if e.at else "", e.status, e.project_id or "", e.design_id or "",
             (e.run_id or "")[:8], e.reason] for e in entries]
    print(tabulate(rows, headers=[c.replace("_id", "").replace("at", "time (UTC)", 1) if c == "at" else
                                  c.replace("_id", "") for c in COLUMNS],
                   maxcolwidths=[None, None, None, None, None, 60]))
    shown = f"the newest {len(entries)}" if args.limit and len(entries) == args.limit else f"{len(entries)}"
    print(f"\n{shown} entries of {settings.duckdb_file}; --limit 0 shows all, --json for scripts.")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("log", help="the integration log: what happened to each design and project, and why",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--status", type=_statuses, default=None,
                   help=f"only these statuses, comma-separated: {', '.join(STATUSES)}; 'problems' = refused,held,"
                   "quarantined")
    p.add_argument("--project", default=None, help="only this Aurora project id")
    p.add_argument("--design", default=None, help="only this Aurora design id")
    p.add_argument("--run", default=None, help="only this Dagster run (its id or the first characters of it)")
    p.add_argument("--since", default=None, help="only entries since: 30m, 6h, 2d, 1w or an ISO date/time (UTC)")
    p.add_argument("--latest", action="store_true",
                   help="only the newest entry per design (or project) and status: where each stands, "
                   "not every attempt")
    p.add_argument("--limit", type=int, default=50, help="newest entries shown (default 50; 0 = all)")
    add_location_options(p)
    p.set_defaults(func=cmd_log)
