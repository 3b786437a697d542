"""Contract tests of partner applications: the application key, temporary tokens (scopes, expiry,
revocation, shared rate budget) and partner webhooks delivered to a real receiver on loopback.

From Aurora's CRM-app and site-survey-app guides: ``POST /partner_applications/{app}/tenants/
{tid}/create_token[?session_token=]`` with ``Authorization: Bearer <application key>`` answers
``{"token": {"bearer_token": "tk_test_...", "expires_at": "YYYY-MM-DD HH:MM:SS UTC"}}``; tokens
expire; ``POST /partner_applications/{app}/webhooks`` takes ``partner_application_webhook``.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Iterator

import pytest
import requests

from aurora_qb_pipeline.sandbox.aurora import AuroraState, ServiceConfig, create_app
from aurora_qb_pipeline.sandbox.common import SandboxConfig, ServerThread
from aurora_qb_pipeline.sandbox.synthetic import parse_timestamp
from aurora_qb_pipeline_tests.sandbox.aurora_helpers import (
    Api,
    admin,
    assert_error,
    error_messages,
    sandbox_settings,
)

SURVEY_SCOPES = ["read_projects", "read_designs", "read_site_surveys", "write_site_surveys"]


class Clock:
    """An emulator clock a test moves by hand (token expiry follows the emulator clock)."""

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> Iterator[AuroraState]:
    state = AuroraState.generate(seed=41, projects=20, config=SandboxConfig(time_scale=0.001), clock=clock)
    yield state
    state.close()


@pytest.fixture
def app(server: ServerThread) -> dict:
    made = admin(server, "POST", "/partner_applications", json={"name": "Survey Co", "scopes": SURVEY_SCOPES})
    assert made.status_code == 200, made.text
    return made.json()


def create_token(server: ServerThread, app: dict, tenant_id: str, key: str = None, **params) -> requests.Response:
    key = app["application_key"] if key is None else key
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.post(f"{server.url}/partner_applications/{app['application_id']}/tenants/{tenant_id}/create_token",
                         headers=headers, params=params, timeout=5)


def token_api(server: ServerThread, app: dict, tenant_id: str) -> tuple[Api, dict]:
    answer = create_token(server, app, tenant_id)
    assert answer.status_code == 200, answer.text
    token = answer.json()["token"]
    return Api(server.url, tenant_id, token["bearer_token"]), token


def partner(server: ServerThread, app: dict, method: str, path: str = "", key: str = None, **kwargs):
    headers = {"Authorization": f"Bearer {app['application_key'] if key is None else key}"}
    return requests.request(method, f"{server.url}/partner_applications/{app['application_id']}/webhooks{path}",
                            headers=headers, timeout=5, **kwargs)


# --- applications and tokens ------------------------------------------------------------------------
def test_application_admin(server, state, app):
    tenant = state.primary
    assert app["application_key"].startswith("ak_sand_") and app["tenant_ids"] == [tenant.tenant_id]
    assert app["scopes"] == sorted(SURVEY_SCOPES)
    listed = admin(server, "GET", "/partner_applications").json()
    assert [a["application_id"] for a in listed] == [app["application_id"]]
    assert "application_key" not in listed[0]  # the key is answered once
    events = state.webhooks.events(event="app_status_changed")
    assert events[-1]["values"] == {"APP_ID": app["application_id"], "STATUS": "enabled"}
    assert_error(admin(server, "POST", "/partner_applications", json={"scopes": ["everything"]}), 422)
    assert_error(admin(server, "POST", "/partner_applications", json={"tenant_ids": ["nope"]}), 404)


def test_create_token(server, state, app):
    tenant = state.primary
    api, token = token_api(server, app, tenant.tenant_id)
    assert token["bearer_token"].startswith("tk_test_") and set(token) == {"bearer_token", "expires_at"}
    assert token["expires_at"].endswith(" UTC")
    lifetime = parse_timestamp(token["expires_at"]) - state.clock()
    assert timedelta(seconds=3) <= lifetime <= timedelta(seconds=5)  # 1 h scaled by 0.001, whole seconds up
    project_id = next(iter(tenant.projects))
    assert api.ok(f"/projects/{project_id}")["project"]["id"] == project_id
    assert [t["tenant_id"] for t in admin(server, "GET", "/partner_tokens").json()] == [tenant.tenant_id]
    assert token["bearer_token"] not in admin(server, "GET", "/partner_tokens").text


def test_create_token_errors(server, state, app):
    tenant, other = state.primary, list(state.tenants.values())[1]
    assert "application key" in assert_error(create_token(server, app, tenant.tenant_id, key=""), 401)
    assert_error(create_token(server, app, tenant.tenant_id, key="ak_sand_wrong"), 401)
    assert_error(create_token(server, app, tenant.tenant_id, key=tenant.token), 401)  # a tenant key is no app key
    second = admin(server, "POST", "/partner_applications", json={"name": "Other app"}).json()
    assert_error(create_token(server, app, tenant.tenant_id, key=second["application_key"]), 404)
    assert_error(create_token(server, app, "00000000-0000-4000-8000-000000000000"), 404)
    assert "not enabled" in assert_error(create_token(server, app, other.tenant_id), 403)
    assert_error(create_token(server, app, tenant.tenant_id, session_token="st_forged"), 401)
    wrong_verb = requests.get(f"{server.url}/partner_applications/{app['application_id']}/tenants/"
                              f"{tenant.tenant_id}/create_token", timeout=5)
    assert_error(wrong_verb, 405)


def test_session_tokens_from_the_webhook(server, state, app):
    tenant = state.primary
    survey = state.request_site_survey(next(p for p, d in tenant.project_design_ids.items() if d))
    session = survey["session_token"]
    assert create_token(server, app, tenant.tenant_id, session_token=session).status_code == 200
    other_app = admin(server, "POST", "/partner_applications", json={"name": "Other", "scopes": ["read_projects"]})
    assert_error(create_token(server, other_app.json(), tenant.tenant_id, session_token=session), 401)
    state.clock.now += timedelta(seconds=24 * 3600 * 0.001 + 1)  # the session outlives 24 h (scaled)
    assert_error(create_token(server, app, tenant.tenant_id, session_token=session), 401)
    assert create_token(server, app, tenant.tenant_id).status_code == 200  # backend apps need no session


def test_tokens_are_bound_to_scopes_and_tenant(server, state, app):
    tenant, other = state.primary, list(state.tenants.values())[1]
    api, _ = token_api(server, app, tenant.tenant_id)
    design_id = next(iter(tenant.designs))
    assert api.get(f"/designs/{design_id}/summary").status_code == 200
    assert "read_pricing" in assert_error(api.get(f"/designs/{design_id}/pricing"), 403)
    assert "partner application" in assert_error(api.post("/projects", json={"project": {}}), 403)
    assert_error(api.get("/webhooks"), 403)
    foreign = Api(server.url, other.tenant_id, api.session.headers["Authorization"].split()[1])
    assert_error(foreign.get("/projects"), 404)

    full = admin(server, "POST", "/partner_applications", json={"name": "Dev app"}).json()  # no scopes: all
    dev_api, _ = token_api(server, full, tenant.tenant_id)
    assert dev_api.get(f"/designs/{design_id}/pricing").status_code == 200


def test_token_expiry_mid_use(server, state, app):
    """A run that keeps using a token gets 401 once it expires, and goes on with a fresh one."""
    tenant = state.primary
    api, token = token_api(server, app, tenant.tenant_id)
    project_id = next(iter(tenant.projects))
    assert api.get(f"/projects/{project_id}").status_code == 200
    state.clock.now = parse_timestamp(token["expires_at"]) - timedelta(milliseconds=1)
    assert api.get(f"/projects/{project_id}").status_code == 200  # valid up to expires_at
    state.clock.now = parse_timestamp(token["expires_at"])
    assert "expired" in assert_error(api.get(f"/projects/{project_id}"), 401)
    fresh, _ = token_api(server, app, tenant.tenant_id)
    assert fresh.get(f"/projects/{project_id}").status_code == 200

    expired = admin(server, "POST", "/partner_tokens/expire", json={"application_id": app["application_id"]})
    assert expired.json() == {"expired": 1}
    assert_error(fresh.get(f"/projects/{project_id}"), 401)
    assert [t["expired"] for t in admin(server, "GET", "/partner_tokens").json()] == [True, True]


def test_token_expires_in_real_time_too(server):
    """With the wall clock, a token's scaled lifetime runs out while a client uses it."""
    state = AuroraState.generate(seed=42, projects=5, config=SandboxConfig(time_scale=0.001),
                                 services=ServiceConfig(partner_token_ttl_s=500))  # 0.5 s
    with ServerThread(create_app(state)) as running:
        made = admin(running, "POST", "/partner_applications", json={}).json()
        api, token = token_api(running, made, state.primary.tenant_id)
        project_id = next(iter(state.primary.projects))
        statuses = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and 401 not in statuses:
            statuses.append(api.get(f"/projects/{project_id}").status_code)
            time.sleep(0.05)
        assert statuses[0] == 200 and statuses[-1] == 401 and set(statuses) == {200, 401}
        assert datetime.now(timezone.utc) >= parse_timestamp(token["expires_at"])
    state.close()


