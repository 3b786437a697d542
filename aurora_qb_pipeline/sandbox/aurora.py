"""Aurora Solar Sync API emulator: a Starlette app over synthetic tenants.

Serves the read endpoints the pipeline uses (projects, designs, design summaries, default
proposals) and the design-request workflow, with Aurora's conventions (see
/work/shared/reference/aurora_api.md): bearer API keys bound to one tenant, singular/plural
envelopes, ``page``/``per_page`` paging without metadata, ``{"errors": [{"message": ...}]}``
error bodies, 90 requests per minute per key (through :class:`SandboxMiddleware`).

Admin routes (no authentication, never rate limited or faulted)::

    GET|PUT|PATCH /_sandbox/config            settings (latency, rate limit, faults, time_scale)
    GET|DELETE    /_sandbox/requests          request log (?summary=1 for counts)
    POST /_sandbox/design_requests/{id}/complete   submitted -> designer_completed
    POST /_sandbox/design_requests/{id}/reject     submitted -> designer_rejected  body {"reason"?}
    POST /_sandbox/mutate     {"fraction": 0.01, "seed": 1, "tenant_id"?}  designers edit designs
    POST /_sandbox/projects   {"count": n, "designs_per_project": x, "tenant_id"?}  new projects

Every admin operation is also a method of :class:`AuroraState`, for tests running the server
in-process. Stored records are never changed in place (updates replace the dict), so a handler
can serialise what it read after releasing the lock.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, AuthenticationError, SimpleUser
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from .common import ADMIN_PREFIX, SandboxConfig, SandboxMiddleware, SandboxState, admin_routes, read_json
from .synthetic import (
    DESIGN_REQUEST_STATUSES,
    REJECTION_REASONS,
    TenantBuilder,
    TenantData,
    distribute,
    format_timestamp,
    generate_tenant,
    is_revisable,
    parse_timestamp,
    revise_design,
)

DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 250
DEFAULT_RATE_LIMIT = 90  # requests per window per API key
DEFAULT_RATE_WINDOW_S = 60.0
EXTRA_TENANT_SEED_STEP = 1_000_003  # extra tenant i is generated from seed + i * step
MAX_NEW_PROJECTS = 10_000


class AuroraError(Exception):
    """An error the API answers as ``{"errors": [{"message": ...}]}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def aurora_error(status: int, message: str, headers: Optional[Mapping[str, str]] = None) -> Response:
    return JSONResponse({"errors": [{"message": message}]}, status_code=status, headers=headers)


def bearer_token(headers: Mapping[str, str]) -> Optional[str]:
    """The API key from ``Authorization: Bearer <key>``, or None."""
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def _lookup(records: Mapping[str, dict], key: str, what: str) -> dict:
    record = records.get(key)
    if record is None:
        raise AuroraError(404, f"{what} {key} not found.")
    return record


def _page_slice(items: Sequence[Any], page: int, per_page: int) -> list[Any]:
    if page < 1:
        raise AuroraError(422, "page must be 1 or greater.")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise AuroraError(422, f"per_page must be between 1 and {MAX_PER_PAGE}, got {per_page}.")
    start = (page - 1) * per_page
    return list(items[start:start + per_page])


@dataclass(frozen=True)
class _Transition:
    source: str  # the only status the transition starts from
    target: str
    stamp: str  # the timestamp field it sets


_TRANSITIONS = {
    "complete": _Transition("submitted", "designer_completed", "completed_at"),
    "reject": _Transition("submitted", "designer_rejected", "designer_rejected_at"),
    "accept": _Transition("designer_completed", "accepted", "reviewed_at"),
}


