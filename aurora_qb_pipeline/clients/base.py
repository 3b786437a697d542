"""What both API clients share: their options, one lazily made session, counters, concurrency."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Optional, TypeVar

from ..api_facts import QUICKBASE_MAX_REQUEST_BYTES, RateLimit
from .http import ApiSession, RateLimitSettings, RetrySettings

MAX_DOWNLOAD_BYTES = QUICKBASE_MAX_REQUEST_BYTES * 3 // 4 - 1024 * 1024
"""Largest file a download reads (``clients/downloads.py``). Every file the pipeline downloads is
attached to a Quickbase record, base64-encoded (4 bytes per 3) inside a JSON upsert whose body
Quickbase caps at 40 MB; a larger file could never be attached, so it is refused before it is read."""

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class ClientOptions:
    """How a client talks to its service: timeouts, retries, the shared rate budget, concurrency.

    ``time_scale`` shrinks the service's rate window (the sandbox and the benchmark run faster
    than real time); 1 in production. ``rate_limit_db`` None keeps the rate budget in this process
    alone: right for a test or a script that is the key's only user, wrong for anything beside a
    deployment, whose other processes would never count its requests. A deployment's clients take
    ``Settings.client_options()`` (the resources do), which names the shared bucket."""

    timeout_s: float = 30.0
    retry: RetrySettings = field(default_factory=RetrySettings)
    time_scale: float = 1.0
    rate_limit_margin: float = 0.05
    rate_limit_db: Optional[str] = None  # SQLite file or Postgres URL shared by all; None: this process only
    max_workers: int = 4
    max_download_bytes: int = MAX_DOWNLOAD_BYTES  # a longer file is refused (FileTooLargeError), not read

    @classmethod
    def for_time_scale(cls, time_scale: float, rate_limit_db: Optional[str] = None, **overrides) -> "ClientOptions":
        """Backoff and timeouts shrunk with the time scale (1 = production values)."""
        retry = RetrySettings(backoff_initial_s=1.0 * time_scale, backoff_max_s=max(60.0 * time_scale, 0.05))
        timeout_s = 30.0 if time_scale >= 1 else max(2.0, 30.0 * time_scale)
        return replace(cls(timeout_s=timeout_s, retry=retry, time_scale=time_scale, rate_limit_db=rate_limit_db),
                       **overrides)

    def rate_limit(self, limit: RateLimit, bucket: str) -> RateLimitSettings:
        scaled = limit.scaled(self.time_scale)
        return RateLimitSettings(
            limit=scaled.requests, window_s=scaled.window_s, margin=self.rate_limit_margin,
            db_path=self.rate_limit_db, bucket=bucket,
        )


class ApiClient:
    """Base of the Aurora and Quickbase clients: the session is made on first use (fetch threads
    may race for it) and closed by :meth:`close`."""

    def __init__(self, options: ClientOptions):
        self.options = options
        self._api: Optional[ApiSession] = None
        self._lock = threading.Lock()

    def _new_session(self) -> ApiSession:  # pragma: no cover - defined by each client
        raise NotImplementedError

    def _session(self) -> ApiSession:
        if self._api is None:
            with self._lock:
                if self._api is None:
                    self._api = self._new_session()
        return self._api

    @property
    def stats(self) -> dict[str, float]:
        """What this client did so far: requests, retries, 429s, 5xx, timeouts, throttle wait."""
        return self._session().stats.as_dict()

    def redact(self, text: str) -> str:
        """``text`` with every credential of this client replaced by ``***``."""
        return self._session().redact(text)

    def map_concurrently(self, func: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """Apply ``func`` to every item with up to ``max_workers`` requests in flight, keeping order.
        The first error is raised once the calls in flight have ended; the rest are not made.

        The shared rate limiter paces the requests; concurrency only hides latency."""
        items = list(items)
        if self.options.max_workers <= 1 or len(items) <= 1:
            return [func(item) for item in items]
        pool = ThreadPoolExecutor(max_workers=self.options.max_workers)
        try:
            futures = [pool.submit(func, item) for item in items]
            return [future.result() for future in futures]
        finally:  # on an error, what has not started is dropped rather than sent
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        """Close the pooled connections (a later call opens a new session)."""
        with self._lock:
            api, self._api = self._api, None
        if api is not None:
            api.close()
