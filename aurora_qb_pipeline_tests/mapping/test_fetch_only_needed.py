"""A full sync asks Aurora only what it needs: project addresses come from the list pages (which
carry whole projects, location included); GET /projects/{id} only when a page lacks them."""

import re
from collections import Counter

import pytest

from aurora_qb_pipeline.ranges import requests_per_project

from ..conftest import Pipeline, sandbox_settings

KINDS = [("project", r"/projects/[^/]+$"), ("project pages", r"/projects$"), ("design lists", r"/projects/[^/]+/designs$"),
         ("summaries", r"/designs/[^/]+/summary$"), ("proposals", r"/designs/[^/]+/proposals/default$")]


def _counts(sandbox):
    counts = Counter()
    for entry in sandbox.aurora.log.entries():
        path = entry.path.split("?")[0]
        kind = next((k for k, pattern in KINDS if re.search(pattern, path)), path)
        counts[kind] += 1
    return counts


def test_a_full_sync_takes_addresses_from_the_list_pages(pipeline):
    pipeline.add_projects()
    pipeline.sandbox.aurora.log.clear()
    assert pipeline.run().success
    tenant = pipeline.sandbox.aurora.primary
    counts = _counts(pipeline.sandbox)
    assert counts["project"] == 0
    assert counts["project pages"] == 1
    assert counts["design lists"] == len(tenant.projects)
    assert counts["summaries"] == counts["proposals"] == len(tenant.designs)
    staged = pipeline.query("select count(*) from staging.project_addresses where city is not null")[0][0]
    assert staged == len(tenant.projects)
    # what the runtime budgets and the nightly slice assume a project costs (ranges.requests_per_project)
    each = requests_per_project(designs_per_project=len(tenant.designs) / len(tenant.projects))
    assert sum(counts.values()) == pytest.approx(each * len(tenant.projects), abs=1)


def test_with_pricing_a_project_costs_a_request_more_per_design(sandbox, instance, tmp_path, credentials):
    pipeline = Pipeline(sandbox, instance, sandbox_settings(sandbox, tmp_path, fetch_pricing=True), credentials)
    pipeline.add_projects()
    sandbox.aurora.log.clear()
    assert pipeline.run().success
    tenant = sandbox.aurora.primary
    each = requests_per_project(pricing=True, designs_per_project=len(tenant.designs) / len(tenant.projects))
    assert sum(_counts(sandbox).values()) == pytest.approx(each * len(tenant.projects), abs=1)


def test_without_location_on_the_pages_projects_are_fetched_one_by_one(sandbox, instance, tmp_path, credentials):
    sandbox.aurora.set_tenant_options(sandbox.aurora.primary.tenant_id, project_list_location=False)
    pipeline = Pipeline(sandbox, instance, sandbox_settings(sandbox, tmp_path), credentials)
    pipeline.add_projects()
    sandbox.aurora.log.clear()
    assert pipeline.run().success
    counts = _counts(sandbox)
    assert counts["project"] == len(sandbox.aurora.primary.projects)
    staged = pipeline.query("select count(*) from staging.project_addresses where city is not null")[0][0]
    assert staged == len(sandbox.aurora.primary.projects)


def test_a_run_over_one_project_fetches_it_directly(pipeline):
    keys = pipeline.add_projects()
    pipeline.sandbox.aurora.log.clear()
    assert pipeline.run(first=keys[0], last=keys[0]).success
    counts = _counts(pipeline.sandbox)
    assert counts["project"] == 1 and counts["project pages"] == 0
