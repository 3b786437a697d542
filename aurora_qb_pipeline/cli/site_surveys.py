"""``aurora-qb site-surveys``: Quickbase as the site-survey app of Aurora's site-survey guide.

* ``init-tables``: create the survey tables (``config/quickbase_tables/site_surveys.yaml``) in the
  Quickbase app (``QB_APP_ID``): what is missing is made, what exists is left alone;
* ``subscribe``: subscribe the partner application to ``site_survey_requested``, pointing at the
  webhook receiver (``--public-url`` or ``AURORA_QB_WEBHOOK_PUBLIC_URL``), the shared secret in a
  header; running it twice changes nothing.

Both read the environment (``--env-file`` adds a dotenv file): the Quickbase or Aurora credentials,
``AURORA_PARTNER_APPLICATION_ID`` and ``AURORA_PARTNER_APPLICATION_KEY``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

from ..settings import Credentials, Settings, environment, webhook_secret_from_env


def _context(args: argparse.Namespace) -> tuple[Settings, Credentials]:
    env = environment(Path(args.env_file) if args.env_file else None)
    return Settings.from_env(env), Credentials.from_env(env)


def cmd_init_tables(args: argparse.Namespace) -> int:
    from ..clients.quickbase_app import QuickbaseAppClient
    from ..site_surveys.tables import ensure_tables, load_spec

    settings, credentials = _context(args)
    if not settings.quickbase_app_id:
        raise SystemExit("QB_APP_ID is not set: the survey tables are made in that Quickbase app")
    spec = load_spec(Path(args.spec) if args.spec else settings.site_survey_tables_file)
    client = QuickbaseAppClient(base_url=settings.quickbase_base_url, realm_hostname=credentials.quickbase_realm_hostname,
                                user_token=credentials.quickbase_user_token, app_id=settings.quickbase_app_id,
                                options=settings.client_options())
    try:
        tables = ensure_tables(client, spec, None if args.no_design_link else credentials.quickbase_table_id,
                               None if args.no_design_link else credentials.quickbase_opportunities_table_id)
    finally:
        client.close()
    for line in tables.made or ["nothing to do: every table, field and relationship exists"]:
        print(f"  {line}")
    return 0


def cmd_subscribe(args: argparse.Namespace) -> int:
    from ..clients.partner import PartnerAuroraClient
    from ..site_surveys.subscribe import subscribe_site_surveys

    settings, credentials = _context(args)
    public_url: Optional[str] = args.public_url or settings.webhook_public_url
    secret = webhook_secret_from_env(environment(Path(args.env_file) if args.env_file else None))
    missing = [name for name, value in (("--public-url / AURORA_QB_WEBHOOK_PUBLIC_URL", public_url),
                                        ("AURORA_QB_WEBHOOK_SECRET", secret),
                                        ("AURORA_PARTNER_APPLICATION_ID", settings.aurora_partner_application_id),
                                        ("AURORA_PARTNER_APPLICATION_KEY", credentials.aurora_partner_application_key))
               if not value]
    if missing:
        raise SystemExit(f"not set: {', '.join(missing)}")
    client = PartnerAuroraClient(base_url=settings.aurora_base_url,
                                 application_id=str(settings.aurora_partner_application_id),
                                 application_key=str(credentials.aurora_partner_application_key),
                                 tenant_id=credentials.aurora_tenant_id, options=settings.client_options())
    try:
        changes = subscribe_site_surveys(client, str(public_url), secret.get_secret_value(), dry_run=args.dry_run)
    finally:
        client.close()
    for change in changes:
        print(f"  {change.action:<7} {change.event}: {change.reason}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("site-surveys", help="Quickbase as Aurora's site-survey app: tables and subscription",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = p.add_subparsers(dest="site_surveys_command", required=True, metavar="SUBCOMMAND")

    def command(name: str, func, help_text: str) -> argparse.ArgumentParser:
        q = commands.add_parser(name, help=help_text, description=help_text)
        q.add_argument("--env-file", help="dotenv file whose variables are added to the environment (e.g. .env)")
        q.set_defaults(func=func)
        return q

    q = command("init-tables", cmd_init_tables, "create the site-survey tables in the Quickbase app (QB_APP_ID)")
    q.add_argument("--spec", help="table spec (default: AURORA_QB_SITE_SURVEY_TABLES or the packaged one)")
    q.add_argument("--no-design-link", action="store_true",
                   help="do not relate the survey table to the designs table (QB_TABLE_ID) nor to the "
                   "opportunities table (QB_OPPORTUNITIES_TABLE_ID, when set)")

    q = command("subscribe", cmd_subscribe, "subscribe the partner app to site_survey_requested")
    q.add_argument("--public-url", help="the receiver's URL as Aurora reaches it (default: AURORA_QB_WEBHOOK_PUBLIC_URL)")
    q.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
