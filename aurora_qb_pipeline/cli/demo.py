"""``aurora-qb demo``: the whole pipeline against the sandbox, or the Dagster UI on it (``--ui``).

The demo drives the sensors and runs in this process (as the daemon would, see ``runner.py``)
on its own Dagster home: discovery, the design-request list, then the event path (webhook
subscriptions, a change in Aurora, its delivery to the receiver, the webhook sensor's run).
``--ui`` starts ``dagster dev`` with the sensors and schedule on, and the webhook receiver.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from textwrap import shorten

from ..instance import open_instance, prepare_dagster_home
from ..sandbox.launcher import Sandbox
from ..settings import Credentials, Settings
from .common import add_sandbox_options, start, wait_for_interrupt

SUMMARY_TABLES = ("staging.project_addresses", "staging.designs", "staging.design_summaries",
                  "staging.design_arrays", "staging.latest_proposals", "ops.quarantine")


def summary(sandbox: Sandbox, duckdb_path: str, home: Path) -> str:
    import duckdb

    from ..integration_log import PROBLEMS, LogFilter, read_counts, read_log

    with duckdb.connect(duckdb_path, read_only=True) as conn:
        counts = {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in SUMMARY_TABLES}
        state = read_counts(conn)
        problems = read_log(conn, LogFilter(statuses=PROBLEMS, limit=None, latest_only=True))
    records = len(sandbox.quickbase.records(sandbox.quickbase.table_id))
    lines = [f"  {table:<28} {n:>6} rows" for table, n in counts.items()]
    designs = counts["staging.designs"]
    lines.append(f"  Quickbase table now holds    {records:>6} records for {designs} staged designs")
    lines += held_back(state, problems)
    if state.held_designs or state.refused_designs or problems:
        lines.append(f"  the whole list, with reasons: aurora-qb log --home {home} "
                     "--status problems --latest")
    return "\n".join(lines)


def held_back(state, problems) -> list[str]:
    """What did not reach Quickbase and why, a line per kind with the first reasons."""
    lines = []
    kinds = (("refused", state.refused_designs, "design(s) refused (Quickbase would not take them)"),
             ("held", state.held_designs, "design(s) held back (part of their Aurora data quarantined)"),
             ("quarantined", sum(state.quarantined_by_asset.values()), "Aurora row(s) quarantined"))
    for status, count, what in kinds:
        if not count:
            continue
        lines.append(f"  {count} {what}:")
        shown = [e for e in problems if e.status == status][:3]
        for entry in shown:
            about = f"design {entry.design_id}" if entry.design_id else f"project {entry.project_id}"
            lines.append(f"    - {about}: {shorten(entry.reason, 160, placeholder=' …')}")
        if count > len(shown):
            lines.append(f"    - ... and {count - len(shown)} more")
    return lines


def start_event_path(sandbox: Sandbox, settings: Settings, credentials: Credentials):
    """The webhook receiver on a loopback port, writing the settings' inbox, and the sandbox
    tenant subscribed to it (a fresh secret). Returns (receiver, inbox, subscription changes)."""
    from ..defs.resources import aurora_resource
    from ..webhooks.inbox import Inbox
    from ..webhooks.receiver import ReceiverThread, create_receiver_app
    from ..webhooks.subscriptions import apply_subscriptions, wanted_subscriptions
    from .webhooks import subscribed_events

    secret = secrets.token_urlsafe(32)
    inbox = Inbox(settings.inbox_database_url)
    receiver = ReceiverThread(create_receiver_app(inbox, [secret])).start()
    client = aurora_resource(settings, credentials).client
    try:
        changes = apply_subscriptions(client, wanted_subscriptions(receiver.url, secret, subscribed_events(settings)))
    finally:
        client.close()
    return receiver, inbox, changes


def run_ui(args: argparse.Namespace, sandbox: Sandbox, home: Path) -> int:
    """``dagster dev`` on the sandbox, sensors and schedule on, and the webhook receiver, until Ctrl-C."""
    env = {**os.environ, **sandbox.env(), "DAGSTER_HOME": str(home),
           "AURORA_QB_DUCKDB": str(home / "aurora_qb.duckdb"), "AURORA_QB_AUTOMATION": "running"}
    settings = Settings.from_env(env)
    receiver, inbox, _ = start_event_path(sandbox, settings, Credentials.from_env(env))
    print(f"Webhook receiver on {receiver.url}, subscribed to the sandbox's events (inbox {settings.inbox_database_url}).")
    print(f"Starting `dagster dev` on http://127.0.0.1:{args.port} (sensors and schedule on); Ctrl-C stops.")
    # dagster dev must react to Ctrl-C even when this process was started with it ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    child = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-p", str(args.port), "-h", "127.0.0.1"],
        env=env,
        start_new_session=True,
    )
    wait_for_interrupt(child)
    receiver.stop()
    inbox.close()
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
    print(summary(sandbox, settings.duckdb_file, settings.dagster_home))

    print("\n2) Designers revise 10% of designs; the design-request sensor syncs only those projects.")
    cursor = tick(defs, instance, "design_request_sensor").cursor  # first scan sets the watermark
    changed = sandbox.aurora.mutate(0.10, seed=args.seed + 1)
    time.sleep(0.01)
    second = tick(defs, instance, "design_request_sensor", cursor=cursor)
    ok = ok and all(r.success for r in second.runs)
    print(f"   {len(changed['changed_design_ids'])} designs changed in {len(changed['project_ids'])} projects; "
          f"{len(second.runs)} run(s), success={all(r.success for r in second.runs)}")
    print(summary(sandbox, settings.duckdb_file, settings.dagster_home))

    ok = run_event_path(args, sandbox, settings, Credentials.from_env(env), defs, instance) and ok
    print(f"\nDagster home: {home} (run `aurora-qb demo --ui --keep` to browse these runs)")
    instance.dispose()
    return ok


def run_event_path(args, sandbox: Sandbox, settings: Settings, credentials: Credentials, defs, instance) -> bool:
    """Step 3: Aurora's documented API only (the design-request list answers 404 as Aurora's does)."""
    from ..runner import tick

    print("\n3) The event path on Aurora's documented API (the tenant's design-request list now answers 404):")
    sandbox.aurora.set_tenant_options(design_request_list=False)
    receiver, inbox, changes = start_event_path(sandbox, settings, credentials)
    try:
        print(f"   `webhooks subscribe`: {len(changes)} subscription(s) "
              f"({', '.join(sorted({c.action for c in changes}))}) pointing at the receiver on {receiver.url}")
        listing = tick(defs, instance, "design_request_sensor")
        print(f"   design_request_sensor: {listing.skip_reason.split(':')[0]} (tick skipped, not failed)")
        started = time.time()
        changed = sandbox.aurora.mutate(0.05, seed=args.seed + 2)
        signed_project = next(iter(sandbox.aurora.primary.projects))
        sandbox.aurora.set_project_status(signed_project, "Design Ready")
        deliveries = sandbox.aurora.webhooks.wait_settled(timeout=60)
        delivered = sum(d["status"] == "delivered" for d in deliveries)
        print(f"   Aurora: {len(changed['changed_design_ids'])} designs revised in {len(changed['project_ids'])} "
              f"projects, one project set to 'Design Ready'; {delivered} webhook(s) delivered; "
              f"inbox: {inbox.summary()['events']} event(s)")
        outcome = tick(defs, instance, "aurora_webhook_sensor")
        ok = all(r.success for r in outcome.runs)
        qb, table = sandbox.quickbase, sandbox.quickbase.table_id
        key, modules = (qb.field_by_label(table, label).id for label in ("Aurora Design ID", "Number of Modules"))
        records = {r[key]: r for r in qb.records(table)}
        summaries = sandbox.aurora.primary.summaries
        current = sum(1 for d in changed["changed_design_ids"] if d in records and records[d].get(modules) ==
                      sum(a["module"]["count"] for a in summaries[d]["arrays"] if "module" in a))
        print(f"   aurora_webhook_sensor: {len(outcome.runs)} run(s), success={ok}; {current} of "
              f"{len(changed['changed_design_ids'])} revised designs now current in Quickbase "
              f"({time.time() - started:.1f} s from the change)")
    finally:
        receiver.stop()
        inbox.close()
    print(summary(sandbox, settings.duckdb_file, settings.dagster_home))
    return ok


def cmd_demo(args: argparse.Namespace) -> int:
    home = prepare_dagster_home(Path(args.home), fresh=not args.keep)
    sandbox = start(args)
    try:
        if args.ui:
            return run_ui(args, sandbox, home)
        if args.site_survey:
            from .demo_site_survey import run_site_survey_demo

            return 0 if run_site_survey_demo(args, sandbox, home) else 1
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
    p.add_argument("--site-survey", action="store_true",
                   help="walk one site survey through instead: Aurora request -> Quickbase survey -> Aurora completed")
    p.set_defaults(func=cmd_demo)
