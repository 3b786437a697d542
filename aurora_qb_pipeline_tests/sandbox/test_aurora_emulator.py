"""Contract tests of the Aurora emulator against what Aurora documents (see README, "The sandbox").

One server (a generated tenant of 300 projects plus a small second tenant) runs in-process for
the whole module; tests that change settings restore them, tests that change data read counts
from the state instead of assuming them.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Iterator

import pytest
import requests

from aurora_qb_pipeline.sandbox.aurora import MAX_PER_PAGE, AuroraState, create_app
from aurora_qb_pipeline.sandbox.common import SandboxConfig, ServerThread, credential_id
from aurora_qb_pipeline.sandbox.synthetic import DESIGN_QUIRKS, TenantData, parse_timestamp
from aurora_qb_pipeline_tests.sandbox.aurora_helpers import Api, admin, assert_error, sandbox_settings

SEED = 11
PROJECTS = 300

PROJECT_FIELDS = {
    "id", "name", "external_provider_id", "status", "project_type", "tags", "customer_salutation",
    "customer_first_name", "customer_last_name", "customer_email", "customer_phone", "mailing_address",
    "owner_id", "team_id", "partner_id", "location", "created_at", "created_from_lead_id", "order_id",
    "ahj_id", "preferred_solar_modules",
}
DESIGN_FIELDS = {"id", "name", "external_provider_id", "created_at", "system_size_stc", "system_size_ptc",
                 "system_size_ac", "milestone"}
SUMMARY_FIELDS = {"design_id", "design_request_id", "project_id", "external_provider_id", "created_at",
                  "system_size_stc", "system_size_ptc", "system_size_ac", "units_of_measurement", "bill_of_materials",
                  "arrays", "string_inverters", "storage_inverters", "batteries", "storage_selected_operating_mode"}
ARRAY_FIELDS = {"size", "azimuth", "pitch", "orientation", "face", "ground_mounted", "module", "shading",
                "configuration"}
# per array, by configuration: the hardware objects it carries
ARRAY_HARDWARE = {"microinverter": {"microinverter"}, "string inverter": {"string_inverter"},
                  "string inverter with dc optimizers": {"string_inverter", "dc_optimizer"}}
REQUEST_FIELDS = {"id", "project_id", "design_id", "status", "image_src", "submission_time", "completed_at",
                  "reviewed_at", "designer_rejected_at", "rejection_reason"}
# status -> the timestamp fields that are set (all others are null)
REQUEST_STAMPS = {
    "submitted": set(),
    "designer_rejected": {"designer_rejected_at"},
    "designer_completed": {"completed_at"},
    "accepted": {"completed_at", "reviewed_at"},
}


@pytest.fixture(scope="module")
def state() -> AuroraState:
    # No rate limit unless a test asks for one (the emulator's default is 90/min per key).
    return AuroraState.generate(seed=SEED, projects=PROJECTS, designs_per_project=2.0, config=SandboxConfig())


@pytest.fixture(scope="module")
def server(state: AuroraState) -> Iterator[ServerThread]:
    with ServerThread(create_app(state)) as running:
        yield running


@pytest.fixture(scope="module")
def tenant(state: AuroraState) -> TenantData:
    return state.primary


@pytest.fixture(scope="module")
def other(state: AuroraState) -> TenantData:
    return list(state.tenants.values())[1]


@pytest.fixture(scope="module")
def api(server: ServerThread, tenant: TenantData) -> Api:
    return Api(server.url, tenant.tenant_id, tenant.token)


def designs_with(tenant: TenantData, quirk: str) -> list[str]:
    return [i for i in tenant.quirks[quirk] if i in tenant.designs]


def plain_design(tenant: TenantData) -> str:
    """A design with none of the design quirks."""
    messy = {i for kind in DESIGN_QUIRKS for i in tenant.quirks.get(kind, [])}
    return next(d for d in tenant.designs if d not in messy)


# --- authentication and error shape ----------------------------------------------------------
def test_auth_and_error_shape(server, api, tenant, other):
    projects = f"{server.url}/tenants/{tenant.tenant_id}/projects"
    assert "Bearer" in assert_error(requests.get(projects, timeout=5), 401)
    for header in ("Bearer sk_sand_unknown", "Basic dXNlcjpwdw==", f"Token {tenant.token}"):
        assert_error(requests.get(projects, headers={"Authorization": header}, timeout=5), 401)
    other_key = {"Authorization": f"Bearer {other.token}"}
    assert_error(requests.get(projects, headers=other_key, timeout=5), 404)  # valid key, another tenant
    own = requests.get(f"{server.url}/tenants/{other.tenant_id}/projects", headers=other_key, timeout=5)
    assert own.status_code == 200 and len(own.json()["projects"]) == len(other.projects)

    assert_error(api.get("/no_such_resource"), 404)
    assert_error(api.get(f"/projects/{next(iter(other.projects))}"), 404)  # other tenant's object
    assert_error(api.get("/designs/00000000-0000-4000-8000-000000000000"), 404)
    assert_error(requests.get(f"{server.url}/v2/nothing", timeout=5), 404)
    wrong_verb = api.session.delete(api.root + "/projects", timeout=5)
    assert_error(wrong_verb, 405)
    assert "GET" in wrong_verb.headers["Allow"]


# --- projects ---------------------------------------------------------------------------------
def test_project_paging(api, tenant):
    total = len(tenant.projects)
    assert total > MAX_PER_PAGE
    assert len(api.ok("/projects")["projects"]) == 100  # default page size
    assert set(api.ok("/projects", page=1)) == {"projects"}  # no paging metadata
    message = assert_error(api.get("/projects", per_page=MAX_PER_PAGE + 1), 422)
    assert str(MAX_PER_PAGE) in message
    for bad in ({"page": 0}, {"per_page": 0}, {"page": "two"}):
        assert_error(api.get("/projects", **bad), 422)

    first = api.ok("/projects", per_page=MAX_PER_PAGE)["projects"]
    second = api.ok("/projects", per_page=MAX_PER_PAGE, page=2)["projects"]
    assert len(first) == MAX_PER_PAGE and len(second) == total - MAX_PER_PAGE  # short last page
    assert api.ok("/projects", per_page=MAX_PER_PAGE, page=3)["projects"] == []
    ids = [p["id"] for p in first + second]
    assert sorted(ids) == sorted(tenant.projects)
    created = [parse_timestamp(p["created_at"]) for p in first + second]
    assert created == sorted(created, reverse=True)


def test_project_fields(api, tenant):
    project = api.ok(f"/projects/{next(iter(tenant.projects))}")["project"]
    assert set(project) == PROJECT_FIELDS  # 2024.05: no updated_at, location nested
    location = project["location"]
    assert {"property_address", "latitude", "longitude", "property_address_components"} <= set(location)
    parts = location["property_address_components"]
    assert set(parts) == {"street_address", "city", "region", "postal_code", "country"}

    countries = {}
    for project in tenant.projects.values():
        parts = project["location"]["property_address_components"]
        countries.setdefault(parts["country"], set()).add(parts["region"])
    assert all(len(region) == 2 and region.isupper() for region in countries["United States"])
    assert countries["Canada"] <= {"ON", "BC"} and countries["Australia"] == {"NSW"}
    assert countries["Germany"] <= {None, "BY"} and "Mexico" in countries
    for project_id in tenant.quirks["null_address_parts"]:
        parts = api.ok(f"/projects/{project_id}")["project"]["location"]["property_address_components"]
        assert parts["street_address"] is None or parts["postal_code"] is None


# --- designs, summaries, proposals -------------------------------------------------------------
def test_designs_are_in_watts_and_match_summaries(api, tenant):
    project_id = next(p for p, designs in tenant.project_design_ids.items() if len(designs) >= 2)
    designs = api.ok(f"/projects/{project_id}/designs")["designs"]
    assert [d["id"] for d in designs] == tenant.project_design_ids[project_id]
    for design in designs:
        assert DESIGN_FIELDS <= set(design)
        assert api.ok(f"/designs/{design['id']}")["design"] == design
        summary = api.ok(f"/designs/{design['id']}/summary")["design"]
        for size in ("system_size_stc", "system_size_ptc", "system_size_ac"):
            assert summary[size] == design[size]
    with_arrays = [d for d in tenant.designs.values() if tenant.summaries[d["id"]]["arrays"]]
    assert all(d["system_size_stc"] >= 1000 for d in with_arrays)  # watts, not kW
    assert any(not ids for ids in tenant.project_design_ids.values())  # some projects have no design yet
    assert_error(api.get("/projects/00000000-0000-4000-8000-000000000000/designs"), 404)


def test_summary_shape(api, tenant):
    summary = api.ok(f"/designs/{plain_design(tenant)}/summary")["design"]
    assert SUMMARY_FIELDS <= set(summary) and "id" not in summary
    for array in summary["arrays"]:
        assert set(array) == ARRAY_FIELDS | ARRAY_HARDWARE[array["configuration"]]
        assert set(array["module"]) == {"id", "name", "count", "rating_stc", "orientation"}
        assert len(array["shading"]["solar_access"]["monthly"]) == 12
        assert 0 < array["shading"]["total_solar_resource_fraction"]["annual"] <= 100
    for item in summary["bill_of_materials"]:
        assert set(item) == {"id", "name", "component_type", "quantity", "sku", "manufacturer_name"}
    energy = summary["energy_production"]
    assert energy["up_to_date"] is True and len(energy["monthly"]) == 12
    assert energy["annual_offset"].endswith("%") and energy["annual"] == round(sum(energy["monthly"]), 1)

    assert api.ok(f"/designs/{designs_with(tenant, 'empty_arrays')[0]}/summary")["design"]["arrays"] == []
    arrays = api.ok(f"/designs/{designs_with(tenant, 'array_without_module')[0]}/summary")["design"]["arrays"]
    assert "module" not in arrays[0]
    arrays = api.ok(f"/designs/{designs_with(tenant, 'multiple_arrays')[0]}/summary")["design"]["arrays"]
    assert len({a["azimuth"] for a in arrays}) == len({a["module"]["name"] for a in arrays}) == len(arrays) >= 2
    not_simulated = designs_with(tenant, "no_energy_production")[0]
    assert "energy_production" not in api.ok(f"/designs/{not_simulated}/summary")["design"]


def test_default_proposal(api, tenant):
    proposal = api.ok(f"/designs/{plain_design(tenant)}/proposals/default")["proposal"]
    assert set(proposal) == {"id", "created_at", "updated_at", "proposal_template_id", "proposal_link"}
    assert proposal["proposal_link"].startswith("https://")
    assert parse_timestamp(proposal["updated_at"]) >= parse_timestamp(proposal["created_at"])
    assert_error(api.get(f"/designs/{designs_with(tenant, 'no_default_proposal')[0]}/proposals/default"), 404)


# --- design requests ----------------------------------------------------------------------------
def test_design_request_list_and_retrieve(api, tenant):
    listed = api.ok("/design_requests", per_page=MAX_PER_PAGE)["design_requests"]
    assert len(listed) == min(MAX_PER_PAGE, len(tenant.design_requests))
    submitted = [parse_timestamp(r["submission_time"]) for r in listed]
    assert submitted == sorted(submitted, reverse=True)
    assert {r["status"] for r in tenant.design_requests.values()} == set(REQUEST_STAMPS)

    for status in REQUEST_STAMPS:
        page = api.ok("/design_requests", status=status)["design_requests"]
        assert page and {r["status"] for r in page} == {status}
    project_id = next(iter(tenant.design_requests.values()))["project_id"]
    for_project = api.ok("/design_requests", project_id=project_id)["design_requests"]
    assert for_project and {r["project_id"] for r in for_project} == {project_id}
    assert_error(api.get("/design_requests", status="done"), 422)
    assert_error(api.get("/design_requests", per_page=MAX_PER_PAGE + 1), 422)

    request = api.ok(f"/design_requests/{listed[0]['id']}")["design_request"]
    assert set(request) == REQUEST_FIELDS and request == listed[0]
    assert_error(api.get("/design_requests/00000000-0000-4000-8000-000000000000"), 404)


def test_design_request_state_machine(server, api, tenant):
    project_id = next(iter(tenant.projects))
    designs_before = len(tenant.project_design_ids[project_id])

    def create() -> dict:
        body = {"design_request": {"project_id": project_id, "image_src": "Nearmap"}}
        response = api.post("/design_requests", json=body)
        assert response.status_code == 200, response.text
        request = response.json()["design_request"]
        assert (request["status"], request["design_id"], request["image_src"]) == ("submitted", None, "Nearmap")
        return request

    request = create()
    assert api.ok(f"/design_requests/{request['id']}")["design_request"] == request
    assert_error(api.post(f"/design_requests/{request['id']}/accept"), 422)  # not completed yet
    completed = admin(server, "POST", f"/design_requests/{request['id']}/complete").json()["design_request"]
    assert completed["status"] == "designer_completed" and completed["completed_at"]
    assert_error(admin(server, "POST", f"/design_requests/{request['id']}/complete"), 422)

    accepted = api.post(f"/design_requests/{request['id']}/accept").json()["design_request"]
    assert accepted["status"] == "accepted" and accepted["reviewed_at"] and accepted["design_id"]
    designs = api.ok(f"/projects/{project_id}/designs")["designs"]
    assert len(designs) == designs_before + 1 and designs[-1]["id"] == accepted["design_id"]
    assert api.ok(f"/designs/{accepted['design_id']}/summary")["design"]["design_id"] == accepted["design_id"]
    assert api.ok(f"/designs/{accepted['design_id']}/proposals/default")["proposal"]["proposal_link"]
    assert_error(api.post(f"/design_requests/{request['id']}/accept"), 422)  # accepted is final

    rejected_id = create()["id"]
    rejected = admin(server, "POST", f"/design_requests/{rejected_id}/reject", json={"reason": "No imagery"})
    assert rejected.json()["design_request"]["status"] == "designer_rejected"
    assert api.ok(f"/design_requests/{rejected_id}")["design_request"]["rejection_reason"] == "No imagery"
    assert_error(api.post(f"/design_requests/{rejected_id}/accept"), 422)
    assert_error(admin(server, "POST", "/design_requests/unknown/complete"), 404)


def test_design_request_create_validation(api, other):
    assert_error(api.post("/design_requests", data="{not json", headers={"Content-Type": "application/json"}), 400)
    assert_error(api.post("/design_requests", json=[1, 2]), 422)
    assert_error(api.post("/design_requests", json={"design_request": {}}), 422)
    foreign_project = {"design_request": {"project_id": next(iter(other.projects))}}
    assert_error(api.post("/design_requests", json=foreign_project), 422)


# --- rate limit and faults ----------------------------------------------------------------------
def test_default_rate_limit_is_90_per_minute():
    config = AuroraState.generate(projects=1, extra_tenants=0).config
    assert (config.rate_limit, config.rate_window_s) == (90, 60)


def test_rate_limit_per_key(server, api, tenant, other):
    project = f"/projects/{next(iter(tenant.projects))}"
    other_api = Api(server.url, other.tenant_id, other.token)
    with sandbox_settings(server, rate_limit=90, rate_window_s=60, time_scale=0.02):  # 90 per 1.2 s
        statuses = [api.get(project).status_code for _ in range(90)]
        assert statuses == [200] * 90
        limited = api.get(project)
        assert "Rate limit" in assert_error(limited, 429)
        retry_after = float(limited.headers["Retry-After"])
        assert 0 < retry_after <= 1.2
        assert other_api.get("/projects", per_page=1).status_code == 200  # its own budget
        time.sleep(retry_after + 0.05)
        assert api.get(project).status_code == 200


def test_faults_and_request_log(server, api, tenant):
    project = f"/projects/{next(iter(tenant.projects))}"
    assert admin(server, "DELETE", "/requests").status_code == 204
    with sandbox_settings(server, fault_5xx_rate=1.0):
        response = api.get(project)
        assert response.status_code in (500, 502, 503)
        assert_error(response, response.status_code)
    with sandbox_settings(server, fault_truncate_rate=1.0):
        response = api.get(project)
        assert response.status_code == 200
        with pytest.raises(ValueError):
            response.json()
    with sandbox_settings(server, fault_timeout_rate=1.0, timeout_hang_s=0.3):
        with pytest.raises(requests.exceptions.ReadTimeout):
            api.get(project, timeout=0.1)
    assert api.get(project).status_code == 200

    deadline = time.time() + 3  # the hung request is logged when it ends
    while "timeout" not in admin(server, "GET", "/requests", params={"summary": 1}).json()["by_fault"]:
        assert time.time() < deadline, "timeout fault never logged"
        time.sleep(0.05)
    log = admin(server, "GET", "/requests")
    assert tenant.token not in log.text
    entries = log.json()
    assert {e["fault"] for e in entries} == {"5xx", "truncated", "timeout", None}
    assert {e["credential"] for e in entries} == {credential_id(tenant.token)}
    assert all(e["path"] == f"/tenants/{tenant.tenant_id}{project}" for e in entries)


def test_unexpected_error_keeps_the_error_shape_and_is_logged(server, api, tenant, monkeypatch):
    def broken(self, project_id):
        raise RuntimeError("bug")

    monkeypatch.setattr(TenantData, "designs_of", broken)
    path = f"/projects/{next(iter(tenant.projects))}/designs"
    assert_error(api.get(path), 500)
    last = admin(server, "GET", "/requests").json()[-1]
    assert (last["path"], last["status"]) == (f"/tenants/{tenant.tenant_id}{path}", 500)


# --- admin: data changes ------------------------------------------------------------------------
def test_mutate(server, api, tenant):
    before_summaries, before_proposals = dict(tenant.summaries), dict(tenant.proposals)
    started = datetime.now(timezone.utc) - timedelta(seconds=2)
    result = admin(server, "POST", "/mutate", json={"fraction": 0.02, "seed": 3}).json()
    changed = result["changed_design_ids"]
    assert len(changed) == round(0.02 * len(before_summaries))
    assert set(result["project_ids"]) == {tenant.designs[d]["project_id"] for d in changed}

    for design_id in changed:
        summary = api.ok(f"/designs/{design_id}/summary")["design"]
        assert summary != before_summaries[design_id]
        modules = [a["module"] for a in summary["arrays"]]
        assert summary["system_size_stc"] == sum(m["count"] * m["rating_stc"] for m in modules)
        design = api.ok(f"/designs/{design_id}")["design"]
        assert design["system_size_stc"] == summary["system_size_stc"]
        if design_id in before_proposals:
            proposal = api.ok(f"/designs/{design_id}/proposals/default")["proposal"]
            assert parse_timestamp(proposal["updated_at"]) >= started

    recent = api.ok("/design_requests", status="accepted", per_page=MAX_PER_PAGE)["design_requests"]
    fresh = [r for r in recent if parse_timestamp(r["reviewed_at"]) >= started]
    assert {r["project_id"] for r in fresh} >= set(result["project_ids"])
    assert all(r["design_id"] in changed for r in fresh if r["project_id"] in result["project_ids"])
    assert_error(admin(server, "POST", "/mutate", json={"fraction": 2}), 422)
    assert_error(admin(server, "POST", "/mutate", json={"fraction": "a lot"}), 422)


def test_mutate_is_deterministic():
    def run() -> tuple[dict, list[dict]]:
        state = AuroraState.generate(seed=8, projects=40, extra_tenants=0)
        result = state.mutate(0.1, seed=4)
        return result, [state.primary.summaries[i] for i in result["changed_design_ids"]]

    first, second = run(), run()
    assert first == second and len(first[0]["changed_design_ids"]) == 10


def test_add_projects(server, api, tenant):
    result = admin(server, "POST", "/projects", json={"count": 3, "designs_per_project": 2}).json()
    assert len(result["project_ids"]) == 3 and len(result["design_ids"]) == 6
    newest = api.ok("/projects", per_page=3)["projects"]
    assert {p["id"] for p in newest} == set(result["project_ids"])
    listed = [d["id"] for p in result["project_ids"] for d in api.ok(f"/projects/{p}/designs")["designs"]]
    assert sorted(listed) == sorted(result["design_ids"])
    assert_error(admin(server, "POST", "/projects", json={"count": -1}), 422)


def test_concurrent_reads_while_data_changes(server, state, tenant):
    """Listing and reading from many threads while the admin API adds and edits data."""
    def reader(_: int) -> set[int]:
        client = Api(server.url, tenant.tenant_id, tenant.token)
        statuses = set()
        for page in (1, 2, 1):
            projects = client.get("/projects", per_page=MAX_PER_PAGE, page=page)
            statuses.add(projects.status_code)
            for project in projects.json()["projects"][:5]:
                statuses.add(client.get(f"/projects/{project['id']}/designs").status_code)
            statuses.add(client.get("/design_requests", per_page=MAX_PER_PAGE).status_code)
        return statuses

    with ThreadPoolExecutor(max_workers=8) as pool:
        readers = [pool.submit(reader, i) for i in range(8)]
        for seed in range(5):
            state.add_projects(2, designs_per_project=1.5)
            state.mutate(0.01, seed=seed)
        assert set().union(*(r.result() for r in readers)) == {200}
