"""Shared by the Aurora emulator's contract tests: an authenticated client, Aurora's error shape,
admin calls, and a real webhook receiver on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from typing import Any, Callable, Iterator, Optional

import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from aurora_qb_pipeline.sandbox.common import ServerThread


class Api:
    """A bearer-authenticated session rooted at one tenant."""

    def __init__(self, base_url: str, tenant_id: str, token: str) -> None:
        self.root = f"{base_url}/tenants/{tenant_id}"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, timeout: float = 5, **params: Any) -> requests.Response:
        return self.session.get(self.root + path, params=params, timeout=timeout)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(self.root + path, timeout=5, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.put(self.root + path, timeout=5, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.patch(self.root + path, timeout=5, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.delete(self.root + path, timeout=5, **kwargs)

    def ok(self, path: str, **params: Any) -> dict:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return response.json()


def assert_error(response: requests.Response, status: int) -> str:
    """The response is an Aurora error: ``status`` and ``{"errors": [{"message": ...}]}``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["errors"] and len(body["errors"]) == 1
    message = body["errors"][0]["message"]
    assert isinstance(message, str) and message
    return message


def error_messages(response: requests.Response, status: int = 422) -> list[str]:
    """All messages of an Aurora error answer (a 422 lists every problem)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["errors"] and body["errors"]
    assert all(set(e) == {"message"} and isinstance(e["message"], str) for e in body["errors"])
    return [e["message"] for e in body["errors"]]


def admin(server: ServerThread, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{server.url}/_sandbox{path}", timeout=5, **kwargs)


@contextlib.contextmanager
def sandbox_settings(server: ServerThread, **values: Any) -> Iterator[None]:
    """Change server settings through the admin API; put the old values back afterwards."""
    before = admin(server, "GET", "/config").json()
    assert admin(server, "PUT", "/config", json=values).status_code == 200
    try:
        yield
    finally:
        admin(server, "PUT", "/config", json={key: before[key] for key in values})


def free_port() -> int:
    """A loopback port nothing listens on (yet)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class Receiver:
    """A real webhook receiver (Starlette + uvicorn on loopback) that records every GET.

    ``fail_next`` answers the next N calls with 500, ``status`` answers every call with that
    code, ``delay_s`` makes it slow, ``redirect`` answers 302."""

    def __init__(self, port: int = 0) -> None:
        self.hits: list[dict] = []
        self.fail_next = 0
        self.status = 200
        self.delay_s = 0.0
        self.redirect = False
        self._lock = threading.Lock()
        app = Starlette(routes=[Route("/{path:path}", self._endpoint, methods=["GET", "POST"])])
        self.server = ServerThread(app, port=port)

    async def _endpoint(self, request: Request) -> Response:
        with self._lock:
            self.hits.append({"t": time.monotonic(), "method": request.method, "path": request.url.path,
                              "query": dict(request.query_params), "headers": dict(request.headers)})
            failing = self.fail_next > 0
            self.fail_next -= 1 if failing else 0
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.redirect:
            return RedirectResponse("/elsewhere", status_code=302)
        return PlainTextResponse("no" if failing else "ok", status_code=500 if failing else self.status)

    @property
    def url(self) -> str:
        return self.server.url

    def wait(self, count: int, timeout: float = 5.0, path: Optional[str] = None) -> list[dict]:
        def enough() -> Optional[list[dict]]:
            hits = [h for h in self.hits if path is None or h["path"] == path]
            return hits if len(hits) >= count else None

        return wait_until(enough, timeout, f"{count} webhook call(s)")

    def __enter__(self) -> "Receiver":
        self.server.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.stop()
