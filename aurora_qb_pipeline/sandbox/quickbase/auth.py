"""Authentication: Quickbase's header checks, and the ``qb-api-ray`` header on every answer."""

from __future__ import annotations

import secrets
from typing import Any, Callable, Mapping, Optional

from starlette.datastructures import Headers, MutableHeaders

from .errors import QuickbaseError
from .models import QbUser


def authenticate(
    users: Mapping[str, QbUser], realm: str, authorization: Optional[str], realm_header: Optional[str]
) -> QbUser:
    """Quickbase's header checks, in its order: 400 no Authorization, 401 unknown (or
    deactivated) token, 403 missing or foreign QB-Realm-Hostname."""
    if authorization is None:
        raise QuickbaseError(400, "Required header 'authorization' not found")
    scheme, _, token = authorization.strip().partition(" ")
    user = users.get(token.strip()) if scheme.upper() == "QB-USER-TOKEN" else None
    if user is None:
        raise QuickbaseError(401, "User token is invalid")
    if realm_header is None or realm_header.strip().lower() != realm.lower():
        raise QuickbaseError(403, "Required header 'QB-Realm-Hostname' is missing or names another realm.")
    return user


def bearer_token(authorization: Optional[str]) -> str:
    """The token of a ``QB-USER-TOKEN <token>`` header (after authentication succeeded)."""
    return (authorization or "").strip().partition(" ")[2].strip()


class QuickbaseAuth:
    """ASGI middleware of ``/v1``: the header checks run before anything else; the caller's
    user and token are left in ``request.state.qb_user`` / ``qb_token``."""

    def __init__(self, app: Any, check: Callable[[Optional[str], Optional[str]], QbUser]) -> None:
        self.app = app
        self.check = check

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            authorization = headers.get("authorization")
            user = self.check(authorization, headers.get("qb-realm-hostname"))
            scope.setdefault("state", {}).update(qb_user=user, qb_token=bearer_token(authorization))
        await self.app(scope, receive, send)


class RayHeader:
    """ASGI middleware: every answer carries a ``qb-api-ray`` correlation id, as Quickbase's do."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ray = f"{secrets.token_hex(8)}-SBX"

        async def send_with_ray(message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("qb-api-ray", ray)
            await send(message)

        await self.app(scope, receive, send_with_ray)


def rate_limit_key(headers: dict[str, str]) -> Optional[str]:
    """The rate-limit key: Quickbase limits per user token."""
    return headers.get("authorization")
