"""Custom mappings: any Aurora field path, checked against the Quickbase field types before
anything is written, converted (units, percentages, dates), and end to end against the sandbox."""

from pathlib import Path

import pytest
import yaml

from aurora_qb_pipeline.mapping import (
    MappingError,
    default_mapping_path,
    encode_row,
    field_lineage,
    load_mapping,
    resolve_mapping,
)
from aurora_qb_pipeline.raw_payloads import payload_json

from ..conftest import export_metadata, step_failure_text

CUSTOM = {
    "project.customer_email": "Customer Email",
    "summary.system_size_ac": {"field": "System Size AC (kW)", "unit": "kW"},
    "summary.energy_production.annual_offset": "Annual Offset",
    "sum(summary.arrays[*].module.count)": "Modules (sum)",
    "proposal.updated_at": "Proposal Updated",
}
CUSTOM_FIELDS = [("Customer Email", "email"), ("System Size AC (kW)", "numeric"), ("Annual Offset", "percent"),
                 ("Modules (sum)", "numeric"), ("Proposal Updated", "date")]


def _fields(extra=()):
    base = [{"id": 3, "label": "Record ID#", "fieldType": "recordid"},
            {"id": 6, "label": "Aurora Design ID", "fieldType": "text", "unique": True}]
    return base + [{"id": 10 + i, "label": label, "fieldType": ftype} for i, (label, ftype) in enumerate(extra)]


def _mapping_file(tmp_path: Path, custom: dict, name="mapping.yaml") -> Path:
    raw = yaml.safe_load(default_mapping_path().read_text())
    raw["fields"].update(custom)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _small_mapping(tmp_path, custom):
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({"merge_field": "Aurora Design ID", "fields": {"design_id": "Aurora Design ID",
                                                                                   **custom}}))
    return load_mapping(path)


def test_custom_paths_resolve_and_convert(tmp_path):
    mapping = resolve_mapping(_small_mapping(tmp_path, CUSTOM), _fields(CUSTOM_FIELDS))
    assert mapping.raw_kinds == {"project", "summary", "proposal"}
    documents = {
        "project": {"customer_email": "ann@example.com"},
        "summary": {"system_size_ac": 7600, "energy_production": {"annual_offset": "87%"},
                    "arrays": [{"module": {"count": 12}}, {"module": {"count": 8}}]},
        "proposal": {"updated_at": "2024-05-01 12:30:00 UTC"},
    }
    row = {"design_id": "d1", **{t.source: t.custom.evaluate(documents) for t in mapping.targets if t.custom}}
    encoded = encode_row(mapping, row)
    assert encoded.problems == []
    by_label = {t.label: encoded.record[t.field_id] for t in mapping.targets}
    assert by_label == {"Aurora Design ID": "d1", "Customer Email": "ann@example.com", "System Size AC (kW)": 7.6,
                        "Annual Offset": 0.87, "Modules (sum)": 20, "Proposal Updated": "2024-05-01"}
    lineage = field_lineage(mapping)
    assert [(s.asset, s.column) for s in lineage["Modules (sum)"]] == [
        ("design_summaries", "sum(summary.arrays[*].module.count)")]
    assert [(s.asset, s.column, s.aurora_path) for s in lineage["Aurora Design ID"]] == [
        ("designs", "design_id", "id")]


def test_every_problem_of_custom_mappings_is_reported_at_once(tmp_path):
    custom = {
        "summary.energy_production.annual_offset": "Offset Date",  # percent text into a date field
        "project.customer_email": "Email Number",  # an email into a numeric field
        "summary.system_size_ac": {"field": "AC", "unit": "ft"},  # watts cannot become feet
        "sum(summary.arrays[*].module.count)": "Sum Box",  # a number into a checkbox
        "customer.email": "Text",  # not a root Aurora answer
        "summary.arrays[": "Text 2",  # does not parse
    }
    with pytest.raises(MappingError) as err:
        config = _small_mapping(tmp_path, custom)
        resolve_mapping(config, _fields([("Offset Date", "date"), ("Email Number", "numeric"), ("AC", "numeric"),
                                         ("Sum Box", "checkbox"), ("Text", "text"), ("Text 2", "text")]))
    text = str(err.value)
    assert "cannot convert to ft: Aurora reports it in W" in text
    assert "'customer.email' must start with one of project, design, summary, proposal, pricing" in text
    assert "'summary.arrays[' is not a valid Aurora field path" in text
    # the file's own problems come first; once they are fixed, the field types are checked together
    fixed = {k: v for k, v in custom.items() if k not in ("customer.email", "summary.arrays[")}
    fixed["summary.system_size_ac"] = {"field": "AC", "unit": "kW"}
    with pytest.raises(MappingError) as err:
        resolve_mapping(_small_mapping(tmp_path, fixed),
                        _fields([("Offset Date", "date"), ("Email Number", "numeric"), ("AC", "numeric"),
                                 ("Sum Box", "checkbox")]))
    assert len(err.value.problems) == 3, err.value.problems
    assert "'summary.energy_production.annual_offset' (percent text) -> 'Offset Date'" in str(err.value)
    assert "'project.customer_email' (email) -> 'Email Number'" in str(err.value)
    assert "-> 'Sum Box'" in str(err.value)


