"""The shared HTTP layer: retries, Retry-After, rate limiting across processes, redaction."""

import multiprocessing
import time

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from aurora_qb_pipeline.clients.http import (
    ApiSession,
    AuthenticationError,
    NotFoundError,
    PermanentApiError,
    RateLimitSettings,
    RetrySettings,
    TransientApiError,
    parse_retry_after,
)
from aurora_qb_pipeline.sandbox.common import SandboxConfig, SandboxMiddleware, SandboxState, ServerThread

SECRET = "sk_sand_TOPSECRET123"
TENANT = "tenant-0b5e-secret"


async def _ok(request):
    return JSONResponse({"items": list(range(50)), "tenant": request.path_params.get("tid")})


async def _missing(request):
    return JSONResponse({"errors": [{"message": f"no such thing for token {SECRET}"}]}, status_code=404)


async def _refused(request):
    return JSONResponse({"errors": [{"message": f"bad key {SECRET}"}]}, status_code=int(request.path_params["status"]))


async def _bad(request):
    return JSONResponse({"errors": [{"message": "invalid"}]}, status_code=422)


def _error(status, message):
    return JSONResponse({"errors": [{"message": message}]}, status_code=status)


@pytest.fixture(scope="module")
def server():
    state = SandboxState(SandboxConfig(time_scale=0.01, timeout_hang_s=0.6))
    app = Starlette(
        routes=[
            Route("/t/{tid}/ok", _ok),
            Route("/t/{tid}/missing", _missing),
            Route("/t/{tid}/bad", _bad),
            Route("/t/{tid}/refused/{status}", _refused),
        ]
    )
    wrapped = SandboxMiddleware(app, state, lambda h: h.get("authorization"), _error)
    with ServerThread(wrapped) as srv:
        srv.state = state
        yield srv


@pytest.fixture(autouse=True)
def _reset(server):
    server.state.config.update(
        {"fault_5xx_rate": 0.0, "fault_timeout_rate": 0.0, "fault_truncate_rate": 0.0, "burst_429": 0, "rate_limit": None}
    )
    server.state.log.clear()


def _session(server, rate=None, attempts=6, timeout=5.0):
    def detail(body):
        return "; ".join(e["message"] for e in body.get("errors", []))

    return ApiSession(
        "Test",
        server.url,
        {"Authorization": f"Bearer {SECRET}"},
        timeout_s=timeout,
        retry=RetrySettings(max_attempts=attempts, backoff_initial_s=0.01, backoff_max_s=0.05),
        rate_limit=rate,
        secrets=[SECRET, TENANT],
        error_detail=detail,
        credential="TEST_API_TOKEN",
    )


def test_success_and_stats(server):
    api = _session(server)
    status, body = api.request("GET", f"/t/{TENANT}/ok")
    assert status == 200 and body["items"][-1] == 49
    assert api.stats.as_dict()["requests"] == 1


@pytest.mark.parametrize("fault", ["fault_5xx_rate", "fault_truncate_rate", "burst_429"])
def test_transient_faults_are_retried(server, fault):
    server.state.config.update({fault: 3 if fault == "burst_429" else 0.5, "seed": 7})
    server.state.reseed()
    api = _session(server, attempts=12)
    for _ in range(10):
        assert api.request("GET", f"/t/{TENANT}/ok")[1]["items"][0] == 0
    stats = api.stats.as_dict()
    assert stats["retries"] > 0
    assert stats["requests"] == 10 + stats["retries"]


def test_timeouts_are_retried(server):
    server.state.config.update({"fault_timeout_rate": 0.5, "seed": 3})
    server.state.reseed()
    api = _session(server, attempts=10, timeout=0.3)
    for _ in range(4):
        api.request("GET", f"/t/{TENANT}/ok")
    assert api.stats.as_dict()["timeouts"] > 0


def test_gives_up_after_max_attempts(server):
    server.state.config.update({"fault_5xx_rate": 1.0})
    api = _session(server, attempts=3)
    with pytest.raises(TransientApiError) as err:
        api.request("GET", f"/t/{TENANT}/ok")
    assert err.value.status in (500, 502, 503)
    assert len(server.state.log.entries()) == 3


def test_permanent_errors_are_not_retried_and_are_redacted(server):
    api = _session(server)
    with pytest.raises(NotFoundError) as err:
        api.request("GET", f"/t/{TENANT}/missing")
    text = str(err.value)
    assert SECRET not in text and TENANT not in text and "***" in text
    with pytest.raises(PermanentApiError):
        api.request("GET", f"/t/{TENANT}/bad")
    assert len(server.state.log.entries()) == 2


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_credential_is_never_retried_nor_sent_again(server, status):
    api = _session(server, attempts=6)
    with pytest.raises(AuthenticationError) as err:
        api.request("GET", f"/t/{TENANT}/refused/{status}")
    text = str(err.value)
    assert "TEST_API_TOKEN" in text and SECRET not in text and TENANT not in text
    assert err.value.status == status
    with pytest.raises(AuthenticationError):  # the same client does not send the refused key again
        api.request("GET", f"/t/{TENANT}/ok")
    assert len(server.state.log.entries()) == 1


def test_retry_after_is_honoured(server):
    server.state.config.update({"burst_429": 1})
    api = _session(server)
    started = time.perf_counter()
    api.request("GET", f"/t/{TENANT}/ok")
    # time_scale 0.01 -> Retry-After 0.010 s; the client waited for it rather than its own backoff
    assert time.perf_counter() - started >= 0.01
    assert api.stats.as_dict()["rate_limited_429"] == 1


def test_parse_retry_after_forms():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None


def _hammer(url, db_path, n, limit, window):
    class Srv:
        pass

    srv = Srv()
    srv.url = url
    api = _session(srv, rate=RateLimitSettings(limit, window, margin=0.05, db_path=db_path, bucket="shared"))
    for _ in range(n):
        api.request("GET", f"/t/{TENANT}/ok")


def test_rate_limit_is_shared_between_processes(server, tmp_path):
    """Two processes, one SQLite bucket: together they stay under the server's limit, no 429."""
    limit, window = 10, 0.5
    server.state.config.update({"rate_limit": limit, "rate_window_s": window / 0.01})  # scaled -> 0.5 s
    db = str(tmp_path / "limits.sqlite")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(server.url, db, 15, limit, window)) for _ in range(2)]
    started, wall_start = time.perf_counter(), time.time()
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    elapsed = time.perf_counter() - started
    entries = [e for e in server.state.log.entries() if e.ts >= wall_start]
    statuses = [e.status for e in entries]
    assert statuses.count(200) == 30, [(e.status, e.fault, e.path) for e in entries if e.status != 200]
    i429 = statuses.index(429) if 429 in statuses else None
    assert i429 is None, str([(round(e.ts - wall_start, 4), e.status) for e in entries[max(0, i429 - 12): i429 + 1]])
    # 30 requests at 10 per 0.5 s need at least two full windows after the first burst
    assert elapsed >= 1.0
