"""Contract tests of the design data a CRM integration maps: full summaries (hardware, losses,
units, bill of materials with stable ids), the pricing endpoint and its 403 switch, project list
pages, and the generator's promise to keep every earlier value of a seed.

Aurora's published summary example (CRM-app guide) and the reference's pricing shape are the
contract; names the sandbox guesses are asserted as the sandbox's choices.
"""

from __future__ import annotations

import hashlib
import json
from typing import Iterator

import pytest

from aurora_qb_pipeline.sandbox.aurora import AuroraState, create_app
from aurora_qb_pipeline.sandbox.aurora.synthetic import FIELD_QUIRKS, component_id, equipment_of, generate_tenant
from aurora_qb_pipeline.sandbox.common import SandboxConfig, ServerThread
from aurora_qb_pipeline_tests.sandbox.aurora_helpers import Api, admin, assert_error
from aurora_qb_pipeline_tests.sandbox.test_aurora_emulator import PROJECT_FIELDS

PRICING_FIELDS = {"system_price", "price_per_watt", "pricing_method", "system_price_breakdown", "adders",
                  "pricing_by_component"}
DOCUMENTED_TYPES = {"modules", "microinverters", "inverters", "batteries", "dc_optimizers"}


@pytest.fixture(scope="module")
def state() -> Iterator[AuroraState]:
    state = AuroraState.generate(seed=31, projects=60, config=SandboxConfig(time_scale=0.001))
    yield state
    state.close()


@pytest.fixture(scope="module")
def server(state: AuroraState) -> Iterator[ServerThread]:
    with ServerThread(create_app(state)) as running:
        yield running


@pytest.fixture(scope="module")
def api(server: ServerThread, state: AuroraState) -> Api:
    return Api(server.url, state.primary.tenant_id, state.primary.token)


def quirky(state: AuroraState, kind: str) -> str:
    return next(i for i in state.primary.quirks[kind] if i in state.primary.designs)


