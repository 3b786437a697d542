"""Who may call the tenant API: API keys, partner applications' temporary tokens, scopes.

Aurora's rules: ``Authorization: Bearer <key>``; a key belongs to one tenant and another tenant's
path answers 404 (its rule for objects "belonging under another tenant"); a missing, unknown or
expired key answers 401; an authenticated key calling an action it may not use, or an endpoint
not provisioned for it, answers 403. Standard keys (``sk_``) may do everything, restricted keys
(``rk_``) a subset; a partner application's temporary token (``tk_test_``, see
:mod:`.partners`) what its access scopes allow.

Scopes: Aurora publishes ``read_projects``, ``read_designs``, ``read_site_surveys`` and
``write_site_surveys`` (the site-survey guide); the other names are the emulator's GUESS. Each
route of :func:`~.routes.tenant_routes` is wrapped in :func:`scoped` with the scope it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import wraps
from typing import Any, Awaitable, Callable, Mapping, Optional

from starlette.authentication import AuthCredentials, AuthenticationBackend, AuthenticationError, BaseUser
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from .errors import AuroraError, aurora_error

DOCUMENTED_SCOPES = ("read_projects", "read_designs", "read_site_surveys", "write_site_surveys")
SCOPES = frozenset({
    *DOCUMENTED_SCOPES,
    # GUESS: names Aurora does not publish
    "write_projects", "write_designs", "read_pricing", "read_design_requests", "write_design_requests",
    "read_agreements", "manage_webhooks",
})
UNPROVISIONED = {"pricing": "read_pricing"}  # TenantOptions switch -> the scope it withdraws


@dataclass(frozen=True)
class Credential:
    """What one bearer value grants: a tenant, scopes (None: all), an expiry (the clock's epoch)."""

    tenant_id: str
    kind: str  # "standard" | "restricted" | "partner"
    scopes: Optional[frozenset[str]] = None
    application_id: Optional[str] = None
    expires_at: Optional[float] = None

    def rate_key(self, token: str) -> str:
        """The rate-limit bucket: per key; a partner application's tokens for one tenant share one
        (GUESS: Aurora counts per API key and says nothing of temporary tokens)."""
        return f"partner:{self.application_id}:{self.tenant_id}" if self.kind == "partner" else token


class Caller(BaseUser):
    """The authenticated caller of a tenant route, with the scopes its credential has there."""

    def __init__(self, credential: Credential, scopes: frozenset[str], withdrawn: frozenset[str]) -> None:
        self.credential, self.scopes, self.withdrawn = credential, scopes, withdrawn

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.credential.tenant_id


def bearer_token(headers: Mapping[str, str]) -> Optional[str]:
    """The API key from ``Authorization: Bearer <key>``, or None."""
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


class AuthFailure(AuthenticationError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class BearerKeyBackend(AuthenticationBackend):
    """``state`` provides ``credential_for(token)`` (None when unknown), ``now_epoch()``,
    ``credential_valid(credential)`` and ``withdrawn_scopes(tenant_id)``."""

    def __init__(self, state: Any) -> None:
        self.state = state

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, Caller]:
        token = bearer_token(conn.headers)
        if token is None:
            raise AuthFailure(401, "Missing API key: send 'Authorization: Bearer <key>'.")
        credential = self.state.credential_for(token)
        if credential is None:
            raise AuthFailure(401, "Invalid API key.")
        if credential.expires_at is not None and self.state.now_epoch() >= credential.expires_at:
            raise AuthFailure(401, "This temporary token has expired; create a new one.")
        if not self.state.credential_valid(credential):
            raise AuthFailure(401, "This temporary token was revoked (the application is no longer enabled).")
        tenant_id = conn.path_params.get("tenant_id")
        if tenant_id != credential.tenant_id:
            raise AuthFailure(404, f"Tenant {tenant_id} not found.")
        withdrawn = frozenset(self.state.withdrawn_scopes(tenant_id))
        granted = SCOPES if credential.scopes is None else credential.scopes
        scopes = granted - withdrawn
        return AuthCredentials(["authenticated", *scopes]), Caller(credential, scopes, withdrawn)


def auth_failed(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    return aurora_error(getattr(exc, "status", 401), str(exc))


Endpoint = Callable[[Request], Awaitable[Response]]


def scoped(scope: str, endpoint: Endpoint) -> Endpoint:
    """``endpoint`` answering 403 unless the caller's credential has ``scope`` there."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    @wraps(endpoint)
    async def guarded(request: Request) -> Response:
        caller: Caller = request.user
        if scope not in caller.scopes:
            if scope in caller.withdrawn:
                raise AuroraError(403, "This endpoint is not provisioned for this tenant's API keys.")
            kind = {"restricted": "This restricted API key", "partner": "This partner application"}.get(
                caller.credential.kind, "This API key")
            raise AuroraError(403, f"{kind} is not authorized for this action (it needs the {scope} scope).")
        return await endpoint(request)

    return guarded
