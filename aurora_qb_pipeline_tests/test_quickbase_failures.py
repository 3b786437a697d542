"""Quickbase-side failures fail loudly and heal (end to end against the sandbox): a token revoked,
a field deleted or retyped and the merge field made non-unique in the middle of an export, a
request too large, an answer cut off after Quickbase applied the upsert, records deleted and
edited by hand (the reconcile), and a design moved to another project."""

import math
from dataclasses import replace

import dagster as dg

from aurora_qb_pipeline.defs.jobs import aurora_quickbase_sync
from aurora_qb_pipeline.defs.partitions import DAILY_RECONCILE_TRIGGER, known_projects, range_tags
from aurora_qb_pipeline.defs.resources import build_resources
from aurora_qb_pipeline.settings import Settings

from .conftest import EXPORT_OP, Pipeline, export_metadata, sandbox_settings, step_failure_text
from .test_pipeline import DESIGN_ID_FID, _design_ids_in_quickbase, _exportable

PROJECT_ID_FID, PROJECT_NAME_FID, SIZE_FID, AZIMUTH_FID = 21, 6, 7, 18
BATCH = {"max_records_per_request": 10}


def when_upserts_answered(qb, count, action):
    """Run ``action`` in the Quickbase sandbox once it has answered ``count`` upserts, before the
    answer reaches the client: the admin changes something between two batches of an export."""
    log, seen = qb.log, []
    add = log.add

    def logged(entry):
        add(entry)
        if entry.method == "POST" and entry.path == "/v1/records" and entry.status in (200, 207):
            seen.append(entry)
            if len(seen) == count:
                action()

    log.add = logged


def upsert_statuses(pipeline):
    return [e.status for e in pipeline.sandbox.quickbase.log.entries() if e.path == "/v1/records"]


def retried(result):
    return any(e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY for e in result.all_events)


def assert_repaired(pipeline):
    ids = _design_ids_in_quickbase(pipeline)
    assert len(ids) == len(set(ids)), "duplicate records in Quickbase"
    assert set(ids) == _exportable(pipeline)


def test_token_revoked_mid_export_stops_at_once_and_the_next_run_repairs(pipeline):
    qb = pipeline.sandbox.quickbase
    pipeline.add_projects()
    revoked = qb.token
    when_upserts_answered(qb, 1, lambda: qb.revoke_token(revoked))
    result = pipeline.run(config=BATCH, raise_on_error=False)
    assert not result.success and not retried(result)
    text = step_failure_text(result)
    assert "QB_USER_TOKEN" in text and "refused" in text and revoked not in text
    assert upsert_statuses(pipeline) == [200, 401]  # one batch landed; nothing sent after the refusal
    assert len(pipeline.qb_records()) == 10
    assert pipeline.query("select count(*) from ops.export_state")[0][0] == 10

    token = qb.add_token([qb.app_id])  # the admin issues a new token
    resources = build_resources(pipeline.settings, replace(pipeline.credentials, quickbase_user_token=token))
    meta = export_metadata(pipeline.run(config=BATCH, resources=resources))
    assert meta["created"] == len(_exportable(pipeline)) - 10 and meta["failed"] == 0
    assert_repaired(pipeline)


def test_field_deleted_mid_export_stops_naming_it_and_the_next_run_after_the_fix_repairs(pipeline):
    qb = pipeline.sandbox.quickbase
    pipeline.add_projects()
    when_upserts_answered(qb, 1, lambda: qb.delete_field(qb.table_id, AZIMUTH_FID))
    result = pipeline.run(config=BATCH, raise_on_error=False)
    assert not result.success and not retried(result)
    text = step_failure_text(result)
    assert "changed during the export" in text and "field 'Azimuth' (18) was deleted from the table" in text
    assert upsert_statuses(pipeline) == [200, 207]  # the batch refused line by line, then a stop
    assert len(pipeline.qb_records()) == 10
    failed = pipeline.query("select message from ops.export_log where status = 'failed'")
    assert len(failed) == 10 and all("Unknown field" in m for (m,) in failed)

    azimuth = qb.add_field(qb.table_id, "Azimuth", "numeric")  # the admin puts the field back
    meta = export_metadata(pipeline.run(config=BATCH))
    assert meta["failed"] == 0
    assert_repaired(pipeline)
    staged = dict(pipeline.query("select design_id, azimuth from staging.design_summaries where azimuth is not null"))
    by_design = {r[DESIGN_ID_FID]: r for r in pipeline.qb_records()}
    assert all(by_design[d].get(azimuth.id) == staged[d] for d in by_design if d in staged)