def test_raw_payload_json_survives_what_json_cannot_hold():
    assert payload_json({"a": float("nan"), "b": [float("inf"), 1]}) == '{"a":null,"b":[null,1]}'
    assert payload_json({"name": "x\ud800y"}) == '{"name":"x\ufffdy"}'


def _add_custom_fields(sandbox):
    for label, ftype in CUSTOM_FIELDS:
        sandbox.quickbase.add_field(None, label, ftype)


def test_custom_mapping_end_to_end(pipeline, tmp_path):
    _add_custom_fields(pipeline.sandbox)
    path = _mapping_file(tmp_path, CUSTOM)
    result = pipeline.sync_all(config={"mapping_file": str(path)})
    assert result.success
    aurora = pipeline.sandbox.aurora.primary
    fid = {label: pipeline.sandbox.quickbase.field_by_label(None, label).id for label, _ in CUSTOM_FIELDS}
    records = {r[20]: r for r in pipeline.qb_records()}
    assert records
    checked = 0
    for design_id, record in records.items():
        summary = aurora.summaries[design_id]
        project = aurora.projects[summary["project_id"]]
        assert record.get(fid["System Size AC (kW)"]) == pytest.approx(summary["system_size_ac"] / 1000)
        assert record.get(fid["Modules (sum)"]) == sum(a["module"]["count"] for a in summary["arrays"] if a.get("module"))
        if project.get("customer_email"):
            assert record.get(fid["Customer Email"]) == project["customer_email"]
        offset = (summary.get("energy_production") or {}).get("annual_offset")
        if offset:
            assert record.get(fid["Annual Offset"]) == pytest.approx(float(offset.rstrip("%")) / 100)
            checked += 1
    assert checked
    # the raw payloads are staged next to the typed tables
    some_design = next(iter(records))
    assert read_payload_via(pipeline, "summary", some_design)["design_id"] == some_design
    # a rerun sends nothing: the custom values are part of the content hash
    again = pipeline.run(config={"mapping_file": str(path)})
    assert export_metadata(again)["sent"] == 0


def read_payload_via(pipeline, kind, object_id):
    import json

    rows = pipeline.query("select payload from staging.aurora_raw where kind = ? and object_id = ?", [kind, object_id])
    return json.loads(rows[0][0])


def test_a_custom_path_whose_values_never_fit_stops_before_writing(pipeline, tmp_path):
    pipeline.sandbox.quickbase.add_field(None, "Method Number", "numeric")
    path = _mapping_file(tmp_path, {"project.project_type": "Method Number"})  # text not in the catalogue
    result = pipeline.sync_all(config={"mapping_file": str(path)}, raise_on_error=False)
    assert not result.success
    assert "'project.project_type' -> 'Method Number'" in step_failure_text(result)
    assert "none of its" in step_failure_text(result)
    assert pipeline.qb_records() == []


def test_pricing_is_mapped_and_a_403_switches_it_off(sandbox, instance, tmp_path, credentials):
    from ..conftest import Pipeline, sandbox_settings

    sandbox.quickbase.add_field(None, "System Price", "currency")
    path = _mapping_file(tmp_path, {"pricing.system_price": "System Price"})
    pipeline = Pipeline(sandbox, instance, sandbox_settings(sandbox, tmp_path, fetch_pricing=True), credentials)
    result = pipeline.sync_all(config={"mapping_file": str(path)})
    assert result.success
    fid = sandbox.quickbase.field_by_label(None, "System Price").id
    priced = [r for r in pipeline.qb_records() if r.get(fid) not in (None, "")]
    assert len(priced) == len(pipeline.qb_records())
    tenant = sandbox.aurora.primary.tenant_id
    for record in priced[:10]:
        assert record[fid] == pytest.approx(sandbox.aurora.get_design_pricing(tenant, record[20])["system_price"])

    # the key loses pricing: one warning, no quarantine, the run succeeds and the rest still syncs
    sandbox.aurora.set_tenant_options(tenant, pricing=False)
    changed = sandbox.aurora.mutate(0.3, seed=3)
    result = pipeline.run(config={"mapping_file": str(path)})
    assert result.success
    logs = [e.user_message for e in instance.all_logs(result.run_id)]
    assert len([m for m in logs if "pricing is switched off" in m]) == 1
    quarantined = pipeline.query("select count(*) from ops.quarantine where reason like '%pricing%'")[0][0]
    assert quarantined == 0
    assert changed["changed_design_ids"]
    # the pricing staged before stays; the records keep their price
    assert all(r.get(fid) not in (None, "") for r in pipeline.qb_records())