def test_disabling_the_app_revokes_its_tokens(server, state, app):
    tenant = state.primary
    api, _ = token_api(server, app, tenant.tenant_id)
    path = f"/partner_applications/{app['application_id']}/tenants/{tenant.tenant_id}"
    assert admin(server, "DELETE", path).json()["tenant_ids"] == []
    assert "revoked" in assert_error(api.get("/projects"), 401)
    assert state.webhooks.events(event="app_status_changed")[-1]["values"]["STATUS"] == "disabled"
    assert_error(create_token(server, app, tenant.tenant_id), 403)
    admin(server, "PUT", path)
    assert create_token(server, app, tenant.tenant_id).status_code == 200


def test_partner_tokens_share_one_rate_budget_per_tenant(server, state, app):
    tenant = state.primary
    first, _ = token_api(server, app, tenant.tenant_id)
    second, _ = token_api(server, app, tenant.tenant_id)
    own = Api(server.url, tenant.tenant_id, tenant.token)
    with sandbox_settings(server, rate_limit=4, rate_window_s=60, time_scale=0.05):  # 4 per 3 s
        assert [first.get("/projects", per_page=1).status_code for _ in range(2)] == [200, 200]
        assert [second.get("/projects", per_page=1).status_code for _ in range(2)] == [200, 200]
        assert_error(second.get("/projects", per_page=1), 429)  # the app's budget in this tenant is spent
        assert own.get("/projects", per_page=1).status_code == 200  # the tenant's key has its own


