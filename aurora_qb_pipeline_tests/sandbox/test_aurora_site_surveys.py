"""Contract tests of the site-survey flow of Aurora's site-survey-app guide, end to end over HTTP:
the ``site_survey_requested`` partner webhook to a real receiver, the token exchange with its
session token, the request with its expiring screenshot, the uploads with the guide's checks,
completion's 422 list, and what the sandbox keeps of the uploads (images it downloaded)."""

from __future__ import annotations

from typing import Iterator

import pytest
import requests

from aurora_qb_pipeline.sandbox.aurora import AuroraState
from aurora_qb_pipeline.sandbox.aurora.survey_input import ENUMS
from aurora_qb_pipeline.sandbox.common import SandboxConfig, ServerThread
from aurora_qb_pipeline.sandbox.synthetic import parse_timestamp
from aurora_qb_pipeline_tests.sandbox.aurora_helpers import Api, Receiver, admin, assert_error, error_messages

SURVEY_SCOPES = ["read_projects", "read_designs", "read_site_surveys", "write_site_surveys"]
ELECTRICAL = {"main_panel_location": "garage", "main_bus_rating": 200.0, "main_breaker_rating": 175,
              "service_type": "single_phase_120_240v", "feeder_type": "overhead",
              "utility_meter_location": "exterior_wall", "existing_grounding": "ground_rod",
              "existing_grounding_location": "north wall", "main_panel_manufacturer": "Square D",
              "notes": "Panel label faded."}
PLANE = {"units_of_measurement": "imperial", "pitch": 26.6, "azimuth": 182.5, "roof_type": "comp_shingle",
         "framing_type": "rafters", "rafter_size": "2x6", "rafter_spacing": 24}


@pytest.fixture
def state() -> Iterator[AuroraState]:
    # screenshot URLs live 24 h scaled by 0.0001: 8.6 s unless a test shortens them
    state = AuroraState.generate(seed=51, projects=20, config=SandboxConfig(time_scale=0.0001))
    yield state
    state.close()


@pytest.fixture
def app(server: ServerThread, receiver: Receiver) -> dict:
    made = admin(server, "POST", "/partner_applications", json={"scopes": SURVEY_SCOPES}).json()
    template = (receiver.url + "/survey?site_survey_request_id=<SITE_SURVEY_REQUEST_ID>&tenant_id=<TENANT_ID>"
                "&session_token=<SESSION_TOKEN>")
    hook = requests.post(f"{server.url}/partner_applications/{made['application_id']}/webhooks",
                         headers={"Authorization": f"Bearer {made['application_key']}"}, timeout=5,
                         json={"partner_application_webhook": {"event": "site_survey_requested",
                                                               "url_template": template}})
    assert hook.status_code == 200, hook.text
    return made


@pytest.fixture
def survey(server, state, app, receiver) -> tuple[Api, str]:
    """A survey requested in the app and received as the guide describes: (token API, request id)."""
    project_id = next(p for p, designs in state.primary.project_design_ids.items() if designs)
    assert admin(server, "POST", "/site_surveys", json={"project_id": project_id}).status_code == 200
    query = receiver.wait(1, path="/survey")[0]["query"]
    assert set(query) == {"site_survey_request_id", "tenant_id", "session_token"}
    exchange = requests.post(
        f"{server.url}/partner_applications/{app['application_id']}/tenants/{query['tenant_id']}/create_token",
        params={"session_token": query["session_token"]}, timeout=5,
        headers={"Authorization": f"Bearer {app['application_key']}"})
    assert exchange.status_code == 200, exchange.text
    token = exchange.json()["token"]["bearer_token"]
    return Api(server.url, query["tenant_id"], token), query["site_survey_request_id"]


def put(api: Api, survey_id: str, path: str, body: dict) -> requests.Response:
    return api.put(f"/site_surveys/{survey_id}{path}", json=body)


