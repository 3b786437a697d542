"""EMULATOR EXTENSION for tests: serve chosen successful answers corrupted, as a broken upstream would.

Aurora does not answer like this by design; the pipeline must survive it when something on the
way (or inside Aurora) does: a non-JSON body, a bare array, a missing envelope key, NaN or
Infinity tokens, unpaired UTF-16 surrogates. The emulator's own JSON encoder refuses NaN and
surrogates, which is why these answers are rewritten here, after the route has answered (so
authentication, 404s, the rate limit and the request log still apply). Nothing of the normal
emulator changes: the hook is a second server on the same state::

    overrides = AnswerOverrides()
    with serve_with_overrides(state, overrides) as server:    # server.url replaces the Aurora URL
        overrides.rewrite(f"/designs/{design_id}/summary", lambda answer: [answer["design"]])
        overrides.replace(f"/projects/{project_id}", b"<html>Bad gateway</html>", "text/html")

``rewrite`` receives the route's parsed answer and returns the new one, serialised with NaN and
Infinity as bare tokens and non-ASCII escaped (so a lone ``"\\ud800"`` goes out as the escape a
broken encoder would write); ``replace`` sends bytes as given. Paths are relative to
``/tenants/{tenant_id}``. Only 200 answers are changed.
"""

from __future__ import annotations

import json
import re
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, Union

from ..common import ServerThread
from .app import create_app
from .state import AuroraState

_TENANT_PREFIX = re.compile(r"^/tenants/[^/]+")

Rewrite = Callable[[Any], Any]


def corrupt_json(value: Any) -> bytes:
    """JSON text as a careless encoder writes it: NaN/Infinity tokens, surrogates as \\u escapes."""
    return json.dumps(value, allow_nan=True, ensure_ascii=True).encode("ascii")


class AnswerOverrides:
    """Which answers to change, by path relative to the tenant; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, tuple[Union[bytes, Rewrite], str]] = {}
        self.served: list[str] = []  # paths answered with an override, in order

    def rewrite(self, path: str, change: Rewrite) -> None:
        """Answer ``path`` with ``change(original answer)``, written by :func:`corrupt_json`."""
        with self._lock:
            self._rules[path] = (change, "application/json")

    def replace(self, path: str, body: bytes, content_type: str = "application/json") -> None:
        """Answer ``path`` with ``body`` exactly."""
        with self._lock:
            self._rules[path] = (body, content_type)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self.served.clear()

    def answer_for(self, path: str, body: bytes) -> Optional[tuple[bytes, str]]:
        """The overriding (body, content type) for a 200 answer of ``path``, or None."""
        with self._lock:
            rule = self._rules.get(_TENANT_PREFIX.sub("", path))
            if rule is None:
                return None
            self.served.append(path)
        change, content_type = rule
        if isinstance(change, bytes):
            return change, content_type
        return corrupt_json(change(json.loads(body))), content_type


class AnswerOverrideMiddleware:
    """ASGI middleware between the emulator's routes and its :class:`~..common.SandboxMiddleware`."""

    def __init__(self, app, overrides: AnswerOverrides) -> None:
        self.app, self.overrides = app, overrides

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message):
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        headers = list(start.get("headers", []))
        override = self.overrides.answer_for(scope["path"], body) if start.get("status") == 200 else None
        if override is not None:
            body, content_type = override
            headers = [(k, v) for k, v in headers if k.lower() not in (b"content-length", b"content-type")]
            headers += [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": start.get("status", 500), "headers": headers})
        await send({"type": "http.response.body", "body": body})


@contextmanager
def serve_with_overrides(state: AuroraState, overrides: AnswerOverrides) -> Iterator[ServerThread]:
    """A second emulator server on ``state`` (rate limit and request log shared with the first)
    whose answers ``overrides`` may change; its ``url`` is the Aurora base URL to use."""
    app = create_app(state)
    app.app = AnswerOverrideMiddleware(app.app, overrides)
    with ServerThread(app) as server:
        yield server
