"""Admin routes under ``/_sandbox`` (no authentication, never rate limited or faulted).

They let a test or demo in another process do what Aurora's users and services would: move
design requests, run the design service, change project and agreement statuses, edit designs,
and configure or read webhook delivery (keys, deletions, partner applications and site surveys:
:mod:`.admin_partners`). Each is a thin wrapper over an :class:`AuroraState`
method (or ``state.webhooks``), which in-process tests call directly. Errors use Aurora's shape.
"""

from __future__ import annotations

from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..common import ADMIN_PREFIX, admin_routes
from .admin_partners import partner_admin_routes
from .errors import AuroraError
from .http_util import envelope, json_object, number, text
from .settings import update_config
from .state import AuroraState
from .webhooks import canonical_event


def _state(request: Request) -> AuroraState:
    return request.app.state.aurora


def _config_routes(path: str, read: Callable[[AuroraState], dict], write: Callable[[AuroraState, dict], dict]):
    async def get(request: Request) -> Response:
        return JSONResponse(read(_state(request)))

    async def put(request: Request) -> Response:
        body = await json_object(request)
        try:
            return JSONResponse(write(_state(request), body))
        except ValueError as exc:
            raise AuroraError(400, str(exc)) from None

    return [Route(ADMIN_PREFIX + path, get, methods=["GET"]), Route(ADMIN_PREFIX + path, put, methods=["PUT", "PATCH"])]


def _write_services(state: AuroraState, body: dict) -> dict:
    with state.lock:
        update_config(state.services, body)
        return state.services.as_dict()


# --- tenants --------------------------------------------------------------------------------------
async def list_tenants(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        return JSONResponse([{**state.tenant_options(tid), "projects": len(t.projects), "designs": len(t.designs)}
                             for tid, t in state.tenants.items()])


async def get_tenant_config(request: Request) -> Response:
    return JSONResponse(_state(request).tenant_options(request.path_params["tenant_id"]))


async def put_tenant_config(request: Request) -> Response:
    body = await json_object(request)
    try:
        return JSONResponse(_state(request).set_tenant_options(request.path_params["tenant_id"], **body))
    except ValueError as exc:
        raise AuroraError(400, str(exc)) from None


# --- design requests ------------------------------------------------------------------------------
async def complete_request(request: Request) -> Response:
    return envelope("design_request", _state(request).complete_design_request(request.path_params["request_id"]))


async def reject_request(request: Request) -> Response:
    reason = text(await json_object(request), "reason")
    rejected = _state(request).reject_design_request(request.path_params["request_id"], reason)
    return envelope("design_request", rejected)


async def accept_request(request: Request) -> Response:
    accepted = _state(request).accept_design_request(None, request.path_params["request_id"])
    return envelope("design_request", accepted)


async def run_design_service(request: Request) -> Response:
    tenant_id = text(await json_object(request), "tenant_id")
    return envelope("design_requests", _state(request).run_design_service(tenant_id))


# --- projects, designs, agreements ---------------------------------------------------------------
async def mutate(request: Request) -> Response:
    body = await json_object(request)
    result = _state(request).mutate(number(body, "fraction", 0.01, float), number(body, "seed", 0, int),
                                    text(body, "tenant_id"))
    return JSONResponse(result)


async def add_projects(request: Request) -> Response:
    body = await json_object(request)
    result = _state(request).add_projects(number(body, "count", 1, int),
                                          number(body, "designs_per_project", 2.5, float), text(body, "tenant_id"))
    return JSONResponse(result)


async def project_status(request: Request) -> Response:
    status = text(await json_object(request), "status", required=True)
    return envelope("project", _state(request).set_project_status(request.path_params["project_id"], status))


async def simulate(request: Request) -> Response:
    job = _state(request).simulate_design(request.path_params["design_id"])
    return envelope("performance_simulation_job", job)


async def create_agreement(request: Request) -> Response:
    body = await json_object(request)
    agreement = _state(request).create_agreement(
        text(body, "design_id", required=True), text(body, "template_name", "Residential Solar Agreement"),
        text(body, "signing_provider", "docusign"))
    return envelope("agreement", agreement)


async def agreement_status(request: Request) -> Response:
    body = await json_object(request)
    agreement = _state(request).set_agreement_status(request.path_params["agreement_id"],
                                                     text(body, "status", required=True), text(body, "error_message"))
    return envelope("agreement", agreement)


# --- webhook delivery -----------------------------------------------------------------------------
async def deliveries(request: Request) -> Response:
    query = request.query_params
    return JSONResponse(_state(request).webhooks.deliveries(
        event=query.get("event"), status=query.get("status"), subscription_id=query.get("subscription_id"),
        tenant_id=query.get("tenant_id")))


async def clear_deliveries(request: Request) -> Response:
    _state(request).webhooks.clear_log()
    return Response(status_code=204)


async def events(request: Request) -> Response:
    query = request.query_params
    return JSONResponse(_state(request).webhooks.events(event=query.get("event"), tenant_id=query.get("tenant_id")))


async def flush(request: Request) -> Response:
    return JSONResponse({"sent": _state(request).webhooks.flush()})


async def emit(request: Request) -> Response:
    """Publish an arbitrary event (values are its placeholders), e.g. for a receiver's tests."""
    body = await json_object(request)
    state = _state(request)
    name, values = text(body, "event", required=True), body.get("values", {})
    tenant = state.tenant(text(body, "tenant_id"))
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise AuroraError(422, "values must be an object of placeholder names to strings.")
    try:
        event = canonical_event(name)
        return JSONResponse(state.webhooks.publish(tenant.tenant_id, event, **{k.strip("<>"): v
                                                                                  for k, v in values.items()}))
    except (KeyError, ValueError) as exc:
        raise AuroraError(422, f"Cannot emit {name!r}: {exc}") from None


def _route(path: str, endpoint: Any, *methods: str) -> Route:
    return Route(ADMIN_PREFIX + path, endpoint, methods=list(methods))


def aurora_admin_routes(state: AuroraState) -> list[Route]:
    return [
        *admin_routes(state),
        *_config_routes("/services/config", lambda s: s.services.as_dict(), _write_services),
        *_config_routes("/webhooks/config", lambda s: s.webhooks.config.as_dict(),
                        lambda s, body: s.webhooks.configure(**body)),
        _route("/tenants", list_tenants, "GET"),
        _route("/tenants/{tenant_id}/config", get_tenant_config, "GET"),
        _route("/tenants/{tenant_id}/config", put_tenant_config, "PUT", "PATCH"),
        _route("/design_requests/{request_id}/complete", complete_request, "POST"),
        _route("/design_requests/{request_id}/reject", reject_request, "POST"),
        _route("/design_requests/{request_id}/accept", accept_request, "POST"),
        _route("/design_service/run", run_design_service, "POST"),
        _route("/mutate", mutate, "POST"),
        _route("/projects", add_projects, "POST"),
        _route("/projects/{project_id}/status", project_status, "POST"),
        _route("/designs/{design_id}/simulate", simulate, "POST"),
        _route("/agreements", create_agreement, "POST"),
        _route("/agreements/{agreement_id}/status", agreement_status, "POST"),
        _route("/webhooks/deliveries", deliveries, "GET"),
        _route("/webhooks/deliveries", clear_deliveries, "DELETE"),
        _route("/webhooks/events", events, "GET"),
        _route("/webhooks/flush", flush, "POST"),
        _route("/webhooks/emit", emit, "POST"),
        *partner_admin_routes(),
    ]
