"""Contract tests of Aurora's asynchronous jobs (performance simulation, agreement PDF), agreements,
project files and the admin routes that drive them."""

from __future__ import annotations

import time
from typing import Iterator

import pytest
import requests

from aurora_qb_pipeline.sandbox.aurora import AuroraState, ServiceConfig
from aurora_qb_pipeline.sandbox.common import SandboxConfig
from aurora_qb_pipeline_tests.sandbox.aurora_helpers import Api, admin, assert_error, wait_until
from aurora_qb_pipeline_tests.sandbox.test_aurora_emulator import plain_design

JOB_FIELDS = {"job_id", "design_id", "status", "source", "requested_at", "completed_at", "error"}
AGREEMENT_FIELDS = {"id", "project_id", "design_id", "agreement_template_name", "status", "signing_provider",
                    "created_at", "sent_at", "last_viewed_at", "error_message"}
DOWNLOAD_FIELDS = {"job_id", "requested_at", "completed_at", "status", "file_url", "project_id", "design_id", "error"}


@pytest.fixture
def state() -> Iterator[AuroraState]:
    # simulation 30 s -> 0.3 s, download job 5 s -> 0.05 s, file URLs live 0.9 s... unless a test changes it
    services = ServiceConfig(file_url_ttl_s=60_000)
    state = AuroraState.generate(seed=24, projects=30, config=SandboxConfig(time_scale=0.01), services=services)
    yield state
    state.close()


def test_performance_simulation_job(server, api, state):
    tenant = state.primary
    design_id = plain_design(tenant)
    before = tenant.summaries[design_id]["energy_production"]
    started = api.post(f"/designs/{design_id}/performance_simulation/run")
    assert started.status_code == 202
    job = started.json()["performance_simulation_job"]
    assert set(job) == JOB_FIELDS and (job["status"], job["source"], job["completed_at"]) == ("in-progress", "api", None)
    busy = api.post(f"/designs/{design_id}/performance_simulation/run")
    assert "in progress" in assert_error(busy, 409)

    status_path = f"/designs/{design_id}/performance_simulation/status"
    done = wait_until(lambda: (j := api.ok(status_path, job_id=job["job_id"])["performance_simulation_job"])[
        "status"] == "succeeded" and j, 5, "the simulation")
    assert done["completed_at"] and done["error"] is None
    assert api.ok(f"/designs/{design_id}/summary")["design"]["energy_production"] == before  # same arrays
    events = state.webhooks.events(event="performance_simulation_job_completed")
    assert [e["values"] for e in events] == [{"DESIGN_ID": design_id, "JOB_ID": job["job_id"], "STATUS": "succeeded"}]

    assert_error(api.get(status_path), 422)  # job_id is required
    assert_error(api.get(status_path, job_id="00000000-0000-4000-8000-000000000000"), 404)
    other_design = next(d for d in tenant.designs if d != design_id)
    assert_error(api.get(f"/designs/{other_design}/performance_simulation/status", job_id=job["job_id"]), 404)
    empty = next(d for d in tenant.quirks["empty_arrays"] if d in tenant.designs)
    assert "no modules" in assert_error(api.post(f"/designs/{empty}/performance_simulation/run"), 422)
    assert_error(api.post("/designs/00000000-0000-4000-8000-000000000000/performance_simulation/run"), 404)

    app_job = admin(server, "POST", f"/designs/{design_id}/simulate").json()["performance_simulation_job"]
    assert (app_job["status"], app_job["source"]) == ("succeeded", "app")
    assert len(state.webhooks.events(event="performance_simulation_job_completed")) == 2


