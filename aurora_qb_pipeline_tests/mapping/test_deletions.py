"""Designs and projects deleted in Aurora: noticed by a 404 or by absence from the design list,
never quarantined, and applied to Quickbase by the configured policy (mark, delete, leave)."""

import pytest
import yaml

from aurora_qb_pipeline.mapping import default_mapping_path

from ..conftest import export_metadata


def _mapping(tmp_path, **deletions):
    raw = yaml.safe_load(default_mapping_path().read_text())
    raw["deletions"] = deletions
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return str(path)


def _delete_some(pipeline):
    aurora = pipeline.sandbox.aurora
    exported = {r[20] for r in pipeline.qb_records()}
    tenant = aurora.primary
    project = next(p for p in sorted(tenant.projects)
                   if {d for d, s in tenant.summaries.items() if s["project_id"] == p} & exported)
    project_designs = {d for d, s in tenant.summaries.items() if s["project_id"] == project}
    design = next(d for d in sorted(exported) if d not in project_designs)
    aurora.delete_project(project)
    aurora.delete_design(design)
    return (project_designs | {design}) & exported


@pytest.mark.parametrize("policy", ["mark", "delete", "leave"])
def test_deleted_designs_follow_the_policy(pipeline, tmp_path, policy):
    pipeline.sandbox.quickbase.add_field(None, "Aurora Status", "text")
    mapping = _mapping(tmp_path, policy=policy, status_field="Aurora Status")
    assert pipeline.sync_all(config={"mapping_file": mapping}).success
    before = {r[20] for r in pipeline.qb_records()}
    gone = _delete_some(pipeline)
    result = pipeline.run(config={"mapping_file": mapping})
    assert result.success
    assert pipeline.query("select count(*) from ops.quarantine where reason like '%404%'")[0][0] == 0
    status = pipeline.sandbox.quickbase.field_by_label(None, "Aurora Status").id
    records = {r[20]: r for r in pipeline.qb_records()}
    meta = export_metadata(result)
    assert meta["aurora_deleted_designs"] == len(gone)
    if policy == "delete":
        assert set(records) == before - gone
    else:
        assert set(records) == before
        marked = {d for d, r in records.items() if r.get(status) == "Deleted in Aurora"}
        assert marked == (gone if policy == "mark" else set())
    assert not {r[0] for r in pipeline.query("select design_id from staging.designs")} & gone
    # applied once: the next run has nothing to do
    assert export_metadata(pipeline.run(config={"mapping_file": mapping})).get("aurora_deleted_designs", 0) == 0


def test_a_moved_design_is_not_a_deletion(pipeline):
    assert pipeline.sync_all().success
    tenant = pipeline.sandbox.aurora.primary
    exported = sorted({r[20] for r in pipeline.qb_records()})
    design = exported[0]
    old = tenant.designs[design]["project_id"]
    new = next(tenant.designs[d]["project_id"] for d in exported if tenant.designs[d]["project_id"] != old)
    tenant.project_design_ids[old].remove(design)
    tenant.project_design_ids[new].append(design)
    tenant.designs[design]["project_id"] = new
    assert pipeline.run(first=old, last=old).success  # the old project first: the design is absent there
    assert pipeline.query("select count(*) from ops.aurora_deletions")[0][0] == 0
    assert design in {r[20] for r in pipeline.qb_records()}
