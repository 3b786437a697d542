"""Fixtures shared by the Aurora emulator's contract tests. Each test module defines its own
``state`` (seed, size and time scale differ); the server, the tenant client and the webhook
receiver over it are the same everywhere."""

from __future__ import annotations

from typing import Iterator

import pytest

from aurora_qb_pipeline.sandbox.aurora import AuroraState, create_app
from aurora_qb_pipeline.sandbox.common import ServerThread
from aurora_qb_pipeline_tests.sandbox.aurora_helpers import Api, Receiver


@pytest.fixture
def server(state: AuroraState) -> Iterator[ServerThread]:
    """The emulator over the module's ``state``, served on loopback."""
    with ServerThread(create_app(state)) as running:
        yield running


@pytest.fixture
def api(server: ServerThread, state: AuroraState) -> Api:
    """A client of the primary tenant, authenticated with its key."""
    return Api(server.url, state.primary.tenant_id, state.primary.token)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback that records what it is sent."""
    with Receiver() as running:
        yield running
