"""Files behind signed URLs: agreement PDFs, proposal files, site-survey screenshots.

Aurora hands out file URLs that need no API key and expire (the URL's signature is the
credential); in production they usually point at another host (a storage service) than the API.
A download goes through the same :class:`~.http.ApiSession` as every API call, so it has the
clients' timeout, tenacity retries with backoff on transient answers (429, 5xx, timeouts, a
connection dropped mid-body) honouring ``Retry-After``, and redaction; what differs:

* no credential header is ever sent: the session is a separate one, made for the URL's origin,
  so the Aurora key cannot reach a foreign host;
* the URL's path and query are redacted from every error and log line (they are the signature);
* the request counts against the Aurora rate budget when the URL is on the Aurora API's own
  origin (``rate_limit`` given by the client); a foreign storage host has no budget of Aurora's to
  count against, only the retries;
* the body is streamed and refused past a size cap (:class:`~.errors.FileTooLargeError`, never
  retried): by its declared length before anything is read, else as soon as more arrived;
* a 401/403 means the URL expired or was forged: a :class:`~.errors.PermanentApiError` (there is
  no credential to blame).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from email.message import Message
from typing import Iterable, Optional
from urllib.parse import unquote, urlsplit

from .base import ClientOptions
from .errors import AuthenticationError, PermanentApiError
from .http import ApiSession, RateLimitSettings, RequestStats


@dataclass(frozen=True)
class Download:
    name: str  # from Content-Disposition, else the URL's last path segment
    content: bytes
    content_type: str


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, lower-cased, default ports dropped."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port
    default = {"http": 80, "https": 443}.get(scheme)
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


def file_name(disposition: Optional[str], url_path: str) -> str:
    """The file's name: ``Content-Disposition``'s ``filename`` (RFC 6266/2231 forms, parsed by the
    standard library), else the URL's last segment; never a path."""
    name = None
    if disposition:
        message = Message()
        message["content-disposition"] = disposition
        name = message.get_filename()
    name = name or unquote(url_path.rstrip("/").rsplit("/", 1)[-1]) or "download"
    return posixpath.basename(name.replace("\\", "/")) or "download"


def download(url: str, options: ClientOptions, *, rate_limit: Optional[RateLimitSettings] = None,
             service: str = "file storage", secrets: Iterable[Optional[str]] = (),
             stats: Optional[RequestStats] = None, max_bytes: Optional[int] = None) -> Download:
    """GET a signed file URL (see the module's docstring). ``secrets``: more values to redact (the
    caller's credentials); ``stats``: counters to add this download's requests to."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PermanentApiError(service, "GET", "(file URL)", None, "not an http(s) URL; nothing was fetched")
    base = f"{parts.scheme}://{parts.netloc}"
    path = url[len(base):] or "/"
    api = ApiSession(service, base, {"Accept": "*/*"}, timeout_s=options.timeout_s, retry=options.retry,
                     rate_limit=rate_limit, secrets=[path, parts.path, parts.query, *secrets],
                     error_detail=lambda body: str(body)[:200], pool_size=1)
    if stats is not None:
        api.stats = stats
    try:
        _, (content, headers) = api.request("GET", path, raw=True, max_bytes=max_bytes or options.max_download_bytes)
    except AuthenticationError as exc:  # no credential was sent: the URL itself expired or is forged
        raise PermanentApiError(exc.service, "GET", exc.path, exc.status, f"the URL was refused: {exc.detail}") from None
    finally:
        api.close()
    kind = headers.get("Content-Type", "application/octet-stream").split(";")[0].strip()
    return Download(file_name(headers.get("Content-Disposition"), parts.path), content, kind)