class AuroraState(SandboxState):
    """Tenants, their API keys and every operation of the emulator, guarded by one lock.

    ``tenants[0]`` given to the constructor is the *primary* tenant: admin operations act on it
    unless told otherwise. Runtime records (new projects, designs made by accepted requests)
    come from a per-tenant RNG seeded from the tenant id, so a replayed sequence of operations
    yields the same ids; their timestamps come from ``clock`` (UTC now by default)."""

    def __init__(self, tenants: Iterable[TenantData], config: Optional[SandboxConfig] = None,
                 clock: Optional[Callable[[], datetime]] = None) -> None:
        super().__init__(config or SandboxConfig(rate_limit=DEFAULT_RATE_LIMIT,
                                                 rate_window_s=DEFAULT_RATE_WINDOW_S))
        self.lock = threading.RLock()
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.tenants: dict[str, TenantData] = {}
        self._by_token: dict[str, TenantData] = {}
        self._builders: dict[str, TenantBuilder] = {}
        self._orders: dict[tuple[str, str], list[str]] = {}
        for tenant in tenants:
            self.add_tenant(tenant)

    @classmethod
    def generate(cls, seed: int = 0, projects: int = 20, designs_per_project: float = 2.5,
                 config: Optional[SandboxConfig] = None, extra_tenants: int = 1, messy_fraction: float = 0.15,
                 extra_tenant_projects: int = 5,
                 clock: Optional[Callable[[], datetime]] = None) -> "AuroraState":
        """A state with a generated primary tenant and ``extra_tenants`` small ones (isolation tests).

        Extra tenant ``i`` (1-based) comes from ``seed + i * EXTRA_TENANT_SEED_STEP``."""
        tenants = [generate_tenant(seed, projects, designs_per_project, messy_fraction)]
        tenants += [
            generate_tenant(seed + i * EXTRA_TENANT_SEED_STEP, extra_tenant_projects, designs_per_project,
                            messy_fraction)
            for i in range(1, extra_tenants + 1)
        ]
        return cls(tenants, config, clock)

    # --- tenants and keys -----------------------------------------------------------------
    def add_tenant(self, tenant: TenantData) -> None:
        with self.lock:
            if tenant.tenant_id in self.tenants or tenant.token in self._by_token:
                raise ValueError(f"tenant {tenant.tenant_id} or its API key is already registered")
            self.tenants[tenant.tenant_id] = tenant
            self._by_token[tenant.token] = tenant
            runtime_rng = random.Random(f"runtime:{tenant.tenant_id}")
            self._builders[tenant.tenant_id] = TenantBuilder(runtime_rng, tenant)

    @property
    def primary(self) -> TenantData:
        return next(iter(self.tenants.values()))

    def tenant_for_token(self, token: str) -> Optional[TenantData]:
        return self._by_token.get(token)

    def tenant(self, tenant_id: Optional[str] = None) -> TenantData:
        """The tenant with this id (the primary one for None); 404 when unknown."""
        return self.primary if tenant_id is None else _lookup(self.tenants, tenant_id, "Tenant")

    def _now(self) -> datetime:
        return self.clock().astimezone(timezone.utc)

    def _sorted_ids(self, tenant: TenantData, collection: str, time_field: str) -> list[str]:
        """Ids of a collection, newest first (ties broken by id), cached until the next insert."""
        key = (tenant.tenant_id, collection)
        order = self._orders.get(key)
        if order is None:
            records = getattr(tenant, collection)
            order = sorted(records, reverse=True,
                           key=lambda rid: (parse_timestamp(records[rid][time_field]), rid))
            self._orders[key] = order
        return order

    def _inserted(self, tenant: TenantData) -> None:
        for collection in ("projects", "design_requests"):
            self._orders.pop((tenant.tenant_id, collection), None)

    # --- reads ----------------------------------------------------------------------------
    def list_projects(self, tenant_id: str, page: int = 1, per_page: int = DEFAULT_PER_PAGE) -> list[dict]:
        with self.lock:
            tenant = self.tenant(tenant_id)
            ids = _page_slice(self._sorted_ids(tenant, "projects", "created_at"), page, per_page)
            return [tenant.projects[i] for i in ids]

    def get_project(self, tenant_id: str, project_id: str) -> dict:
        with self.lock:
            return _lookup(self.tenant(tenant_id).projects, project_id, "Project")

    def list_designs(self, tenant_id: str, project_id: str) -> list[dict]:
        with self.lock:
            tenant = self.tenant(tenant_id)
            _lookup(tenant.projects, project_id, "Project")
            return tenant.designs_of(project_id)

    def get_design(self, tenant_id: str, design_id: str) -> dict:
        with self.lock:
            return _lookup(self.tenant(tenant_id).designs, design_id, "Design")

    def get_design_summary(self, tenant_id: str, design_id: str) -> dict:
        with self.lock:
            return _lookup(self.tenant(tenant_id).summaries, design_id, "Design")

    def get_default_proposal(self, tenant_id: str, design_id: str) -> dict:
        with self.lock:
            tenant = self.tenant(tenant_id)
            _lookup(tenant.designs, design_id, "Design")
            return _lookup(tenant.proposals, design_id, "Default proposal of design")

    def list_design_requests(self, tenant_id: str, page: int = 1, per_page: int = DEFAULT_PER_PAGE,
                             status: Optional[str] = None, project_id: Optional[str] = None) -> list[dict]:
        """Emulator extension (no public list endpoint is documented): newest submission first."""
        if status is not None and status not in DESIGN_REQUEST_STATUSES:
            raise AuroraError(422, f"status must be one of {', '.join(DESIGN_REQUEST_STATUSES)}.")
        with self.lock:
            tenant = self.tenant(tenant_id)
            ids = self._sorted_ids(tenant, "design_requests", "submission_time")
            requests = (tenant.design_requests[i] for i in ids)
            matching = [r for r in requests
                        if (status is None or r["status"] == status)
                        and (project_id is None or r["project_id"] == project_id)]
            return _page_slice(matching, page, per_page)

    def get_design_request(self, tenant_id: str, request_id: str) -> dict:
        with self.lock:
            return _lookup(self.tenant(tenant_id).design_requests, request_id, "Design request")

    # --- design request workflow ------------------------------------------------------------
    def create_design_request(self, tenant_id: str, project_id: Any, image_src: Any = None) -> dict:
        if not isinstance(project_id, str) or not project_id:
            raise AuroraError(422, "design_request.project_id is required.")
        if image_src is not None and not isinstance(image_src, str):
            raise AuroraError(422, "design_request.image_src must be a string.")
        with self.lock:
            tenant = self.tenant(tenant_id)
            if project_id not in tenant.projects:
                raise AuroraError(422, f"design_request.project_id: project {project_id} not found.")
            request = self._builders[tenant.tenant_id].design_request(
                project_id, "submitted", self._now(), image_src=image_src)
            tenant.add_design_request(request)
            self._inserted(tenant)
            return request

    def _transition(self, tenant: TenantData, request_id: str, action: str, **changes: Any) -> dict:
        rule = _TRANSITIONS[action]
        current = _lookup(tenant.design_requests, request_id, "Design request")
        if current["status"] != rule.source:
            raise AuroraError(422, f"Cannot {action} design request {request_id}: its status is "
                                   f"{current['status']!r}, expected {rule.source!r}.")
        updated = {**current, "status": rule.target, rule.stamp: format_timestamp(self._now()), **changes}
        tenant.design_requests[request_id] = updated
        return updated

    def _tenant_of_request(self, request_id: str) -> TenantData:
        tenant = next((t for t in self.tenants.values() if request_id in t.design_requests), None)
        if tenant is None:
            raise AuroraError(404, f"Design request {request_id} not found.")
        return tenant

    def complete_design_request(self, request_id: str) -> dict:
        """Admin: the designer finished the model (submitted -> designer_completed)."""
        with self.lock:
            return self._transition(self._tenant_of_request(request_id), request_id, "complete")

    def reject_design_request(self, request_id: str, reason: Optional[str] = None) -> dict:
        """Admin: the designer could not build a model (submitted -> designer_rejected)."""
        with self.lock:
            return self._transition(self._tenant_of_request(request_id), request_id, "reject",
                                    rejection_reason=reason or REJECTION_REASONS[0])

    def accept_design_request(self, tenant_id: str, request_id: str) -> dict:
        """designer_completed -> accepted: creates the design (with summary and proposal) and
        stores its id on the request."""
        with self.lock:
            tenant = self.tenant(tenant_id)
            accepted = self._transition(tenant, request_id, "accept")
            project = tenant.projects[accepted["project_id"]]
            design_id = self._add_design(tenant, project, self._now(), name="Design Service Model")
            tenant.design_requests[request_id] = accepted = {**accepted, "design_id": design_id}
            return accepted

    # --- admin: change the data while a pipeline runs ---------------------------------------
    def _add_design(self, tenant: TenantData, project: dict, created: datetime,
                    name: Optional[str] = None) -> str:
        index = len(tenant.project_design_ids[project["id"]])
        bundle = self._builders[tenant.tenant_id].design(project, created, index, name=name)
        tenant.add_design(bundle)
        return bundle.design["id"]

    def mutate(self, fraction: float, seed: int = 0, tenant_id: Optional[str] = None) -> dict:
        """Designers edit ``fraction`` of the designs (at least one when fraction > 0), chosen
        deterministically from ``seed``: module count and/or azimuth change (sizes, bill of
        materials and energy follow), the default proposal's updated_at moves to now, and each
        affected project gets a design request submitted, completed and accepted now."""
        if not 0 <= fraction <= 1:
            raise AuroraError(422, "fraction must be between 0 and 1.")
        rng = random.Random(seed)
        with self.lock:
            tenant = self.tenant(tenant_id)
            now = self._now()
            candidates = [d for d in tenant.designs if is_revisable(tenant.summaries[d])]
            wanted = round(fraction * len(tenant.designs)) or (1 if fraction > 0 else 0)
            changed = rng.sample(candidates, min(wanted, len(candidates)))
            first_change: dict[str, str] = {}  # project id -> first changed design
            for design_id in changed:
                design = tenant.designs[design_id]
                project = tenant.projects[design["project_id"]]
                tenant.designs[design_id], tenant.summaries[design_id] = revise_design(
                    rng, design, tenant.summaries[design_id], project)
                proposal = tenant.proposals.get(design_id)
                if proposal is not None:
                    tenant.proposals[design_id] = {**proposal, "updated_at": format_timestamp(now, iso=True)}
                first_change.setdefault(project["id"], design_id)
            builder = self._builders[tenant.tenant_id]
            for project_id, design_id in first_change.items():
                tenant.add_design_request(builder.design_request(
                    project_id, "accepted", now, finished=now, reviewed=now, design_id=design_id))
            self._inserted(tenant)
            return {"changed_design_ids": changed, "project_ids": list(first_change)}

    def add_projects(self, count: int, designs_per_project: float = 2.5,
                     tenant_id: Optional[str] = None) -> dict:
        """New projects created now (so they list first), with round(count * designs_per_project)
        designs spread over them."""
        if not 0 <= count <= MAX_NEW_PROJECTS:
            raise AuroraError(422, f"count must be between 0 and {MAX_NEW_PROJECTS}.")
        if designs_per_project < 0:
            raise AuroraError(422, "designs_per_project must be 0 or greater.")
        with self.lock:
            tenant = self.tenant(tenant_id)
            builder = self._builders[tenant.tenant_id]
            now = self._now()
            project_ids, design_ids = [], []
            for design_count in distribute(builder.rng, count, round(count * designs_per_project)):
                project = builder.project(now)
                tenant.add_project(project)
                project_ids.append(project["id"])
                design_ids += [self._add_design(tenant, project, now) for _ in range(design_count)]
            self._inserted(tenant)
            return {"project_ids": project_ids, "design_ids": design_ids}


