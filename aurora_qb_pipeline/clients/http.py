"""The HTTP layer both API clients share.

* one pooled ``requests.Session`` per client;
* a client-side rate limit (pyrate-limiter) that can be shared by every process on the
  machine through a file-locked SQLite bucket, or by every host through a Postgres bucket, so
  concurrent runs together stay under the service's limit instead of each finding it by 429s;
* retries with tenacity: exponential backoff with jitter on 429, 5xx, timeouts, dropped
  connections and truncated bodies, honouring ``Retry-After`` when the server sends one;
* a 200 whose body is not JSON is told apart (:func:`decode_json`): a body cut short (a prefix
  of JSON) is transient and retried; anything else (an HTML page, text, JSON followed by junk,
  nesting too deep to parse) fails the same way every time and raises
  :class:`MalformedAnswerError` at once, so the caller can set that one item aside;
* errors that name the service, method and path but never a credential: every text that
  leaves this module passes :meth:`Redactor.redact`;
* a 401/403 raises :class:`AuthenticationError` at once (never retried), naming the environment
  variable(s) holding the refused credential, never its value;
* a 413 raises :class:`PayloadTooLargeError` (the caller splits the request);
* a failed attempt whose request may have been carried out all the same (the answer was cut off,
  timed out or was a 5xx) is marked ``maybe_applied``, and ``request(on_retry=...)`` tells the
  caller about every attempt retried, so a writer can account for what the lost answer did.

Plain Python: nothing here imports Dagster. The Dagster resources in ``defs/resources.py`` wrap
the clients built on it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

import requests
from pyrate_limiter import Limiter, Rate, SQLiteBucket
from tenacity import Retrying, retry_if_exception_type, wait_exponential_jitter

from .buckets import is_postgres_url, postgres_bucket
from .errors import (  # noqa: F401 - re-exported: the clients' errors have lived here
    RETRYABLE_STATUSES,
    ApiError,
    AuthenticationError,
    FileTooLargeError,
    MalformedAnswerError,
    NotFoundError,
    NotProvisionedError,
    PayloadTooLargeError,
    PermanentApiError,
    RateBudgetExhausted,
    TransientApiError,
)
from .jsonbody import BodyNotJson, decode_json  # noqa: F401 - re-exported
from .wire import ERROR_BODY_BYTES, BodyTooLarge, Redactor, parse_retry_after, read_capped  # noqa: F401 - re-exported

log = logging.getLogger(__name__)


@dataclass
class RequestStats:
    """Counters of what a client did; reported as materialization metadata and by the benchmark."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    timeouts: int = 0
    broken_bodies: int = 0
    throttle_wait_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **deltas: float) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def as_dict(self) -> dict[str, float]:
        with self._lock:
            return {
                "requests": self.requests,
                "retries": self.retries,
                "rate_limited_429": self.rate_limited,
                "server_errors_5xx": self.server_errors,
                "timeouts": self.timeouts,
                "broken_bodies": self.broken_bodies,
                "throttle_wait_s": round(self.throttle_wait_s, 3),
            }


@dataclass(frozen=True)
class RetrySettings:
    """``max_attempts`` bounds tries that failed for other reasons than 429; answers of 429 (the
    server saying *when* to come back) have their own, larger allowance."""

    max_attempts: int = 8
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    max_rate_limited: int = 30


class _StopPolicy:
    """tenacity stop: separate allowances for 429s and for other transient failures."""

    def __init__(self, settings: RetrySettings):
        self._settings = settings
        self._rate_limited = 0

    def __call__(self, retry_state) -> bool:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, TransientApiError) and exc.status == 429:
            self._rate_limited += 1
            return self._rate_limited > self._settings.max_rate_limited
        return retry_state.attempt_number - self._rate_limited >= self._settings.max_attempts


@dataclass(frozen=True)
class RateLimitSettings:
    """``limit`` requests per ``window_s``; ``margin`` widens the client's window a little (a
    fraction of it, at least ``min_margin_s``) so that jitter between when the client sends and
    when the server counts a request cannot push one over the server's limit."""

    limit: int
    window_s: float
    margin: float = 0.05
    min_margin_s: float = 0.05
    # where the shared bucket lives: a SQLite file (every process on this machine), a Postgres URL
    # (every host: buckets.py), or None (this process only)
    db_path: Optional[str] = None
    bucket: str = "default"  # e.g. "aurora:<tenant id>"; stored only as a hash

    @property
    def bucket_key(self) -> str:
        """The bucket's name as stored in the shared file: a hash, as the plain name holds an id."""
        return "rl_" + hashlib.sha256(self.bucket.encode()).hexdigest()[:16]


def build_limiter(settings: RateLimitSettings) -> Limiter:
    window_s = settings.window_s + max(settings.window_s * settings.margin, settings.min_margin_s)
    window_ms = max(1, int(round(window_s * 1000)))
    rates = [Rate(settings.limit, window_ms)]
    if is_postgres_url(settings.db_path):
        return Limiter(postgres_bucket(rates, settings.bucket_key, str(settings.db_path)), buffer_ms=5)
    if settings.db_path:
        Path(settings.db_path).parent.mkdir(parents=True, exist_ok=True)
        bucket = SQLiteBucket.init_from_file(
            rates, table=settings.bucket_key, db_path=settings.db_path, use_file_lock=True
        )
        return Limiter(bucket, buffer_ms=5)
    return Limiter(rates, buffer_ms=5)


