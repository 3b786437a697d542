"""The webhook receiver: a small Starlette app that authenticates Aurora's GETs and appends each
event to the inbox, served by uvicorn (``aurora-qb webhooks serve``).

It does nothing else while Aurora waits (Aurora allows 10 s and retries slower answers): no API
call, no Dagster call, one short insert. The sensor does the rest on its own schedule.

Routes
* ``GET /aurora/events/{event}`` (and ``/aurora/events/{event}/{id}`` for templates that put the
  object id in the path): authenticate, parse, append. 200 ``{"status": "stored"|"duplicate",
  "id": n, "known": bool}``; 401 (nothing stored) without the secret; 400 with a message that says
  what is wrong with the query; 503 when the inbox cannot be written (Aurora retries).
* ``GET /healthz``: 200 when the inbox answers, 503 otherwise (no authentication, no data).

Authentication: a shared secret configured on each subscription, in the ``X-Aurora-Webhook-Token``
header (the default of ``aurora-qb webhooks subscribe``), an ``Authorization: Bearer`` header, the
password of HTTP basic authentication, or a ``token`` query parameter. It is compared in constant
time (``hmac.compare_digest``) with each accepted secret (several during a rotation). Requests are
logged by path and status only: query strings, which may carry the secret, never reach a log.

Other endpoints that need the same secret (issue 12's events) are added with
``create_receiver_app(..., routes=[Route(path, authenticated(endpoint))])``. The opportunity
buttons (issue 14, ``opportunities/buttons.py``) are added the same way but not wrapped: their
URLs are readable by every Quickbase user, so each carries a signature valid for one record and
one action instead of the secret. With a tenants file (many tenants) the receiver serves one set of
buttons per tenant, under ``/tenants/<name>``, each queuing into that tenant's store.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import inspect
import logging
import socket
import threading
import time
from typing import Any, Awaitable, Callable, Optional, Sequence, Union
from urllib.parse import parse_qsl

import uvicorn
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .events import EVENTS_PATH, SECRET_HEADER, SECRET_PARAMETER, BadDelivery, parse_delivery
from .inbox import Inbox

log = logging.getLogger("aurora_qb_pipeline.webhooks.receiver")
Endpoint = Callable[[Request], Union[Response, Awaitable[Response]]]


class SharedSecret:
    """Accepted secrets, and the check of a request against them."""

    def __init__(self, secrets: Sequence[str], min_length: int = 16):
        values = [s for s in secrets if s]
        if not values:
            raise ValueError("the webhook receiver needs a shared secret; it never runs without one")
        if any(len(s) < min_length for s in values):
            raise ValueError(f"a webhook secret must have at least {min_length} characters")
        self._secrets = [s.encode() for s in values]

    def __repr__(self) -> str:  # never the values
        return f"SharedSecret({len(self._secrets)} secret(s))"

    @staticmethod
    def presented(request: Request) -> list[str]:
        """Every credential the request carries: our header, a bearer token, a basic-auth
        password, the ``token`` query parameter."""
        found = [request.headers.get(SECRET_HEADER, "")]
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            found.append(value.strip())
        elif scheme.lower() == "basic":
            try:
                found.append(base64.b64decode(value.strip(), validate=True).decode().partition(":")[2])
            except (binascii.Error, UnicodeDecodeError):
                pass
        query = request.scope.get("query_string", b"").decode("latin-1")
        found += [v for k, v in parse_qsl(query, keep_blank_values=True, errors="replace")
                  if k.lower() == SECRET_PARAMETER]
        return [f for f in found if f]

    def allows(self, request: Request) -> bool:
        ok = False
        for candidate in self.presented(request):
            data = candidate.encode("utf-8", "replace")
            for secret in self._secrets:  # no early exit: the time taken says nothing about which
                ok |= hmac.compare_digest(data, secret)
        return ok


def _unauthorized() -> JSONResponse:
    return JSONResponse({"error": "unauthorized: the shared secret is missing or wrong"}, status_code=401)


def authenticated(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """Wrap an endpoint so it runs only for requests carrying the app's shared secret (401
    otherwise). A plain function runs in the thread pool, as Starlette would run it."""
    is_async = inspect.iscoroutinefunction(endpoint)

    async def guarded(request: Request) -> Response:
        if not request.app.state.auth.allows(request):
            return _unauthorized()
        if is_async:
            return await endpoint(request)  # type: ignore[misc]
        return await run_in_threadpool(endpoint, request)  # type: ignore[arg-type]

    return guarded


def receive_event(request: Request) -> Response:
    """Append one Aurora delivery to the inbox (runs in the thread pool: the insert blocks)."""
    try:
        raw = request.scope.get("query_string", b"").decode("ascii")
    except UnicodeDecodeError:
        return JSONResponse({"error": "malformed delivery: the query string must be percent-encoded ASCII"}, 400)
    try:
        event = parse_delivery(request.path_params["event"], raw, request.path_params.get("object_id"))
    except BadDelivery as exc:
        return JSONResponse({"error": f"malformed delivery: {exc}"}, status_code=400)
    inbox: Inbox = request.app.state.inbox
    try:
        appended = inbox.append(event)
    except SQLAlchemyError as exc:
        log.error("inbox write failed (%s); answered 503 so that Aurora retries", type(exc).__name__)
        return JSONResponse({"error": "inbox unavailable, retry later"}, status_code=503)
    return JSONResponse({"status": "duplicate" if appended.duplicate else "stored", "id": appended.id,
                         "known": event.known})


def health(request: Request) -> Response:
    try:
        request.app.state.inbox.ping()
    except SQLAlchemyError as exc:
        return JSONResponse({"status": "unavailable", "inbox": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ok"})


class _RequestLog:
    """ASGI middleware: one log line per request with method, path, status and duration (never the
    query string or headers, which may carry the secret)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), {"code": 500}

        async def tap(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tap)
        finally:
            log.info("%s %s -> %d (%.1f ms)", scope.get("method"), scope.get("path"), status["code"],
                     (time.perf_counter() - started) * 1000)


