"""Fixtures of the Quickbase sandbox tests: one server per test module (``qb``), emptied before
every test."""

from __future__ import annotations

import pytest
import requests

from aurora_qb_pipeline.sandbox.common import SandboxConfig, ServerThread
from aurora_qb_pipeline.sandbox.quickbase import DEFAULT_PAGE_CAP, QuickbaseState, create_app

from .support import CHOICES, Sandbox


@pytest.fixture(scope="module")
def qb():
    # No rate limit here (the rate-limit test switches it on), so the other tests never see a 429.
    state = QuickbaseState.with_design_table(CHOICES, seed=7, config=SandboxConfig())
    with ServerThread(create_app(state)) as server, requests.Session() as session:
        yield Sandbox(state, server.url, session)


@pytest.fixture(autouse=True)
def empty_table(qb):
    qb.state.clear_records(reset_record_ids=True)
    qb.state.page_cap = DEFAULT_PAGE_CAP
    yield


@pytest.fixture
def fresh():
    """A server of its own for a test that changes the schema or the sandbox settings."""
    state = QuickbaseState.with_design_table(CHOICES, seed=11, config=SandboxConfig())
    with ServerThread(create_app(state)) as server, requests.Session() as session:
        yield Sandbox(state, server.url, session)
