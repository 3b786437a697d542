"""Contract tests of deletions: a design or project deleted in Aurora's app answers 404 on every
read afterwards and disappears from list pages; Aurora's API has no delete endpoint for them."""

from __future__ import annotations

from typing import Iterator

import pytest

from aurora_qb_pipeline.api_facts import AURORA_MAX_PER_PAGE
from aurora_qb_pipeline.sandbox.aurora import AuroraState
from aurora_qb_pipeline.sandbox.common import SandboxConfig
from aurora_qb_pipeline_tests.sandbox.aurora_helpers import Api, admin, assert_error, wait_until


@pytest.fixture
def state() -> Iterator[AuroraState]:
    state = AuroraState.generate(seed=33, projects=40, config=SandboxConfig(time_scale=0.001))
    yield state
    state.close()


def all_project_ids(api: Api) -> list[str]:
    ids, page = [], 1
    while True:
        batch = api.ok("/projects", per_page=AURORA_MAX_PER_PAGE, page=page)["projects"]
        ids += [p["id"] for p in batch]
        if len(batch) < AURORA_MAX_PER_PAGE:
            return ids
        page += 1


def test_deleting_a_design(server, api, state):
    tenant = state.primary
    design_id = next(d for d in tenant.designs if d in tenant.proposals)
    project_id = tenant.designs[design_id]["project_id"]
    agreement = admin(server, "POST", "/agreements", json={"design_id": design_id}).json()["agreement"]
    siblings = [d["id"] for d in api.ok(f"/projects/{project_id}/designs")["designs"] if d["id"] != design_id]

    answer = admin(server, "DELETE", f"/designs/{design_id}")
    assert answer.status_code == 200 and answer.json() == {"design_ids": [design_id], "project_ids": []}
    for path in ("", "/summary", "/pricing", "/proposals/default"):
        assert_error(api.get(f"/designs/{design_id}{path}"), 404)
    assert_error(api.get(f"/agreements/{agreement['id']}"), 404)
    assert [d["id"] for d in api.ok(f"/projects/{project_id}/designs")["designs"]] == siblings
    assert api.get(f"/projects/{project_id}").status_code == 200  # the project stays
    assert_error(admin(server, "DELETE", f"/designs/{design_id}"), 404)  # gone already
    deletions = admin(server, "GET", "/deletions").json()
    assert [(d["id"], d["kind"]) for d in deletions] == [(design_id, "design")] and deletions[0]["deleted_at"]


def test_deleting_a_project(server, api, state):
    tenant = state.primary
    project_id = next(p for p, designs in tenant.project_design_ids.items()
                      if len(designs) >= 2 and any(r["project_id"] == p for r in tenant.design_requests.values()))
    design_ids = list(tenant.project_design_ids[project_id])
    request_ids = [r for r, request in tenant.design_requests.items() if request["project_id"] == project_id]
    before = all_project_ids(api)

    answer = admin(server, "DELETE", f"/projects/{project_id}").json()
    assert answer == {"design_ids": design_ids, "project_ids": [project_id]}
    assert_error(api.get(f"/projects/{project_id}"), 404)
    assert_error(api.get(f"/projects/{project_id}/designs"), 404)
    for design_id in design_ids:
        assert_error(api.get(f"/designs/{design_id}/summary"), 404)
    for request_id in request_ids:
        assert_error(api.get(f"/design_requests/{request_id}"), 404)
    listed = all_project_ids(api)
    assert listed == [p for p in before if p != project_id]  # order kept, the project gone
    assert project_id not in {r["project_id"] for r in api.ok("/design_requests", per_page=250)["design_requests"]}
    assert {d["kind"] for d in state.deletions()} == {"project", "design"}


def test_the_api_has_no_delete_endpoint(api, state):
    tenant = state.primary
    project_id, design_id = next(iter(tenant.projects)), next(iter(tenant.designs))
    assert_error(api.delete(f"/projects/{project_id}"), 405)
    assert_error(api.delete(f"/designs/{design_id}"), 405)
    assert project_id in tenant.projects and design_id in tenant.designs


def test_delete_random_is_deterministic_and_consistent(server):
    def run() -> tuple[dict, AuroraState]:
        state = AuroraState.generate(seed=34, projects=50, extra_tenants=0)
        return state.delete_random(designs=0.1, projects=0.1, seed=5), state

    (first, state), (second, other) = run(), run()
    assert first == second and len(first["project_ids"]) == 5
    tenant = state.primary
    assert not set(first["project_ids"]) & set(tenant.projects)
    assert not set(first["design_ids"]) & set(tenant.designs)
    assert set(tenant.summaries) == set(tenant.designs) == set(tenant.pricing_plans)
    assert all(set(ids) <= set(tenant.designs) for ids in tenant.project_design_ids.values())
    assert all(r["project_id"] in tenant.projects for r in tenant.design_requests.values())
    assert all(i in tenant.projects or i in tenant.designs for ids in tenant.quirks.values() for i in ids)
    state.close()
    other.close()
    assert_error(admin(server, "POST", "/delete", json={"designs": 2}), 422)


def test_work_on_a_deleted_design_fails_cleanly(server, api, state):
    tenant = state.primary
    admin(server, "PUT", "/services/config", json={"simulation_s": 300})  # 0.3 s at this time scale
    design_id = next(d for d in tenant.designs if "energy_production" in tenant.summaries[d])
    job = api.post(f"/designs/{design_id}/performance_simulation/run").json()["performance_simulation_job"]
    state.delete_design(design_id)
    wait_until(lambda: state.jobs[job["job_id"]]["status"] != "in-progress", what="the simulation to end")
    assert state.jobs[job["job_id"]]["status"] == "failed"
    event = state.webhooks.events(event="performance_simulation_job_completed")[-1]["values"]
    assert (event["DESIGN_ID"], event["STATUS"]) == (design_id, "failed")
    assert_error(api.get(f"/designs/{design_id}/performance_simulation/status", job_id=job["job_id"]), 404)
    assert_error(admin(server, "POST", f"/designs/{design_id}/simulate"), 404)
    assert_error(admin(server, "POST", "/agreements", json={"design_id": design_id}), 404)
