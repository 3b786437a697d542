"""``aurora-qb status``: where the integration stands: the last successful sync, runs queued or in
progress, webhook events waiting to be read, what is quarantined, held back or refused, and a check
that Aurora and Quickbase accept the configured credentials (one cheap GET each; no value shown).

Exit status 1 when a credential check fails, 3 when the DuckDB file stayed locked (see --wait).
"""

from __future__ import annotations

import argparse
import json

from tabulate import tabulate

from ..status_report import StatusReport, gather
from .log import add_location_options, settings_for


def _when(run) -> str:
    if not run:
        return "none yet"
    when = (run.get("ended_at") or run.get("created_at") or "")[:19].replace("T", " ")
    return f"{when} UTC, run {run['run_id'][:8]} ({run['job']}, {run['trigger']})"


def render(report: StatusReport) -> str:
    lines = [f"Dagster home: {report.dagster_home or '(none)'}    DuckDB: {report.duckdb_file}", ""]
    if report.runs_error:
        lines.append(f"Runs: {report.runs_error}")
    else:
        lines.append(f"Last successful sync: {_when(report.last_successful_sync)}")
        if report.last_failed_run:
            lines.append(f"Last failed run:      {_when(report.last_failed_run)}")
        lines.append(f"Runs queued or in progress: {len(report.runs_in_progress)}")
        if report.runs_in_progress:
            lines.append(tabulate([[r["run_id"][:8], r["job"], r["status"], r["trigger"], r["created_at"][:19]]
                                   for r in report.runs_in_progress],
                                  headers=["run", "job", "status", "trigger", "created (UTC)"]))
    inbox = report.webhook_inbox
    if "error" in inbox:
        lines.append(f"Webhook inbox: cannot be read: {inbox['error']}")
    else:
        lines.append(f"Webhook inbox: {inbox.get('unread', 0)} event(s) waiting for the webhook sensor, "
                     f"{inbox.get('events', 0)} kept, {inbox.get('tracked_design_requests_open', 0)} design "
                     f"request(s) followed{'; ' + inbox['note'] if inbox.get('note') else ''}")
    data = report.integration
    lines.append("")
    if "error" in data or "note" in data:
        lines.append(f"Integration: {data.get('error') or data.get('note')}")
    else:
        quarantined = data["quarantined_by_asset"]
        lines.append(f"Designs with a Quickbase record: {data['synced_designs']}; held back (quarantined Aurora "
                     f"data): {data['held_designs']}; refused by Quickbase: {data['refused_designs']}")
        lines.append("Quarantined rows: " + (", ".join(f"{a} {n}" for a, n in quarantined.items()) or "none"))
        if data["held_designs"] or data["refused_designs"] or quarantined:
            lines.append("  why: aurora-qb log --status problems --latest")
    if report.credentials:
        lines.append("")
        lines.append(tabulate([[c.service, "ok" if c.ok else "FAILED", c.detail] for c in report.credentials],
                              headers=["credentials", "check", "detail"]))
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    settings, env = settings_for(args)
    report = gather(settings, env, settings.dagster_home, check_apis=not args.no_check, wait_s=args.wait)
    print(json.dumps(report.as_json(), indent=2, default=str) if args.json else render(report))
    if "error" in report.integration and "locked" in report.integration["error"]:
        return 3
    return 0 if report.healthy else 1


def add_parser(sub) -> None:
    p = sub.add_parser("status", help="last sync, pending events and runs, problems, and a credentials check",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--no-check", action="store_true", help="skip the credentials check (no API request)")
    add_location_options(p)
    p.set_defaults(func=cmd_status)
