"""Line items: each design's bill of materials in a child Quickbase table, related to the design
record, upserted on design id + component id; components removed in Aurora are deleted."""

import dagster as dg
import pytest
import yaml

from aurora_qb_pipeline.bench.tables import create_declared_table
from aurora_qb_pipeline.defs.jobs import aurora_quickbase_sync
from aurora_qb_pipeline.defs.partitions import RANGE_END, RANGE_START, known_projects
from aurora_qb_pipeline.line_items import LineItemsError, deletion_of, export_line_items, load_spec

from ..conftest import Pipeline, sandbox_settings

LINE_ITEMS = ("quickbase", "design_line_items")


@pytest.fixture
def line_pipeline(sandbox, instance, tmp_path, credentials):
    table_id = create_declared_table(sandbox, load_spec(), sandbox.quickbase.table_id)
    pipeline = Pipeline(sandbox, instance, sandbox_settings(sandbox, tmp_path, line_items_table_id=table_id),
                        credentials)
    pipeline.line_items_table = table_id
    return pipeline


def _items(pipeline):
    qb = pipeline.sandbox.quickbase
    fid = {label: qb.field_by_label(pipeline.line_items_table, label).id
           for label in ("Line Item Key", "Aurora Design ID", "Quantity", "Design", "Component ID")}
    return fid, {r[fid["Line Item Key"]]: r for r in qb.records(pipeline.line_items_table)}


def _metadata(result):
    mats = [m for m in result.get_asset_materialization_events() if m.asset_key.path == list(LINE_ITEMS)]
    return {k: v.value for k, v in mats[-1].materialization.metadata.items()}


def _expected(pipeline):
    """{key: quantity} of the bills of materials of the designs exported to Quickbase."""
    aurora = pipeline.sandbox.aurora.primary
    exported = {r[20] for r in pipeline.qb_records()} & set(aurora.summaries)  # deleted ones keep their record
    expected = {}
    for design_id in exported:
        for line in aurora.summaries[design_id].get("bill_of_materials") or []:
            key = f"{design_id}:{line['id']}"
            expected[key] = expected.get(key, 0) + line["quantity"]
    return expected


def test_line_items_are_synced_related_and_follow_removals(line_pipeline):
    pipeline = line_pipeline
    result = pipeline.sync_all()
    assert result.success
    fid, items = _items(pipeline)
    expected = _expected(pipeline)
    assert expected and set(items) == set(expected)
    for key, record in items.items():
        assert record[fid["Quantity"]] == pytest.approx(expected[key])
    design_records = {r[20]: r[3] for r in pipeline.qb_records()}
    assert all(r[fid["Design"]] == design_records[r[fid["Aurora Design ID"]]] for r in items.values())
    meta = _metadata(result)
    assert meta["requests"] == 1 and meta["created"] == len(items)  # one request per 40 MB per table

    # nothing changed: nothing sent
    meta = _metadata(pipeline.run())
    assert meta["sent"] == 0 and meta["requests"] == 0

    # a component removed from a design in Aurora is deleted from Quickbase; changed quantities update
    aurora = pipeline.sandbox.aurora.primary
    design_id = next(d for d in design_records if len(aurora.summaries[d].get("bill_of_materials") or []) > 2)
    removed = aurora.summaries[design_id]["bill_of_materials"].pop()
    changed = pipeline.sandbox.aurora.mutate(0.2, seed=7)
    result = pipeline.run()
    assert result.success
    fid, items = _items(pipeline)
    assert f"{design_id}:{removed['id']}" not in items
    assert set(items) == set(_expected(pipeline))
    meta = _metadata(result)
    assert meta["deleted"] >= 1
    assert changed["changed_design_ids"]

    # a design deleted in Aurora loses its line items (line_items.yaml: deletion_policy delete)
    gone = next(d for d in sorted(design_records) if d != design_id)
    pipeline.sandbox.aurora.delete_design(gone)
    assert pipeline.run().success
    fid, items = _items(pipeline)
    assert not [k for k in items if k.startswith(f"{gone}:")]
    assert set(items) == set(_expected(pipeline))


def test_line_items_off_without_a_table(pipeline):
    result = pipeline.sync_all()
    assert _metadata(result)["enabled"] is False


def _mark_spec(status_field="Aurora Status"):
    spec = dict(load_spec())
    spec["fields"] = [*spec["fields"], {"label": "Aurora Status", "type": "text"}]
    return {**spec, "deletion_policy": "mark", **({"status_field": status_field} if status_field else {})}


def test_mark_policy_sets_the_status_of_a_deleted_designs_line_items_once(sandbox, instance, tmp_path, credentials):
    spec = _mark_spec()
    table_id = create_declared_table(sandbox, spec, sandbox.quickbase.table_id)
    pipeline = Pipeline(sandbox, instance, sandbox_settings(sandbox, tmp_path, line_items_table_id=table_id),
                        credentials)
    pipeline.line_items_table = table_id
    assert pipeline.sync_all().success
    _, before = _items(pipeline)
    gone = next(d for d in sorted({k.split(":")[0] for k in before}))
    sandbox.aurora.delete_design(gone)
    # stage only (the deletion is noticed), then the line items under the mark policy
    staging = [dg.AssetKey(["aurora", t]) for t in ("project_addresses", "designs", "latest_proposals",
                                                      "design_summaries", "design_arrays")]
    keys = known_projects(instance)
    job = pipeline.defs.resolve_job_def(aurora_quickbase_sync.name)
    assert job.execute_in_process(instance=instance, asset_selection=staging,
                                  tags={RANGE_START: keys[0], RANGE_END: keys[-1]}).success
    client = pipeline.resources["quickbase"].client.for_table(table_id)
    try:
        tally = export_line_items(pipeline.resources["duckdb"], client, spec)
        again = export_line_items(pipeline.resources["duckdb"], client, spec)
    finally:
        client.close()
    marked = [k for k in before if k.startswith(f"{gone}:")]
    assert marked and tally.marked == len(marked) and tally.deleted == 0
    assert again.marked == 0 and again.sent == 0 and again.requests == 0  # once
    status = sandbox.quickbase.field_by_label(table_id, "Aurora Status").id
    _, after = _items(pipeline)
    assert set(after) == set(before)  # nothing deleted
    assert {k for k, r in after.items() if r.get(status) == "Deleted in Aurora"} == set(marked)


def test_mark_policy_without_a_declared_status_field_fails_plainly(tmp_path):
    with pytest.raises(LineItemsError, match="deletion_policy mark needs status_field"):
        deletion_of(_mark_spec(status_field=None))
    with pytest.raises(LineItemsError, match="'Status' is not among the declared fields"):
        deletion_of(_mark_spec(status_field="Status"))
    path = tmp_path / "line_items.yaml"
    path.write_text(yaml.safe_dump({"tables": [{**_mark_spec(None), "key": "line_items"}]}))
    with pytest.raises(LineItemsError, match="needs status_field"):
        load_spec(path)
    assert deletion_of(_mark_spec()).status_value == "Deleted in Aurora"
