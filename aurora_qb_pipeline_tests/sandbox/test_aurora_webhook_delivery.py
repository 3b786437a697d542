"""Webhook delivery under failure, against real receivers on loopback.

Aurora's documented behaviour: non-2xx answers, redirects and answers slower than 10 s are
failures, retried after about 30 s, 5 min, 30 min, 3 h and 20 h; a consistently failing
subscription is disabled; deliveries may be duplicated and come out of order. The switches
(duplicate, reorder, drop) produce the last two, and a lost event, on purpose. ``time_scale``
0.001 makes the retry ladder 30 ms, 0.3 s, 1.8 s, 10.8 s, 72 s.
"""

from __future__ import annotations

import time
from typing import Iterator

import pytest

from aurora_qb_pipeline.api_facts import AURORA_WEBHOOK_RETRY_SCHEDULE_S, AURORA_WEBHOOK_TIMEOUT_S
from aurora_qb_pipeline.sandbox.aurora import AuroraState
from aurora_qb_pipeline.sandbox.common import SandboxConfig, ServerThread
from aurora_qb_pipeline_tests.sandbox.aurora_helpers import Api, Receiver, admin, assert_error, free_port, wait_until

STATUS_TEMPLATE = "/status?project_id=<PROJECT_ID>&status=<STATUS>"


@pytest.fixture
def state() -> Iterator[AuroraState]:
    state = AuroraState.generate(seed=22, projects=30, config=SandboxConfig(time_scale=0.001))
    yield state
    state.close()


@pytest.fixture
def project_id(state: AuroraState) -> str:
    return next(iter(state.primary.projects))


def subscribe(api: Api, base_url: str, template: str = STATUS_TEMPLATE, event: str = "project_status_changed") -> dict:
    response = api.post("/webhooks", json={"webhook": {"event": event, "url_template": base_url + template}})
    assert response.status_code == 200, response.text
    return response.json()["webhook"]


def configure(server: ServerThread, **values) -> dict:
    response = admin(server, "PUT", "/webhooks/config", json=values)
    assert response.status_code == 200, response.text
    return response.json()


def test_defaults_are_auroras(server):
    config = admin(server, "GET", "/webhooks/config").json()
    assert config["retry_schedule_s"] == list(AURORA_WEBHOOK_RETRY_SCHEDULE_S)
    assert config["timeout_s"] == AURORA_WEBHOOK_TIMEOUT_S
    assert (config["duplicate_rate"], config["drop_rate"], config["reorder_window_real_s"]) == (0, 0, 0)
    for bad in ({"drop_rate": 2}, {"retry_schedule_s": "soon"}, {"unknown": 1}, {"duplicate_next": 1.5},
                {"timeout_s": -1}):
        assert_error(admin(server, "PUT", "/webhooks/config", json=bad), 400)


def test_retries_reach_a_receiver_that_comes_up_later(api, state, project_id):
    port = free_port()
    hook = subscribe(api, f"http://127.0.0.1:{port}")
    state.set_project_status(project_id, "Design Ready")
    state.webhooks.wait_for(lambda log: log and log[0]["attempts"])
    first = state.webhooks.deliveries()[0]
    assert first["status"] == "pending" and first["attempts"][0]["error"] == "connection failed"
    assert first["next_attempt_in_s"] is not None
    with Receiver(port=port) as receiver:  # the receiver comes up; Aurora's next retry reaches it
        hit = receiver.wait(1, timeout=15)[0]
        assert hit["query"] == {"project_id": project_id, "status": "Design Ready"}
        log = state.webhooks.wait_for(lambda log: log[0]["status"] == "delivered", timeout=5)
    attempts = log[0]["attempts"]
    assert attempts[-1]["status_code"] == 200 and all(a["error"] == "connection failed" for a in attempts[:-1])
    assert log[0]["subscription_id"] == hook["id"]


def test_failed_answers_are_retried_on_the_scaled_schedule(server, api, state, receiver, project_id):
    configure(server, retry_schedule_s=[50, 200])  # Aurora seconds: 0.05 s and 0.2 s at time_scale 0.001
    receiver.fail_next = 2
    subscribe(api, receiver.url)
    state.set_project_status(project_id, "Proposal Sent")
    hits = receiver.wait(3)
    assert hits[1]["t"] - hits[0]["t"] >= 0.05 and hits[2]["t"] - hits[1]["t"] >= 0.2
    log = state.webhooks.wait_for(lambda log: log[0]["status"] == "delivered")
    assert [a["status_code"] for a in log[0]["attempts"]] == [500, 500, 200]


def test_gives_up_after_the_last_retry(server, api, state, receiver, project_id):
    configure(server, retry_schedule_s=[1, 1])
    receiver.status = 503
    subscribe(api, receiver.url)
    state.set_project_status(project_id, "Proposal Sent")
    log = state.webhooks.wait_settled()
    assert log[0]["status"] == "failed" and [a["status_code"] for a in log[0]["attempts"]] == [503] * 3
    assert "gave up after 3 attempts" in log[0]["note"]


