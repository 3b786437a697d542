"""The opportunity store on SQLite and on Postgres: one claim at a time, a dead claim taken over
after its lease, unfinished attempts found, button clicks queued in order."""

import time

import pytest

from aurora_qb_pipeline.opportunities.store import OpportunityStore

from ..postgres_server import find_bin_dir, running_postgres


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite'}"
        return
    if find_bin_dir() is None:
        pytest.skip("PostgreSQL binaries are not installed")
    with running_postgres() as server:
        server.create_database("opportunities")
        yield (f"postgresql+psycopg://{server.user}:{server.password}@{server.host}:{server.port}/opportunities")


def test_claims_leases_and_the_click_queue(store_url):
    store = OpportunityStore(store_url, lease_s=0.3)
    t0 = time.time()  # an explicit clock: a loaded machine must not make a live claim look stale
    try:
        token, before = store.claim("7", now=t0)
        assert before.state == "new"
        assert store.claim("7", now=t0 + 0.1) is None  # a live claim: a second attempt passes it over
        store.update("7", token, project_id="p-1", state="project_created")
        store.update("7", "someone-else", project_id="p-2")  # only the claim holder records progress
        assert store.get(["7"])["7"].project_id == "p-1"
        assert store.unfinished(now=t0 + 0.1) == []  # claimed, not yet stale
        assert store.unfinished(now=t0 + 0.35) == ["7"]  # its process died (the claim outlived the lease)
        token2, before2 = store.claim("7", now=t0 + 0.35)
        assert before2.project_id == "p-1" and before2.attempts == 1
        store.release("7", token2, state="done")
        assert store.unfinished() == [] and store.linked_projects(["p-1", "p-9"]) == {"p-1"}

        first, second = store.queue("7", "create"), store.queue("8", "sync")
        assert [(q.id, q.record_id, q.action) for q in store.queued(0)] == [(first, "7", "create"), (second, "8", "sync")]
        assert [q.id for q in store.queued(first)] == [second]
    finally:
        store.close()