def test_request_and_screenshot(server, state, survey):
    api, survey_id = survey
    request = api.ok(f"/site_surveys/{survey_id}/request")["site_survey_request"]
    assert set(request) == {"id", "project_id", "requested_for_design_id", "status", "requested_at", "completed_at",
                            "screenshot_url"}
    tenant = state.primary
    assert request["id"] == survey_id and request["status"] == "requested" and request["completed_at"] is None
    assert request["requested_for_design_id"] == tenant.project_design_ids[request["project_id"]][-1]
    assert request["requested_at"].endswith("Z") and "." in request["requested_at"]  # 2024-01-25T07:21:30.507Z
    parse_timestamp(request["requested_at"])
    assert api.ok(f"/projects/{request['project_id']}")["project"]["id"] == request["project_id"]
    assert api.ok(f"/designs/{request['requested_for_design_id']}/summary")["design"]["bill_of_materials"] is not None

    shot = requests.get(request["screenshot_url"], timeout=5)  # no key needed, as a storage URL
    assert shot.status_code == 200 and shot.headers["content-type"] == "image/png"
    assert shot.content.startswith(b"\x89PNG\r\n\x1a\n")
    forged = request["screenshot_url"][:-3] + "abc"
    assert_error(requests.get(forged, timeout=5), 403)


def test_screenshot_url_expires_after_24_hours(server, state, survey):
    api, survey_id = survey
    admin(server, "PUT", "/services/config", json={"screenshot_url_ttl_s": 1})  # 0.1 ms at this scale
    url = api.ok(f"/site_surveys/{survey_id}/request")["site_survey_request"]["screenshot_url"]
    assert "expired" in assert_error(requests.get(url, timeout=5), 403)
    admin(server, "PUT", "/services/config", json={"screenshot_url_ttl_s": 24 * 3600})
    fresh = api.ok(f"/site_surveys/{survey_id}/request")["site_survey_request"]["screenshot_url"]
    assert fresh != url and requests.get(fresh, timeout=5).status_code == 200  # each retrieval signs anew


def test_uploads_are_checked_as_the_guide_says(survey):
    api, survey_id = survey
    electrical = put(api, survey_id, "/electrical", {"electrical": {
        "main_panel_location": "attic", "main_bus_rating": "200", "service_type": None, "colour": "grey",
        "images": [{"url": "file:///etc/passwd", "filename": ""}]}})
    assert sorted(error_messages(electrical)) == sorted([
        "electrical.colour is not a field.",
        f"electrical.main_panel_location must be one of {', '.join(ENUMS['main_panel_location'])}, got 'attic'.",
        "electrical.main_bus_rating must be a number.",
        "electrical.service_type must not be null (omit it to leave it empty).",
        "electrical.images[0].url must be an absolute http(s) URL Aurora can download.",
        "electrical.images[0].filename must be a non-empty string of at most 255 characters.",
    ])
    subpanels = put(api, survey_id, "/electrical/subpanels",
                    {"subpanels": [{"bus_rating": 100.5, "disconnect_size": 0}]})
    assert error_messages(subpanels) == ["subpanels[0].bus_rating must be an integer, got 100.5.",
                                         "subpanels[0].disconnect_size must be between 1 and 4000, got 0."]
    planes = put(api, survey_id, "/roofs/mounting_planes", {"mounting_planes": [
        {**PLANE, "azimuth": 360, "rafter_size": "2x5"}, {"pitch": 20}]})
    messages = error_messages(planes)
    assert "mounting_planes[0].azimuth must be between 0 and 360 (exclusive), got 360." in messages
    assert any(m.startswith("mounting_planes[0].rafter_size must be one of") for m in messages)
    assert {f"mounting_planes[1].{key} is required." for key in
            ("azimuth", "roof_type", "framing_type", "rafter_size", "rafter_spacing")} <= set(messages)
    assert_error(put(api, survey_id, "/electrical", {"subpanels": []}), 422)  # wrong wrapper
    assert_error(put(api, survey_id, "/electrical", {"electrical": [], "extra": 1}), 422)
    assert_error(api.get(f"/site_surveys/{survey_id}/electrical"), 405)  # upload only, as documented