def test_slow_answers_and_redirects_are_failures(server, api, state, receiver, project_id):
    configure(server, retry_schedule_s=[], timeout_s=100, min_timeout_real_s=0.05)  # 0.1 s at this scale
    slow = Receiver()
    with slow:
        slow.delay_s = 0.5
        subscribe(api, slow.url)
        receiver.redirect = True
        subscribe(api, receiver.url)
        state.set_project_status(project_id, "Proposal Sent")
        log = state.webhooks.wait_settled()
    by_url = {d["url"].split("/status")[0]: d for d in log}
    assert by_url[slow.url]["attempts"][0]["error"].startswith("no answer within")
    assert by_url[receiver.url]["attempts"][0]["status_code"] == 302
    assert {d["status"] for d in log} == {"failed"}


def test_a_consistently_failing_subscription_is_disabled(server, api, state, receiver, project_id):
    configure(server, retry_schedule_s=[1] * 5, disable_after_attempts=3, disable_after_s=0)
    receiver.status = 500
    hook = subscribe(api, receiver.url)
    state.set_project_status(project_id, "Proposal Sent")
    log = state.webhooks.wait_settled()
    assert len(log[0]["attempts"]) == 3 and log[0]["status"] == "abandoned"
    assert "disabled after 3 failed attempts" in log[0]["note"]
    assert api.ok(f"/webhooks/{hook['id']}")["webhook"]["enabled"] is False
    state.set_project_status(project_id, "Design Ready")
    assert len(state.webhooks.deliveries()) == 1  # a disabled subscription gets nothing

    receiver.status = 200
    api.put(f"/webhooks/{hook['id']}", json={"webhook": {"enabled": True}})
    state.set_project_status(project_id, "Project Sold")
    receiver.wait(4)
    assert state.webhooks.wait_settled()[-1]["status"] == "delivered"


def test_duplicate_delivery(server, api, state, receiver, project_id):
    configure(server, duplicate_next=1)
    subscribe(api, receiver.url)
    state.set_project_status(project_id, "Proposal Sent")
    state.set_project_status(project_id, "Project Sold")
    receiver.wait(3)
    log = state.webhooks.wait_settled()
    sent = sorted(h["query"]["status"] for h in receiver.hits)
    assert sent == ["Project Sold", "Proposal Sent", "Proposal Sent"]
    assert [d["duplicate"] for d in log] == [False, True, False]
    assert [e["duplicated"] for e in state.webhooks.events()] == [True, False]


def test_out_of_order_delivery(server, api, state, receiver, project_id):
    configure(server, reorder_window_real_s=0.3)
    subscribe(api, receiver.url)
    for status in ("Site Survey Scheduled", "Design Ready", "Proposal Sent"):
        state.set_project_status(project_id, status)
    receiver.wait(3)
    assert [h["query"]["status"] for h in receiver.hits] == ["Proposal Sent", "Design Ready", "Site Survey Scheduled"]


def test_dropped_event_is_never_delivered_but_the_change_happened(server, api, state, receiver, project_id):
    configure(server, drop_next=1)
    subscribe(api, receiver.url)
    state.set_project_status(project_id, "Proposal Sent")  # lost on purpose
    state.set_project_status(project_id, "Project Sold")
    receiver.wait(1)
    state.webhooks.wait_settled()
    assert [h["query"]["status"] for h in receiver.hits] == ["Project Sold"]
    events = state.webhooks.events()
    assert [(e["values"]["STATUS"], e["dropped"], e["deliveries"]) for e in events] == [
        ("Proposal Sent", True, 0), ("Project Sold", False, 1)]
    assert api.ok(f"/projects/{project_id}")["project"]["status"] == "Project Sold"  # the reconcile finds it


def test_flush_sends_waiting_retries_now(server, api, state, receiver, project_id):
    configure(server, retry_schedule_s=[3600])  # 3.6 s at this scale
    receiver.fail_next = 1
    subscribe(api, receiver.url)
    state.set_project_status(project_id, "Proposal Sent")
    log = state.webhooks.wait_for(lambda log: log and log[0]["attempts"])
    assert log[0]["status"] == "pending" and log[0]["next_attempt_in_s"] > 1
    started = time.monotonic()
    assert admin(server, "POST", "/webhooks/flush").json() == {"sent": 1}
    receiver.wait(2)
    assert time.monotonic() - started < 1.5
    assert state.webhooks.wait_settled()[0]["status"] == "delivered"


def test_request_handlers_never_wait_for_subscribers(api, state, receiver, project_id):
    receiver.delay_s = 1.0
    subscribe(api, receiver.url)
    started = time.monotonic()
    response = api.put(f"/projects/{project_id}", json={"project": {"status": "Proposal Sent"}})
    assert response.status_code == 200 and time.monotonic() - started < 0.5
    receiver.wait(1)


def test_deleting_or_disabling_abandons_pending_deliveries(server, api, state, receiver, project_id):
    configure(server, retry_schedule_s=[3600])
    receiver.status = 500
    hook = subscribe(api, receiver.url)
    paused = subscribe(api, receiver.url, template="/paused?s=<STATUS>")
    state.set_project_status(project_id, "Proposal Sent")
    wait_until(lambda: all(d["attempts"] for d in state.webhooks.deliveries()) and len(receiver.hits) == 2)
    assert api.delete(f"/webhooks/{hook['id']}").status_code == 204
    api.put(f"/webhooks/{paused['id']}", json={"webhook": {"enabled": False}})
    notes = sorted(d["note"] for d in state.webhooks.wait_settled())
    assert notes == ["subscription deleted", "subscription disabled"]
    assert {d["status"] for d in state.webhooks.deliveries()} == {"abandoned"}