# --- HTTP layer --------------------------------------------------------------------------------
def _state(request: Request) -> AuroraState:
    return request.app.state.aurora


def _envelope(key: str, value: Any) -> Response:
    return JSONResponse({key: value})


def _int_query(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise AuroraError(422, f"{name} must be an integer, got {raw!r}.") from None


def _paging(request: Request) -> dict[str, int]:
    return {"page": _int_query(request, "page", 1),
            "per_page": _int_query(request, "per_page", DEFAULT_PER_PAGE)}


async def _json_object(request: Request, envelope: Optional[str] = None) -> dict:
    """The JSON object body (``{}`` when empty), or its ``envelope`` member; 400 / 422 otherwise."""
    try:
        body = await read_json(request)
    except ValueError as exc:
        raise AuroraError(400, str(exc)) from None
    if body is None:
        body = {}
    if envelope is not None:
        body = body.get(envelope) if isinstance(body, dict) else None
    if not isinstance(body, dict):
        shape = f'{{"{envelope}": {{...}}}}' if envelope else "a JSON object"
        raise AuroraError(422, f"Request body must be {shape}.")
    return body


def _number(body: dict, key: str, default: Any, kind: type) -> Any:
    """``body[key]`` (or ``default``) checked to be a ``kind`` number; bools are not numbers."""
    value = body.get(key, default)
    numeric = (int, float) if kind is float else (int,)
    if isinstance(value, bool) or not isinstance(value, numeric):
        raise AuroraError(422, f"{key} must be {'a number' if kind is float else 'an integer'}.")
    return value


def _by_id(envelope: str, operation: Callable[[AuroraState, str, str], Any], param: str):
    """Endpoint answering ``{envelope: operation(state, tenant_id, <path param>)}``."""

    async def endpoint(request: Request) -> Response:
        return _envelope(envelope, operation(_state(request), request.path_params["tenant_id"],
                                             request.path_params[param]))

    return endpoint


async def list_projects(request: Request) -> Response:
    projects = _state(request).list_projects(request.path_params["tenant_id"], **_paging(request))
    return _envelope("projects", projects)


async def list_design_requests(request: Request) -> Response:
    query = request.query_params
    requests = _state(request).list_design_requests(
        request.path_params["tenant_id"], status=query.get("status") or None,
        project_id=query.get("project_id") or None, **_paging(request))
    return _envelope("design_requests", requests)


async def create_design_request(request: Request) -> Response:
    body = await _json_object(request, envelope="design_request")
    created = _state(request).create_design_request(
        request.path_params["tenant_id"], body.get("project_id"), body.get("image_src"))
    return _envelope("design_request", created)


async def admin_complete(request: Request) -> Response:
    completed = _state(request).complete_design_request(request.path_params["request_id"])
    return _envelope("design_request", completed)


async def admin_reject(request: Request) -> Response:
    reason = (await _json_object(request)).get("reason")
    if reason is not None and not isinstance(reason, str):
        raise AuroraError(422, "reason must be a string.")
    rejected = _state(request).reject_design_request(request.path_params["request_id"], reason)
    return _envelope("design_request", rejected)


async def admin_mutate(request: Request) -> Response:
    body = await _json_object(request)
    result = _state(request).mutate(_number(body, "fraction", 0.01, float), _number(body, "seed", 0, int),
                                    body.get("tenant_id"))
    return JSONResponse(result)


async def admin_add_projects(request: Request) -> Response:
    body = await _json_object(request)
    result = _state(request).add_projects(_number(body, "count", 1, int),
                                          _number(body, "designs_per_project", 2.5, float),
                                          body.get("tenant_id"))
    return JSONResponse(result)


class _AuthFailure(AuthenticationError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class BearerKeyBackend(AuthenticationBackend):
    """Aurora API keys: each belongs to one tenant; another tenant's path answers 404."""

    def __init__(self, state: AuroraState) -> None:
        self.state = state

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser]:
        token = bearer_token(conn.headers)
        if token is None:
            raise _AuthFailure(401, "Missing API key: send 'Authorization: Bearer <key>'.")
        tenant = self.state.tenant_for_token(token)
        if tenant is None:
            raise _AuthFailure(401, "Invalid API key.")
        tenant_id = conn.path_params.get("tenant_id")
        if tenant_id != tenant.tenant_id:
            raise _AuthFailure(404, f"Tenant {tenant_id} not found.")
        return AuthCredentials(["authenticated"]), SimpleUser(tenant.tenant_id)


def _auth_failed(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    return aurora_error(getattr(exc, "status", 401), str(exc))


async def _http_exception(request: Request, exc: HTTPException) -> Response:
    message = exc.detail
    if exc.status_code in (404, 405):
        message = f"{exc.detail}: {request.method} {request.url.path}"
    return aurora_error(exc.status_code, message, exc.headers)


async def _aurora_exception(request: Request, exc: AuroraError) -> Response:
    return aurora_error(exc.status, exc.message)


async def _unexpected(request: Request, exc: Exception) -> Response:
    return aurora_error(500, "Internal server error.")


def create_app(state: AuroraState) -> SandboxMiddleware:
    """The emulator as an ASGI app (Starlette routing, wrapped in :class:`SandboxMiddleware`)."""
    tenant_routes = [
        Route("/projects", list_projects, methods=["GET"]),
        Route("/projects/{project_id}", _by_id("project", AuroraState.get_project, "project_id")),
        Route("/projects/{project_id}/designs", _by_id("designs", AuroraState.list_designs, "project_id")),
        Route("/designs/{design_id}", _by_id("design", AuroraState.get_design, "design_id")),
        Route("/designs/{design_id}/summary", _by_id("design", AuroraState.get_design_summary, "design_id")),
        Route("/designs/{design_id}/proposals/default",
              _by_id("proposal", AuroraState.get_default_proposal, "design_id")),
        Route("/design_requests", list_design_requests, methods=["GET"]),
        Route("/design_requests", create_design_request, methods=["POST"]),
        Route("/design_requests/{request_id}",
              _by_id("design_request", AuroraState.get_design_request, "request_id")),
        Route("/design_requests/{request_id}/accept",
              _by_id("design_request", AuroraState.accept_design_request, "request_id"), methods=["POST"]),
    ]
    auth = Middleware(AuthenticationMiddleware, backend=BearerKeyBackend(state), on_error=_auth_failed)
    routes = [
        Mount("/tenants/{tenant_id}", routes=tenant_routes, middleware=[auth]),
        *admin_routes(state),
        Route(f"{ADMIN_PREFIX}/design_requests/{{request_id}}/complete", admin_complete, methods=["POST"]),
        Route(f"{ADMIN_PREFIX}/design_requests/{{request_id}}/reject", admin_reject, methods=["POST"]),
        Route(f"{ADMIN_PREFIX}/mutate", admin_mutate, methods=["POST"]),
        Route(f"{ADMIN_PREFIX}/projects", admin_add_projects, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={
        HTTPException: _http_exception,
        AuroraError: _aurora_exception,
        Exception: _unexpected,
    })
    app.state.aurora = state
    return SandboxMiddleware(app, state, credential=bearer_token, render_error=aurora_error)