def test_field_retyped_mid_export_stops_and_the_next_run_restores_values_the_retype_cleared(pipeline):
    qb = pipeline.sandbox.quickbase
    pipeline.add_projects()
    when_upserts_answered(qb, 1, lambda: qb.change_field_type(qb.table_id, AZIMUTH_FID, "date"))
    result = pipeline.run(config=BATCH, raise_on_error=False)
    assert not result.success and not retried(result)
    assert "field 'Azimuth' (18) changed type from numeric to date" in step_failure_text(result)
    landed = pipeline.qb_records()
    assert len(landed) == 10 and all(r.get(AZIMUTH_FID) is None for r in landed)  # the retype cleared them

    qb.change_field_type(qb.table_id, AZIMUTH_FID, "numeric")  # the admin changes it back
    meta = export_metadata(pipeline.run(config=BATCH))
    assert meta["reconcile"] and "changed during an export" in meta["reconcile_reason"]
    assert meta["drift_edited"] == sum(1 for r in landed if r[DESIGN_ID_FID] in set(
        d for (d,) in pipeline.query("select design_id from staging.design_summaries where azimuth is not null")))
    assert_repaired(pipeline)
    staged = dict(pipeline.query("select design_id, azimuth from staging.design_summaries where azimuth is not null"))
    for record in pipeline.qb_records():
        if record[DESIGN_ID_FID] in staged:
            assert record[AZIMUTH_FID] == staged[record[DESIGN_ID_FID]]
    # the request is answered: the next export trusts its state again
    assert not export_metadata(pipeline.run())["reconcile"]


def test_field_retyped_between_runs_fails_clearly_and_the_run_after_the_fix_restores_values(pipeline):
    qb = pipeline.sandbox.quickbase
    pipeline.sync_all()
    with_azimuth = sum(1 for r in pipeline.qb_records() if r.get(AZIMUTH_FID) is not None)
    qb.change_field_type(qb.table_id, AZIMUTH_FID, "date")  # clears every azimuth
    result = pipeline.run(raise_on_error=False)
    assert not result.success and not retried(result)
    assert "'Azimuth' (18) is of type date" in step_failure_text(result)

    qb.change_field_type(qb.table_id, AZIMUTH_FID, "numeric")
    meta = export_metadata(pipeline.run())
    assert meta["reconcile"] and "did not fit the mapping" in meta["reconcile_reason"]
    assert meta["drift_edited"] == meta["updated"] == with_azimuth > 0
    assert sum(1 for r in pipeline.qb_records() if r.get(AZIMUTH_FID) is not None) == with_azimuth


def test_merge_field_made_non_unique_mid_export_stops_and_the_next_run_after_the_fix_repairs(pipeline):
    qb = pipeline.sandbox.quickbase
    pipeline.add_projects()
    when_upserts_answered(qb, 1, lambda: qb.update_field(qb.table_id, DESIGN_ID_FID, unique=False))
    result = pipeline.run(config=BATCH, raise_on_error=False)
    assert not result.success and not retried(result)
    text = step_failure_text(result)
    assert "merge field 'Aurora Design ID' (20) is no longer unique" in text
    assert upsert_statuses(pipeline) == [200, 400]
    assert len(pipeline.qb_records()) == 10

    qb.update_field(qb.table_id, DESIGN_ID_FID, unique=True)
    assert export_metadata(pipeline.run(config=BATCH))["failed"] == 0
    assert_repaired(pipeline)


def test_an_export_whose_every_record_is_refused_fails(pipeline):
    """Line errors on every record, with the table as the mapping expects: the run is red."""
    qb = pipeline.sandbox.quickbase
    qb.update_field(qb.table_id, PROJECT_ID_FID, unique=True)
    projects = pipeline.add_projects()
    qb.add_records(qb.table_id, [{DESIGN_ID_FID: f"typed-by-hand-{i}", PROJECT_ID_FID: p} for i, p in enumerate(projects)],
                   DESIGN_ID_FID)
    result = pipeline.run(raise_on_error=False)
    assert not result.success and not retried(result)
    text = step_failure_text(result)
    failed = pipeline.query("select count(*) from ops.export_log where status = 'failed'")[0][0]
    assert f"Quickbase refused all {failed} records" in text and "unique" in text.lower()


