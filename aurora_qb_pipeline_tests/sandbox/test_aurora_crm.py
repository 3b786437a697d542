"""Contract tests of the CRM side: creating and updating projects, the design service, and the
design-request list extension that a tenant can switch off (Aurora has no list endpoint)."""

from __future__ import annotations

from typing import Iterator

import pytest

from aurora_qb_pipeline.api_facts import AURORA_MAX_PER_PAGE
from aurora_qb_pipeline.sandbox.aurora import MAGIC_ADDRESS, AuroraState
from aurora_qb_pipeline.sandbox.common import SandboxConfig
from aurora_qb_pipeline.sandbox.synthetic import parse_timestamp
from aurora_qb_pipeline_tests.sandbox.aurora_helpers import Api, admin, assert_error, error_messages, wait_until
from aurora_qb_pipeline_tests.sandbox.test_aurora_emulator import PROJECT_FIELDS


@pytest.fixture
def state() -> Iterator[AuroraState]:
    state = AuroraState.generate(seed=23, projects=30, config=SandboxConfig(time_scale=0.001))
    yield state
    state.close()


def create(api: Api, **project) -> dict:
    response = api.post("/projects", json={"project": project})
    assert response.status_code == 200, response.text
    return response.json()["project"]


# --- create and update ------------------------------------------------------------------------------
def test_create_project_from_an_address(api, state):
    project = create(api, location={"property_address": "434 Brannan St, San Francisco, CA, 94107"},
                     external_provider_id="QB-1042", customer_first_name="Ada", customer_last_name="Lovelace",
                     customer_email="ada@example.com", customer_phone="+1 415-555-0100", tags=["crm"])
    assert set(project) == PROJECT_FIELDS
    location = project["location"]
    assert location["property_address"] == "434 Brannan St, San Francisco, CA 94107, USA"
    assert abs(location["latitude"] - 37.77) < 0.2 and abs(location["longitude"] + 122.42) < 0.2
    assert location["property_address_components"] == {
        "street_address": "434 Brannan St", "city": "San Francisco", "region": "CA", "postal_code": "94107",
        "country": "United States"}
    assert project["project_type"] == "residential" and project["status"] is None
    assert project["owner_id"] in state.primary.user_ids and project["created_at"].endswith(" UTC")
    assert api.ok(f"/projects/{project['id']}")["project"] == project

    # A client that lost the answer finds its project again by paging for its external_provider_id.
    newest = api.ok("/projects", per_page=AURORA_MAX_PER_PAGE)["projects"]
    assert [p["id"] for p in newest if p["external_provider_id"] == "QB-1042"] == [project["id"]]
    assert newest[0]["id"] == project["id"]
    assert state.find_projects(external_provider_id="QB-1042") == [project]


def test_create_project_from_coordinates_or_both(api):
    reverse = create(api, location={"latitude": 33.45, "longitude": -112.07})
    parts = reverse["location"]["property_address_components"]
    assert parts["city"] == "Phoenix" and reverse["location"]["property_address"].endswith("AZ 85000, USA")
    assert (reverse["location"]["latitude"], reverse["location"]["longitude"]) == (33.45, -112.07)
    both = create(api, location={"property_address": "12 Elm St, Boston, MA", "latitude": 1.5, "longitude": 2.5},
                  project_type="commercial")
    assert both["location"]["property_address"] == "12 Elm St, Boston, MA"  # kept as sent
    assert (both["location"]["latitude"], both["location"]["longitude"]) == (1.5, 2.5)
    assert both["project_type"] == "commercial"