def create_receiver_app(inbox: Inbox, secrets: Sequence[str], routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The receiver app over ``inbox``, accepting any of ``secrets``; ``routes`` are added as they
    are (wrap their endpoints with :func:`authenticated`)."""
    app = Starlette(routes=[
        Route("/healthz", health, methods=["GET"]),
        Route(EVENTS_PATH + "/{event}", authenticated(receive_event), methods=["GET"]),
        Route(EVENTS_PATH + "/{event}/{object_id}", authenticated(receive_event), methods=["GET"]),
        *routes,
    ])
    app.state.inbox = inbox
    app.state.auth = SharedSecret(secrets)
    app.add_middleware(_RequestLog)
    return app


def app_from_environment() -> Starlette:
    """uvicorn's factory for ``aurora-qb webhooks serve`` (each worker process calls it):
    the inbox from the settings, the secret from ``AURORA_QB_WEBHOOK_SECRET``."""
    from ..settings import Settings, WEBHOOK_SECRET_VARIABLE, opportunities_table_from_env, webhook_secret_from_env

    from ..site_surveys.receiver_routes import routes_from_environment

    secret = webhook_secret_from_env()
    if secret is None:
        raise SystemExit(f"{WEBHOOK_SECRET_VARIABLE} is not set: the receiver never runs without a secret")
    settings = Settings.from_env()
    routes: list[BaseRoute] = list(routes_from_environment(settings, secret.get_secret_value()))
    table = opportunities_table_from_env()
    tenants = settings.tenants()
    if tenants is not None:  # many tenants: each tenant's buttons under /tenants/<name>, its own store
        from ..settings import environment
        from ..tenant_apps import button_routes_for_tenants

        routes += button_routes_for_tenants(tenants, environment(), settings.inbox_database_url,
                                            [secret.get_secret_value()])
    elif table:  # the opportunity buttons (issue 14): signed per record and action, not by the shared secret
        from ..opportunities.buttons import button_routes
        from ..opportunities.store import OpportunityStore

        routes += button_routes(OpportunityStore(settings.inbox_database_url), table, [secret.get_secret_value()])
    return create_receiver_app(Inbox(settings.inbox_database_url), [secret.get_secret_value()], routes)


class ReceiverThread:
    """The receiver served by uvicorn on a loopback port in a background thread (tests, demo,
    benchmark). ``port`` 0 picks a free one; a stopped receiver can be started again on the same port."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 0):
        self.app, self.host = app, host
        with socket.socket() as probe:
            probe.bind((host, port))
            self.port = probe.getsockname()[1]
        self._server: Optional[uvicorn.Server] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> "ReceiverThread":
        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning", access_log=False,
                                lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True, name="webhook-receiver")
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"webhook receiver on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server, self._thread = None, None

    def __enter__(self) -> "ReceiverThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
