"""``aurora-qb log``: the integration log, newest first: what each export did with each design
(created, updated, unchanged, skipped, refused with Quickbase's reason), the designs held back
because part of their Aurora data is quarantined, and the quarantined rows with the reason.

Read from the DuckDB file (read-only, for a moment: a run that wants to write it meanwhile waits
for it); ``--json`` for scripts. See README, "What an operator sees".

Many tenants (a tenants file): every tenant's DuckDB file is read and each line names its tenant,
its asset label the tenant's key (``acme/quickbase/designs_export``); ``--tenant`` (or
``AURORA_QB_TENANT``) keeps one tenant.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from tabulate import tabulate

from ..integration_log import STATUSES, DatabaseBusy, Entry, LogFilter, open_read_only, parse_since, read_log
from ..settings import Settings, environment
from ..tenants import TenantNames

COLUMNS = ("at", "status", "project_id", "design_id", "run_id", "reason")


def settings_for(args: argparse.Namespace, **extra) -> tuple[Settings, dict[str, str]]:
    """The settings of the pipeline's environment (``--env-file``, ``--home``, ``--duckdb`` over it)."""
    env = environment(Path(args.env_file) if args.env_file else None)
    overrides = dict(extra)
    if args.home:
        overrides["dagster_home"] = Path(args.home).resolve()
    if args.duckdb:
        overrides["duckdb_path"] = Path(args.duckdb)
    if getattr(args, "tenant", None):
        overrides["tenant"] = args.tenant
    return Settings.from_env(env, **overrides), env


def tenant_settings(args: argparse.Namespace) -> tuple[list[Settings], dict[str, str]]:
    """The settings of each tenant the command looks at: the one of ``--tenant`` (or
    ``AURORA_QB_TENANT``), else every tenant of the tenants file, else the single tenant's.
    ValueError (for the command to print) when the tenant or the file is not usable."""
    settings, env = settings_for(args)
    if settings.tenant is not None or settings.tenants_file is None:
        settings.tenant_config()  # a tenant not in the file: KeyError
        return [settings], env
    tenants = settings.tenants()
    assert tenants is not None
    return [settings_for(args, tenant=name)[0] for name in tenants.names], env


def problem(exc: Exception) -> str:
    """What is wrong with the tenant options, in one message (a KeyError's without its quotes)."""
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def labelled(entry: Entry, names: TenantNames) -> Entry:
    """``entry`` with its tenant and its asset label as the tenant's asset key."""
    if names.tenant is None:
        return entry
    asset = "/".join(names.key_path(*entry.asset.split("/"))) if entry.asset else entry.asset
    return replace(entry, tenant=names.tenant, asset=asset)


def add_location_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", default=None, help="Dagster home of the pipeline (default: $DAGSTER_HOME); "
                   "the DuckDB file and the webhook inbox default to it")
    p.add_argument("--duckdb", default=None, help="DuckDB file (default: $AURORA_QB_DUCKDB, else beside the home)")
    p.add_argument("--env-file", default=None, help="dotenv file whose variables are added to the environment")
    p.add_argument("--wait", type=float, default=10.0,
                   help="seconds to wait while a running run holds the DuckDB file (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def add_tenant_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tenant", default=None, help="many tenants: only this tenant (a name in the tenants file; "
                   "default: $AURORA_QB_TENANT, else every tenant of $AURORA_QB_TENANTS_FILE)")


def _statuses(text: str) -> list[str]:
    wanted = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in STATUSES and s != "problems"]
    if unknown:
        known = ", ".join(STATUSES)
        raise argparse.ArgumentTypeError(f"unknown status {', '.join(unknown)} (known: {known}, problems)")
    return [s for w in wanted for s in (("refused", "held", "quarantined") if w == "problems" else (w,))]


def cmd_log(args: argparse.Namespace) -> int:
    try:
        scopes, _ = tenant_settings(args)
    except (ValueError, KeyError) as exc:
        print(f"aurora-qb log: {problem(exc)}", file=sys.stderr)
        return 2
    try:
        flt = LogFilter(statuses=args.status or (), project_id=args.project, design_id=args.design, run_id=args.run,
                        since=parse_since(args.since) if args.since else None, limit=args.limit or None,
                        latest_only=args.latest)
    except ValueError as exc:
        print(f"aurora-qb log: {exc}", file=sys.stderr)
        return 2
    entries: list[Entry] = []
    try:
        for settings in scopes:
            with open_read_only(settings.duckdb_file, args.wait) as conn:
                entries += [labelled(e, settings.names) for e in
                            ([] if conn is None else read_log(conn, flt, settings.hold_policy))]
    except DatabaseBusy as exc:
        print(f"aurora-qb log: {exc}", file=sys.stderr)
        return 3
    floor = datetime.min.replace(tzinfo=timezone.utc)
    entries = sorted(entries, key=lambda e: e.at or floor, reverse=True)[:flt.limit]  # stable: per file as read
    files = [s.duckdb_file for s in scopes]
    where = ", ".join(files)
    if args.json:
        data = {"duckdb_file": files[0]} if len(files) == 1 else {}
        data["duckdb_files"] = {s.tenant or "": s.duckdb_file for s in scopes}
        print(json.dumps({**data, "entries": [e.as_json() for e in entries]}, indent=2))
        return 0
    if not entries:
        where = ", ".join(f if Path(f).exists() else f"{f} (no file yet)" for f in files)
        print(f"No entries in the integration log of {where} for these filters.")
        return 0
    tenants = any(s.tenant for s in scopes)
    rows = [[*([e.tenant] if tenants else []), e.at.strftime("%Y-%m-%d %H:%M:%S") if e.at else "", e.status,
             e.project_id or "", e.design_id or "", (e.run_id or "")[:8], e.reason] for e in entries]
    headers = [c.replace("_id", "").replace("at", "time (UTC)", 1) if c == "at" else c.replace("_id", "")
               for c in COLUMNS]
    print(tabulate(rows, headers=(["tenant"] if tenants else []) + headers,
                   maxcolwidths=[*([None] if tenants else []), None, None, None, None, None, 60]))
    shown = f"the newest {len(entries)}" if args.limit and len(entries) == args.limit else f"{len(entries)}"
    print(f"\n{shown} entries of {where}; --limit 0 shows all, --json for scripts.")
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
    add_tenant_option(p)
    add_location_options(p)
    p.set_defaults(func=cmd_log)
