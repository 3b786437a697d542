"""The tenant API (``/tenants/{tenant_id}/...``, bearer key required) and the file downloads.

Status codes follow Aurora's table: 200 (create answers 200 too, as the project tutorial shows),
202 for a started job, 204 for a delete, 400 malformed JSON, 401/404 authentication (see
:mod:`.auth`), 404 unknown or another tenant's object, 405 wrong verb, 409 operation in progress,
422 invalid input (``{"errors": [...]}``, one message per problem).
"""

from __future__ import annotations

from typing import Any, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import AuroraError
from .files import FILES_PREFIX
from .http_util import envelope, json_object, paging
from .state import AuroraState


def _state(request: Request) -> AuroraState:
    return request.app.state.aurora


def _tid(request: Request) -> str:
    return request.path_params["tenant_id"]


def _base_url(request: Request) -> str:
    return str(request.base_url)


def _by_id(key: str, operation: Callable[[AuroraState, str, str], Any], param: str):
    """Endpoint answering ``{key: operation(state, tenant_id, <path param>)}``."""

    async def endpoint(request: Request) -> Response:
        return envelope(key, operation(_state(request), _tid(request), request.path_params[param]))

    return endpoint


# --- projects -----------------------------------------------------------------------------------
async def list_projects(request: Request) -> Response:
    return envelope("projects", _state(request).list_projects(_tid(request), **paging(request)))


async def create_project(request: Request) -> Response:
    body = await json_object(request, "project")
    return envelope("project", _state(request).create_project(_tid(request), body))


async def update_project(request: Request) -> Response:
    body = await json_object(request, "project")
    project = _state(request).update_project(_tid(request), request.path_params["project_id"], body)
    return envelope("project", project)


async def project_assets(request: Request) -> Response:
    assets = _state(request).project_assets(_tid(request), request.path_params["project_id"], _base_url(request))
    return envelope("project_assets", assets)


# --- design requests ----------------------------------------------------------------------------
async def list_design_requests(request: Request) -> Response:
    """EMULATOR EXTENSION: Aurora documents no list endpoint; a tenant switched off answers 404."""
    state = _state(request)
    if not state.design_request_list_enabled(_tid(request)):
        raise HTTPException(404)
    query = request.query_params
    requests = state.list_design_requests(_tid(request), status=query.get("status") or None,
                                          project_id=query.get("project_id") or None, **paging(request))
    return envelope("design_requests", requests)


async def create_design_request(request: Request) -> Response:
    body = await json_object(request, "design_request")
    created = _state(request).create_design_request(_tid(request), body.get("project_id"), body.get("image_src"))
    return envelope("design_request", created)


# --- async jobs -----------------------------------------------------------------------------------
async def run_simulation(request: Request) -> Response:
    job = _state(request).run_simulation(_tid(request), request.path_params["design_id"])
    return envelope("performance_simulation_job", job, status=202)


async def simulation_status(request: Request) -> Response:
    job = _state(request).simulation_status(_tid(request), request.path_params["design_id"],
                                            request.query_params.get("job_id"))
    return envelope("performance_simulation_job", job)


async def run_agreement_download(request: Request) -> Response:
    job = _state(request).start_agreement_download(_tid(request), request.path_params["agreement_id"],
                                                   _base_url(request))
    return envelope("agreement_download_url_job", job, status=202)


async def agreement_download_status(request: Request) -> Response:
    job = _state(request).agreement_download_status(_tid(request), request.path_params["agreement_id"],
                                                    request.query_params.get("job_id"))
    return envelope("agreement_download_url_job", job)


# --- webhooks -----------------------------------------------------------------------------------
async def list_webhooks(request: Request) -> Response:
    return envelope("webhooks", _state(request).webhooks.list(_tid(request)))


async def create_webhook(request: Request) -> Response:
    body = await json_object(request, "webhook")
    return envelope("webhook", _state(request).webhooks.create(_tid(request), body))


async def get_webhook(request: Request) -> Response:
    return envelope("webhook", _state(request).webhooks.get(_tid(request), request.path_params["webhook_id"]))


async def update_webhook(request: Request) -> Response:
    body = await json_object(request, "webhook")
    updated = _state(request).webhooks.update(_tid(request), request.path_params["webhook_id"], body)
    return envelope("webhook", updated)


async def delete_webhook(request: Request) -> Response:
    _state(request).webhooks.delete(_tid(request), request.path_params["webhook_id"])
    return Response(status_code=204)


# --- files (signed URLs, no API key) --------------------------------------------------------------
async def download_file(request: Request) -> Response:
    try:
        name, content = _state(request).open_file(request.path_params["token"])
    except (ValueError, KeyError):
        raise AuroraError(403, "Invalid download URL.") from None
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "'")
    return Response(content, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{ascii_name}"'})


def tenant_routes() -> list[Route]:
    S = AuroraState
    return [
        Route("/projects", list_projects, methods=["GET"]),
        Route("/projects", create_project, methods=["POST"]),
        Route("/projects/{project_id}", _by_id("project", S.get_project, "project_id"), methods=["GET"]),
        Route("/projects/{project_id}", update_project, methods=["PUT", "PATCH"]),
        Route("/projects/{project_id}/designs", _by_id("designs", S.list_designs, "project_id"), methods=["GET"]),
        Route("/projects/{project_id}/assets", project_assets, methods=["GET"]),
        Route("/designs/{design_id}", _by_id("design", S.get_design, "design_id"), methods=["GET"]),
        Route("/designs/{design_id}/summary", _by_id("design", S.get_design_summary, "design_id"), methods=["GET"]),
        Route("/designs/{design_id}/proposals/default", _by_id("proposal", S.get_default_proposal, "design_id"),
              methods=["GET"]),
        Route("/designs/{design_id}/performance_simulation/run", run_simulation, methods=["POST"]),
        Route("/designs/{design_id}/performance_simulation/status", simulation_status, methods=["GET"]),
        Route("/design_requests", list_design_requests, methods=["GET"]),
        Route("/design_requests", create_design_request, methods=["POST"]),
        Route("/design_requests/{request_id}", _by_id("design_request", S.get_design_request, "request_id"),
              methods=["GET"]),
        Route("/design_requests/{request_id}/accept",
              _by_id("design_request", S.accept_design_request, "request_id"), methods=["POST"]),
        Route("/agreements/{agreement_id}", _by_id("agreement", S.get_agreement, "agreement_id"), methods=["GET"]),
        Route("/agreements/{agreement_id}/download_url/run", run_agreement_download, methods=["POST"]),
        Route("/agreements/{agreement_id}/download_url/status", agreement_download_status, methods=["GET"]),
        Route("/webhooks", list_webhooks, methods=["GET"]),
        Route("/webhooks", create_webhook, methods=["POST"]),
        Route("/webhooks/{webhook_id}", get_webhook, methods=["GET"]),
        Route("/webhooks/{webhook_id}", update_webhook, methods=["PUT", "PATCH"]),
        Route("/webhooks/{webhook_id}", delete_webhook, methods=["DELETE"]),
    ]


def file_routes() -> list[Route]:
    return [Route(FILES_PREFIX + "/{token}", download_file, methods=["GET"])]
