"""``aurora-qb quickbase init``: make a Quickbase app fit the table specs
(``config/quickbase_tables/*.yaml``: the designs table, the opportunities table, their
relationship, the buttons). Prints the plan; changes nothing without ``--apply``; a second run
finds nothing to do. Reads QB_BASE_URL, QB_REALM_HOSTNAME, QB_USER_TOKEN, QB_APP_ID and, when
set, QB_TABLE_ID / QB_OPPORTUNITIES_TABLE_ID (tables are otherwise found by name)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tabulate import tabulate

from ..settings import OPPORTUNITIES_TABLE_VARIABLE, Settings, environment


def add_parser(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("quickbase", help="Quickbase onboarding (create the tables and fields the mapping needs)",
                           description=__doc__)
    commands = group.add_subparsers(dest="quickbase_command", required=True, metavar="SUBCOMMAND")
    p = commands.add_parser("init", help="plan (and with --apply, create) the tables, fields and relationships",
                            description=__doc__)
    p.add_argument("--apply", action="store_true", help="carry the plan out (default: only print it)")
    p.add_argument("--receiver-url", default=None,
                   help="public URL of the webhook receiver, for the button fields (default: "
                        "AURORA_QB_WEBHOOK_PUBLIC_URL); without it the buttons are left out")
    p.add_argument("--specs", default=None, help="folder of table spec YAML files (default: the packaged ones)")
    p.add_argument("--env-file", default=None, help="dotenv file read over the environment (e.g. the sandbox's .env)")
    p.set_defaults(func=init)


def init(args: argparse.Namespace) -> int:
    from ..clients import QuickbaseClient
    from ..quickbase_tables import apply_plan, load_specs, plan_tables

    env = environment(Path(args.env_file) if args.env_file else None)
    settings = Settings.from_env(env)
    missing = [v for v in ("QB_REALM_HOSTNAME", "QB_USER_TOKEN") if not env.get(v)]
    if not settings.quickbase_app_id:
        missing.append("QB_APP_ID")
    if missing:
        print(f"aurora-qb quickbase init: not set: {', '.join(missing)}", file=sys.stderr)
        return 2
    client = QuickbaseClient(base_url=settings.quickbase_base_url, realm_hostname=env["QB_REALM_HOSTNAME"],
                             user_token=env["QB_USER_TOKEN"], table_id=env.get("QB_TABLE_ID", ""),
                             app_id=settings.quickbase_app_id, options=settings.client_options())
    try:
        specs = load_specs(Path(args.specs) if args.specs else None)
        known = {"designs": env.get("QB_TABLE_ID"), "opportunities": env.get(OPPORTUNITIES_TABLE_VARIABLE)}
        receiver = args.receiver_url or settings.webhook_public_url
        plan = plan_tables(client, settings.quickbase_app_id, specs, known, receiver)
        for line in plan.skipped:
            print(f"skipped: {line}")
        for line in plan.conflicts:
            print(f"conflict: {line}", file=sys.stderr)
        if not plan.steps:
            print("Nothing to do: the app has every table, field and relationship the specs name.")
            return 1 if plan.conflicts else 0
        print(tabulate(plan.rows(), headers=["table", "action", "what"]))
        if not args.apply:
            print(f"\n{len(plan.steps)} change(s) planned; nothing changed (run again with --apply).")
            return 1 if plan.conflicts else 0
        ids = apply_plan(plan)
        for key, table_id in sorted(ids.items()):
            print(f"table {key}: {table_id}")
        if ids.get("opportunities") and not known["opportunities"]:
            print(f"Set {OPPORTUNITIES_TABLE_VARIABLE}={ids['opportunities']} for the pipeline and the receiver.")
        return 1 if plan.conflicts else 0
    finally:
        client.close()
