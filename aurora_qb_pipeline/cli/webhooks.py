"""``aurora-qb webhooks``: serve the receiver, manage Aurora's subscriptions, look into the inbox.

* ``serve``: the receiver (uvicorn), run beside the Dagster daemon; it needs
  ``AURORA_QB_WEBHOOK_SECRET`` and writes to the inbox ``aurora_webhook_sensor`` reads.
* ``subscribe --public-url URL``: the subscriptions the trigger rules need, created or updated
  idempotently (listed first, never duplicated); ``list`` and ``remove`` show and delete them.
* ``new-secret`` prints a fresh random secret; ``inbox`` shows what the receiver stored.

The commands that call Aurora read the same variables as the pipeline (``--env-file`` adds a
dotenv file, e.g. the ``.env`` that ``aurora-qb sandbox`` writes).
"""

from __future__ import annotations

import argparse
import copy
import secrets
import sys
from datetime import datetime, timezone
from pathlib import Path

from tabulate import tabulate

from ..settings import WEBHOOK_SECRET_VARIABLE, Credentials, Settings, environment, webhook_secret_from_env
from ..webhooks.events import KNOWN_EVENTS
from ..webhooks.inbox import Inbox, display_url
from ..webhooks.subscriptions import apply_subscriptions, is_ours, mask_secrets, wanted_subscriptions
from ..webhooks.triggers import load_trigger_rules

DEFAULT_PORT = 8787


def _fail(message: str) -> int:
    print(f"aurora-qb webhooks: {message}", file=sys.stderr)
    return 2


def _context(args: argparse.Namespace) -> tuple[dict[str, str], Settings]:
    env = environment(Path(args.env_file) if args.env_file else None)
    return env, Settings.from_env(env)


def _aurora(env: dict[str, str], settings: Settings):
    from ..defs.resources import aurora_resource

    return aurora_resource(settings, Credentials.from_env(env)).client


def subscribed_events(settings: Settings) -> list[str]:
    """The events the trigger rules act on, plus both design-request events when requests are
    followed (a rejection ends the polling of a request)."""
    rules = load_trigger_rules(settings.webhook_triggers_file)
    events = rules.enabled_events()
    if "design_request_completed" in events:
        events.append("design_request_rejected")
    return list(dict.fromkeys(events))


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    env, settings = _context(args)
    try:
        if webhook_secret_from_env(env) is None:
            return _fail(f"{WEBHOOK_SECRET_VARIABLE} is not set; the receiver never runs without a shared secret "
                         "(`aurora-qb webhooks new-secret` prints one)")
    except ValueError as exc:
        return _fail(str(exc))
    inbox = Inbox(settings.inbox_database_url)  # creates the tables once, before the workers start
    inbox.ping()
    inbox.close()
    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["loggers"]["aurora_qb_pipeline"] = {"handlers": ["default"], "level": args.log_level.upper(),
                                                    "propagate": False}
    print(f"Webhook receiver on http://{args.host}:{args.port} (inbox {display_url(settings.inbox_database_url)}, "
          f"{args.workers} worker(s)); health: /healthz; Ctrl-C stops.", flush=True)
    uvicorn.run("aurora_qb_pipeline.webhooks.receiver:app_from_environment", factory=True, host=args.host,
                port=args.port, workers=args.workers, env_file=args.env_file or None, access_log=False,
                log_level=args.log_level, log_config=log_config, proxy_headers=True,
                forwarded_allow_ips=args.forwarded_allow_ips, timeout_keep_alive=30)
    return 0