# --- the generator keeps what it made before ----------------------------------------------------------
def _fingerprint(tenant_json: str) -> str:
    """SHA-256 over every value the generator made before the hardware, pricing and survey fields
    existed (bill-of-materials lines aside: they gained optimizer and storage lines)."""
    data = json.loads(tenant_json)
    kept = {k: data[k] for k in ("projects", "designs", "proposals", "design_requests", "token", "user_ids",
                                 "proposal_template_ids")}
    kept["quirks"] = {k: v for k, v in data["quirks"].items() if k not in FIELD_QUIRKS}
    summaries = {}
    for design_id, summary in data["summaries"].items():
        arrays = []
        for array in summary["arrays"]:
            old = {k: array[k] for k in ("size", "azimuth", "pitch", "orientation", "face", "ground_mounted")}
            if "module" in array:
                old["module"] = {k: array["module"][k] for k in ("name", "count", "rating_stc", "orientation")}
            arrays.append({**old, "solar_access": array["shading"]["solar_access"]})
        energy = summary.get("energy_production")
        summaries[design_id] = {
            **{k: summary[k] for k in ("design_id", "project_id", "external_provider_id", "created_at",
                                       "system_size_stc", "system_size_ptc", "system_size_ac")},
            "arrays": arrays,
            "energy": energy and {k: energy[k] for k in ("up_to_date", "annual", "annual_offset", "monthly")}}
    kept["summaries"] = summaries
    return hashlib.sha256(json.dumps(kept, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def test_earlier_values_of_a_seed_are_unchanged():
    # digests of the generator as it was before these fields were added (commit b55e6f8)
    assert _fingerprint(generate_tenant(5, 20, 2.5).to_json()) == (
        "cf8c68b4e906cfa67f176b5473e2df8e61b4ee57fda64eae5b6c9114025262db")
    assert _fingerprint(generate_tenant(11, 300, 2.0).to_json()) == (
        "c635c5b88f292534fe10a361e1a4ec4c2b5c916dce2c54e5c44dc72db3ca43db")
    assert generate_tenant(7, 30).to_json() == generate_tenant(7, 30).to_json()


def test_new_messy_cases_occur_and_stay_within_the_messy_share():
    tenant = generate_tenant(seed=5, projects=20)
    assert set(FIELD_QUIRKS) <= set(tenant.quirks)
    messy_before = {i for kind, ids in tenant.quirks.items() if kind not in FIELD_QUIRKS for i in ids}
    assert {i for kind in FIELD_QUIRKS for i in tenant.quirks[kind]} <= messy_before  # a second oddity only


# --- summaries ------------------------------------------------------------------------------------------
def test_summary_hardware_is_consistent(state):
    tenant = state.primary
    configurations, kinds = set(), set()
    for design_id, summary in tenant.summaries.items():
        bom = {item["name"]: item for item in summary["bill_of_materials"]}
        types = {item["component_type"]: item for item in summary["bill_of_materials"]}  # one line each but inverters
        modules = sum(a["module"]["count"] for a in summary["arrays"] if "module" in a)
        for array in summary["arrays"]:
            configurations.add(array["configuration"])
            if "microinverter" in array:
                assert array["microinverter"]["id"] == types["microinverters"]["id"]
            if "string_inverter" in array:
                assert 1 <= array["string_inverter"]["index"] <= len(summary["string_inverters"])
            if "dc_optimizer" in array and "module" in array:
                assert array["dc_optimizer"]["count"] == array["module"]["count"]
        for listed in ("string_inverters", "storage_inverters"):
            for name in {i["name"] for i in summary[listed]}:
                assert bom[name]["component_type"] == "inverters"
                assert bom[name]["quantity"] == len([i for i in summary[listed] if i["name"] == name])
        if "dc_optimizers" in types and modules and len(modules_of(summary)) == len(summary["arrays"]):
            assert types["dc_optimizers"]["quantity"] == modules
        assert len(summary["batteries"]) == (types["batteries"]["quantity"] if "batteries" in types else 0)
        for battery in summary["batteries"]:
            assert battery["has_integrated_inverter"] is not bool(summary["storage_inverters"])
        assert (summary["storage_selected_operating_mode"] is None) == (not summary["batteries"])
        for item in summary["bill_of_materials"]:
            assert item["id"] == component_id(item["name"])  # stable: the catalogue id of the model
            kinds.add(item["component_type"])
        country = tenant.projects[summary["project_id"]]["location"]["property_address_components"]["country"]
        assert summary["units_of_measurement"] == ("imperial" if country == "United States" else "metric")
    assert configurations == {"microinverter", "string inverter", "string inverter with dc optimizers"}
    assert DOCUMENTED_TYPES <= kinds and kinds - DOCUMENTED_TYPES  # an undocumented type occurs too
    assert any(s["storage_inverters"] for s in tenant.summaries.values())


def modules_of(summary: dict) -> list[dict]:
    return [a["module"] for a in summary["arrays"] if "module" in a]


def test_energy_production_fields_and_their_messy_cases(api, state):
    tenant = state.primary
    simulated = [s for s in tenant.summaries.values() if "energy_production" in s]
    for summary in simulated:
        energy = summary["energy_production"]
        assert energy["annual_offset"].endswith("%") and len(energy["monthly"]) == 12
        hourly = energy["hourly"]
        if hourly is not None:
            assert len(hourly) == 8760 and sum(hourly) == pytest.approx(energy["annual"], rel=0.01)
        for loss in energy["loss_summary"]:
            assert set(loss) == {"name", "percentage"} and 0 <= loss["percentage"] < 100
    served = api.ok(f"/designs/{quirky(state, 'hourly_energy')}/summary")["design"]["energy_production"]
    assert len(served["hourly"]) == 8760
    assert api.ok(f"/designs/{quirky(state, 'empty_loss_summary')}/summary")["design"][
        "energy_production"]["loss_summary"] == []
    unfamiliar = api.ok(f"/designs/{quirky(state, 'unfamiliar_component')}/summary")["design"]["bill_of_materials"]
    odd = [i for i in unfamiliar if i["component_type"] not in DOCUMENTED_TYPES]
    assert odd and all(i["sku"] is None for i in odd)


def _hardware(summary: dict) -> tuple:
    e = equipment_of(summary)
    return (e.inverter, e.optimizers, e.battery, e.batteries, e.operating_mode, e.hourly, e.losses,
            [line["name"] for line in e.unfamiliar])


def test_revisions_keep_hardware_and_messy_parts(state):
    tenant = state.primary
    hourly = quirky(state, "hourly_energy")
    state.simulate_design(hourly)  # a re-simulation keeps the 8,760 values
    assert len(tenant.summaries[hourly]["energy_production"]["hourly"]) == 8760
    before = {d: _hardware(s) for d, s in tenant.summaries.items()}
    changed = state.mutate(0.2, seed=9)["changed_design_ids"]
    assert len(changed) >= 20
    for design_id in changed:
        summary = tenant.summaries[design_id]
        assert _hardware(summary) == before[design_id]
        modules = sum(m["count"] for m in modules_of(summary))
        for array in summary["arrays"]:  # per-array hardware follows the new module counts
            for kind in ("microinverter", "dc_optimizer"):
                if kind in array:
                    assert array[kind]["count"] == array["module"]["count"]
        lines = {i["component_type"]: i["quantity"] for i in summary["bill_of_materials"]}
        assert lines.get("microinverters", modules) == modules and lines.get("dc_optimizers", modules) == modules


# --- pricing ----------------------------------------------------------------------------------------------
def test_pricing_shape_and_arithmetic(api, state):
    tenant = state.primary
    for design_id in list(tenant.designs)[:40]:
        pricing = api.ok(f"/designs/{design_id}/pricing")["pricing"]
        assert set(pricing) == PRICING_FIELDS
        parts = {item["item_type"]: item for item in pricing["system_price_breakdown"]}
        assert set(parts) == {"base_price", "adders", "discounts"}
        for kind in ("adders", "discounts"):
            subtotal = sum(s["item_price"] for s in parts[kind]["subcomponents"])
            assert parts[kind]["item_price"] == pytest.approx(subtotal)
        total = sum(part["item_price"] for part in parts.values())
        assert pricing["system_price"] == pytest.approx(max(0.0, total), abs=0.011)
        assert all(d["item_price"] <= 0 for d in parts["discounts"]["subcomponents"])
        assert {a["is_discount"] for a in pricing["adders"]} <= {True, False}
        bom = tenant.summaries[design_id]["bill_of_materials"]
        assert [(c["component_type"], c["name"], c["quantity"]) for c in pricing["pricing_by_component"]] == [
            (i["component_type"], i["name"], i["quantity"]) for i in bom]
        stc = tenant.summaries[design_id]["system_size_stc"]
        if pricing["pricing_method"] == "price per watt":
            assert parts["base_price"]["item_price"] == pytest.approx(pricing["price_per_watt"] * stc, abs=0.01)
    fixed = api.ok(f"/designs/{quirky(state, 'fixed_price')}/pricing")["pricing"]
    assert fixed["pricing_method"] == "fixed price"
    empty = next(d for d in tenant.quirks["empty_arrays"] if d in tenant.designs)
    assert api.ok(f"/designs/{empty}/pricing")["pricing"]["system_price"] >= 0
    assert_error(api.get("/designs/00000000-0000-4000-8000-000000000000/pricing"), 404)


def test_pricing_follows_a_revised_design(api, state):
    tenant = state.primary
    design_id = state.mutate(0.05, seed=21)["changed_design_ids"][0]
    pricing = api.ok(f"/designs/{design_id}/pricing")["pricing"]
    base = pricing["system_price_breakdown"][0]["item_price"]
    if pricing["pricing_method"] == "price per watt":
        stc = tenant.summaries[design_id]["system_size_stc"]
        assert base == pytest.approx(pricing["price_per_watt"] * stc, abs=0.01)


def test_pricing_403_when_not_provisioned(server, api, state):
    tenant, design_id = state.primary, next(iter(state.primary.designs))
    other = list(state.tenants.values())[1]
    other_api = Api(server.url, other.tenant_id, other.token)
    switched = admin(server, "PUT", f"/tenants/{tenant.tenant_id}/config", json={"pricing": False})
    assert switched.status_code == 200 and switched.json()["pricing"] is False
    try:
        assert "not provisioned" in assert_error(api.get(f"/designs/{design_id}/pricing"), 403)
        assert api.get(f"/designs/{design_id}/summary").status_code == 200  # only pricing is off
        other_design = next(iter(other.designs))
        assert other_api.get(f"/designs/{other_design}/pricing").status_code == 200  # per tenant
    finally:
        admin(server, "PUT", f"/tenants/{tenant.tenant_id}/config", json={"pricing": True})
    assert api.get(f"/designs/{design_id}/pricing").status_code == 200
    assert_error(admin(server, "PUT", f"/tenants/{tenant.tenant_id}/config", json={"pricing": "no"}), 400)


def test_restricted_keys_answer_403_outside_their_scopes(server, state):
    tenant, design_id = state.primary, next(iter(state.primary.designs))
    made = admin(server, "POST", f"/tenants/{tenant.tenant_id}/keys", json={"scopes": ["read_designs"]}).json()
    assert made["key"].startswith("rk_sand_") and made["scopes"] == ["read_designs"]
    restricted = Api(server.url, tenant.tenant_id, made["key"])
    assert restricted.get(f"/designs/{design_id}/summary").status_code == 200
    assert "read_pricing" in assert_error(restricted.get(f"/designs/{design_id}/pricing"), 403)
    assert "restricted" in assert_error(restricted.get("/projects"), 403)
    assert_error(restricted.post("/projects", json={"project": {}}), 403)
    assert admin(server, "DELETE", f"/tenants/{tenant.tenant_id}/keys/{made['key']}").status_code == 204
    assert_error(restricted.get(f"/designs/{design_id}/summary"), 401)
    assert_error(admin(server, "POST", f"/tenants/{tenant.tenant_id}/keys", json={"scopes": ["fly"]}), 422)
    assert_error(admin(server, "DELETE", f"/tenants/{tenant.tenant_id}/keys/{tenant.token}"), 404)


# --- projects on list pages ---------------------------------------------------------------------------------
def test_list_pages_carry_full_projects_with_contact_and_location(server, api, state):
    listed = api.ok("/projects", per_page=250)["projects"]
    assert listed and all(set(p) == PROJECT_FIELDS for p in listed)
    for project in listed[:20]:
        assert project == api.ok(f"/projects/{project['id']}")["project"]
    assert any(p["customer_email"] for p in listed) and any(p["customer_email"] is None for p in listed)
    assert any(p["customer_phone"] for p in listed) and any(p["customer_phone"] is None for p in listed)

    tenant_id = state.primary.tenant_id
    admin(server, "PUT", f"/tenants/{tenant_id}/config", json={"project_list_location": False})
    try:
        compact = api.ok("/projects", per_page=5)["projects"]
        assert compact and all(set(p) == PROJECT_FIELDS - {"location"} for p in compact)
        assert "location" in api.ok(f"/projects/{compact[0]['id']}")["project"]  # the fallback still has it
    finally:
        admin(server, "PUT", f"/tenants/{tenant_id}/config", json={"project_list_location": True})
    assert all("location" in p for p in api.ok("/projects", per_page=5)["projects"])
