"""What the delivery log holds: events as they happened and every delivery with its attempts.

Nothing secret is kept in a form that leaves the process: the log answers URLs with secret-looking
query values and passwords masked (:func:`mask_url`), and never answers subscription headers.
A shared secret therefore belongs in a header or in a query parameter whose name says so
(``token``, ``secret``, ``key``, ``signature`` ...); a secret in the URL path cannot be recognised.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import unquote, urlsplit, urlunsplit

from ..scheduler import Timer
from .subscriptions import MASK

_SECRET_WORDS = frozenset({"secret", "token", "key", "apikey", "sig", "signature", "hmac", "password", "passwd",
                           "pwd", "auth", "authorization", "credential", "credentials"})


def _secret_name(name: str) -> bool:
    """True when a parameter name has a secret-looking word (``api_key``, ``xToken``, ``sig``...)."""
    words = re.findall(r"[a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower())
    return any(word in _SECRET_WORDS for word in words)

PENDING, DELIVERED, FAILED, ABANDONED = "pending", "delivered", "failed", "abandoned"
"""A delivery is pending until it succeeds (delivered), runs out of retries (failed) or its
subscription is deleted or disabled (abandoned)."""


def mask_url(url: str) -> str:
    """``url`` with the password and the values of secret-looking query parameters masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}:{MASK}@{host}"
    pairs = []
    for pair in parts.query.split("&") if parts.query else []:
        name, sep, _ = pair.partition("=")
        pairs.append(f"{name}={MASK}" if sep and _secret_name(unquote(name)) else pair)
    return urlunsplit((parts.scheme, netloc, parts.path, "&".join(pairs), parts.fragment))


@dataclass
class WebhookEvent:
    """One event occurrence in one tenant, whether or not anybody was subscribed."""

    id: str
    tenant_id: str
    event: str
    values: dict[str, str]
    at: str
    ts: float = field(default_factory=time.time)  # epoch seconds, for latency measurements
    dropped: bool = False
    duplicated: bool = False
    deliveries: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "tenant_id": self.tenant_id, "event": self.event, "values": dict(self.values),
                "at": self.at, "ts": self.ts, "dropped": self.dropped, "duplicated": self.duplicated,
                "deliveries": self.deliveries}


@dataclass
class Attempt:
    at: str
    ts: float  # epoch seconds when the request was sent
    status_code: Optional[int]
    error: Optional[str]
    duration_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "ts": self.ts, "status_code": self.status_code, "error": self.error,
                "duration_ms": round(self.duration_ms, 1)}


@dataclass
class Delivery:
    """One event sent to one subscription (twice when duplicated: two deliveries)."""

    id: str
    event_id: str
    event: str
    tenant_id: str
    subscription_id: str
    url: str  # the real URL, secrets included: never leaves the process unmasked
    headers: dict[str, str]
    duplicate: bool = False
    owner: str = ""  # the subscription's owner: a tenant id or "partner:<application id>"
    status: str = PENDING
    attempts: list[Attempt] = field(default_factory=list)
    note: Optional[str] = None
    in_flight: bool = False
    next_attempt_at: Optional[float] = None  # time.monotonic()
    timer: Optional[Timer] = None

    def cancel(self, status: str, note: str) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer, self.next_attempt_at = None, None
        self.status, self.note = status, note

    def to_dict(self) -> dict[str, Any]:
        due = None if self.next_attempt_at is None else max(0.0, self.next_attempt_at - time.monotonic())
        return {
            "id": self.id, "event_id": self.event_id, "event": self.event, "tenant_id": self.tenant_id,
            "subscription_id": self.subscription_id,
            "application_id": self.owner.partition("partner:")[2] or None, "url": mask_url(self.url),
            "header_names": sorted(self.headers), "duplicate": self.duplicate, "status": self.status,
            "attempts": [a.to_dict() for a in self.attempts], "next_attempt_in_s": due, "note": self.note,
        }