def test_completion_lists_what_is_missing_then_completes(server, state, survey):
    api, survey_id = survey
    status = {"site_survey": {"status": "completed"}}
    assert error_messages(put(api, survey_id, "/status", status)) == [
        "electrical.main_panel_location is required at completion.",
        "electrical.main_bus_rating is required at completion.",
        "electrical.main_breaker_rating is required at completion."]
    partial = {k: v for k, v in ELECTRICAL.items() if k != "main_breaker_rating"}
    assert put(api, survey_id, "/electrical", {"electrical": partial}).status_code == 200
    assert error_messages(put(api, survey_id, "/status", status)) == [
        "electrical.main_breaker_rating is required at completion."]
    assert_error(put(api, survey_id, "/status", {"site_survey": {"status": "requested"}}), 422)

    stored = put(api, survey_id, "/electrical", {"electrical": ELECTRICAL}).json()["electrical"]
    assert stored == {**ELECTRICAL, "images": []}
    assert put(api, survey_id, "/electrical/subpanels", {"subpanels": [
        {"location": "garage", "bus_rating": 100, "disconnect_size": 60}]}).status_code == 200
    assert put(api, survey_id, "/roofs/mounting_planes", {"mounting_planes": [PLANE]}).status_code == 200
    done = put(api, survey_id, "/status", status)
    assert done.status_code == 200, done.text
    completed = done.json()["site_survey"]
    assert completed["status"] == "completed" and completed["completed_at"].endswith("Z")
    assert put(api, survey_id, "/status", status).json()["site_survey"] == completed  # setting it again: no-op
    request = api.ok(f"/site_surveys/{survey_id}/request")["site_survey_request"]
    assert (request["status"], request["completed_at"]) == ("completed", completed["completed_at"])
    assert "completed" in assert_error(put(api, survey_id, "/electrical", {"electrical": ELECTRICAL}), 422)

    view = admin(server, "GET", f"/site_surveys/{survey_id}").json()
    assert view["electrical"] == stored and view["mounting_planes"][0]["rafter_spacing"] == 24
    assert view["subpanels"][0]["bus_rating"] == 100 and view["status"] == "completed"
    outcomes = [(h["action"], h["outcome"]) for h in view["history"]]
    assert outcomes == [("status", 422), ("electrical", 200), ("status", 422), ("status", 422),
                        ("electrical", 200), ("subpanels", 200), ("mounting_planes", 200), ("status", 200),
                        ("electrical", 422)]
    assert view["history"][2]["errors"] == ["electrical.main_breaker_rating is required at completion."]
    assert [s["id"] for s in state.site_surveys()] == [survey_id]


def test_images_are_downloaded_from_their_urls(server, state, survey):
    api, survey_id = survey
    with Receiver() as files:  # stands in for Quickbase's file URLs
        good, private = files.url + "/up/bq123/a/r1/e7/v0", files.url + "/up/bq123/a/r2/e7/v0"
        body = {"electrical": {**ELECTRICAL, "images": [{"url": good, "filename": "panel.jpg"}]}}
        assert put(api, survey_id, "/electrical", body).status_code == 200
        images = state.wait_for_image_fetches(survey_id)
        assert [(i["where"], i["status"], i["status_code"], i["bytes"]) for i in images] == [
            ("electrical", "fetched", 200, 2)]
        assert images[0]["sha256"] and files.hits[0]["path"] == "/up/bq123/a/r1/e7/v0"
        assert "authorization" not in {k.lower() for k in files.hits[0]["headers"]}  # Aurora sends no credential

        files.status = 401  # e.g. a Quickbase file URL without open access
        plane = {**PLANE, "images": [{"url": private, "filename": "roof.jpg"}]}
        assert put(api, survey_id, "/roofs/mounting_planes", {"mounting_planes": [plane]}).status_code == 200
        images = state.wait_for_image_fetches(survey_id)
        assert [(i["where"], i["status"], i["error"]) for i in images] == [
            ("electrical", "fetched", None), ("mounting_planes[0]", "failed", "HTTP 401")]
    # the file server is gone now: a new upload is still answered 200 (Aurora fetches later)
    assert put(api, survey_id, "/electrical", body).status_code == 200
    images = state.wait_for_image_fetches(survey_id)
    assert [(i["where"], i["status"], i["error"]) for i in images] == [
        ("mounting_planes[0]", "failed", "HTTP 401"), ("electrical", "failed", "connection failed")]

    admin(server, "PUT", "/services/config", json={"fetch_survey_images": False})
    assert put(api, survey_id, "/electrical", body).status_code == 200
    assert [i["status"] for i in state.wait_for_image_fetches(survey_id) if i["where"] == "electrical"] == [
        "not_fetched"]
    assert admin(server, "GET", f"/site_surveys/{survey_id}").json()["images"][0]["where"] == "mounting_planes[0]"