def test_create_project_validation(api, state):
    address = {"property_address": "12 Oak Ave, Phoenix, AZ 85001"}
    cases = [
        ({}, "needs an address"),
        ({"location": {}}, "needs an address"),
        ({"location": {"property_address": ""}}, "non-empty string"),
        ({"location": {"property_address": "   "}}, "non-empty string"),
        ({"location": {"property_address": "Main Street"}}, "could not locate"),
        ({"location": {"property_address": "12 Main St, Springfield"}}, "could not locate"),  # which one?
        ({"location": {"property_address": "12 Main St, Springfield, ZZ 12345"}}, "could not locate"),
        ({"location": {"latitude": 95, "longitude": 0}}, "latitude must be a number"),
        ({"location": {"latitude": 33.4}}, "go together"),
        ({"location": {**address, "zip": "85001"}}, "location.zip is not a field"),
        ({"location": address, "customer_email": None}, "customer_email must be a string"),
        ({"location": address, "customer_email": "not-an-email"}, "not an email address"),
        ({"location": address, "customer_last_name": "x" * 256}, "too long"),
        ({"location": {"property_address": "1 " + "Long St, " * 40 + "Phoenix, AZ"}}, "too long"),
        ({"location": address, "address": "12 Oak Ave"}, "project.address is not a field"),
        ({"location": address, "id": "00000000-0000-4000-8000-000000000000"}, "read-only"),
        ({"location": address, "project_type": "industrial"}, "project_type must be one of"),
        ({"location": address, "owner_id": "00000000-0000-4000-8000-000000000000"}, "not found"),
        ({"location": address, "tags": "solar"}, "tags must be a list"),
    ]
    for body, expected in cases:
        messages = error_messages(api.post("/projects", json={"project": body}))
        assert any(expected in m for m in messages), (body, messages)
    several = error_messages(api.post("/projects", json={"project": {
        "customer_first_name": None, "customer_email": "nope", "location": {"property_address": ""}}}))
    assert len(several) == 3  # every problem at once
    assert_error(api.post("/projects", json={"location": address}), 422)  # no {"project": ...} envelope
    assert_error(api.post("/projects", data="{oops", headers={"Content-Type": "application/json"}), 400)
    assert len(state.primary.projects) == 30  # nothing was stored


def test_update_project(api, state):
    project = create(api, location={"property_address": "12 Oak Ave, Phoenix, AZ 85001"}, status="New Lead")
    path = f"/projects/{project['id']}"
    updated = api.put(path, json={"project": {"status": "Design Ready", "customer_first_name": "Grace"}})
    assert updated.status_code == 200
    body = updated.json()["project"]
    assert (body["status"], body["customer_first_name"], body["created_at"]) == (
        "Design Ready", "Grace", project["created_at"])
    moved = api.patch(path, json={"project": {"location": {"property_address": "5 Elm St, Boston, MA 02108"}}})
    assert moved.json()["project"]["location"]["property_address_components"]["city"] == "Boston"
    api.patch(path, json={"project": {"status": "Design Ready"}})  # unchanged: no event
    assert_error(api.put(path, json={"project": {"location": {"property_address": "nowhere"}}}), 422)
    assert_error(api.put(path, json={"project": {"created_at": "2024-01-01 00:00:00 UTC"}}), 422)
    assert_error(api.put("/projects/00000000-0000-4000-8000-000000000000", json={"project": {}}), 404)
    statuses = [e["values"]["STATUS"] for e in state.webhooks.events(event="project_status_changed")]
    assert statuses == ["Design Ready"]
    assert [e["values"]["SOURCE"] for e in state.webhooks.events(event="project_created")] == ["api"]


# --- the design service ---------------------------------------------------------------------------------
def test_magic_address_is_filled_at_once(api, state):
    project = create(api, location={"property_address": MAGIC_ADDRESS})
    request = api.post("/design_requests", json={"design_request": {"project_id": project["id"]}}).json()
    path = f"/design_requests/{request['design_request']['id']}"
    done = wait_until(lambda: api.ok(path)["design_request"]["status"] == "designer_completed", 2, "the fill")
    assert done
    accepted = api.post(path + "/accept").json()["design_request"]
    summary = api.ok(f"/designs/{accepted['design_id']}/summary")["design"]
    assert summary["project_id"] == project["id"] and summary["energy_production"]["annual"] > 0
    assert api.ok(f"/designs/{accepted['design_id']}/proposals/default")["proposal"]["proposal_link"]


def test_design_service_completes_or_rejects_after_its_delay(server, api, state):
    assert admin(server, "PUT", "/services/config", json={"design_service_delay_s": 100}).ok  # 0.1 s
    residential = create(api, location={"property_address": "12 Oak Ave, Phoenix, AZ 85001"})
    commercial = create(api, location={"property_address": "40 Elm St, Boston, MA 02108"}, project_type="commercial")
    ids = [api.post("/design_requests", json={"design_request": {"project_id": p["id"]}}).json()["design_request"]["id"]
           for p in (residential, commercial)]
    assert {api.ok(f"/design_requests/{i}")["design_request"]["status"] for i in ids} == {"submitted"}

    def status(request_id: str) -> str:
        return api.ok(f"/design_requests/{request_id}")["design_request"]["status"]

    wait_until(lambda: all(status(i) != "submitted" for i in ids), 5, "the design service")
    assert status(ids[0]) in ("designer_completed", "designer_rejected")
    commercial_request = api.ok(f"/design_requests/{ids[1]}")["design_request"]
    assert commercial_request["status"] == "designer_rejected" and "Commercial" in commercial_request["rejection_reason"]
    fired = state.webhooks.events(event="design_request_rejected") + state.webhooks.events(
        event="design_request_completed")
    assert sorted(e["values"]["DESIGN_REQUEST_ID_IN_AURORA"] for e in fired) == sorted(ids)


