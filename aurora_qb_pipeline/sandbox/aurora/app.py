"""The emulator as an ASGI app: Starlette routing, bearer auth on the tenant API (the partner API
checks its application key itself), Aurora's error shape everywhere, wrapped in
:class:`~..common.SandboxMiddleware` (latency, rate limit, faults, request log)."""

from __future__ import annotations

from typing import Mapping, Optional

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount

from ..common import SandboxMiddleware
from .admin import aurora_admin_routes
from .auth import BearerKeyBackend, auth_failed, bearer_token
from .errors import AuroraError, aurora_error
from .partner_routes import partner_routes
from .routes import file_routes, tenant_routes
from .state import AuroraState


async def _http_exception(request: Request, exc: HTTPException) -> Response:
    message = exc.detail
    if exc.status_code in (404, 405):
        message = f"{exc.detail}: {request.method} {request.url.path}"
    return aurora_error(exc.status_code, message, exc.headers)


async def _aurora_exception(request: Request, exc: AuroraError) -> Response:
    return aurora_error(exc.status, exc.messages)


async def _unexpected(request: Request, exc: Exception) -> Response:
    return aurora_error(500, "Internal server error.")


def create_app(state: AuroraState) -> SandboxMiddleware:
    """The emulator as an ASGI app serving ``state``."""
    auth = Middleware(AuthenticationMiddleware, backend=BearerKeyBackend(state), on_error=auth_failed)
    routes = [
        Mount("/tenants/{tenant_id}", routes=tenant_routes(), middleware=[auth]),
        *partner_routes(),
        *file_routes(),
        *aurora_admin_routes(state),
    ]
    app = Starlette(routes=routes, exception_handlers={
        HTTPException: _http_exception,
        AuroraError: _aurora_exception,
        Exception: _unexpected,
    })
    app.state.aurora = state

    def rate_key(headers: Mapping[str, str]) -> Optional[str]:
        """The rate-limit bucket of a request: its key (a partner's tokens share one per tenant)."""
        token = bearer_token(headers)
        credential = state.credential_for(token) if token else None
        return credential.rate_key(token) if credential is not None else token

    return SandboxMiddleware(app, state, credential=rate_key, render_error=aurora_error)
