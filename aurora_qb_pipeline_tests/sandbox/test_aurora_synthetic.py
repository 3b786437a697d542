"""Contract tests of the synthetic tenant generator: determinism, speed, messy cases, consistency.

Moved here from test_aurora_emulator.py when the emulator became a package; the generated tenant
is the one that module serves (same seed and sizes).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from aurora_qb_pipeline.sandbox.aurora import AuroraState
from aurora_qb_pipeline.sandbox.synthetic import (
    DESIGN_QUIRKS,
    DUPLICATE_DESIGN_NAMES,
    MODULE_CATALOGUE,
    PROJECT_QUIRK_GROUPS,
    TenantData,
    generate_tenant,
    parse_timestamp,
)
from aurora_qb_pipeline_tests.sandbox.test_aurora_emulator import PROJECTS, REQUEST_STAMPS, SEED


@pytest.fixture(scope="module")
def tenant() -> TenantData:
    return generate_tenant(SEED, PROJECTS, designs_per_project=2.0)


def test_summaries_are_consistent(tenant):
    for design_id, summary in tenant.summaries.items():
        modules = [a["module"] for a in summary["arrays"] if "module" in a]
        bom = summary["bill_of_materials"]
        bom_modules = sum(i["quantity"] for i in bom if i["component_type"] == "modules")
        if len(modules) == len(summary["arrays"]):  # every array says what it holds
            assert summary["system_size_stc"] == sum(m["count"] * m["rating_stc"] for m in modules), design_id
            assert bom_modules == sum(m["count"] for m in modules), design_id
        assert all(m["name"] in MODULE_CATALOGUE for m in modules)
        assert summary["system_size_ptc"] <= summary["system_size_stc"]



def test_generated_design_requests_are_consistent(tenant):
    for request in tenant.design_requests.values():
        stamps = {f for f in ("completed_at", "reviewed_at", "designer_rejected_at") if request[f]}
        assert stamps == REQUEST_STAMPS[request["status"]], request
        assert (request["rejection_reason"] is not None) == (request["status"] == "designer_rejected")
        order = ("submission_time", "completed_at", "reviewed_at")
        times = [parse_timestamp(request[f]) for f in order if request[f]]
        assert times == sorted(times)
        if request["status"] == "accepted":
            assert request["design_id"] in tenant.project_design_ids[request["project_id"]]
        else:
            assert request["design_id"] is None


def test_generator_is_deterministic_and_scales():
    assert generate_tenant(seed=3, projects=40).to_json() == generate_tenant(seed=3, projects=40).to_json()
    assert generate_tenant(seed=3, projects=40).to_json() != generate_tenant(seed=4, projects=40).to_json()
    big = generate_tenant(seed=1, projects=1000, designs_per_project=2.5)
    assert len(big.projects) == 1000 and len(big.designs) == 2500
    assert any(not ids for ids in big.project_design_ids.values())
    messy = {i for kind, ids in big.quirks.items() for i in ids}  # project and design ids
    assert 0.1 <= len(messy & set(big.projects)) / len(big.projects) <= 0.2
    assert 0.1 <= len(messy & set(big.designs)) / len(big.designs) <= 0.2
    for projects, per_project in ((20, 2.5), (7, 1.3), (33, 0.5)):
        generated = generate_tenant(seed=2, projects=projects, designs_per_project=per_project)
        assert len(generated.designs) == round(projects * per_project)


def test_generator_messy_cases():
    tenant = generate_tenant(seed=5, projects=20)
    project_kinds = {kind for group in PROJECT_QUIRK_GROUPS for kind in group if kind}
    expected = project_kinds | set(DESIGN_QUIRKS) | {DUPLICATE_DESIGN_NAMES}
    assert expected <= set(tenant.quirks)

    projects, designs = tenant.projects.values(), tenant.designs.values()
    names = [p["name"] for p in projects]
    assert any(not n.isascii() for n in names) and any("'" in n or '"' in n for n in names)
    assert any(n != " ".join(n.split()) for n in names)
    stamps = [p["created_at"] for p in projects] + [d["created_at"] for d in designs]
    assert any(s.endswith(" UTC") for s in stamps) and any(s.endswith("Z") for s in stamps)
    assert {type(d["milestone"]) for d in designs} == {dict, str, type(None)}
    countries = {p["location"]["property_address_components"]["country"] for p in projects}
    assert countries == {"United States", "Canada", "Australia", "Germany", "Mexico"}
    duplicated = tenant.quirks[DUPLICATE_DESIGN_NAMES][0]
    design_names = [d["name"] for d in tenant.designs_of(duplicated)]
    assert len(set(design_names)) < len(design_names)
    assert len(tenant.proposals) < len(tenant.designs)


def test_runtime_records_never_lie_in_the_future():
    """Designs made at run time (accepted requests, new projects) carry no future timestamps."""
    now = datetime.now(timezone.utc)
    state = AuroraState.generate(seed=2, projects=5, extra_tenants=0, clock=lambda: now)
    ids = state.add_projects(20, designs_per_project=2)["design_ids"]
    tenant = state.primary
    for design_id in ids:
        stamps = [tenant.designs[design_id]["created_at"]]
        milestone = tenant.designs[design_id]["milestone"]
        stamps += [milestone["recorded_at"]] if isinstance(milestone, dict) else []
        proposal = tenant.proposals.get(design_id)
        stamps += [proposal["created_at"], proposal["updated_at"]] if proposal else []
        assert all(parse_timestamp(s) <= now + timedelta(seconds=1) for s in stamps), stamps
    state.close()
