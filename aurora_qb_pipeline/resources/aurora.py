"""Aurora Solar Sync API client as a Dagster resource."""

from __future__ import annotations

import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, Optional, TypeVar

import dagster as dg
from pydantic import Field, PrivateAttr

from .http import ApiSession, NotFoundError, RateLimitSettings, RetrySettings

T = TypeVar("T")
R = TypeVar("R")

AURORA_MAX_PER_PAGE = 250


def _aurora_error_detail(body: Any) -> str:
    """Aurora answers errors as {"errors": [{"message": ...}]}."""
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return "; ".join(str(e.get("message", e)) for e in body["errors"] if e) or "error"
    return str(body)[:200]


def default_rate_limit_db() -> str:
    """Where the machine-wide rate-limit bucket lives: beside the Dagster instance if there is one."""
    home = os.environ.get("DAGSTER_HOME") or tempfile.gettempdir()
    return os.path.join(home, "aurora_qb_rate_limits.sqlite")


class RateLimitedResource(dg.ConfigurableResource):
    """Settings shared by both API resources: timeouts, retries and the client-side rate limit."""

    timeout_s: float = Field(default=30.0, description="Read/connect timeout per request, seconds.")
    max_attempts: int = Field(default=8, description="Attempts per request (first try included).")
    backoff_initial_s: float = Field(default=1.0, description="First backoff step; doubles each retry, with jitter.")
    backoff_max_s: float = Field(default=60.0, description="Longest single wait between attempts.")
    rate_window_s: float = Field(default=60.0, description="Length of the rate-limit window, seconds.")
    rate_limit_margin: float = Field(default=0.05, description="Safety margin added to the window (fraction).")
    rate_limit_db: Optional[str] = Field(
        default=None,
        description="SQLite file holding the shared rate-limit bucket (all processes on this machine). "
        "Empty: $DAGSTER_HOME/aurora_qb_rate_limits.sqlite.",
    )
    max_workers: int = Field(default=4, description="Concurrent requests within one step.")

    _api: Optional[ApiSession] = PrivateAttr(default=None)
    _api_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def _retry_settings(self) -> RetrySettings:
        return RetrySettings(self.max_attempts, self.backoff_initial_s, self.backoff_max_s)

    def _rate_settings(self, limit: int, bucket: str) -> RateLimitSettings:
        return RateLimitSettings(
            limit=limit,
            window_s=self.rate_window_s,
            margin=self.rate_limit_margin,
            db_path=self.rate_limit_db or default_rate_limit_db(),
            bucket=bucket,
        )

    @property
    def stats(self) -> dict[str, float]:
        return self._session().stats.as_dict()

    def _session(self) -> ApiSession:
        """The client's one session, made on first use (fetch threads may race for it)."""
        if self._api is None:
            with self._api_lock:
                if self._api is None:
                    self._api = self._new_session()
        return self._api

    def _new_session(self) -> ApiSession:  # pragma: no cover - defined by each client
        raise NotImplementedError

    def map_concurrently(self, func: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """Apply ``func`` to every item with up to ``max_workers`` requests in flight, keeping order.

        The shared rate limiter paces the requests; concurrency only hides latency."""
        items = list(items)
        if self.max_workers <= 1 or len(items) <= 1:
            return [func(item) for item in items]
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            return list(pool.map(func, items))

    def teardown_after_execution(self, context) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None


class AuroraClient(RateLimitedResource):
    """Reads projects, designs, summaries, proposals and design requests from Aurora.

    Credentials come from the environment (``dg.EnvVar``); they are sent only in the
    ``Authorization`` header and redacted from every error and log line.
    """

    base_url: str = Field(default="https://api.aurorasolar.com", description="Aurora API root.")
    tenant_id: str = Field(description="Aurora tenant id (secret: comes from an EnvVar).")
    api_token: str = Field(description="Aurora API key, sent as a bearer token (secret).")
    api_version: Optional[str] = Field(default=None, description="Aurora-API-Version header (sandbox only).")
    rate_limit_per_window: int = Field(default=90, description="Aurora allows 90 requests per minute per key.")
    page_size: int = Field(default=AURORA_MAX_PER_PAGE, description="per_page for list endpoints (max 250).")

    def _new_session(self) -> ApiSession:
        headers = {"Authorization": f"Bearer {self.api_token}"}
        if self.api_version:
            headers["Aurora-API-Version"] = self.api_version
        return ApiSession(
            "Aurora",
            self.base_url,
            headers,
            timeout_s=self.timeout_s,
            retry=self._retry_settings(),
            rate_limit=self._rate_settings(self.rate_limit_per_window, f"aurora:{self.tenant_id}"),
            secrets=[self.api_token, self.tenant_id],
            error_detail=_aurora_error_detail,
            pool_size=max(2, self.max_workers),
        )

    def _get(self, path: str, throttle_timeout: Optional[float] = None, **params: Any) -> Any:
        url = f"/tenants/{self.tenant_id}{path}"
        return self._session().request("GET", url, params=params or None, throttle_timeout=throttle_timeout)[1]

    def redact(self, text: str) -> str:
        return self._session().redact(text)

    # --- list endpoints --------------------------------------------------------------------

    @property
    def per_page(self) -> int:
        return min(self.page_size, AURORA_MAX_PER_PAGE)

    def _page(self, path: str, key: str, page: int, throttle_timeout: Optional[float], **filters: Any) -> list[dict]:
        return self._get(path, throttle_timeout, page=page, per_page=self.per_page, **filters)[key]

    def project_page(self, page: int, throttle_timeout: Optional[float] = None) -> list[dict]:
        """One page of projects, newest first. Aurora sends no paging metadata: a page shorter
        than ``per_page`` is the last one."""
        return self._page("/projects", "projects", page, throttle_timeout)

    def iter_projects(self) -> Iterator[dict]:
        page = 1
        while True:
            items = self.project_page(page)
            yield from items
            if len(items) < self.per_page:
                return
            page += 1

    def design_request_page(self, page: int, throttle_timeout: Optional[float] = None, **filters: Any) -> list[dict]:
        """One page of design requests, most recently submitted first."""
        return self._page("/design_requests", "design_requests", page, throttle_timeout, **filters)

    # --- single objects -------------------------------------------------------------------

    def get_project(self, project_id: str) -> dict:
        return self._get(f"/projects/{project_id}")["project"]

    def list_designs(self, project_id: str) -> list[dict]:
        return self._get(f"/projects/{project_id}/designs")["designs"]

    def get_design_summary(self, design_id: str) -> dict:
        return self._get(f"/designs/{design_id}/summary")["design"]

    def get_default_proposal(self, design_id: str) -> Optional[dict]:
        """The design's default proposal, or None when the design has none yet (404)."""
        try:
            return self._get(f"/designs/{design_id}/proposals/default")["proposal"]
        except NotFoundError:
            return None
