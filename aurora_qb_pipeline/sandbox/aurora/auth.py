"""Bearer API keys: each belongs to one tenant; another tenant's path answers 404 (Aurora's rule
for objects "belonging under another tenant"), a missing or unknown key 401."""

from __future__ import annotations

from typing import Mapping, Optional

from starlette.authentication import AuthCredentials, AuthenticationBackend, AuthenticationError, SimpleUser
from starlette.requests import HTTPConnection
from starlette.responses import Response

from .core import StateCore
from .errors import aurora_error


def bearer_token(headers: Mapping[str, str]) -> Optional[str]:
    """The API key from ``Authorization: Bearer <key>``, or None."""
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


class AuthFailure(AuthenticationError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class BearerKeyBackend(AuthenticationBackend):
    def __init__(self, state: StateCore) -> None:
        self.state = state

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser]:
        token = bearer_token(conn.headers)
        if token is None:
            raise AuthFailure(401, "Missing API key: send 'Authorization: Bearer <key>'.")
        tenant = self.state.tenant_for_token(token)
        if tenant is None:
            raise AuthFailure(401, "Invalid API key.")
        tenant_id = conn.path_params.get("tenant_id")
        if tenant_id != tenant.tenant_id:
            raise AuthFailure(404, f"Tenant {tenant_id} not found.")
        return AuthCredentials(["authenticated"]), SimpleUser(tenant.tenant_id)


def auth_failed(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    return aurora_error(getattr(exc, "status", 401), str(exc))
