"""Aurora as a partner application sees it: temporary tokens from the application key, the
site-survey endpoints and the partner webhook subscriptions (plain Python, no Dagster).

What Aurora documents (site-survey and CRM app guides): the account team gives the app an
``application_id`` and an *application key*. The key never calls the tenant API itself: the app
exchanges it, server-side, for a temporary bearer token of one tenant with ``POST
/partner_applications/{application_id}/tenants/{tenant_id}/create_token[?session_token=...]``
(``Authorization: Bearer <application key>``), answered ``{"token": {"bearer_token",
"expires_at": "2023-07-29 04:30:46 UTC"}}``. Tokens expire. The ``session_token`` a
``site_survey_requested`` webhook carries is optional for backend apps and recommended when the
app looks the request up right after the webhook.

:class:`PartnerTokens` keeps one token per tenant until shortly before ``expires_at`` and makes a
new one when it is due or when Aurora answers 401 with it (revoked, or expired early: the clocks
disagree). :class:`PartnerAuroraClient` is an :class:`AuroraClient` whose every request carries the
current token, refreshed and sent once more on a 401; the same timeouts, retries and shared rate
budget as every client (``clients/http.py``). The key and every token are redacted from errors
and logs.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from ..api_facts import AURORA_RATE_LIMIT
from .aurora import AuroraClient, _aurora_error_detail
from .base import ClientOptions
from .errors import AuthenticationError, MalformedAnswerError, PermanentApiError
from .http import ApiSession, RateLimitSettings

PARTNER_CREDENTIALS = "AURORA_PARTNER_APPLICATION_KEY / AURORA_PARTNER_APPLICATION_ID"
REFRESH_MARGIN_S = 60.0
"""A token is replaced this long (scaled by the time scale) before its ``expires_at``."""


def parse_expires_at(value: Any) -> float:
    """``"2023-07-29 04:30:46 UTC"`` (also ISO 8601) as epoch seconds."""
    if not isinstance(value, str):
        raise ValueError(f"expires_at is not text: {value!r}")
    text = value.strip()
    if text.endswith(" UTC"):
        text = text[:-4] + "+00:00"
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


@dataclass(frozen=True)
class Token:
    value: str
    expires_at: float  # epoch seconds


class SurveyRejected(PermanentApiError):
    """Aurora answered 422 to a site-survey upload or to the completion: ``messages`` lists each
    problem as Aurora worded it."""

    def __init__(self, method: str, path: str, messages: list[str]):
        self.messages = messages
        super().__init__("Aurora", method, path, 422, "; ".join(messages) or "unprocessable")


class PartnerTokens:
    """Temporary tokens of one application, one per tenant, cached until shortly before expiry.

    ``clock`` returns epoch seconds (tests may pass their own). Thread-safe: concurrent requests
    of one tenant share one exchange. ``budget``: the application key's own rate budget, which
    every exchange is counted in (Aurora counts a request against the key it carries)."""

    def __init__(self, api: ApiSession, application_id: str, application_key: str, refresh_margin_s: float,
                 clock: Callable[[], float] = time.time, budget: Optional[RateLimitSettings] = None):
        self._api, self.application_id, self._key, self._budget = api, application_id, application_key, budget
        self.refresh_margin_s, self._clock = refresh_margin_s, clock
        self._tokens: dict[str, Token] = {}
        self._lock = threading.Lock()
        self.exchanges = 0  # tokens made (for tests and metadata)

    def token(self, tenant_id: str, session_token: Optional[str] = None) -> str:
        """A valid token of ``tenant_id``: the cached one unless it is due, else a new one."""
        with self._lock:
            cached = self._tokens.get(tenant_id)
            if cached is not None and self._clock() < cached.expires_at - self.refresh_margin_s:
                return cached.value
            fresh = self._exchange(tenant_id, session_token)
            self._tokens[tenant_id] = fresh
            return fresh.value

    def invalidate(self, tenant_id: str, value: str) -> None:
        """Aurora refused ``value``: forget it (unless another thread already replaced it)."""
        with self._lock:
            if self._tokens.get(tenant_id, Token("", 0)).value == value:
                del self._tokens[tenant_id]

    def _exchange(self, tenant_id: str, session_token: Optional[str]) -> Token:
        path = f"/partner_applications/{self.application_id}/tenants/{tenant_id}/create_token"
        headers = {"Authorization": f"Bearer {self._key}"}
        params = {"session_token": session_token} if session_token else None
        try:
            answer = self._api.request("POST", path, params=params, headers=headers, ok_statuses=(200, 201),
                                       budget=self._budget)[1]
        except AuthenticationError as exc:
            if not session_token or exc.status != 401:
                raise
            # the session token of the webhook may have expired: backend apps may go without it
            answer = self._api.request("POST", path, headers=headers, ok_statuses=(200, 201), budget=self._budget)[1]
        token = answer.get("token") if isinstance(answer, dict) else None
        if not isinstance(token, dict) or not isinstance(token.get("bearer_token"), str):
            raise MalformedAnswerError("Aurora", "POST", self._api.redact(path), 200, "no token.bearer_token in the answer")
        try:
            expires = parse_expires_at(token.get("expires_at"))
        except ValueError as exc:
            raise MalformedAnswerError("Aurora", "POST", self._api.redact(path), 200, f"expires_at: {exc}") from None
        self._api.redactor.add(token["bearer_token"])
        self.exchanges += 1
        return Token(token["bearer_token"], expires)


class _TokenSession:
    """An :class:`ApiSession` seen through the current token of one tenant: every request carries
    it; a 401 drops it, and the request is sent once more with a new token."""

    def __init__(self, api: ApiSession, tokens: PartnerTokens, tenant_id: str):
        self._api, self._tokens, self._tenant_id = api, tokens, tenant_id
        self.session_token: Optional[str] = None

    def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        for attempt in (1, 2):
            token = self._tokens.token(self._tenant_id, self.session_token)
            try:
                return self._api.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
            except AuthenticationError as exc:
                if exc.status != 401 or attempt == 2:
                    raise
                self._tokens.invalidate(self._tenant_id, token)
        raise AssertionError("unreachable")

    def __getattr__(self, name: str) -> Any:  # redact, stats, close, redactor ...
        return getattr(self._api, name)


class PartnerAuroraClient(AuroraClient):
    """The tenant API of one tenant through a partner application's temporary tokens, the
    site-survey endpoints and the application's webhook subscriptions."""

    def __init__(self, *, base_url: str, application_id: str, application_key: str, tenant_id: str,
                 options: ClientOptions = ClientOptions(), clock: Callable[[], float] = time.time):
        super().__init__(base_url=base_url, tenant_id=tenant_id, api_token="", options=options)
        self.application_id, self._application_key, self._clock = application_id, application_key, clock
        self._tokens: Optional[PartnerTokens] = None
        self._token_session: Optional[_TokenSession] = None

    def _new_session(self) -> ApiSession:
        return ApiSession(
            "Aurora",
            self.base_url,
            {},
            timeout_s=self.options.timeout_s,
            retry=self.options.retry,
            # the tenant's temporary tokens (GUESS: Aurora counts a partner's tokens per tenant); what
            # the application key itself sends is counted in application_budget
            rate_limit=self.options.rate_limit(AURORA_RATE_LIMIT, f"aurora-partner:{self.application_id}:{self.tenant_id}"),
            secrets=[self._application_key, self.application_id, self.tenant_id],
            error_detail=_aurora_error_detail,
            credential=PARTNER_CREDENTIALS,
            pool_size=max(2, self.options.max_workers),
        )

    @property
    def application_budget(self) -> RateLimitSettings:
        """The application key's own budget: its token exchanges and webhook subscriptions, for
        every tenant the application serves, are counted against that key."""
        return self.options.rate_limit(AURORA_RATE_LIMIT, f"aurora-application:{self.application_id}")

    @property
    def tokens(self) -> PartnerTokens:
        self._session()
        assert self._tokens is not None
        return self._tokens

    def _session(self) -> Any:
        api = super()._session()
        if self._token_session is None or self._token_session._api is not api:
            with self._lock:
                if self._token_session is None or self._token_session._api is not api:
                    margin = REFRESH_MARGIN_S * self.options.time_scale
                    self._tokens = PartnerTokens(api, self.application_id, self._application_key, margin, self._clock,
                                                 budget=self.application_budget)
                    self._token_session = _TokenSession(api, self._tokens, self.tenant_id)
        return self._token_session

    def use_session_token(self, session_token: Optional[str]) -> None:
        """The ``session_token`` of a webhook, sent with the next token exchange (optional)."""
        self._session().session_token = session_token or None

    # --- site surveys --------------------------------------------------------------------------

    def get_site_survey_request(self, request_id: str) -> dict:
        """``{id, project_id, requested_for_design_id, status, requested_at, completed_at, screenshot_url}``."""
        return self._member(f"/site_surveys/{request_id}/request", "site_survey_request", dict)

    def _put_survey(self, request_id: str, path: str, body: dict) -> Any:
        url = f"/tenants/{self.tenant_id}/site_surveys/{request_id}{path}"
        status, answer = self._session().request("PUT", url, json_body=body, ok_statuses=(200, 422))
        if status == 422:
            errors = answer.get("errors") if isinstance(answer, dict) else None
            messages = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors or []]
            raise SurveyRejected("PUT", self._session().redact(url), messages or [str(answer)[:200]])
        return answer

    def put_electrical(self, request_id: str, electrical: dict) -> Any:
        return self._put_survey(request_id, "/electrical", {"electrical": electrical})

    def put_subpanels(self, request_id: str, subpanels: list[dict]) -> Any:
        return self._put_survey(request_id, "/electrical/subpanels", {"subpanels": subpanels})

    def put_mounting_planes(self, request_id: str, planes: list[dict]) -> Any:
        return self._put_survey(request_id, "/roofs/mounting_planes", {"mounting_planes": planes})

    def complete_site_survey(self, request_id: str) -> Any:
        """``PUT .../status`` completed; :class:`SurveyRejected` lists what is missing."""
        return self._put_survey(request_id, "/status", {"site_survey": {"status": "completed"}})

    # --- partner webhook subscriptions (application key) ----------------------------------------
    # The same four verbs as AuroraClient's tenant subscriptions, so webhooks.subscriptions applies
    # a plan to either.

    def _partner(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200,)) -> Any:
        url = f"/partner_applications/{self.application_id}/webhooks{path}"
        headers = {"Authorization": f"Bearer {self._application_key}"}
        api = super()._session()
        return api.request(method, url, json_body=body, ok_statuses=ok, headers=headers,
                           budget=self.application_budget)[1]

    def list_webhooks(self) -> list[dict]:
        return self._partner("GET", "")["partner_application_webhooks"]

    def create_webhook(self, webhook: dict) -> dict:
        return self._partner("POST", "", {"partner_application_webhook": webhook})["partner_application_webhook"]

    def update_webhook(self, webhook_id: str, changes: dict) -> dict:
        return self._partner("PUT", f"/{webhook_id}", {"partner_application_webhook": changes})[
            "partner_application_webhook"]

    def delete_webhook(self, webhook_id: str) -> None:
        self._partner("DELETE", f"/{webhook_id}", ok=(200, 204))

    def close(self) -> None:
        super().close()
        self._token_session = None