class _WaitRetryAfter:
    """tenacity wait: the server's Retry-After when it gave one, else exponential backoff with jitter."""

    def __init__(self, settings: RetrySettings):
        self._fallback = wait_exponential_jitter(
            multiplier=settings.backoff_initial_s, max=settings.backoff_max_s, jitter=settings.backoff_initial_s
        )
        self._max = settings.backoff_max_s

    def __call__(self, retry_state) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(retry_after, self._max)
        return self._fallback(retry_state)


class ApiSession:
    """Sends requests to one service with limits, retries and redaction."""

    def __init__(
        self,
        service: str,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout_s: float,
        retry: RetrySettings,
        rate_limit: Optional[RateLimitSettings],
        secrets: Iterable[Optional[str]],
        error_detail: Callable[[Any], str],
        credential: str = "the credentials",
        pool_size: int = 8,
    ):
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retry = retry
        self.stats = RequestStats()
        self.redactor = Redactor(secrets)
        self._error_detail = error_detail
        self._credential = credential
        self._refused: Optional[AuthenticationError] = None  # once refused, the credential is not sent again
        self._rate_limit = self.rate_limit = rate_limit
        self._limiters: dict[str, Limiter] = {}  # by bucket key, made on first use, closed by close()
        self._limiter_lock = threading.Lock()
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update({"Accept": "application/json", "User-Agent": "aurora-qb-pipeline/0.1"})
        self._session.headers.update(headers)

    def close(self) -> None:
        self._session.close()
        with self._limiter_lock:  # a Postgres bucket holds connections, SQLite a file handle
            limiters, self._limiters = list(self._limiters.values()), {}
        for limiter in limiters:
            limiter.close()

    def _shared_limiter(self, budget: RateLimitSettings) -> Limiter:
        limiter = self._limiters.get(budget.bucket_key)
        if limiter is None:
            with self._limiter_lock:
                limiter = self._limiters.get(budget.bucket_key)
                if limiter is None:
                    limiter = self._limiters[budget.bucket_key] = build_limiter(budget)
        return limiter

    def redact(self, text: str) -> str:
        return self.redactor.redact(text)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Optional[Mapping[str, Any]] = None,
        json_body: Any = None,
        body: Optional[bytes] = None,
        ok_statuses: Iterable[int] = (200,),
        throttle_timeout: Optional[float] = None,
        on_retry: Optional[Callable[[TransientApiError], None]] = None,
        headers: Optional[Mapping[str, str]] = None,
        raw: bool = False,
        optional_feature: bool = False,
        max_bytes: Optional[int] = None,
        budget: Optional[RateLimitSettings] = None,
    ) -> tuple[int, Any]:
        """Send one logical request (retried as needed); returns (status, parsed JSON body).

        ``throttle_timeout``: longest wait for the rate limiter before giving up with
        :class:`RateBudgetExhausted` (None waits as long as needed). ``on_retry`` is called with
        the error of every attempt that is retried (e.g. to note that one may have been applied).
        ``headers``: sent with this request only, e.g. a temporary token that changes between
        requests (a 401 then refuses that token, not the session: it is not latched). ``raw``:
        an ok answer's body is returned as bytes, unparsed (file downloads). ``optional_feature``: a
        403 raises :class:`NotProvisionedError` and leaves the credential usable. ``max_bytes`` (with
        ``raw``): the body is streamed and refused past that size (:class:`FileTooLargeError`, not
        retried); the answer is then ``(bytes, headers)``. ``budget``: the rate budget this request is
        counted in instead of the session's, for a request sent with another key in ``headers`` (a
        partner application's own key: the service counts it against that key, not the tenant's)."""
        ok = frozenset(ok_statuses)
        if json_body is not None and body is None:
            body = json.dumps(json_body, separators=(",", ":"), ensure_ascii=False).encode()
        retrying = Retrying(
            retry=retry_if_exception_type(TransientApiError),
            stop=_StopPolicy(self.retry),
            wait=_WaitRetryAfter(self.retry),
            before_sleep=self._before_sleep if on_retry is None else self._notify(on_retry),
            reraise=True,
        )
        return retrying(self._attempt, method, path, params, body, ok, throttle_timeout, headers, raw,
                        optional_feature, max_bytes, budget)

    def _before_sleep(self, retry_state) -> None:
        self.stats.add(retries=1)
        exc = retry_state.outcome.exception()
        log.info(
            "%s: retrying after %s (attempt %d, waiting %.2fs)",
            self.service,
            exc,
            retry_state.attempt_number,
            retry_state.upcoming_sleep,
        )

    def _notify(self, on_retry: Callable[[TransientApiError], None]) -> Callable[[Any], None]:
        def before_sleep(retry_state) -> None:
            self._before_sleep(retry_state)
            on_retry(retry_state.outcome.exception())

        return before_sleep

    def _throttle(self, method: str, shown_path: str, timeout: Optional[float],
                  budget: Optional[RateLimitSettings] = None) -> None:
        """Wait until the shared bucket admits one more request.

        Polls with zero-timeout acquires, so each admitted request is stamped with the time it
        was admitted. (The library's blocking mode stamps a waiting request with its planned
        wake-up time, which lets processes that overslept admit more than the limit; its
        ``blocking=False`` mode does not work with the file lock.)"""
        budget = budget or self._rate_limit
        if budget is None:
            return
        limiter = self._shared_limiter(budget)
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        # poll a few times per request slot, never slower than 4 times a second
        poll_s = min(budget.window_s / budget.limit / 3, 0.25)
        while not limiter.try_acquire(budget.bucket_key, blocking=True, timeout=0):
            if deadline is not None and time.monotonic() >= deadline:
                self.stats.add(throttle_wait_s=time.monotonic() - started)
                raise RateBudgetExhausted(self.service, method, shown_path, None, f"rate budget busy for {timeout}s")
            time.sleep(poll_s * (0.5 + random.random()))
        self.stats.add(throttle_wait_s=time.monotonic() - started)

    def _attempt(
        self, method: str, path: str, params, body: Optional[bytes], ok: frozenset, throttle_timeout: Optional[float],
        extra_headers: Optional[Mapping[str, str]] = None, raw_body: bool = False, optional_feature: bool = False,
        max_bytes: Optional[int] = None, budget: Optional[RateLimitSettings] = None,
    ) -> tuple[int, Any]:
        if self._refused is not None and not extra_headers:
            raise self._refused
        shown_path = self.redact(path)
        self._throttle(method, shown_path, throttle_timeout, budget)
        self.stats.add(requests=1)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        headers = {**headers, **(extra_headers or {})} or None
        try:
            resp = self._session.request(method, self.base_url + path, params=params, data=body, headers=headers,
                                         timeout=self.timeout_s, stream=max_bytes is not None)
            # read the whole body here, so a dropped connection is retried too
            if max_bytes is None:
                raw = resp.content
            elif resp.status_code in ok:
                raw = read_capped(resp, max_bytes)
            else:
                raw = read_capped(resp, ERROR_BODY_BYTES, refuse=False)
        except BodyTooLarge as exc:
            raise FileTooLargeError(self.service, method, shown_path, resp.status_code,
                                    f"the file is larger than the cap of {max_bytes} bytes ({exc})") from None
        except requests.Timeout as exc:
            self.stats.add(timeouts=1)
            sent = not isinstance(exc, requests.ConnectTimeout)
            raise TransientApiError(self.service, method, shown_path, None, "timed out", maybe_applied=sent) from None
        except requests.RequestException as exc:
            self.stats.add(broken_bodies=1)
            detail = f"connection failed ({type(exc).__name__})"
            # whether the request reached the service before the connection broke is unknown
            raise TransientApiError(self.service, method, shown_path, None, detail, maybe_applied=True) from None

        status = resp.status_code
        if raw_body and status in ok:
            return status, (raw, resp.headers) if max_bytes is not None else raw
        parsed: Any = None
        not_json: Optional[BodyNotJson] = None
        if raw:
            try:
                parsed = decode_json(raw)
            except BodyNotJson as exc:
                not_json = exc

        if status in ok:
            if not_json is not None:
                self.stats.add(broken_bodies=1)
                if not_json.truncated:
                    detail = f"answer was not complete JSON ({len(raw)} bytes)"
                    raise TransientApiError(self.service, method, shown_path, status, detail, maybe_applied=True)
                start = self.redact(raw[:60].decode("utf-8", "replace"))
                kind = resp.headers.get("Content-Type", "no content type")
                detail = f"answer is not JSON ({not_json}; {kind}, {len(raw)} bytes, starting {start!r})"
                raise MalformedAnswerError(self.service, method, shown_path, status, detail)
            return status, parsed

        detail = self.redact(self._error_detail(parsed) if parsed is not None else resp.reason or "")
        if status in RETRYABLE_STATUSES:
            if status == 429:
                self.stats.add(rate_limited=1)
                if (budget or self._rate_limit) is not None:  # the budget admitted it, the service did not
                    log.warning("%s answered 429 to %s %s although the rate budget admitted it: another user "
                                "of the key, or a client not on the shared budget", self.service, method, shown_path)
            elif status >= 500:
                self.stats.add(server_errors=1)
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            raise TransientApiError(self.service, method, shown_path, status, detail, retry_after=retry_after,
                                    maybe_applied=status >= 500)
        if status == 403 and optional_feature:
            raise NotProvisionedError(self.service, method, shown_path, status, detail)
        if status in (401, 403):
            refused = AuthenticationError(self.service, method, shown_path, status, detail, self._credential)
            if not extra_headers:  # the session's own credential: never sent again
                self._refused = refused
            raise refused
        if status == 404:
            raise NotFoundError(self.service, method, shown_path, status, detail)
        if status == 413:
            raise PayloadTooLargeError(self.service, method, shown_path, status, detail)
        raise PermanentApiError(self.service, method, shown_path, status, detail)
