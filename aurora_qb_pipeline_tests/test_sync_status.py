"""Per-record sync status in Quickbase (issue 11, ``sync_status.py``): "Synced" and the time ride
in the export's upsert, a record held back or refused gets the reason once, a rerun with nothing
changed sends nothing, and a table without the fields exports as before."""

from aurora_qb_pipeline.sandbox.quickbase.state import SYNC_STATUS_FIELDS

from .conftest import export_metadata

DESIGN_ID_FID = 20


def status_fids(pipeline):
    qb = pipeline.sandbox.quickbase
    return [qb.field_by_label(qb.table_id, label).id for label, _ in SYNC_STATUS_FIELDS]


def by_design(pipeline):
    return {r[DESIGN_ID_FID]: r for r in pipeline.qb_records()}


def upserts(pipeline):
    return [e for e in pipeline.sandbox.quickbase.log.entries() if e.path == "/v1/records" and e.method == "POST"]


def test_status_rides_in_the_upsert_and_changes_only_when_the_status_does(pipeline):
    status, problem, synced = status_fids(pipeline)
    first = pipeline.sync_all()
    records = by_design(pipeline)
    assert records and export_metadata(first)["requests"] == 1  # no request of its own
    assert all(r[status] == "Synced" and not r.get(problem) and r[synced] for r in records.values())

    pipeline.sandbox.quickbase.log.clear()
    again = export_metadata(pipeline.run())  # the time changes every run: it must not make a design "changed"
    assert again["sent"] == 0 and again["requests"] == 0 and again["status_updates"] == 0 and not upserts(pipeline)

    # a design already in Quickbase fails validation: held back, its record says why (once)
    aurora = pipeline.sandbox.aurora.primary
    held = next(d for d, s in aurora.summaries.items() if s.get("arrays") and d in records)
    original = aurora.summaries[held]
    aurora.summaries[held] = {**original, "arrays": [{**original["arrays"][0], "azimuth": 400}]}
    # and Quickbase stops offering a module model other records use: those are refused before sending
    qb = pipeline.sandbox.quickbase
    module = qb.field_by_label(qb.table_id, "Module Model")
    dropped = next(r[module.id] for d, r in records.items() if d != held and r.get(module.id))
    qb.update_field(qb.table_id, module.id, properties={
        **module.properties, "choices": [c for c in module.properties["choices"] if c != dropped]})
    refused = {d for d, r in records.items() if r.get(module.id) == dropped and d != held}
    before = records[held]

    pipeline.sandbox.quickbase.log.clear()
    meta = export_metadata(pipeline.run())
    records = by_design(pipeline)
    assert meta["status_updates"] == 1 + len(refused) and meta["sent"] == 0 and meta["requests"] == 1
    assert records[held][status] == "Held back" and "azimuth" in records[held][problem]
    assert records[held][synced] == before[synced]  # Aurora's values were not sent
    assert {k: v for k, v in records[held].items() if k not in (status, problem, 2, 5)} == \
        {k: v for k, v in before.items() if k not in (status, problem, 2, 5)}
    for design_id in refused:
        assert records[design_id][status] == "Not sent" and dropped in records[design_id][problem]

    pipeline.sandbox.quickbase.log.clear()
    assert export_metadata(pipeline.run())["requests"] == 0  # the same status is never sent twice

    # fixed in Aurora (the same values as before): "Synced" again, though its values did not change
    aurora.summaries[held] = original
    qb.update_field(qb.table_id, module.id, properties=module.properties)
    meta = export_metadata(pipeline.run())
    records = by_design(pipeline)
    assert meta["status_updates"] == 1 + len(refused) and meta["updated"] == 0 and meta["created"] == 0
    assert all(r[status] == "Synced" and not r.get(problem) for r in records.values())
    assert export_metadata(pipeline.run())["requests"] == 0


def test_a_table_without_the_fields_exports_as_before(pipeline):
    qb = pipeline.sandbox.quickbase
    for fid in status_fids(pipeline):
        qb.delete_field(qb.table_id, fid)
    result = pipeline.sync_all()
    meta = export_metadata(result)
    assert result.success and meta["created"] == len(pipeline.qb_records()) > 0 and meta["status_updates"] == 0
    assert pipeline.query("select count(*) from ops.sync_status")[0][0] == 0
    assert export_metadata(pipeline.run())["requests"] == 0