def cmd_subscribe(args: argparse.Namespace) -> int:
    env, settings = _context(args)
    public_url = args.public_url or settings.webhook_public_url
    if not public_url:
        return _fail("give --public-url (or set AURORA_QB_WEBHOOK_PUBLIC_URL): where Aurora reaches the receiver")
    secret = webhook_secret_from_env(env)
    if secret is None:
        return _fail(f"{WEBHOOK_SECRET_VARIABLE} is not set: the subscriptions carry it to the receiver")
    events = args.events or subscribed_events(settings)
    wanted = wanted_subscriptions(public_url, secret.get_secret_value(), events, args.secret_in)
    aurora = _aurora(env, settings)
    try:
        changes = apply_subscriptions(aurora, wanted, dry_run=args.dry_run, remove_others=not args.keep_others)
    finally:
        aurora.close()
    templates = {w.event: mask_secrets(w.url_template) for w in wanted}
    rows = [(c.action + (" (dry run)" if args.dry_run and c.action != "keep" else ""), c.event, c.webhook_id or "",
             c.reason, templates.get(c.event, "") if c.action != "delete" else "") for c in changes]
    print(tabulate(rows, headers=["action", "event", "webhook id", "why", "url template"]))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    env, settings = _context(args)
    aurora = _aurora(env, settings)
    try:
        subscriptions = aurora.list_webhooks()
    finally:
        aurora.close()
    rows = [(s["id"], s.get("event"), s.get("enabled"), "yes" if is_ours(s) else "", mask_secrets(s.get("url_template", "")))
            for s in subscriptions if args.all or is_ours(s)]
    print(tabulate(rows, headers=["id", "event", "enabled", "ours", "url template"]) if rows else "no subscriptions")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    env, settings = _context(args)
    aurora = _aurora(env, settings)
    try:
        subscriptions = {s["id"]: s for s in aurora.list_webhooks()}
        unknown = [i for i in args.ids if i not in subscriptions]
        if unknown:
            return _fail(f"no such subscription: {', '.join(unknown)}")
        targets = args.ids or [i for i, s in subscriptions.items() if is_ours(s)]
        for webhook_id in targets:
            aurora.delete_webhook(webhook_id)
            print(f"removed {webhook_id} ({subscriptions[webhook_id].get('event')})")
    finally:
        aurora.close()
    if not targets:
        print("nothing to remove")
    return 0


def cmd_new_secret(args: argparse.Namespace) -> int:
    print(secrets.token_urlsafe(32))
    return 0


def cmd_inbox(args: argparse.Namespace) -> int:
    _, settings = _context(args)
    inbox = Inbox(settings.inbox_database_url)
    try:
        summary = inbox.summary()
        rows = inbox.latest(args.last) if args.last > 0 else []
    finally:
        inbox.close()
    print(f"inbox {display_url(settings.inbox_database_url)}: {summary}")
    table = [(r.id, datetime.fromtimestamp(r.received_at, timezone.utc).isoformat(timespec="seconds"), r.event,
              "" if r.known else "unknown", r.deliveries, " ".join(f"{k}={'********' if k == 'session_token' else v}" for k, v in sorted(r.params.items())))
             for r in rows]
    if table:
        print(tabulate(table, headers=["id", "received (UTC)", "event", "", "deliveries", "parameters"]))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("webhooks", help="the webhook receiver and Aurora's webhook subscriptions", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = p.add_subparsers(dest="webhooks_command", required=True, metavar="SUBCOMMAND")

    def command(name: str, func, help_text: str) -> argparse.ArgumentParser:
        q = commands.add_parser(name, help=help_text, description=help_text)
        q.add_argument("--env-file", help="dotenv file whose variables are added to the environment (e.g. .env)")
        q.set_defaults(func=func)
        return q

    q = command("serve", cmd_serve, "serve the webhook receiver (run it beside the Dagster daemon)")
    q.add_argument("--host", default="127.0.0.1",
                   help="interface to listen on (default loopback: put a TLS reverse proxy in front)")
    q.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    q.add_argument("--workers", type=int, default=1, help="worker processes (each answers requests; the inbox "
                   "serialises writes)")
    q.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
                   help="log level of the receiver (requests are logged by path and status, never the query)")
    q.add_argument("--forwarded-allow-ips", default="127.0.0.1",
                   help="proxies whose X-Forwarded-* headers are trusted")

    q = command("subscribe", cmd_subscribe, "create or update the Aurora webhook subscriptions the pipeline needs")
    q.add_argument("--public-url", help="the receiver's URL as Aurora reaches it, e.g. https://hooks.example.com "
                   "(default: AURORA_QB_WEBHOOK_PUBLIC_URL)")
    q.add_argument("--events", nargs="+", choices=sorted(KNOWN_EVENTS), metavar="EVENT",
                   help="events to subscribe to (default: those the trigger rules act on)")
    q.add_argument("--secret-in", choices=("header", "query"), default="header",
                   help="where deliveries carry the shared secret (header: X-Aurora-Webhook-Token)")
    q.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    q.add_argument("--keep-others", action="store_true",
                   help="keep this pipeline's subscriptions to events not asked for (default: delete them)")

    q = command("list", cmd_list, "list the tenant's webhook subscriptions (this pipeline's unless --all)")
    q.add_argument("--all", action="store_true", help="also list subscriptions this pipeline did not make")

    q = command("remove", cmd_remove, "delete webhook subscriptions (default: all of this pipeline's)")
    q.add_argument("ids", nargs="*", help="ids of the subscriptions to delete")

    command("new-secret", cmd_new_secret, "print a new random shared secret for AURORA_QB_WEBHOOK_SECRET")

    q = command("inbox", cmd_inbox, "show the inbox: counts and the latest events")
    q.add_argument("--last", type=int, default=20, help="how many of the latest events to show")
