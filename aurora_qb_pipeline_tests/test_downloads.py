"""File downloads from signed URLs (``clients/downloads.py``) against the Aurora sandbox's
``/files`` route: retried on transient answers with Retry-After, never sent the API key, counted
against the Aurora rate budget only on Aurora's own origin, capped in size, signature redacted."""

from __future__ import annotations

import sqlite3
from typing import Iterator

import pytest

from aurora_qb_pipeline.clients import AuroraClient, ClientOptions
from aurora_qb_pipeline.clients.downloads import download, file_name, origin
from aurora_qb_pipeline.clients.errors import FileTooLargeError, PermanentApiError, TransientApiError
from aurora_qb_pipeline.clients.http import RetrySettings
from aurora_qb_pipeline.sandbox.aurora import AuroraState, ServiceConfig, create_app
from aurora_qb_pipeline.sandbox.common import SandboxConfig, ServerThread


@pytest.fixture
def state() -> Iterator[AuroraState]:
    state = AuroraState.generate(seed=5, projects=4, config=SandboxConfig(time_scale=0.01),
                                 services=ServiceConfig(file_url_ttl_s=60_000))
    yield state
    state.close()


@pytest.fixture
def servers(state) -> Iterator[tuple[ServerThread, ServerThread]]:
    """The Aurora API, and a second server on the same state standing in for a storage host."""
    with ServerThread(create_app(state)) as api, ServerThread(create_app(state)) as storage:
        yield api, storage


def options(tmp_path, **overrides) -> ClientOptions:
    # production rate window (60 s: nothing leaks out of the bucket during the test), fast backoff
    retry = RetrySettings(max_attempts=4, backoff_initial_s=0.01, backoff_max_s=0.2)
    return ClientOptions(timeout_s=5, retry=retry, rate_limit_db=str(tmp_path / "rates.sqlite"), **overrides)


def client_for(server, state, opts) -> AuroraClient:
    tenant = state.primary
    return AuroraClient(base_url=server.url, tenant_id=tenant.tenant_id, api_token=tenant.token, options=opts)


def proposal_url(client: AuroraClient, state) -> str:
    project_id = next(p for p in state.primary.project_design_ids
                      if client.project_assets(p))
    return client.project_assets(project_id)[0]["file_url"]


def budget_used(tmp_path, client: AuroraClient) -> int:
    bucket = client._session().rate_limit.bucket_key
    with sqlite3.connect(tmp_path / "rates.sqlite") as db:
        return db.execute(f'SELECT COUNT(*) FROM "{bucket}"').fetchone()[0]


def file_requests(state):
    return [e for e in state.log.entries() if e.path.startswith("/files/")]


def test_transient_failures_are_retried_without_the_key_and_count_against_the_budget(servers, state, tmp_path):
    api, _ = servers
    client = client_for(api, state, options(tmp_path))
    url = proposal_url(client, state)
    assert origin(url) == origin(api.url)
    used = budget_used(tmp_path, client)
    rule = state.failures.add("GET", r"/files/.*", status=503, times=2, retry_after_s=1)

    name, content = client.download(url)

    assert content.startswith(b"%PDF-1.4") and name.startswith("Proposal - ") and name.endswith(".pdf")
    assert rule.served == 2
    assert client.stats["retries"] == 2 and client.stats["server_errors_5xx"] == 2
    assert budget_used(tmp_path, client) == used + 3  # every attempt counted against Aurora's budget
    attempts = file_requests(state)
    assert [e.status for e in attempts] == [503, 503, 200]
    assert {e.credential for e in attempts} == {"anonymous"}  # the API key was never sent
    client.close()


def test_foreign_host_gets_no_key_and_no_aurora_budget(servers, state, tmp_path):
    api, storage = servers
    client = client_for(api, state, options(tmp_path))
    tenant = state.primary
    on_storage = AuroraClient(base_url=storage.url, tenant_id=tenant.tenant_id, api_token=tenant.token,
                              options=options(tmp_path))
    url = proposal_url(on_storage, state)  # the storage server hands out URLs on its own origin
    on_storage.close()
    assert origin(url) != origin(api.url)
    used = budget_used(tmp_path, client)
    state.failures.add("GET", r"/files/.*", status=429, times=1, retry_after_s=0.5)

    name, content = client.download(url)

    assert content.startswith(b"%PDF-1.4")
    assert budget_used(tmp_path, client) == used  # not Aurora's API: not its budget
    assert {e.credential for e in file_requests(state)} == {"anonymous"}
    assert client.stats["rate_limited_429"] == 1
    client.close()


def test_size_cap_expired_url_and_exhausted_retries(servers, state, tmp_path):
    api, _ = servers
    client = client_for(api, state, options(tmp_path, max_download_bytes=200))
    url = proposal_url(client, state)
    token = url.rsplit("/", 1)[1]

    with pytest.raises(FileTooLargeError) as too_large:
        client.download(url)
    assert "200 bytes" in str(too_large.value) and token not in str(too_large.value)
    assert client.stats["retries"] == 0  # refused, not retried

    forged = url[:-4] + ("AAAA" if not url.endswith("AAAA") else "BBBB")
    with pytest.raises(PermanentApiError) as refused:
        download(forged, options(tmp_path))
    assert "URL was refused" in str(refused.value) and forged.rsplit("/", 1)[1] not in str(refused.value)

    rule = state.failures.add("GET", r"/files/.*", status=502, times=None)
    with pytest.raises(TransientApiError) as outage:
        download(url, options(tmp_path))
    rule.clear()
    assert rule.served == 4 and token not in str(outage.value)  # max_attempts, then the error, redacted
    with pytest.raises(PermanentApiError):
        download("ftp://example.invalid/file.pdf", options(tmp_path))
    client.close()


def test_file_names():
    assert file_name('attachment; filename="Agreement 1.pdf"', "/files/abc") == "Agreement 1.pdf"
    assert file_name("attachment; filename*=UTF-8''Angebot%20%C3%BC.pdf", "/x") == "Angebot ü.pdf"
    assert file_name('attachment; filename="../../etc/passwd"', "/x") == "passwd"
    assert file_name(None, "/bucket/proposal%201.pdf") == "proposal 1.pdf"
    assert file_name(None, "/") == "download"
