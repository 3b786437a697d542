"""Aurora Solar Sync API client (plain Python, no Dagster).

Owns Aurora's protocol: the bearer key and the tenant in every path, the error body
(``{"errors": [{"message": ...}]}``), the envelopes (a single object under its singular name, a
list under its plural: ``{"project": {...}}``, ``{"designs": [...]}``) and paging. List endpoints
page with ``page``/``per_page`` and send no paging metadata, so the rule "a page shorter than
``per_page`` is the last one" lives here, in :meth:`AuroraClient.pages`, and nowhere else.

An answer of another shape (a bare array, the envelope key missing, null, or an object where the
list belongs) raises :class:`MalformedAnswerError` naming the path (and so the project or design):
it is deterministic, never retried, and the staging sets that one item aside.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from ..api_facts import AURORA_MAX_PER_PAGE, AURORA_RATE_LIMIT
from .base import ApiClient, ClientOptions
from .downloads import download as fetch_file
from .downloads import origin
from .errors import MalformedAnswerError, NotFoundError, TransientApiError
from .http import ApiSession

AURORA_CREDENTIALS = "AURORA_API_TOKEN / AURORA_TENANT_ID"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "text", bool: "a boolean"}.get(type(value), "a number")


def _aurora_error_detail(body: Any) -> str:
    """Aurora answers errors as {"errors": [{"message": ...}]}."""
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return "; ".join(str(e.get("message", e)) for e in body["errors"] if e) or "error"
    return str(body)[:200]


class OutcomeUnknown(TransientApiError):
    """A create whose answer was lost: it may or may not have been carried out."""


@dataclass(frozen=True)
class Page:
    """One page of a list endpoint. ``last``: no page follows it."""

    number: int
    items: list[dict]
    last: bool


class AuroraClient(ApiClient):
    """Reads projects, designs, summaries, proposals and design requests of one Aurora tenant.

    The key is sent only in the ``Authorization`` header; key and tenant id are redacted from
    every error and log line."""

    def __init__(
        self,
        *,
        base_url: str,
        tenant_id: str,
        api_token: str,
        options: ClientOptions = ClientOptions(),
        per_page: int = AURORA_MAX_PER_PAGE,
    ):
        super().__init__(options)
        self.base_url, self.tenant_id, self._api_token = base_url, tenant_id, api_token
        self.per_page = max(1, min(per_page, AURORA_MAX_PER_PAGE))

    def _new_session(self) -> ApiSession:
        return ApiSession(
            "Aurora",
            self.base_url,
            {"Authorization": f"Bearer {self._api_token}"},
            timeout_s=self.options.timeout_s,
            retry=self.options.retry,
            rate_limit=self.options.rate_limit(AURORA_RATE_LIMIT, f"aurora:{self.tenant_id}"),
            secrets=[self._api_token, self.tenant_id],
            error_detail=_aurora_error_detail,
            credential=AURORA_CREDENTIALS,
            pool_size=max(2, self.options.max_workers),
        )

    def _get(self, path: str, params: Optional[dict] = None, throttle_timeout: Optional[float] = None) -> Any:
        url = f"/tenants/{self.tenant_id}{path}"
        return self._session().request("GET", url, params=params, throttle_timeout=throttle_timeout)[1]

    def _member(self, path: str, key: str, kind: type, params: Optional[dict] = None,
                throttle_timeout: Optional[float] = None, optional_feature: bool = False) -> Any:
        """``answer[key]`` of a GET, checked to be a ``kind`` (dict or list) in an object envelope."""
        if optional_feature:
            url = f"/tenants/{self.tenant_id}{path}"
            answer = self._session().request("GET", url, optional_feature=True)[1]
        else:
            answer = self._get(path, params, throttle_timeout)
        wanted = "an object" if kind is dict else "a list"
        if not isinstance(answer, dict):
            problem = f"the answer is {_kind(answer)}, not an object holding '{key}'"
        elif key not in answer:
            keys = ", ".join(repr(k) for k in list(answer)[:5]) or "none"
            problem = f"the answer has no '{key}' (keys: {keys})"
        elif not isinstance(answer[key], kind):
            problem = f"'{key}' is {_kind(answer[key])}, not {wanted}"
        else:
            return answer[key]
        shown = self._session().redact(f"/tenants/{self.tenant_id}{path}")
        raise MalformedAnswerError("Aurora", "GET", shown, 200, f"{problem}; the item is set aside")

    def _send(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200,)) -> Any:
        url = f"/tenants/{self.tenant_id}{path}"
        return self._session().request(method, url, json_body=body, ok_statuses=ok)[1]

    # --- list endpoints --------------------------------------------------------------------

    def pages(self, collection: str, first_page: int = 1, deadline: Optional[float] = None) -> Iterator[Page]:
        """Pages of ``/tenants/{tid}/{collection}`` (``projects`` newest first, ``design_requests``
        most recently submitted first) from ``first_page`` on, ending after the last one.

        ``deadline`` (a ``time.monotonic()`` value): a request waits for the shared rate budget at
        most until then, else :class:`RateBudgetExhausted` is raised (sensors end their tick early
        rather than block past Dagster's evaluation limit)."""
        number = first_page
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            items = self._member(f"/{collection}", collection, list, {"page": number, "per_page": self.per_page}, wait)
            last = len(items) < self.per_page
            yield Page(number, items, last)
            if last:
                return
            number += 1

    def iter_projects(self) -> Iterator[dict]:
        """Every project of the tenant, newest first."""
        for page in self.pages("projects"):
            yield from page.items

    # --- single objects -------------------------------------------------------------------

    def get_project(self, project_id: str) -> dict:
        return self._member(f"/projects/{project_id}", "project", dict)

    def list_designs(self, project_id: str) -> list:
        """The project's designs (a list; its items are as Aurora sent them, checked by the staging)."""
        return self._member(f"/projects/{project_id}/designs", "designs", list)

    def get_design_summary(self, design_id: str) -> dict:
        return self._member(f"/designs/{design_id}/summary", "design", dict)

    def get_design(self, design_id: str, throttle_timeout: Optional[float] = None) -> dict:
        """One design (carries its ``project_id``)."""
        return self._member(f"/designs/{design_id}", "design", dict, throttle_timeout=throttle_timeout)

    def get_design_request(self, request_id: str, throttle_timeout: Optional[float] = None) -> dict:
        """One design request: ``project_id``, ``status``, ``design_id`` (set once accepted)."""
        return self._member(f"/design_requests/{request_id}", "design_request", dict, throttle_timeout=throttle_timeout)

    def get_default_proposal(self, design_id: str) -> Optional[dict]:
        """The design's default proposal, or None when the design has none yet (404)."""
        try:
            return self._member(f"/designs/{design_id}/proposals/default", "proposal", dict)
        except NotFoundError:
            return None

    def get_design_pricing(self, design_id: str) -> dict:
        """``GET /designs/{id}/pricing``: system price, price per watt, method, breakdown, adders.
        A key not provisioned for pricing gets 403: :class:`NotProvisionedError` (the key stays usable)."""
        return self._member(f"/designs/{design_id}/pricing", "pricing", dict, optional_feature=True)

    # --- writing: the CRM side (issue 14) -----------------------------------------------------
    # Aurora documents POST /projects ({"project": {...}} -> {"project": {...}}, 422 with
    # {"errors": [...]} for input it cannot use), PUT /projects/{id}, POST /design_requests
    # ({"design_request": {"project_id": ...}}) and POST /design_requests/{id}/accept.
    # A create is not idempotent: an attempt whose answer was lost (cut off, timed out, 5xx) is
    # NOT retried here; :class:`OutcomeUnknown` tells the caller to look the object up instead.

    def _create(self, path: str, key: str, body: dict) -> dict:
        def stop_if_maybe_applied(error: TransientApiError) -> None:
            if error.maybe_applied:
                raise OutcomeUnknown(error.service, error.method, error.path, error.status,
                                     f"{error.detail}; the request may have been carried out") from error

        url = f"/tenants/{self.tenant_id}{path}"
        answer = self._session().request("POST", url, json_body={key: body}, ok_statuses=(200, 201),
                                         on_retry=stop_if_maybe_applied)[1]
        if not isinstance(answer, dict) or not isinstance(answer.get(key), dict):
            raise MalformedAnswerError("Aurora", "POST", self.redact(url), 200, f"the answer has no '{key}' object")
        return answer[key]

    def create_project(self, project: dict) -> dict:
        """``POST /projects``; :class:`PermanentApiError` (422) names what Aurora refused."""
        return self._create("/projects", "project", project)

    def update_project(self, project_id: str, changes: dict) -> dict:
        return self._send("PUT", f"/projects/{project_id}", {"project": changes})["project"]

    def create_design_request(self, project_id: str) -> dict:
        return self._create("/design_requests", "design_request", {"project_id": project_id})

    def accept_design_request(self, request_id: str) -> dict:
        return self._send("POST", f"/design_requests/{request_id}/accept")["design_request"]

    def find_project_by_external_id(self, external_provider_id: str, max_pages: int = 20) -> Optional[dict]:
        """The newest project carrying ``external_provider_id``, or None. Aurora documents no
        filter on it, so the list is paged (newest first: a project created minutes ago is on the
        first page); ``max_pages`` bounds the search."""
        for page in self.pages("projects"):
            for project in page.items:
                if str(project.get("external_provider_id") or "") == external_provider_id:
                    return project
            if page.number >= max_pages:
                return None
        return None

    def design_requests_of(self, project_id: str) -> Optional[list[dict]]:
        """The design requests of a project through the list endpoint, or None where the tenant
        has no such endpoint (Aurora documents none; the sandbox offers it as an extension)."""
        try:
            return self._member("/design_requests", "design_requests", list,
                                {"project_id": project_id, "per_page": self.per_page})
        except NotFoundError:
            return None

    def project_assets(self, project_id: str) -> list[dict]:
        """``GET /projects/{id}/assets`` (files such as proposal PDFs, with expiring ``file_url``s)."""
        return self._member(f"/projects/{project_id}/assets", "project_assets", list)

    def get_agreement(self, agreement_id: str) -> dict:
        return self._member(f"/agreements/{agreement_id}", "agreement", dict)

    def agreement_download_url(self, agreement_id: str, attempts: int = 20, pause_s: float = 0.5) -> Optional[str]:
        """The signed PDF's URL through Aurora's asynchronous job (run, then poll the status)."""
        job = self._send("POST", f"/agreements/{agreement_id}/download_url/run", ok=(200, 202))
        job = job["agreement_download_url_job"]
        for _ in range(attempts):
            if job.get("file_url"):
                return job["file_url"]
            if job.get("status") in ("failed", "error"):
                return None
            time.sleep(pause_s)
            job = self._member(f"/agreements/{agreement_id}/download_url/status", "agreement_download_url_job",
                               dict, {"job_id": job["job_id"]})
        return None

    def download(self, url: str) -> tuple[str, bytes]:
        """A signed file URL -> (file name, bytes), through :func:`.downloads.download` (``fetch_file`` here): timeout,
        retries and a size cap; never the API key (the URL is its own credential, and usually on
        another host); against this client's rate budget when the URL is on the API's origin."""
        session = self._session()
        own = origin(url) == origin(self.base_url)
        found = fetch_file(url, self.options, rate_limit=session.rate_limit if own else None,
                         service="Aurora files" if own else "file storage", secrets=session.redactor.secrets,
                         stats=session.stats)
        return found.name, found.content

    # --- webhook subscriptions ------------------------------------------------------------
    # Aurora documents create (POST) with {"webhook": {description, event, url_template, enabled}},
    # list and retrieve; update and delete exist (PUT, DELETE). Custom headers on a subscription
    # (``headers``) are not named in Aurora's public documentation; values are never answered back.

    def list_webhooks(self) -> list[dict]:
        return self._get("/webhooks")["webhooks"]

    def create_webhook(self, webhook: dict) -> dict:
        return self._send("POST", "/webhooks", {"webhook": webhook})["webhook"]

    def update_webhook(self, webhook_id: str, changes: dict) -> dict:
        return self._send("PUT", f"/webhooks/{webhook_id}", {"webhook": changes})["webhook"]

    def delete_webhook(self, webhook_id: str) -> None:
        self._send("DELETE", f"/webhooks/{webhook_id}", ok=(200, 204))
