"""Shared machinery of the sandbox servers: time scale, latency, rate limits, faults, request log.

Both emulators (Aurora and Quickbase) are Starlette apps wrapped in :class:`SandboxMiddleware`.
The middleware does everything that is not API-specific:

* optional latency per request (``latency_ms`` +/- ``latency_jitter_ms``, scaled by ``time_scale``);
* a per-credential rate limit (pyrate-limiter sliding window) answered with 429 + ``Retry-After``;
* fault injection: 5xx answers, hung requests (the client times out), truncated bodies and
  bursts of 429s, drawn from a seeded RNG so a run is reproducible;
* a request log the tests and the benchmark read (method, path, status, fault, credential id;
  never the credential itself);
* gates that hold one chosen request before or after the API handles it, until a test lets it
  go (``gates.py``);
* scripted failures: the next N requests to a chosen path answer a transient error
  (``failures.py``).

``time_scale`` shrinks every duration the server knows about (rate windows, latency,
Retry-After) by the same factor, so a test can run 100x faster while the ratios between
rate limit, latency and work stay as in production.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Optional

import uvicorn
from pyrate_limiter import InMemoryBucket, Rate, RateItem
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .failures import Failures
from .gates import Gates

ADMIN_PREFIX = "/_sandbox"


@dataclass
class SandboxConfig:
    """Runtime knobs of one sandbox server. Changeable while running (``PUT /_sandbox/config``)."""

    time_scale: float = 1.0
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    rate_limit: Optional[int] = None  # requests per window per credential; None = unlimited
    rate_window_s: float = 60.0  # unscaled window length
    fault_5xx_rate: float = 0.0
    fault_timeout_rate: float = 0.0
    fault_truncate_rate: float = 0.0
    timeout_hang_s: float = 3.0  # real seconds a "timeout" fault hangs (not scaled: it must beat the client's timeout)
    burst_429: int = 0  # the next N requests are answered 429 regardless of the limit
    seed: int = 0

    def scaled(self, seconds: float) -> float:
        return seconds * self.time_scale

    def update(self, values: dict[str, Any]) -> None:
        known = {f.name: f.type for f in fields(self)}
        unknown = set(values) - set(known)
        if unknown:
            raise ValueError(f"unknown sandbox setting(s): {', '.join(sorted(unknown))}")
        for key, value in values.items():
            setattr(self, key, value)


def credential_id(secret: Optional[str]) -> str:
    """A short, non-reversible id for a credential, safe to put in logs."""
    if not secret:
        return "anonymous"
    return hashlib.sha256(secret.encode()).hexdigest()[:10]


@dataclass
class LoggedRequest:
    ts: float
    method: str
    path: str
    query: str
    status: int
    credential: str
    fault: Optional[str] = None
    request_bytes: int = 0
    duration_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class RequestLog:
    """Thread-safe in-memory log of every request a sandbox server answered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []

    def add(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def summary(self) -> dict[str, Any]:
        entries = self.entries()
        return {
            "total": len(entries),
            "by_status": dict(Counter(str(e.status) for e in entries)),
            "by_fault": dict(Counter(e.fault for e in entries if e.fault)),
        }


class ServerRateLimiter:
    """Sliding-window limit per credential, as the real services apply it (per API key / user token)."""

    def __init__(self, config: SandboxConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._buckets: dict[str, InMemoryBucket] = {}
        self._signature: tuple = ()

    def _bucket(self, key: str) -> Optional[InMemoryBucket]:
        cfg = self._config
        if not cfg.rate_limit:
            return None
        window_ms = max(1, int(round(cfg.scaled(cfg.rate_window_s) * 1000)))
        signature = (cfg.rate_limit, window_ms)
        if signature != self._signature:  # settings changed: start afresh
            self._buckets.clear()
            self._signature = signature
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = InMemoryBucket([Rate(cfg.rate_limit, window_ms)])
        return bucket

    def check(self, key: str) -> Optional[float]:
        """Admit one request for ``key``; return None if admitted, else seconds until it would be."""
        with self._lock:
            bucket = self._bucket(key)
            if bucket is None:
                return None
            now_ms = int(time.time() * 1000)
            decision = bucket.put_decision(RateItem(key, now_ms))
            if decision.allowed:
                return None
            wait_ms = decision.retry_after_ms
            if wait_ms is None:
                wait_ms = bucket.waiting(RateItem(key, now_ms))
            return max(wait_ms, 1) / 1000.0


def format_retry_after(seconds: float, time_scale: float) -> str:
    """Retry-After in whole seconds as HTTP has it; decimals only when time is scaled down."""
    if time_scale >= 1:
        return str(max(1, math.ceil(seconds)))
    return f"{max(seconds, 0.001):.3f}"


ErrorRenderer = Callable[[int, str], Response]
CredentialGetter = Callable[[dict[str, str]], Optional[str]]


class SandboxState:
    """What every emulator state carries: settings, RNG for faults, rate limiter, request log."""

    def __init__(self, config: Optional[SandboxConfig] = None) -> None:
        self.config = config or SandboxConfig()
        self.log = RequestLog()
        self.gates = Gates()  # hold a request at a chosen point (tests; see gates.py)
        self.failures = Failures()  # fail chosen requests N times (tests; see failures.py)
        self.limiter = ServerRateLimiter(self.config)
        self._rng = random.Random(self.config.seed)
        self._rng_lock = threading.Lock()
        self._burst_lock = threading.Lock()

    def roll(self) -> float:
        with self._rng_lock:
            return self._rng.random()

    def take_burst(self) -> bool:
        with self._burst_lock:
            if self.config.burst_429 > 0:
                self.config.burst_429 -= 1
                return True
            return False

    def reseed(self) -> None:
        with self._rng_lock:
            self._rng = random.Random(self.config.seed)


class SandboxMiddleware:
    """ASGI middleware that adds latency, rate limiting, faults and the request log to an emulator."""

    def __init__(
        self,
        app,
        state: SandboxState,
        credential: CredentialGetter,
        render_error: ErrorRenderer,
    ) -> None:
        self.app = app
        self.state = state
        self.credential = credential
        self.render_error = render_error

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        state, cfg = self.state, self.state.config
        started = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        secret = self.credential(headers)
        key = credential_id(secret)
        entry = LoggedRequest(
            ts=time.time(),
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            status=0,
            credential=key,
            request_bytes=int(headers.get("content-length") or 0),
        )

        async def finish(response: Response, fault: Optional[str] = None) -> None:
            entry.status = response.status_code
            entry.fault = fault
            entry.duration_ms = (time.perf_counter() - started) * 1000
            state.log.add(entry)
            await response(scope, receive, send)

        if await state.gates.pass_through(scope["method"], scope["path"], "before", send):
            return  # a trickle gate answered
        if cfg.latency_ms or cfg.latency_jitter_ms:
            jitter = (state.roll() * 2 - 1) * cfg.latency_jitter_ms
            await asyncio.sleep(max(0.0, cfg.scaled(cfg.latency_ms + jitter)) / 1000.0)

        scripted = state.failures.take(scope["method"], scope["path"])
        if scripted is not None:
            resp = self.render_error(scripted.status, "Injected failure (scripted).")
            if scripted.retry_after_s is not None:
                resp.headers["Retry-After"] = format_retry_after(cfg.scaled(scripted.retry_after_s), cfg.time_scale)
            await finish(resp, "scripted")
            return
        if state.take_burst():
            wait = cfg.scaled(1.0)
            resp = self.render_error(429, "Rate limit exceeded (injected burst).")
            resp.headers["Retry-After"] = format_retry_after(wait, cfg.time_scale)
            await finish(resp, "burst_429")
            return
        wait = state.limiter.check(key)
        if wait is not None:
            resp = self.render_error(429, f"Rate limit exceeded. Retry after {wait:.3f} seconds.")
            resp.headers["Retry-After"] = format_retry_after(wait, cfg.time_scale)
            await finish(resp, "rate_limited")
            return

        roll = state.roll()
        if roll < cfg.fault_5xx_rate:
            code = (502, 503, 500)[int(roll * 1000) % 3]
            await finish(self.render_error(code, "Injected server error."), "5xx")
            return
        roll -= cfg.fault_5xx_rate
        if roll < cfg.fault_timeout_rate:
            await asyncio.sleep(cfg.timeout_hang_s)
            await finish(self.render_error(504, "Injected timeout."), "timeout")
            return
        roll -= cfg.fault_timeout_rate
        truncate = roll < cfg.fault_truncate_rate

        # Run the app, capturing the answer so it can be logged (and truncated when asked to).
        captured: dict[str, Any] = {"status": 500, "headers": [], "body": b"", "started": False}

        async def capture(message):
            if message["type"] == "http.response.start":
                captured["started"] = True
                captured["status"] = message["status"]
                captured["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")

        error: Optional[Exception] = None
        try:
            await self.app(scope, receive, capture)
        except ClientDisconnect:  # the client left (e.g. killed while a gate held its request): no one to answer
            return
        except Exception as exc:  # Starlette sends its 500 answer, then re-raises for the server to log
            if not captured["started"]:
                raise
            error = exc
        await state.gates.pass_through(scope["method"], scope["path"], "after")
        body: bytes = captured["body"]
        fault = None
        if truncate and len(body) > 2:
            body = body[: max(1, len(body) // 2)]
            fault = "truncated"
        raw_headers = [(k, v) for k, v in captured["headers"] if k.lower() != b"content-length"]
        resp = Response(content=body, status_code=captured["status"])
        resp.raw_headers = raw_headers + [(b"content-length", str(len(body)).encode())]
        await finish(resp, fault)
        if error is not None:
            raise error


def admin_routes(state: SandboxState) -> list[Route]:
    """Routes under /_sandbox shared by both emulators: settings and the request log."""

    async def get_config(request: Request) -> Response:
        return JSONResponse(asdict(state.config))

    async def put_config(request: Request) -> Response:
        try:
            values = await request.json()
            state.config.update(values)
        except (ValueError, json.JSONDecodeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if "seed" in values:
            state.reseed()
        return JSONResponse(asdict(state.config))

    async def get_requests(request: Request) -> Response:
        if request.query_params.get("summary"):
            return JSONResponse(state.log.summary())
        return JSONResponse([asdict(e) for e in state.log.entries()])

    async def clear_requests(request: Request) -> Response:
        state.log.clear()
        return Response(status_code=204)

    return [
        Route(f"{ADMIN_PREFIX}/config", get_config, methods=["GET"]),
        Route(f"{ADMIN_PREFIX}/config", put_config, methods=["PUT", "PATCH"]),
        Route(f"{ADMIN_PREFIX}/requests", get_requests, methods=["GET"]),
        Route(f"{ADMIN_PREFIX}/requests", clear_requests, methods=["DELETE"]),
    ]


class ServerThread:
    """Runs an ASGI app with uvicorn on a loopback port in a background thread."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", backlog=2048)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> "ServerThread":
        self._thread.start()
        deadline = time.time() + timeout
        while not self._server.started:
            if time.time() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"sandbox server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


async def read_json(request: Request) -> Any:
    """Parse a JSON body; raises ValueError with a readable message if it is not JSON."""
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except json.JSONDecodeError as exc:
        raise ValueError(f"Malformed JSON body: {exc.msg} at position {exc.pos}") from exc

