"""The tenant API (``/tenants/{tenant_id}/...``, bearer key required) and the file downloads.

Status codes follow Aurora's table: 200 (create answers 200 too, as the project tutorial shows),
202 for a started job, 204 for a delete, 400 malformed JSON, 401/404 authentication (see
:mod:`.auth`), 403 a key without the scope a route needs or an endpoint not provisioned for the
tenant, 404 unknown or another tenant's object, 405 wrong verb, 409 operation in progress,
422 invalid input (``{"errors": [...]}``, one message per problem).

Every route names the scope it needs (:func:`~.auth.scoped`); a standard key has them all.
"""

from __future__ import annotations

from typing import Any, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import scoped
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


# --- site surveys ---------------------------------------------------------------------------------
async def site_survey_request(request: Request) -> Response:
    survey = _state(request).get_site_survey_request(_tid(request), request.path_params["survey_id"],
                                                     _base_url(request))
    return envelope("site_survey_request", survey)


def _survey_upload(part: str):
    """``PUT`` of one part of a survey: body ``{part: ...}``, answered ``{part: <stored>}``."""

    async def endpoint(request: Request) -> Response:
        body = await json_object(request)
        if set(body) != {part}:
            raise AuroraError(422, f"Request body must be {{\"{part}\": ...}} and nothing else.")
        stored = _state(request).upload_site_survey(_tid(request), request.path_params["survey_id"], part, body[part])
        return envelope(part, stored)

    return endpoint


async def site_survey_status(request: Request) -> Response:
    body = await json_object(request, "site_survey")
    survey = _state(request).set_site_survey_status(_tid(request), request.path_params["survey_id"], body)
    return envelope("site_survey", survey)


# --- files (signed URLs, no API key) --------------------------------------------------------------
async def download_file(request: Request) -> Response:
    try:
        name, content, media_type = _state(request).open_file(request.path_params["token"])
    except (ValueError, KeyError):
        raise AuroraError(403, "Invalid download URL.") from None
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "'")
    return Response(content, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{ascii_name}"'})


def _route(path: str, scope: str, endpoint, *methods: str) -> Route:
    return Route(path, scoped(scope, endpoint), methods=list(methods))


def tenant_routes() -> list[Route]:
    S, r = AuroraState, _route
    return [
        r("/projects", "read_projects", list_projects, "GET"),
        r("/projects", "write_projects", create_project, "POST"),
        r("/projects/{project_id}", "read_projects", _by_id("project", S.get_project, "project_id"), "GET"),
        r("/projects/{project_id}", "write_projects", update_project, "PUT", "PATCH"),
        r("/projects/{project_id}/designs", "read_designs", _by_id("designs", S.list_designs, "project_id"), "GET"),
        r("/projects/{project_id}/assets", "read_projects", project_assets, "GET"),
        r("/designs/{design_id}", "read_designs", _by_id("design", S.get_design, "design_id"), "GET"),
        r("/designs/{design_id}/summary", "read_designs", _by_id("design", S.get_design_summary, "design_id"),
          "GET"),
        r("/designs/{design_id}/pricing", "read_pricing", _by_id("pricing", S.get_design_pricing, "design_id"),
          "GET"),
        r("/designs/{design_id}/proposals/default", "read_designs",
          _by_id("proposal", S.get_default_proposal, "design_id"), "GET"),
        r("/designs/{design_id}/performance_simulation/run", "write_designs", run_simulation, "POST"),
        r("/designs/{design_id}/performance_simulation/status", "read_designs", simulation_status, "GET"),
        r("/design_requests", "read_design_requests", list_design_requests, "GET"),
        r("/design_requests", "write_design_requests", create_design_request, "POST"),
        r("/design_requests/{request_id}", "read_design_requests",
          _by_id("design_request", S.get_design_request, "request_id"), "GET"),
        r("/design_requests/{request_id}/accept", "write_design_requests",
          _by_id("design_request", S.accept_design_request, "request_id"), "POST"),
        r("/agreements/{agreement_id}", "read_agreements", _by_id("agreement", S.get_agreement, "agreement_id"),
          "GET"),
        r("/agreements/{agreement_id}/download_url/run", "read_agreements", run_agreement_download, "POST"),
        r("/agreements/{agreement_id}/download_url/status", "read_agreements", agreement_download_status, "GET"),
        r("/webhooks", "manage_webhooks", list_webhooks, "GET"),
        r("/webhooks", "manage_webhooks", create_webhook, "POST"),
        r("/webhooks/{webhook_id}", "manage_webhooks", get_webhook, "GET"),
        r("/webhooks/{webhook_id}", "manage_webhooks", update_webhook, "PUT", "PATCH"),
        r("/webhooks/{webhook_id}", "manage_webhooks", delete_webhook, "DELETE"),
        r("/site_surveys/{survey_id}/request", "read_site_surveys", site_survey_request, "GET"),
        r("/site_surveys/{survey_id}/electrical", "write_site_surveys", _survey_upload("electrical"), "PUT"),
        r("/site_surveys/{survey_id}/electrical/subpanels", "write_site_surveys", _survey_upload("subpanels"),
          "PUT"),
        r("/site_surveys/{survey_id}/roofs/mounting_planes", "write_site_surveys",
          _survey_upload("mounting_planes"), "PUT"),
        r("/site_surveys/{survey_id}/status", "write_site_surveys", site_survey_status, "PUT"),
    ]


def file_routes() -> list[Route]:
    return [Route(FILES_PREFIX + "/{token}", download_file, methods=["GET"])]
