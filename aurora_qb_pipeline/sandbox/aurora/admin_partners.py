"""Admin routes (``/_sandbox``, no key) for keys, deletions, partner applications and site surveys.

What Aurora's account team, tenant admins and app users do, for tests and demos in another
process; each wraps an :class:`AuroraState` method of the same purpose:

* ``POST /tenants/{tid}/keys`` ``{"scopes": [...]}`` -> a restricted key (``create_api_key``);
  ``DELETE /tenants/{tid}/keys/{key}`` revokes it (``revoke_api_key``);
* ``DELETE /designs/{id}``, ``DELETE /projects/{id}``, ``POST /delete`` ``{"designs", "projects",
  "seed", "tenant_id"}`` (shares), ``GET /deletions?tenant_id=`` (``delete_design``,
  ``delete_project``, ``delete_random``, ``deletions``);
* ``POST /partner_applications`` ``{"name", "scopes", "tenant_ids"}`` -> the app with its key,
  ``GET /partner_applications``, ``PUT|DELETE /partner_applications/{id}/tenants/{tid}``
  (enable / disable), ``GET /partner_tokens?application_id=``, ``POST /partner_tokens/expire``
  ``{"application_id", "tenant_id"}``;
* ``POST /site_surveys`` ``{"project_id", "design_id", "application_id"}`` (a user requests a
  survey: fires ``site_survey_requested``), ``GET /site_surveys?tenant_id=``,
  ``GET /site_surveys/{id}`` (uploads, every attempt with its errors, image downloads).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..common import ADMIN_PREFIX
from .errors import AuroraError
from .http_util import envelope, json_object, number, text
from .state import AuroraState


def _state(request: Request) -> AuroraState:
    return request.app.state.aurora


def _ids(body: dict, key: str) -> Any:
    value = body.get(key)
    if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
        raise AuroraError(422, f"{key} must be a list of strings.")
    return value


# --- keys -----------------------------------------------------------------------------------------
async def create_key(request: Request) -> Response:
    body = await json_object(request)
    return JSONResponse(_state(request).create_api_key(request.path_params["tenant_id"], _ids(body, "scopes")))


async def revoke_key(request: Request) -> Response:
    _state(request).revoke_api_key(request.path_params["key"])
    return Response(status_code=204)


# --- deletions ------------------------------------------------------------------------------------
async def delete_design(request: Request) -> Response:
    return JSONResponse(_state(request).delete_design(request.path_params["design_id"]))


async def delete_project(request: Request) -> Response:
    return JSONResponse(_state(request).delete_project(request.path_params["project_id"]))


async def delete_random(request: Request) -> Response:
    body = await json_object(request)
    result = _state(request).delete_random(number(body, "designs", 0.0, float), number(body, "projects", 0.0, float),
                                           number(body, "seed", 0, int), text(body, "tenant_id"))
    return JSONResponse(result)


async def deletions(request: Request) -> Response:
    return JSONResponse(_state(request).deletions(request.query_params.get("tenant_id")))


# --- partner applications -------------------------------------------------------------------------
async def create_application(request: Request) -> Response:
    body = await json_object(request)
    app = _state(request).create_partner_application(text(body, "name", "Site Survey App"), _ids(body, "scopes"),
                                                     _ids(body, "tenant_ids"))
    return JSONResponse(app)


async def list_applications(request: Request) -> Response:
    return JSONResponse(_state(request).partner_applications())


def _enablement(enabled: bool):
    async def endpoint(request: Request) -> Response:
        app = _state(request).set_partner_app_enabled(request.path_params["application_id"],
                                                      request.path_params["tenant_id"], enabled)
        return JSONResponse(app)

    return endpoint


async def list_tokens(request: Request) -> Response:
    return JSONResponse(_state(request).partner_tokens(request.query_params.get("application_id")))


async def expire_tokens(request: Request) -> Response:
    body = await json_object(request)
    count = _state(request).expire_partner_tokens(text(body, "application_id"), text(body, "tenant_id"))
    return JSONResponse({"expired": count})


# --- site surveys ---------------------------------------------------------------------------------
async def request_survey(request: Request) -> Response:
    body = await json_object(request)
    survey = _state(request).request_site_survey(text(body, "project_id", required=True), text(body, "design_id"),
                                                 text(body, "application_id"))
    return envelope("site_survey_request", survey)


async def list_surveys(request: Request) -> Response:
    return JSONResponse(_state(request).site_surveys(request.query_params.get("tenant_id")))


async def get_survey(request: Request) -> Response:
    return JSONResponse(_state(request).site_survey(request.path_params["survey_id"]))


def _route(path: str, endpoint: Any, *methods: str) -> Route:
    return Route(ADMIN_PREFIX + path, endpoint, methods=list(methods))


def partner_admin_routes() -> list[Route]:
    return [
        _route("/tenants/{tenant_id}/keys", create_key, "POST"),
        _route("/tenants/{tenant_id}/keys/{key}", revoke_key, "DELETE"),
        _route("/designs/{design_id}", delete_design, "DELETE"),
        _route("/projects/{project_id}", delete_project, "DELETE"),
        _route("/delete", delete_random, "POST"),
        _route("/deletions", deletions, "GET"),
        _route("/partner_applications", create_application, "POST"),
        _route("/partner_applications", list_applications, "GET"),
        _route("/partner_applications/{application_id}/tenants/{tenant_id}", _enablement(True), "PUT"),
        _route("/partner_applications/{application_id}/tenants/{tenant_id}", _enablement(False), "DELETE"),
        _route("/partner_tokens", list_tokens, "GET"),
        _route("/partner_tokens/expire", expire_tokens, "POST"),
        _route("/site_surveys", request_survey, "POST"),
        _route("/site_surveys", list_surveys, "GET"),
        _route("/site_surveys/{survey_id}", get_survey, "GET"),
    ]
