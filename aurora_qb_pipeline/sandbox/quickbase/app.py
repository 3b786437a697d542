"""The ASGI app of the Quickbase emulator: ``/v1`` (the API) and ``/_sandbox`` (admin)."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount

from ..common import SandboxMiddleware
from ..common import admin_routes as common_admin_routes
from .admin import admin_routes
from .api_records import RecordRoutes
from .api_schema import SchemaRoutes
from .auth import QuickbaseAuth, RayHeader, rate_limit_key
from .errors import QuickbaseError, error_response
from .query import QueryError
from .state import QuickbaseState


def create_app(state: QuickbaseState) -> Any:
    """Serve ``state``: ``/v1`` behind Quickbase's header checks, ``/_sandbox`` for settings,
    the request log and the admin routes of :mod:`.admin`; latency, rate limits and faults
    come from :class:`~aurora_qb_pipeline.sandbox.common.SandboxMiddleware`."""

    def quickbase_error(request: Request, exc: QuickbaseError) -> Response:
        return error_response(exc.status, exc.description, exc.message)

    def query_error(request: Request, exc: QueryError) -> Response:
        return error_response(400, str(exc))

    def http_error(request: Request, exc: HTTPException) -> Response:
        descriptions = {
            404: f"No such resource: {request.method} {request.url.path}",
            405: f"Method {request.method} is not allowed on {request.url.path}",
        }
        return error_response(exc.status_code, descriptions.get(exc.status_code, str(exc.detail)))

    v1 = Mount(
        "/v1",
        routes=[*RecordRoutes(state).routes(), *SchemaRoutes(state).routes()],
        middleware=[Middleware(QuickbaseAuth, check=state.authenticate)],
    )
    app = Starlette(
        routes=[*common_admin_routes(state), *admin_routes(state), v1],
        exception_handlers={
            QuickbaseError: quickbase_error,
            QueryError: query_error,
            HTTPException: http_error,
        },
    )
    return RayHeader(SandboxMiddleware(app, state, credential=rate_limit_key, render_error=error_response))