# --- partner webhooks --------------------------------------------------------------------------------
def test_partner_webhook_crud_and_validation(server, state, app, receiver):
    body = {"description": "Status", "event": "project_status_changed",
            "url_template": receiver.url + "/s?tenant=<TENANT_ID>&project=<PROJECT_ID>&status=<STATUS>"}
    created = partner(server, app, "POST", json={"partner_application_webhook": body})
    assert created.status_code == 200, created.text
    hook = created.json()["partner_application_webhook"]
    assert {k: hook[k] for k in body} == body and hook["enabled"] is True
    listed = partner(server, app, "GET").json()["partner_application_webhooks"]
    assert [h["id"] for h in listed] == [hook["id"]]
    assert partner(server, app, "GET", f"/{hook['id']}").json()["partner_application_webhook"] == hook
    patched = partner(server, app, "PATCH", f"/{hook['id']}",
                      json={"partner_application_webhook": {"enabled": False}}).json()["partner_application_webhook"]
    assert patched["enabled"] is False

    bad = {"event": "project_status_changed", "url_template": "ftp://x/<DESIGN_ID>", "colour": "red"}
    messages = error_messages(partner(server, app, "POST", json={"partner_application_webhook": bad}))
    assert len(messages) == 3 and all(m.startswith("partner_application_webhook") for m in messages)
    assert_error(partner(server, app, "POST", json={"webhook": body}), 422)  # the partner wrapper is required
    assert_error(partner(server, app, "GET", key="ak_sand_wrong"), 401)
    assert partner(server, app, "DELETE", f"/{hook['id']}").status_code == 204
    assert_error(partner(server, app, "GET", f"/{hook['id']}"), 404)

    # the tenant webhooks API refuses partner events and <TENANT_ID> stays a partner placeholder
    tenant_api = Api(server.url, state.primary.tenant_id, state.primary.token)
    refused = tenant_api.post("/webhooks", json={"webhook": {"event": "site_survey_requested",
                                                             "url_template": receiver.url + "/x"}})
    assert "partner application event" in assert_error(refused, 422)
    refused = tenant_api.post("/webhooks", json={"webhook": {"event": "project_created",
                                                             "url_template": receiver.url + "/x?t=<TENANT_ID>"}})
    assert "<TENANT_ID>" in assert_error(refused, 422)


def test_partner_webhooks_get_events_of_every_enabled_tenant(server, state, app, receiver):
    tenant, other = state.primary, list(state.tenants.values())[1]
    template = receiver.url + "/status?tenant_id=<TENANT_ID>&project_id=<PROJECT_ID>&status=<STATUS>"
    partner(server, app, "POST", json={"partner_application_webhook": {"event": "project_status_changed",
                                                                       "url_template": template}})
    mine, theirs = next(iter(tenant.projects)), next(iter(other.projects))
    state.set_project_status(theirs, "Design Ready")  # the other tenant has not enabled the app
    state.set_project_status(mine, "Project Sold")
    hit = receiver.wait(1)[0]
    assert hit["query"] == {"tenant_id": tenant.tenant_id, "project_id": mine, "status": "Project Sold"}
    admin(server, "PUT", f"/partner_applications/{app['application_id']}/tenants/{other.tenant_id}")
    state.set_project_status(theirs, "Proposal Sent")
    hits = receiver.wait(2)
    assert hits[1]["query"]["tenant_id"] == other.tenant_id
    log = state.webhooks.wait_settled()
    assert {d["application_id"] for d in log} == {app["application_id"]} and len(log) == 2
