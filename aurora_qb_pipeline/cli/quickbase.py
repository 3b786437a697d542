"""``aurora-qb quickbase init``: make a Quickbase app fit the table specs
(``config/quickbase_tables/*.yaml``: the designs table, the opportunities table, their
relationship, the buttons). Prints the plan; changes nothing without ``--apply``; a second run
finds nothing to do. Reads QB_BASE_URL, QB_REALM_HOSTNAME, QB_USER_TOKEN, QB_APP_ID and, when
set, QB_TABLE_ID / QB_OPPORTUNITIES_TABLE_ID (tables are otherwise found by name). With
``--tenant NAME`` (many tenants), that tenant's variables and app from the tenants file stand in for
them, and its buttons point at the receiver's ``/tenants/NAME`` path."""

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
    p.add_argument("--tenant", default=None,
                   help="many tenants: set up this tenant's tables (its variables and app from AURORA_QB_TENANTS_FILE; "
                        "its buttons under the receiver's /tenants/NAME)")
    p.set_defaults(func=init)


def _tenant_view(env: dict[str, str], settings: Settings, name: str) -> tuple[dict[str, str], Settings, str, str]:
    """The environment and settings as ``name``'s location sees them, its receiver path and the
    variable its opportunities table id belongs in."""
    from ..opportunities.buttons import tenant_prefix
    from ..tenant_apps import opportunities_variable

    tenants = settings.tenants()
    if tenants is None:
        raise KeyError("--tenant needs AURORA_QB_TENANTS_FILE")
    tenant = tenants.get(name)
    view = dict(env)
    for plain, own in (("QB_TABLE_ID", tenant.quickbase_table_id_env), ("QB_USER_TOKEN", tenant.quickbase_user_token_env),
                       (OPPORTUNITIES_TABLE_VARIABLE, tenant.quickbase_opportunities_table_id_env)):
        if own:
            view[plain] = env.get(own, "")
    if tenant.quickbase_app_id:
        settings = settings.model_copy(update={"quickbase_app_id": tenant.quickbase_app_id})
    return view, settings, tenant_prefix(name), opportunities_variable(tenant)


def init(args: argparse.Namespace) -> int:
    from ..clients import QuickbaseClient
    from ..quickbase_tables import apply_plan, load_specs, plan_tables

    env = environment(Path(args.env_file) if args.env_file else None)
    settings = Settings.from_env(env)
    prefix, opportunities_variable = "", OPPORTUNITIES_TABLE_VARIABLE
    if args.tenant:
        try:
            env, settings, prefix, opportunities_variable = _tenant_view(env, settings, args.tenant)
        except (KeyError, ValueError) as exc:
            print(f"aurora-qb quickbase init: {exc}", file=sys.stderr)
            return 2
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
        receiver = receiver.rstrip("/") + prefix if receiver else receiver
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
            print(f"Set {opportunities_variable}={ids['opportunities']} for the pipeline and the receiver.")
        return 1 if plan.conflicts else 0
    finally:
        client.close()