def test_design_service_switches_and_admin_routes(server, api, state):
    project = create(api, location={"property_address": "12 Oak Ave, Phoenix, AZ 85001"})

    def submit() -> str:
        return api.post("/design_requests", json={"design_request": {"project_id": project["id"]}}).json()[
            "design_request"]["id"]

    admin(server, "PUT", "/services/config", json={"reject_rate": 1.0})
    rejected = submit()
    decided = admin(server, "POST", "/design_service/run", json={}).json()["design_requests"]
    assert [(r["id"], r["status"]) for r in decided] == [(rejected, "designer_rejected")]
    assert "imagery" in decided[0]["rejection_reason"].lower() or "pin" in decided[0]["rejection_reason"].lower()

    admin(server, "PUT", "/services/config", json={"reject_rate": 0.0})
    completed = submit()
    decided = admin(server, "POST", "/design_service/run", json={}).json()["design_requests"]
    assert [(r["id"], r["status"]) for r in decided] == [(completed, "designer_completed")]
    accepted = admin(server, "POST", f"/design_requests/{completed}/accept").json()["design_request"]
    assert accepted["status"] == "accepted" and accepted["design_id"] in state.primary.designs

    admin(server, "PUT", "/services/config", json={"design_service": False})
    waiting = submit()
    assert admin(server, "POST", "/design_service/run", json={}).json()["design_requests"] == []
    assert api.ok(f"/design_requests/{waiting}")["design_request"]["status"] == "submitted"
    for bad in ({"reject_rate": 1.5}, {"design_service": "yes"}, {"nope": 1}):
        assert_error(admin(server, "PUT", "/services/config", json=bad), 400)


# --- the list extension -------------------------------------------------------------------------------
def test_design_request_list_can_answer_404_as_aurora_does(server, api, state):
    other = list(state.tenants.values())[1]
    other_api = Api(server.url, other.tenant_id, other.token)
    assert api.get("/design_requests").status_code == 200
    config = admin(server, "PUT", f"/tenants/{state.primary.tenant_id}/config", json={"design_request_list": False})
    assert config.json()["design_request_list_effective"] is False
    message = assert_error(api.get("/design_requests", status="accepted"), 404)
    assert "Not Found" in message
    assert other_api.get("/design_requests").status_code == 200  # per tenant
    project_id = next(iter(state.primary.projects))
    created = api.post("/design_requests", json={"design_request": {"project_id": project_id}})
    assert created.status_code == 200  # create and retrieve are documented and stay
    assert api.get(f"/design_requests/{created.json()['design_request']['id']}").status_code == 200

    admin(server, "PUT", f"/tenants/{state.primary.tenant_id}/config", json={"design_request_list": None})
    admin(server, "PUT", "/services/config", json={"design_request_list": False})  # the default for all
    assert other_api.get("/design_requests").status_code == 404
    tenants = admin(server, "GET", "/tenants").json()
    assert {t["tenant_id"] for t in tenants} == set(state.tenants) and "token" not in str(tenants)
    assert_error(admin(server, "PUT", f"/tenants/{state.primary.tenant_id}/config", json={"x": 1}), 400)
    assert_error(admin(server, "GET", "/tenants/unknown/config"), 404)


def test_created_at_orders_new_projects_first(api):
    first = create(api, location={"property_address": "1 Oak Ave, Phoenix, AZ 85001"})
    second = create(api, location={"property_address": "2 Oak Ave, Phoenix, AZ 85001"})
    listed = [p["id"] for p in api.ok("/projects", per_page=2)["projects"]]
    assert set(listed) == {first["id"], second["id"]}
    assert parse_timestamp(second["created_at"]) >= parse_timestamp(first["created_at"])
