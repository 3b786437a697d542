"""``aurora-qb status``: where the integration stands: the last successful sync, runs queued or in
progress, webhook events waiting to be read, what is quarantined, held back or refused, and a check
that Aurora and Quickbase accept the configured credentials (one cheap GET each; no value shown).

Many tenants (a tenants file): each run names its tenant; ``--tenant`` (or ``AURORA_QB_TENANT``)
reports on one tenant (its runs, DuckDB file and credentials), else every tenant is reported on.

Exit status 1 when a credential check fails, 3 when the DuckDB file stayed locked (see --wait),
2 when the tenant or the tenants file cannot be used.
"""

from __future__ import annotations

import argparse
import json
import sys

from tabulate import tabulate

from ..status_report import StatusReport, gather
from .log import add_location_options, add_tenant_option, problem, tenant_settings


def _when(run) -> str:
    if not run:
        return "none yet"
    when = (run.get("ended_at") or run.get("created_at") or "")[:19].replace("T", " ")
    tenant = f", tenant {run['tenant']}" if run.get("tenant") else ""
    return f"{when} UTC, run {run['run_id'][:8]} ({run['job']}, {run['trigger']}{tenant})"


def _integration(data: dict, lines: list[str], indent: str = "") -> None:
    if "error" in data or "note" in data:
        lines.append(f"{indent}Integration: {data.get('error') or data.get('note')}")
        return
    quarantined = data["quarantined_by_asset"]
    lines.append(f"{indent}Designs with a Quickbase record: {data['synced_designs']}; held back (quarantined Aurora "
                 f"data): {data['held_designs']}; refused by Quickbase: {data['refused_designs']}")
    lines.append(f"{indent}Quarantined rows: " + (", ".join(f"{a} {n}" for a, n in quarantined.items()) or "none"))
    if data["held_designs"] or data["refused_designs"] or quarantined:
        lines.append(f"{indent}  why: aurora-qb log --status problems --latest")


def render(report: StatusReport) -> str:
    duckdb = (f"DuckDB: one file per tenant ({len(report.tenants)})" if report.tenants else f"DuckDB: {report.duckdb_file}")
    scope = f"    Tenant: {report.tenant}" if report.tenant else ""
    lines = [f"Dagster home: {report.dagster_home or '(none)'}    {duckdb}{scope}", ""]
    if report.runs_error:
        lines.append(f"Runs: {report.runs_error}")
    else:
        lines.append(f"Last successful sync: {_when(report.last_successful_sync)}")
        if report.last_failed_run:
            lines.append(f"Last failed run:      {_when(report.last_failed_run)}")
        lines.append(f"Runs queued or in progress: {len(report.runs_in_progress)}")
        if report.runs_in_progress:
            tenants = any(r.get("tenant") for r in report.runs_in_progress)
            lines.append(tabulate([[*([r.get("tenant") or ""] if tenants else []), r["run_id"][:8], r["job"],
                                    r["status"], r["trigger"], r["created_at"][:19]]
                                   for r in report.runs_in_progress],
                                  headers=[*(["tenant"] if tenants else []), "run", "job", "status", "trigger",
                                           "created (UTC)"]))
    inbox = report.webhook_inbox
    if "error" in inbox:
        lines.append(f"Webhook inbox: cannot be read: {inbox['error']}")
    else:
        lines.append(f"Webhook inbox: {inbox.get('unread', 0)} event(s) waiting for the webhook sensor, "
                     f"{inbox.get('events', 0)} kept, {inbox.get('tracked_design_requests_open', 0)} design "
                     f"request(s) followed{'; ' + inbox['note'] if inbox.get('note') else ''}")
    lines.append("")
    if report.tenants:
        for name, data in report.tenants.items():
            lines.append(f"Tenant {name} ({data['duckdb_file']}):")
            _integration(data, lines, "  ")
    else:
        _integration(report.integration, lines)
    if report.credentials:
        lines.append("")
        lines.append(tabulate([[c.service, ("ok" if c.ok else "FAILED") if c.checked else "-", c.detail]
                               for c in report.credentials],
                              headers=["credentials", "check", "detail"]))
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    try:
        scopes, env = tenant_settings(args)
    except (ValueError, KeyError) as exc:
        print(f"aurora-qb status: {problem(exc)}", file=sys.stderr)
        return 2
    settings = scopes[0] if len(scopes) == 1 else scopes[0].model_copy(update={"tenant": None})
    report = gather(settings, env, settings.dagster_home, check_apis=not args.no_check, wait_s=args.wait,
                    tenants=scopes if len(scopes) > 1 else None)
    print(json.dumps(report.as_json(), indent=2, default=str) if args.json else render(report))
    integrations = [report.integration, *report.tenants.values()]
    if any("error" in data and "locked" in data["error"] for data in integrations):
        return 3
    return 0 if report.healthy else 1


def add_parser(sub) -> None:
    p = sub.add_parser("status", help="last sync, pending events and runs, problems, and a credentials check",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--no-check", action="store_true", help="skip the credentials check (no API request)")
    add_tenant_option(p)
    add_location_options(p)
    p.set_defaults(func=cmd_status)
