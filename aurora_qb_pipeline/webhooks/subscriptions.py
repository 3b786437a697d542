"""Aurora webhook subscriptions as code: what the pipeline needs, compared with what the tenant has.

``aurora-qb webhooks subscribe`` lists the tenant's subscriptions first, then creates, updates or
deletes only what differs, so running it twice changes nothing and never makes a duplicate.
The pipeline's subscriptions are recognised by their description (``aurora_qb_pipeline: <event>
...``); others are never touched. The description also carries a short fingerprint of the shared
secret (an HMAC of a fixed text, which reveals nothing of the secret), because Aurora never
answers header values back: a new secret changes the fingerprint and so updates the header.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Literal, Optional, Sequence
from urllib.parse import quote

from ..clients import AuroraClient
from .events import KNOWN_EVENTS, SECRET_HEADER, SECRET_PARAMETER, canonical_event

MARKER = "aurora_qb_pipeline"
SecretPlace = Literal["header", "query"]


def fingerprint(secret: str) -> str:
    """8 hex digits identifying a secret without revealing it."""
    return hmac.new(secret.encode(), b"aurora_qb_pipeline webhook secret", hashlib.sha256).hexdigest()[:8]


def mask_secrets(url: str) -> str:
    """``url`` with the value of a ``token`` query parameter hidden."""
    return re.sub(rf"([?&]{SECRET_PARAMETER}=)[^&#]*", r"\1********", url, flags=re.IGNORECASE)


def is_ours(subscription: dict) -> bool:
    return (subscription.get("description") or "").startswith(f"{MARKER}:")


@dataclass(frozen=True)
class WantedSubscription:
    event: str
    url_template: str
    description: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    def body(self) -> dict:
        body = {"event": self.event, "url_template": self.url_template, "description": self.description,
                "enabled": True}
        return {**body, "headers": dict(self.headers)} if self.headers else body


def wanted_subscriptions(public_url: str, secret: str, events: Sequence[str],
                         secret_in: SecretPlace = "header") -> list[WantedSubscription]:
    """One subscription per event, pointing at ``public_url`` (the receiver as Aurora reaches it).
    The secret travels in a header by default; ``query`` puts it in the URL for setups that cannot
    set headers (Aurora then stores it in the template, visible to anyone who can list webhooks)."""
    if not re.match(r"^https?://[^/?#\s]+", public_url or ""):
        raise ValueError(f"--public-url must be an absolute http(s) URL, got {public_url!r}")
    wanted = []
    for name in dict.fromkeys(canonical_event(e) for e in events):
        if name not in KNOWN_EVENTS:
            raise ValueError(f"unknown event {name!r} (known: {', '.join(KNOWN_EVENTS)})")
        template = KNOWN_EVENTS[name].template(public_url)
        headers = {SECRET_HEADER: secret} if secret_in == "header" else {}
        if secret_in == "query":
            template += f"&{SECRET_PARAMETER}={quote(secret, safe='')}"
        description = f"{MARKER}: {name} (secret {fingerprint(secret)}, in the {secret_in})"
        wanted.append(WantedSubscription(name, template, description, headers))
    return wanted


@dataclass(frozen=True)
class Change:
    action: Literal["create", "update", "keep", "delete"]
    event: str
    webhook_id: Optional[str]
    reason: str


def plan_subscriptions(existing: Sequence[dict], wanted: Sequence[WantedSubscription],
                       remove_others: bool = True) -> list[Change]:
    """What to do so that the tenant holds exactly one of our subscriptions per wanted event.
    Extra copies of one are deleted; ours for events no longer wanted too (``remove_others``)."""
    ours: dict[str, list[dict]] = {}
    for sub in existing:
        if is_ours(sub):
            ours.setdefault(canonical_event(sub.get("event", "")), []).append(sub)
    changes: list[Change] = []
    for want in wanted:
        found = sorted(ours.pop(want.event, []), key=lambda s: (s.get("url_template") != want.url_template,
                                                                s.get("created_at") or ""))
        if not found:
            changes.append(Change("create", want.event, None, "no subscription yet"))
            continue
        keep, *extra = found
        differs = [name for name, now, should in (
            ("url_template", keep.get("url_template"), want.url_template),
            ("description", keep.get("description"), want.description),
            ("enabled", keep.get("enabled"), True),
            ("headers", sorted(keep.get("headers") or {}), sorted(want.headers)),
        ) if now != should]
        if differs:
            changes.append(Change("update", want.event, keep["id"], "differs in " + ", ".join(differs)))
        else:
            changes.append(Change("keep", want.event, keep["id"], "up to date"))
        changes += [Change("delete", want.event, sub["id"], "duplicate") for sub in extra]
    if remove_others:
        for event, subs in ours.items():
            changes += [Change("delete", event, sub["id"], "event no longer subscribed") for sub in subs]
    return changes


def apply_subscriptions(aurora: AuroraClient, wanted: Sequence[WantedSubscription], dry_run: bool = False,
                        remove_others: bool = True) -> list[Change]:
    """List the tenant's subscriptions, then create / update / delete what the plan says."""
    changes = plan_subscriptions(aurora.list_webhooks(), wanted, remove_others)
    if dry_run:
        return changes
    by_event = {w.event: w for w in wanted}
    for change in changes:
        if change.action == "create":
            aurora.create_webhook(by_event[change.event].body())
        elif change.action == "update":
            body = by_event[change.event].body()
            body.pop("event")
            aurora.update_webhook(change.webhook_id, body)
        elif change.action == "delete":
            aurora.delete_webhook(change.webhook_id)
    return changes