def test_agreement_lifecycle(server, api, state):
    design_id = plain_design(state.primary)
    created = admin(server, "POST", "/agreements", json={"design_id": design_id, "template_name": "Cash Sale"})
    agreement = created.json()["agreement"]
    assert set(agreement) == AGREEMENT_FIELDS and agreement["status"] == "sent" and agreement["sent_at"]
    path = f"/agreements/{agreement['id']}"
    assert api.ok(path)["agreement"] == agreement
    other = list(state.tenants.values())[1]
    assert_error(Api(server.url, other.tenant_id, other.token).get(path), 404)

    def move(status: str, **extra) -> requests.Response:
        return admin(server, "POST", f"/agreements/{agreement['id']}/status", json={"status": status, **extra})

    assert move("viewed").json()["agreement"]["last_viewed_at"]
    assert move("signed").json()["agreement"]["status"] == "signed"
    assert "cannot go from 'signed' to 'viewed'" in assert_error(move("viewed"), 422)
    assert move("cancel_pending").ok and move("canceled").ok
    assert_error(move("sent"), 422)  # canceled is final
    assert_error(move("archived"), 422)
    statuses = [e["values"]["STATUS"] for e in state.webhooks.events(event="agreement_status_changed")]
    assert statuses == ["sent", "viewed", "signed", "cancel-pending", "canceled"]  # hyphen in the webhook
    assert_error(admin(server, "POST", "/agreements", json={"design_id": "nope"}), 404)
    assert_error(admin(server, "POST", "/agreements", json={"design_id": design_id, "signing_provider": "x"}), 422)
    assert_error(admin(server, "POST", "/agreements", json={}), 422)


def test_agreement_pdf_download(server, api, state):
    design_id = plain_design(state.primary)
    agreement = state.create_agreement(design_id)
    state.set_agreement_status(agreement["id"], "signed")
    started = api.post(f"/agreements/{agreement['id']}/download_url/run")
    assert started.status_code == 202
    job = started.json()["agreement_download_url_job"]
    assert set(job) == DOWNLOAD_FIELDS and (job["status"], job["file_url"]) == ("in-progress", None)
    status_path = f"/agreements/{agreement['id']}/download_url/status"
    done = wait_until(lambda: (j := api.ok(status_path, job_id=job["job_id"])["agreement_download_url_job"])[
        "status"] == "succeeded" and j, 5, "the download job")
    assert done["file_url"].startswith(f"{server.url}/files/") and done["project_id"] == agreement["project_id"]

    pdf = requests.get(done["file_url"], timeout=5)  # a storage URL: no API key
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-1.4") and pdf.content.rstrip().endswith(b"%%EOF")
    assert b"Status: signed" in pdf.content and "attachment" in pdf.headers["content-disposition"]
    forged = done["file_url"][:-3] + "abc"
    assert_error(requests.get(forged, timeout=5), 403)
    assert_error(requests.get(f"{server.url}/files/garbage", timeout=5), 403)
    assert_error(api.get(status_path), 422)
    assert_error(api.post("/agreements/00000000-0000-4000-8000-000000000000/download_url/run"), 404)

    state.services.file_url_ttl_s = 10  # 0.1 s at this time scale
    second = api.post(f"/agreements/{agreement['id']}/download_url/run").json()["agreement_download_url_job"]
    url = wait_until(lambda: api.ok(status_path, job_id=second["job_id"])["agreement_download_url_job"]["file_url"])
    time.sleep(0.2)
    assert "expired" in assert_error(requests.get(url, timeout=5), 403)


def test_project_assets_list_proposal_pdfs(server, api, state):
    tenant = state.primary
    assert any(d not in tenant.proposals for d in tenant.designs)  # some designs have no proposal
    for project_id, design_ids in tenant.project_design_ids.items():
        assets = api.ok(f"/projects/{project_id}/assets")["project_assets"]
        assert [a["design_id"] for a in assets] == [d for d in design_ids if d in tenant.proposals]
        for asset in assets[:1]:
            assert (asset["asset_type"], asset["content_type"], asset["project_id"]) == (
                "Proposal PDF", "application/pdf", project_id)
            body = requests.get(asset["file_url"], timeout=5)
            assert body.status_code == 200 and body.content.startswith(b"%PDF")
    assert_error(api.get("/projects/00000000-0000-4000-8000-000000000000/assets"), 404)


def test_admin_project_status(server, api, state):
    project_id = next(iter(state.primary.projects))
    changed = admin(server, "POST", f"/projects/{project_id}/status", json={"status": "Project Sold"})
    assert changed.json()["project"]["status"] == "Project Sold"
    assert api.ok(f"/projects/{project_id}")["project"]["status"] == "Project Sold"
    assert_error(admin(server, "POST", f"/projects/{project_id}/status", json={"status": ""}), 422)
    assert_error(admin(server, "POST", f"/projects/{project_id}/status", json={}), 422)
    assert_error(admin(server, "POST", "/projects/unknown/status", json={"status": "x"}), 404)
    values = [e["values"] for e in state.webhooks.events(event="project_status_changed")]
    assert values == [{"STATUS": "Project Sold", "PROJECT_ID": project_id}]