def test_oversized_requests_are_split_until_every_record_lands(pipeline):
    qb = pipeline.sandbox.quickbase
    tenant = pipeline.sandbox.aurora.primary
    exportable = next(iter(sorted(d for d, s in tenant.summaries.items() if s.get("arrays"))))
    tenant.designs[exportable]["name"] = "Design with a very long name " + "x" * 3000
    qb.update_settings({"max_body_bytes": 2500})
    result = pipeline.sync_all()
    assert result.success
    meta = export_metadata(result)
    assert meta["split_requests"] >= 1 and 413 in upsert_statuses(pipeline)
    accepted = [e for e in qb.log.entries() if e.path == "/v1/records" and e.status == 200]
    assert accepted and all(e.request_bytes <= 2500 for e in accepted)
    failed = pipeline.query("select design_id, message from ops.export_log where status = 'failed'")
    if exportable in _exportable(pipeline):
        assert failed == [(exportable, failed[0][1])] and "too large" in failed[0][1]
    ids = _design_ids_in_quickbase(pipeline)
    assert len(ids) == len(set(ids)) and set(ids) == _exportable(pipeline) - {exportable}


def test_record_cap_and_body_limit_come_from_the_environment_and_run_config(sandbox, instance, tmp_path, credentials):
    assert sandbox_settings(sandbox, tmp_path).export_max_records_per_request is None  # by default
    env = {**sandbox.env(), "AURORA_QB_EXPORT_MAX_RECORDS": "7", "AURORA_QB_EXPORT_MAX_BYTES": "20000"}
    settings = Settings.from_env(env, duckdb_path=tmp_path / "aurora_qb.duckdb", rate_limit_db=tmp_path / "rl.sqlite",
                                 inbox_url=f"sqlite:///{tmp_path / 'inbox.sqlite'}")  # staging teaches the inbox
    pipeline = Pipeline(sandbox, instance, settings, credentials)
    meta = export_metadata(pipeline.sync_all())
    assert meta["requests"] == math.ceil(meta["sent"] / 7) and meta["failed"] == 0
    assert all(e.request_bytes <= 20000 for e in sandbox.quickbase.log.entries() if e.path == "/v1/records")
    meta = export_metadata(pipeline.run(config={"max_records_per_request": 25, "resend_unchanged": True}))
    assert meta["requests"] == math.ceil(meta["sent"] / 25)


def test_an_applied_upsert_whose_answer_was_cut_off_is_booked_as_created_or_updated(pipeline):
    qb = pipeline.sandbox.quickbase
    qb.update_settings({"truncate_upsert_answers": 1})
    meta = export_metadata(pipeline.sync_all())
    created = len(pipeline.qb_records())
    assert upsert_statuses(pipeline) == [200, 200]  # the answer was cut off, the retry answered "unchanged"
    assert meta["answers_lost"] == 1 and meta["created"] == created and meta["unchanged"] == 0
    assert {s for (s,) in pipeline.query("select distinct status from ops.export_log")} <= {"created", "rejected"}

    changed = set(pipeline.sandbox.aurora.mutate(0.2, seed=5)["changed_design_ids"]) & _exportable(pipeline)
    qb.update_settings({"truncate_upsert_answers": 1})
    meta = export_metadata(pipeline.run())
    assert meta["answers_lost"] == 1 and meta["updated"] == len(changed) > 0 and meta["unchanged"] == 0
    assert_repaired(pipeline)


