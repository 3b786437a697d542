"""Contract tests of the emulator's webhooks API and of what a delivery looks like.

Aurora's documented behaviour: subscriptions (``POST/GET/PUT/DELETE /tenants/{tid}/webhooks``,
body ``{"webhook": {description, event, url_template, enabled}}``), delivery as an HTTP GET of
the ``url_template`` with ``<PLACEHOLDERS>`` filled (query or path), custom headers from the
subscription, no body, legacy event names. Every delivery goes to a real receiver on loopback.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from aurora_qb_pipeline.sandbox.aurora import MAGIC_ADDRESS, AuroraState
from aurora_qb_pipeline.sandbox.aurora.webhooks import FIRED_EVENTS, PARTNER_EVENTS, mask_url
from aurora_qb_pipeline.sandbox.common import SandboxConfig
from aurora_qb_pipeline_tests.sandbox.aurora_helpers import Api, admin, assert_error, error_messages

SECRET = "s3cr3t-shared-value"
WEBHOOK_FIELDS = {"id", "description", "event", "url_template", "enabled", "headers", "filters", "created_at"}


@pytest.fixture
def state() -> Iterator[AuroraState]:
    state = AuroraState.generate(seed=21, projects=30, config=SandboxConfig(time_scale=0.001))
    yield state
    state.close()


def subscribe(api: Api, event: str, url_template: str, **fields) -> dict:
    response = api.post("/webhooks", json={"webhook": {"event": event, "url_template": url_template, **fields}})
    assert response.status_code == 200, response.text
    return response.json()["webhook"]


def test_subscription_crud(server, api, state):
    other = list(state.tenants.values())[1]
    other_api = Api(server.url, other.tenant_id, other.token)
    created = subscribe(api, "performance_simulation_job_completed",
                        "https://hooks.example.com/sim?design_id=<DESIGN_ID>&job_id=<JOB_ID>&status=<STATUS>",
                        description="Performance Simulation Completed", enabled=True,
                        headers={"X-Aurora-Webhook-Token": SECRET})
    assert set(created) == WEBHOOK_FIELDS and created["enabled"] is True and created["created_at"].endswith(" UTC")
    assert created["headers"] == {"X-Aurora-Webhook-Token": "********"}
    path = f"/webhooks/{created['id']}"
    assert api.ok(path)["webhook"] == created
    assert [w["id"] for w in api.ok("/webhooks")["webhooks"]] == [created["id"]]

    legacy = subscribe(api, "design_request_completion", "https://hooks.example.com/dr/<DESIGN_REQUEST_UUID_IN_AURORA>"
                       "?status=<STATUS>")
    assert legacy["event"] == "design_request_completion" and legacy["enabled"] is True
    assert len(api.ok("/webhooks")["webhooks"]) == 2

    updated = api.put(path, json={"webhook": {"enabled": False, "description": "paused"}}).json()["webhook"]
    assert (updated["enabled"], updated["description"]) == (False, "paused")
    assert {k: v for k, v in updated.items() if k not in ("enabled", "description")} == {
        k: v for k, v in created.items() if k not in ("enabled", "description")}
    patched = api.patch(path, json={"webhook": {"url_template": "https://hooks.example.com/v2?d=<DESIGN_ID>"}})
    assert patched.json()["webhook"]["url_template"] == "https://hooks.example.com/v2?d=<DESIGN_ID>"

    assert_error(other_api.get(path), 404)  # another tenant's subscription
    assert other_api.ok("/webhooks")["webhooks"] == []
    assert api.delete(path).status_code == 204
    assert_error(api.get(path), 404)
    assert_error(api.delete(path), 404)
    assert_error(api.post(path, json={}), 405)
    for response in (api.get("/webhooks"), api.get(f"/webhooks/{legacy['id']}")):
        assert SECRET not in response.text


def test_subscription_validation(api):
    good = {"event": "project_created", "url_template": "https://h.example.com/p?id=<PROJECT_ID>"}
    cases = [
        ({"url_template": good["url_template"]}, "event is required"),
        ({"event": "project_created"}, "url_template is required"),
        ({**good, "event": "design_finished"}, "unknown event"),
        ({**good, "url_template": "https://h.example.com/p?id=<DESIGN_ID>"}, "<DESIGN_ID>"),
        ({**good, "url_template": "/relative?id=<PROJECT_ID>"}, "absolute http(s) URL"),
        ({**good, "url_template": "ftp://h.example.com/<PROJECT_ID>"}, "absolute http(s) URL"),
        ({**good, "description": None}, "description must be a string"),
        ({**good, "enabled": "yes"}, "enabled must be true or false"),
        ({**good, "secret": "x"}, "unknown field"),
        ({**good, "headers": {"Bad Header": "x"}}, "not a valid header name"),
        ({**good, "headers": {"X-Token": "a\r\nInjected: 1"}}, "single-line"),
        ({**good, "headers": ["X-Token"]}, "headers must be an object"),
        ({**good, "filters": {"AGREEMENT_ID": ["x"]}}, "not an attribute of project_created"),
        ({**good, "filters": {"SOURCE": []}}, "non-empty list"),
        ({**good, "url_template": "https://h.example.com/" + "x" * 2100}, "too long"),
    ]
    for body, expected in cases:
        messages = error_messages(api.post("/webhooks", json={"webhook": body}))
        assert any(expected in m for m in messages), (body, messages)
    several = error_messages(api.post("/webhooks", json={"webhook": {"event": 1, "enabled": "no", "x": 1}}))
    assert len(several) >= 4  # every problem at once
    assert_error(api.post("/webhooks", json=good), 422)  # not in its {"webhook": ...} envelope
    assert_error(api.post("/webhooks", data="{", headers={"Content-Type": "application/json"}), 400)
    created = subscribe(api, **good)
    change_event = {"webhook": {"event": "performance_simulation_job_completed"}}
    assert "<PROJECT_ID>" in assert_error(api.put(f"/webhooks/{created['id']}", json=change_event), 422)
    assert api.put(f"/webhooks/{created['id']}", json={"webhook": {"event": "project_status_changed"}}).ok
    assert_error(api.put("/webhooks/00000000-0000-4000-8000-000000000000", json={"webhook": {}}), 404)


def test_delivery_is_a_get_with_placeholders_filled_and_custom_headers(server, api, state, receiver):
    hook = subscribe(api, "project_created", f"{receiver.url}/aurora?project_id=<PROJECT_ID>&source=<SOURCE>"
                     f"&aurora_event=project_created&token={SECRET}", headers={"X-Aurora-Webhook-Token": SECRET})
    status_hook = subscribe(api, "project_status_changed", f"{receiver.url}/status?p=<PROJECT_ID>&s=<STATUS>")
    created = api.post("/projects", json={"project": {"location": {"property_address": MAGIC_ADDRESS}}})
    project_id = created.json()["project"]["id"]
    hit = receiver.wait(1, path="/aurora")[0]
    assert hit["method"] == "GET" and hit["headers"]["x-aurora-webhook-token"] == SECRET
    assert hit["query"] == {"project_id": project_id, "source": "api", "aurora_event": "project_created",
                            "token": SECRET}
    assert "content-length" not in hit["headers"] or hit["headers"]["content-length"] == "0"  # no body

    api.put(f"/projects/{project_id}", json={"project": {"status": "Project Sold & Signed"}})
    assert receiver.wait(1, path="/status")[0]["query"] == {"p": project_id, "s": "Project Sold & Signed"}

    log = state.webhooks.wait_for(lambda log: len(log) == 2 and all(d["status"] == "delivered" for d in log))
    first = next(d for d in log if d["subscription_id"] == hook["id"])
    assert first["url"].endswith("token=********") and SECRET not in str(log)
    assert first["header_names"] == ["X-Aurora-Webhook-Token"] and first["attempts"][0]["status_code"] == 200
    assert "%26" in next(d for d in log if d["subscription_id"] == status_hook["id"])["url"]  # "&" encoded
    over_http = admin(server, "GET", "/webhooks/deliveries", params={"event": "project_created"})
    assert [d["id"] for d in over_http.json()] == [first["id"]] and SECRET not in over_http.text
    events = admin(server, "GET", "/webhooks/events").json()
    assert [e["event"] for e in events] == ["project_created", "project_status_changed"]
    assert events[0]["values"] == {"PROJECT_ID": project_id, "SOURCE": "api"}


def test_path_placeholders_legacy_names_and_filters(api, state, receiver):
    subscribe(api, "design_request_completion", f"{receiver.url}/dr/<DESIGN_REQUEST_UUID_IN_AURORA>?status=<STATUS>")
    subscribe(api, "agreement_status_changed", f"{receiver.url}/signed?agreement=<AGREEMENT_ID>&status=<STATUS>"
              "&financing=<FINANCING_ID>&design=<DESIGN_ID>&project=<PROJECT_ID>", filters={"<STATUS>": ["signed"]})
    project = api.post("/projects", json={"project": {"location": {"property_address": MAGIC_ADDRESS}}}).json()
    request = api.post("/design_requests", json={"design_request": {"project_id": project["project"]["id"]}})
    request_id = request.json()["design_request"]["id"]
    hit = receiver.wait(1, path=f"/dr/{request_id}")[0]  # the magic address is filled at once
    assert hit["query"] == {"status": "designer_completed"}

    design_id = api.post(f"/design_requests/{request_id}/accept").json()["design_request"]["design_id"]
    agreement = state.create_agreement(design_id)
    state.set_agreement_status(agreement["id"], "viewed")
    state.set_agreement_status(agreement["id"], "signed")
    hit = receiver.wait(1, path="/signed")[0]
    assert hit["query"] == {"agreement": agreement["id"], "status": "signed", "financing": "",
                            "design": design_id, "project": project["project"]["id"]}
    statuses = [e["values"]["STATUS"] for e in state.webhooks.events(event="agreement_status_changed")]
    assert statuses == ["sent", "viewed", "signed"]
    state.webhooks.wait_settled()
    assert len(receiver.hits) == 2  # the filter let only "signed" through


def test_every_state_change_fires_its_event(server, api, state, receiver):
    for event in sorted(FIRED_EVENTS - PARTNER_EVENTS):  # partner events: test_aurora_partners.py
        subscribe(api, event, f"{receiver.url}/{event}")
    tenant = state.primary
    added = admin(server, "POST", "/projects", json={"count": 2, "designs_per_project": 2}).json()
    simulated = [d for d in added["design_ids"] if "energy_production" in tenant.summaries[d]]
    changed = state.mutate(0.05, seed=2)
    changed_simulated = [d for d in changed["changed_design_ids"] if "energy_production" in tenant.summaries[d]]
    admin(server, "POST", f"/projects/{added['project_ids'][0]}/status", json={"status": "Design Ready"})
    rejected = state.create_design_request(tenant.tenant_id, added["project_ids"][0])
    state.reject_design_request(rejected["id"])
    agreement = admin(server, "POST", "/agreements", json={"design_id": added["design_ids"][0]}).json()
    job = api.post(f"/agreements/{agreement['agreement']['id']}/download_url/run").json()

    expected = {
        "project_created": 2,
        "performance_simulation_job_completed": len(simulated) + len(changed_simulated),
        "design_request_completed": len(changed["project_ids"]),
        "design_request_rejected": 1,
        "project_status_changed": 1,
        "agreement_status_changed": 1,
        "agreement_download_url_job_completed": 1,
    }
    receiver.wait(sum(expected.values()))
    state.webhooks.wait_settled()
    assert {e: len([h for h in receiver.hits if h["path"] == f"/{e}"]) for e in expected} == expected
    app_created = state.webhooks.events(event="project_created")
    assert {e["values"]["SOURCE"] for e in app_created} == {"app"}
    jobs = state.webhooks.events(event="agreement_download_url_job_completed")
    assert jobs[0]["values"]["JOB_ID"] == job["agreement_download_url_job"]["job_id"]
    sims = {e["values"]["DESIGN_ID"] for e in state.webhooks.events(event="performance_simulation_job_completed")}
    assert sims == set(simulated) | set(changed_simulated)


def test_admin_emit_and_log_routes(server, api, state, receiver):
    subscribe(api, "ahj_lookup_completed", f"{receiver.url}/ahj?p=<PROJECT_ID>&ahj=<AHJ_ID>&s=<STATUS>")
    emitted = admin(server, "POST", "/webhooks/emit", json={
        "event": "ahj_lookup_completed", "values": {"PROJECT_ID": "p1", "<AHJ_ID>": "a1", "STATUS": "succeeded"}})
    assert emitted.status_code == 200 and emitted.json()["deliveries"] == 1
    assert receiver.wait(1)[0]["query"] == {"p": "p1", "ahj": "a1", "s": "succeeded"}
    assert_error(admin(server, "POST", "/webhooks/emit", json={"event": "nope"}), 422)
    assert_error(admin(server, "POST", "/webhooks/emit", json={"event": "project_created",
                                                                 "values": {"DESIGN_ID": "x"}}), 422)
    state.webhooks.wait_settled()
    assert admin(server, "DELETE", "/webhooks/deliveries").status_code == 204
    assert admin(server, "GET", "/webhooks/deliveries").json() == []
    assert admin(server, "GET", "/webhooks/events").json() == []


def test_secrets_in_urls_are_masked_in_the_log():
    masked = mask_url("https://user:pa55@hooks.example.com/a/b?design_id=d1&api_key=k&Signature=s&x_token=t&status=ok")
    assert masked == ("https://user:********@hooks.example.com/a/b?design_id=d1&api_key=********"
                      "&Signature=********&x_token=********&status=ok")
    assert mask_url("http://h/p?token") == "http://h/p?token"  # a name without a value stays
    assert mask_url("http://h/p?apiKey=a&designId=b&DESIGN_ID=c") == "http://h/p?apiKey=********&designId=b&DESIGN_ID=c"
