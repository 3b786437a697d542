"""Small pieces of the HTTP layer (``http.py`` re-exports them): redaction of secrets, the
Retry-After header, reading an answer's body as a stream never longer than a cap (downloads)."""

from __future__ import annotations

import email.utils
import time
from typing import Iterable, Optional

import requests

CHUNK_BYTES = 64 * 1024
ERROR_BODY_BYTES = 64 * 1024
"""Of an error answer to a streamed request, only this much is read (for its message)."""


class BodyTooLarge(Exception):
    """The body is longer than the cap: ``size`` bytes declared, or more than the cap arrived."""

    def __init__(self, size: int, declared: bool):
        super().__init__(f"{'declared' if declared else 'more than'} {size} bytes")
        self.size, self.declared = size, declared


def read_capped(resp: requests.Response, limit: int, refuse: bool = True) -> bytes:
    """The body of a ``stream=True`` answer, at most ``limit`` bytes. Longer: :class:`BodyTooLarge`
    when ``refuse`` (the connection is closed, the rest never read), else the first ``limit`` bytes.
    A connection broken while reading raises requests' own errors (the caller retries those)."""
    declared = resp.headers.get("Content-Length", "")
    if refuse and declared.isdigit() and int(declared) > limit:
        resp.close()
        raise BodyTooLarge(int(declared), declared=True)
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_content(CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            resp.close()
            if refuse:
                raise BodyTooLarge(limit, declared=False)
            chunks.append(chunk[: len(chunk) - (size - limit)])
            break
        chunks.append(chunk)
    return b"".join(chunks)


class Redactor:
    """Replaces secret values in any text with ``***``."""

    def __init__(self, secrets: Iterable[Optional[str]]):
        # longest first, so a secret containing another is replaced whole
        self._secrets = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(self._secrets)

    def add(self, secret: Optional[str]) -> None:
        """Redact ``secret`` too from now on (e.g. a temporary token just issued)."""
        if secret and len(secret) >= 3 and secret not in self._secrets:
            self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds from a Retry-After header: delta-seconds (decimals accepted) or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