def test_reconcile_restores_records_deleted_and_edited_in_quickbase_and_reports_the_drift(pipeline):
    qb = pipeline.sandbox.quickbase
    pipeline.sync_all()
    records = pipeline.qb_records()
    notes = qb.add_field(qb.table_id, "Notes", "text")  # a field the export does not map
    named = [r for r in records if r.get(PROJECT_NAME_FID)]
    deleted, edited, noted = records[:3], named[-2:], named[-3]
    qb.delete_records(qb.table_id, [r[3] for r in deleted])
    for record in edited:
        qb.edit_record(qb.table_id, record[3], {SIZE_FID: 12345, PROJECT_NAME_FID: "typed by hand"})
    qb.edit_record(qb.table_id, noted[3], {notes.id: "call the customer back"})

    assert export_metadata(pipeline.run())["sent"] == 0  # the incremental export trusts its state
    qb.update_settings({"page_cap": 20})  # the comparison pages through the table
    qb.log.clear()
    meta = export_metadata(pipeline.run(config={"reconcile": True}))
    assert (meta["drift_missing"], meta["drift_edited"]) == (3, 2)
    assert meta["drift_unchanged"] == len(records) - 5
    assert (meta["created"], meta["updated"], meta["failed"]) == (3, 2, 0)
    drift = meta["drift"]
    assert drift["requests"] == math.ceil((len(records) - 3) / 20)
    assert sorted(drift["examples"]["missing"]) == sorted(r[DESIGN_ID_FID] for r in deleted)
    assert {e["design_id"] for e in drift["examples"]["edited"]} == {r[DESIGN_ID_FID] for r in edited}
    assert all(set(e["fields"]) == {"Project Name", "System Size (kW)"} for e in drift["examples"]["edited"])

    by_design = {r[DESIGN_ID_FID]: r for r in pipeline.qb_records()}
    assert len(by_design) == len(records) == len(pipeline.qb_records())
    for record in edited:
        after = by_design[record[DESIGN_ID_FID]]
        assert (after[SIZE_FID], after[PROJECT_NAME_FID]) == (record[SIZE_FID], record[PROJECT_NAME_FID])
    assert by_design[noted[DESIGN_ID_FID]][notes.id] == "call the customer back"  # not a mapped field
    logged = dict(pipeline.query("select design_id, message from ops.export_log where message like 'reconcile%'"))
    assert all(logged[r[DESIGN_ID_FID]] == "reconcile: missing in Quickbase" for r in deleted)

    again = export_metadata(pipeline.run(config={"reconcile": True}))
    assert (again["drift_missing"], again["drift_edited"], again["sent"]) == (0, 0, 0)


def test_the_daily_reconcile_checks_drift_and_skip_leaves_hand_edits(pipeline):
    qb = pipeline.sandbox.quickbase
    pipeline.sync_all(config={"matching_strategy": "skip"})
    records = pipeline.qb_records()
    qb.delete_records(qb.table_id, [records[0][3]])
    qb.edit_record(qb.table_id, records[1][3], {SIZE_FID: 999})
    keys = known_projects(pipeline.instance)
    result = pipeline.defs.resolve_job_def(aurora_quickbase_sync.name).execute_in_process(
        instance=pipeline.instance, tags=range_tags(keys[0], keys[-1], DAILY_RECONCILE_TRIGGER),
        run_config={"ops": {EXPORT_OP: {"config": {"matching_strategy": "skip"}}}},
    )
    meta = export_metadata(result)
    assert meta["reconcile"] and meta["reconcile_reason"] == "the daily reconcile"
    assert (meta["drift_missing"], meta["drift_edited"], meta["drift"]["edited_left_alone"]) == (1, 1, 1)
    assert (meta["created"], meta["updated"]) == (1, 0)
    by_design = {r[DESIGN_ID_FID]: r for r in pipeline.qb_records()}
    assert by_design[records[1][DESIGN_ID_FID]][SIZE_FID] == 999 and records[0][DESIGN_ID_FID] in by_design


def test_a_design_moved_to_another_project_ends_as_one_record_under_it(pipeline):
    pipeline.sync_all()
    tenant = pipeline.sandbox.aurora.primary
    exportable = sorted(_exportable(pipeline))
    design_id = exportable[0]
    old = tenant.designs[design_id]["project_id"]
    new = next(tenant.designs[d]["project_id"] for d in exportable if tenant.designs[d]["project_id"] != old)
    tenant.project_design_ids[old].remove(design_id)
    tenant.project_design_ids[new].append(design_id)
    tenant.designs[design_id]["project_id"] = new

    result = pipeline.run(first=new, last=new)  # as the sensors launch: just the project it moved to
    assert result.success
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "designs_unique_across_projects")
    assert check.passed
    for table in ("designs", "design_summaries", "design_arrays", "latest_proposals"):
        projects = {p for (p,) in pipeline.query(f"select project_id from staging.{table} where design_id = ?",
                                                  [design_id])}
        assert projects <= {new}, table
    moved = [r for r in pipeline.qb_records() if r[DESIGN_ID_FID] == design_id]
    assert len(moved) == 1 and moved[0][PROJECT_ID_FID] == new
    assert export_metadata(result)["updated"] >= 1

    assert pipeline.run(first=old, last=old).success  # later partial runs are not blocked
    moved = [r for r in pipeline.qb_records() if r[DESIGN_ID_FID] == design_id]
    assert len(moved) == 1 and moved[0][PROJECT_ID_FID] == new
    assert_repaired(pipeline)
