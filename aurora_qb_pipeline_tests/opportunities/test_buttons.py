"""The opportunity buttons on the receiver (loopback): a URL signed for its record and action
queues the work and answers a page; a tampered URL, or one copied from another record, is 401."""

import requests

from aurora_qb_pipeline.defs.jobs import aurora_quickbase_sync
from aurora_qb_pipeline.opportunities.buttons import button_url, sign
from aurora_qb_pipeline.opportunities.store import OpportunityStore
from aurora_qb_pipeline.opportunities.sync import STATUS_REQUESTED
from aurora_qb_pipeline.webhooks.inbox import Inbox
from aurora_qb_pipeline.webhooks.receiver import ReceiverThread, create_receiver_app

from .conftest import SECRET

WEBHOOK_SECRET = SECRET  # the receiver's shared secret signs the buttons; it is never in their URLs


def test_button_urls_work_for_their_own_record_only(pipeline, opportunities, path):
    store = OpportunityStore(pipeline.settings.inbox_database_url)
    inbox = Inbox(pipeline.settings.inbox_database_url)
    from aurora_qb_pipeline.opportunities.buttons import button_routes

    table = opportunities.table_id
    app = create_receiver_app(inbox, [WEBHOOK_SECRET], routes=button_routes(store, table, [WEBHOOK_SECRET]))
    rid = opportunities.add(ready=False)  # not flagged: the button alone asks for the project
    other = opportunities.add(ready=False, last_name="Hopper")
    path.tick()  # stamps the signatures
    record = opportunities.get(rid)
    assert record["create_signature"] == sign(SECRET, table, rid, "create")
    with ReceiverThread(app) as receiver:
        good = button_url(receiver.url, rid, "create", record["create_signature"])
        assert WEBHOOK_SECRET not in good
        tampered = good[:-1] + ("0" if good[-1] != "0" else "1")
        copied = button_url(receiver.url, other, "create", record["create_signature"])
        wrong_action = button_url(receiver.url, rid, "sync", record["create_signature"])
        for url in (tampered, copied, wrong_action, good.split("?")[0]):
            answer = requests.get(url, timeout=10)
            assert answer.status_code == 401, url
        assert store.queued(0) == []
        answer = requests.get(good, timeout=10)
        assert answer.status_code == 200 and "text/html" in answer.headers["content-type"]
        assert "Create in Aurora" in answer.text and "Queued" in answer.text
    path.tick()
    assert len(opportunities.projects_for(rid)) == 1 and opportunities.projects_for(other) == []
    record = opportunities.get(rid)
    assert record["sync_status"] == STATUS_REQUESTED

    # "Sync from Aurora now": a sync run of the opportunity's project
    with ReceiverThread(app) as receiver:
        answer = requests.get(button_url(receiver.url, rid, "sync", record["sync_signature"]), timeout=10)
        assert answer.status_code == 200
    outcome = path.tick()
    synced = [r for r in outcome.runs if r.dagster_run.job_name == aurora_quickbase_sync.name]
    assert len(synced) == 1 and synced[0].success
    store.close()
    inbox.close()
