"""Quickbase file attachments as URLs Aurora can fetch.

Aurora's site-survey uploads take images as ``{"url", "filename"}``; "Aurora will download and save
images from given URL", sending no credential. A Quickbase file attachment is read back as
``{"url": "/files/<table>/<record>/<field>/<version>", ...}``: a download that needs the user token
(and answers the content base64-encoded). So the webhook receiver, which Aurora already reaches,
serves each file under a signed, expiring link:

    <AURORA_QB_WEBHOOK_PUBLIC_URL>/quickbase/files/<token>/<file name>

``token`` names table, record, field and version with an expiry, signed with an HMAC key derived
from the webhook secret (``AURORA_QB_WEBHOOK_SECRET``; nothing else to configure). The receiver
checks the signature (constant time) and the expiry, downloads that one version from Quickbase
with its own token and answers the bytes. A link opens one file version and nothing else; a
forged, altered or expired one gets 403, and no Quickbase call is made for it.

Many tenants: a tenant's links also name the tenant (signed with the rest), so the receiver
downloads with that tenant's Quickbase token (``quickbase_user_token_env`` in the tenants file).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import mimetypes
import time
from dataclasses import dataclass
from typing import Callable, Optional
from urllib.parse import quote

FILES_PATH = "/quickbase/files"
DEFAULT_TTL_S = 7 * 24 * 3600.0
"""How long a link works: long enough for Aurora's download, which happens soon after the upload
(GUESS: Aurora does not say when it fetches)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def link_key(webhook_secret: str) -> bytes:
    """The signing key of file links, derived from the webhook secret (never the secret itself)."""
    return hmac.new(webhook_secret.encode(), b"aurora_qb_pipeline quickbase file links", hashlib.sha256).digest()


@dataclass(frozen=True)
class FileRef:
    table_id: str
    record_id: int
    field_id: int
    version: int
    file_name: str
    tenant: Optional[str] = None  # many tenants: whose Quickbase token downloads it

    @property
    def content_type(self) -> str:
        return mimetypes.guess_type(self.file_name)[0] or "application/octet-stream"


class BadLink(ValueError):
    """A link that is forged, altered, malformed or expired."""


class FileLinks:
    """Makes and checks the signed links of one receiver (``public_url``)."""

    def __init__(self, webhook_secret: str, public_url: str, ttl_s: float = DEFAULT_TTL_S,
                 clock: Callable[[], float] = time.time, tenant: Optional[str] = None):
        """``tenant``: the links of a tenant's location (many tenants) name it."""
        if not webhook_secret:
            raise ValueError("file links need the webhook secret (AURORA_QB_WEBHOOK_SECRET)")
        self._key, self.public_url, self.ttl_s, self._clock = link_key(webhook_secret), public_url.rstrip("/"), ttl_s, clock
        self.tenant = tenant

    def __repr__(self) -> str:
        return f"FileLinks({self.public_url!r})"

    def url(self, ref: FileRef) -> str:
        payload = {"t": ref.table_id, "r": ref.record_id, "f": ref.field_id, "v": ref.version, "n": ref.file_name,
                   "exp": int(self._clock() + self.ttl_s), **({"tn": self.tenant} if self.tenant else {})}
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        signature = _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
        return f"{self.public_url}{FILES_PATH}/{body}.{signature}/{quote(ref.file_name, safe='')}"

    def verify(self, token: str) -> FileRef:
        body, _, signature = token.partition(".")
        expected = _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
        if not signature or not hmac.compare_digest(signature.encode(), expected.encode()):
            raise BadLink("the link's signature does not match")
        try:
            payload = json.loads(_unb64(body))
            tenant = str(payload["tn"]) if payload.get("tn") else None
            ref = FileRef(str(payload["t"]), int(payload["r"]), int(payload["f"]), int(payload["v"]), str(payload["n"]),
                          tenant)
            expires = float(payload["exp"])
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise BadLink("the link is malformed") from None
        if self._clock() >= expires:
            raise BadLink("the link has expired")
        return ref


def latest_version(value: object) -> Optional[tuple[int, str]]:
    """(version number, file name) of the newest version of a file attachment value as a query
    answers it (``{"url", "versions": [{"versionNumber", "fileName"}, ...]}``); None when empty."""
    if not isinstance(value, dict):
        return None
    versions = [v for v in value.get("versions") or [] if isinstance(v, dict) and "versionNumber" in v]
    if not versions:
        return None
    newest = max(versions, key=lambda v: int(v["versionNumber"]))
    return int(newest["versionNumber"]), str(newest.get("fileName") or "file")
