"""Fixtures of the scale-out tests: one PostgreSQL server for the session (each test module
makes its own database in it)."""

import pytest

from ..postgres_server import postgres_fixture


@pytest.fixture(scope="session")
def postgres():
    yield from postgres_fixture()