def test_scopes_tenants_and_deleted_projects(server, state, survey):
    api, survey_id = survey
    tenant = state.primary
    reader = admin(server, "POST", "/partner_applications", json={"scopes": ["read_site_surveys"]}).json()
    token = requests.post(f"{server.url}/partner_applications/{reader['application_id']}/tenants/"
                          f"{tenant.tenant_id}/create_token", timeout=5,
                          headers={"Authorization": f"Bearer {reader['application_key']}"}).json()["token"]
    read_only = Api(server.url, tenant.tenant_id, token["bearer_token"])
    assert read_only.get(f"/site_surveys/{survey_id}/request").status_code == 200
    assert "write_site_surveys" in assert_error(put(read_only, survey_id, "/electrical", {"electrical": {}}), 403)
    other = list(state.tenants.values())[1]
    other_api = Api(server.url, other.tenant_id, other.token)
    assert_error(other_api.get(f"/site_surveys/{survey_id}/request"), 404)
    own_key = Api(server.url, tenant.tenant_id, tenant.token)  # a standard key has every scope
    assert own_key.get(f"/site_surveys/{survey_id}/request").status_code == 200
    assert_error(api.get("/site_surveys/00000000-0000-4000-8000-000000000000/request"), 404)

    project_id = state.site_survey(survey_id)["project_id"]
    state.delete_project(project_id)
    assert_error(api.get(f"/site_surveys/{survey_id}/request"), 404)
    assert state.site_surveys() == []


def test_request_admin_checks(server, state, app):
    tenant = state.primary
    empty = next(p for p, designs in tenant.project_design_ids.items() if not designs)
    with_designs = next(p for p, designs in tenant.project_design_ids.items() if len(designs) >= 2)
    first_design = tenant.project_design_ids[with_designs][0]
    assert_error(admin(server, "POST", "/site_surveys", json={"project_id": empty}), 422)
    foreign = next(d for d in tenant.designs if d not in tenant.project_design_ids[with_designs])
    assert_error(admin(server, "POST", "/site_surveys", json={"project_id": with_designs, "design_id": foreign}), 422)
    chosen = admin(server, "POST", "/site_surveys", json={"project_id": with_designs, "design_id": first_design})
    assert chosen.json()["site_survey_request"]["requested_for_design_id"] == first_design
    admin(server, "POST", "/partner_applications", json={"name": "Second survey app"})
    ambiguous = admin(server, "POST", "/site_surveys", json={"project_id": with_designs})
    assert "application_id" in assert_error(ambiguous, 422)
    named = admin(server, "POST", "/site_surveys", json={"project_id": with_designs,
                                                         "application_id": app["application_id"]})
    assert named.status_code == 200
    assert_error(admin(server, "POST", "/site_surveys", json={"project_id": "nope"}), 404)
    assert len(state.webhooks.events(event="site_survey_requested")) == 2


def test_session_token_is_masked_in_the_delivery_log(server, state, survey):
    log = admin(server, "GET", "/webhooks/deliveries", params={"event": "site_survey_requested"}).json()
    assert len(log) == 1 and "session_token=********" in log[0]["url"] and log[0]["status"] == "delivered"
