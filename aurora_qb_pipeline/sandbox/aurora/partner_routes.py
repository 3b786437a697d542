"""The partner API (``/partner_applications/{application_id}/...``), authenticated with the
application key (``Authorization: Bearer <application key>``), not a tenant key.

* ``POST .../tenants/{tenant_id}/create_token[?session_token=]`` -> ``{"token": {"bearer_token",
  "expires_at"}}`` (Aurora's guides; POST with no body);
* ``POST .../webhooks`` with ``{"partner_application_webhook": {...}}`` (Aurora's CRM-app guide),
  and, mirroring the tenant webhooks API (GUESS), ``GET .../webhooks``, ``GET|PUT|PATCH|DELETE
  .../webhooks/{webhook_id}``; answers use the same wrapper key (GUESS).

Errors and status codes are described in :mod:`.partners`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import bearer_token
from .http_util import envelope, json_object
from .state import AuroraState

PREFIX = "/partner_applications/{application_id}"
WRAPPER = "partner_application_webhook"


def _state(request: Request) -> AuroraState:
    return request.app.state.aurora


def _app_and_key(request: Request) -> tuple[str, str]:
    return request.path_params["application_id"], bearer_token(request.headers)


async def create_token(request: Request) -> Response:
    app_id, key = _app_and_key(request)
    session = request.query_params.get("session_token") or None
    token = _state(request).create_partner_token(app_id, key, request.path_params["tenant_id"], session)
    return envelope("token", token)


async def list_webhooks(request: Request) -> Response:
    return envelope(WRAPPER + "s", _state(request).partner_webhooks(*_app_and_key(request)))


async def create_webhook(request: Request) -> Response:
    app_id, key = _app_and_key(request)
    _state(request).authenticate_application(app_id, key)  # 401 before a body problem
    body = await json_object(request, WRAPPER)
    return envelope(WRAPPER, _state(request).create_partner_webhook(app_id, key, body))


async def get_webhook(request: Request) -> Response:
    webhook = _state(request).get_partner_webhook(*_app_and_key(request), request.path_params["webhook_id"])
    return envelope(WRAPPER, webhook)


async def update_webhook(request: Request) -> Response:
    app_id, key = _app_and_key(request)
    _state(request).authenticate_application(app_id, key)
    body = await json_object(request, WRAPPER)
    return envelope(WRAPPER, _state(request).update_partner_webhook(app_id, key, request.path_params["webhook_id"],
                                                                    body))


async def delete_webhook(request: Request) -> Response:
    _state(request).delete_partner_webhook(*_app_and_key(request), request.path_params["webhook_id"])
    return Response(status_code=204)


def partner_routes() -> list[Route]:
    return [
        Route(PREFIX + "/tenants/{tenant_id}/create_token", create_token, methods=["POST"]),
        Route(PREFIX + "/webhooks", list_webhooks, methods=["GET"]),
        Route(PREFIX + "/webhooks", create_webhook, methods=["POST"]),
        Route(PREFIX + "/webhooks/{webhook_id}", get_webhook, methods=["GET"]),
        Route(PREFIX + "/webhooks/{webhook_id}", update_webhook, methods=["PUT", "PATCH"]),
        Route(PREFIX + "/webhooks/{webhook_id}", delete_webhook, methods=["DELETE"]),
    ]
