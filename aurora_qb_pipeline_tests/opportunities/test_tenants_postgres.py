"""The per-tenant stores on PostgreSQL (a production inbox database, issue 13): a follow-up table
made before the tenant column gets it when the inbox opens (twice is harmless), and each tenant's
opportunity store has tables of its own beside the single-tenant ones."""

import pytest

from aurora_qb_pipeline.opportunities.store import OpportunityStore
from aurora_qb_pipeline.webhooks.inbox import Inbox

from ..postgres_server import postgres_fixture


@pytest.fixture(scope="module")
def postgres():
    yield from postgres_fixture()


def test_follow_up_and_stores_per_tenant_on_postgres(postgres):
    postgres.create_database("tenant_apps")
    with postgres.connect("tenant_apps") as conn:  # the follow-up table as it was made before
        conn.execute("CREATE TABLE tracked_design_requests (id VARCHAR(128) PRIMARY KEY, project_id VARCHAR(128), "
                     "design_id VARCHAR(128), status VARCHAR(64), source VARCHAR(32) NOT NULL, final BOOLEAN NOT NULL, "
                     "first_seen_at FLOAT NOT NULL, last_checked_at FLOAT, next_check_at FLOAT NOT NULL, "
                     "checks INTEGER NOT NULL, last_error TEXT)")
        conn.execute("INSERT INTO tracked_design_requests VALUES ('old', 'p', NULL, 'submitted', 'webhook', false, 1, "
                     "NULL, 1, 0, NULL)")
    url = (f"postgresql+psycopg://{postgres.user}:{postgres.password}@{postgres.host}:{postgres.port}/tenant_apps")
    inbox = Inbox(url)
    try:
        inbox.track_design_request("a1", source="opportunity", tenant_id="t-acme", now=2)
        inbox.track_design_request("g1", source="opportunity", tenant_id="t-globex", now=2)
        assert [r.id for r in inbox.due_design_requests(10, 10, "t-acme")] == ["a1"]
        assert {r.id for r in inbox.due_design_requests(10, 10)} == {"old", "a1", "g1"}
    finally:
        inbox.close()
    Inbox(url).close()  # the column is there now: nothing to add

    stores = {name: OpportunityStore(url, tenant=name) for name in (None, "acme", "globex")}
    try:
        for name, store in stores.items():
            claimed = store.claim("7")
            assert claimed is not None  # record 7 of each tenant's table is its own
            store.release("7", claimed[0], state="done", project_id=f"project-{name}")
            store.queue("7", "create")
        assert {name: s.get(["7"])["7"].project_id for name, s in stores.items()} == {
            None: "project-None", "acme": "project-acme", "globex": "project-globex"}
        assert all(len(s.queued(0)) == 1 for s in stores.values())
    finally:
        for store in stores.values():
            store.close()
    with postgres.connect("tenant_apps") as conn:
        names = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"opportunity_sync", "opportunity_sync__acme", "opportunity_requests__globex"} <= names
