"""End to end: materialize the assets against the sandbox servers on a temporary DuckDB."""

from collections import Counter
from dataclasses import replace

import dagster as dg
import pytest

from aurora_qb_pipeline.defs.resources import build_resources
from aurora_qb_pipeline.sandbox.launcher import MISSING_CHOICE

from .conftest import export_metadata, exportable, step_failure_text

DESIGN_ID_FID = 20


def _design_ids_in_quickbase(pipeline):
    return [r[DESIGN_ID_FID] for r in pipeline.qb_records()]


def _exportable(pipeline):
    return exportable(pipeline)


def test_full_sync_stages_everything_and_exports_once(pipeline):
    result = pipeline.sync_all()
    assert result.success
    aurora = pipeline.sandbox.aurora.primary
    staged_designs = {r[0] for r in pipeline.query("select design_id from staging.designs")}
    assert staged_designs == set(aurora.designs)
    staged_projects = pipeline.query("select count(*) from staging.project_addresses")[0][0]
    assert staged_projects == len(aurora.projects)
    arrays = pipeline.query("select count(*) from staging.design_arrays")[0][0]
    assert arrays == sum(len(s.get("arrays") or []) for s in aurora.summaries.values())

    in_qb = _design_ids_in_quickbase(pipeline)
    assert len(in_qb) == len(set(in_qb)), "duplicate records in Quickbase"
    assert set(in_qb) == _exportable(pipeline)

    meta = export_metadata(result)
    assert meta["created"] == len(in_qb)
    assert meta["requests"] == 1  # every record in one request: batches are sized by bytes, not projects
    assert meta["records_per_request"] == len(in_qb)

    # one check result per staging output, all passed
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks if c.check_name == "quarantine_rate")


def test_rerun_creates_no_duplicates_and_sends_nothing_unchanged(pipeline):
    pipeline.sync_all()
    first = sorted(_design_ids_in_quickbase(pipeline))
    pipeline.sandbox.quickbase.log.clear()
    result = pipeline.run()
    assert result.success
    assert sorted(_design_ids_in_quickbase(pipeline)) == first
    meta = export_metadata(result)
    assert meta["sent"] == 0 and meta["requests"] == 0
    assert meta["unchanged_since_last_export"] == len(first)
    upserts = [e for e in pipeline.sandbox.quickbase.log.entries() if e.path == "/v1/records"]
    assert upserts == []


def test_changed_designs_are_updated_in_place(pipeline):
    pipeline.sync_all()
    before = len(pipeline.qb_records())
    changed = pipeline.sandbox.aurora.mutate(0.2, seed=5)
    result = pipeline.run()
    meta = export_metadata(result)
    assert len(pipeline.qb_records()) == before
    exportable_changed = set(changed["changed_design_ids"]) & _exportable(pipeline)
    assert meta["updated"] == len(exportable_changed) > 0
    assert meta["created"] == 0
    by_design = {r[DESIGN_ID_FID]: r for r in pipeline.qb_records()}
    for design_id in exportable_changed:
        summary = pipeline.sandbox.aurora.primary.summaries[design_id]
        modules = sum(a["module"]["count"] for a in summary["arrays"])
        assert by_design[design_id][8] == modules
        if "energy_production" in summary:
            assert by_design[design_id][10] == pytest.approx(summary["energy_production"]["annual"], rel=1e-6)


def test_faults_and_429_bursts_still_land_every_record_exactly_once(pipeline):
    pipeline.sandbox.configure(
        fault_5xx_rate=0.1, fault_timeout_rate=0.05, fault_truncate_rate=0.05, timeout_hang_s=2.5, seed=3
    )
    pipeline.sandbox.aurora.config.update({"burst_429": 15})
    pipeline.sandbox.quickbase.config.update({"burst_429": 2})
    result = pipeline.sync_all()
    assert result.success
    in_qb = _design_ids_in_quickbase(pipeline)
    assert Counter(in_qb).most_common(1)[0][1] == 1
    assert set(in_qb) == _exportable(pipeline)
    faults = Counter(e.fault for e in pipeline.sandbox.aurora.log.entries() if e.fault)
    assert faults["5xx"] and faults["truncated"] and faults["burst_429"]
    # a rerun after the storm changes nothing
    pipeline.sandbox.configure(fault_5xx_rate=0.0, fault_timeout_rate=0.0, fault_truncate_rate=0.0)
    assert export_metadata(pipeline.run())["sent"] == 0
    assert Counter(_design_ids_in_quickbase(pipeline)).most_common(1)[0][1] == 1


def test_choice_missing_in_quickbase_is_logged_then_retried(pipeline):
    pipeline.sync_all()
    rejected = pipeline.query("select design_id, message from ops.export_log where status = 'rejected'")
    assert rejected, "the sandbox data should use the module the table does not offer"
    assert all(MISSING_CHOICE in message and "Module Model" in message for _, message in rejected)
    # a PM adds the choice in Quickbase; the next run sends exactly the held-back designs
    qb = pipeline.sandbox.quickbase
    field = qb.field_by_label(qb.table_id, "Module Model")
    qb.update_field(qb.table_id, field.id, properties={**field.properties, "choices": [*field.properties["choices"], MISSING_CHOICE]})
    meta = export_metadata(pipeline.run())
    assert meta["created"] == len({d for d, _ in rejected})
    assert meta["rejected"] == 0


def test_bad_aurora_records_are_quarantined_with_reason_and_others_go_on(pipeline):
    aurora = pipeline.sandbox.aurora.primary
    design_id = next(d for d, s in aurora.summaries.items() if s.get("arrays"))
    aurora.summaries[design_id] = {**aurora.summaries[design_id], "arrays": [
        {**aurora.summaries[design_id]["arrays"][0], "azimuth": 400}
    ]}
    result = pipeline.sync_all()
    assert result.success
    reasons = pipeline.query("select asset, reason from ops.quarantine where record_key = ?", [design_id])
    assert any("azimuth" in reason for _, reason in reasons)
    assert design_id not in _design_ids_in_quickbase(pipeline)
    assert len(pipeline.qb_records()) > 0


def test_mapping_that_does_not_fit_fails_clearly_and_writes_nothing(pipeline, tmp_path):
    bad = tmp_path / "mapping.yaml"
    bad.write_text(
        "merge_field: Project Name\nfields:\n  design_id: Aurora Design ID\n  project_name: System Size (kW)\n"
    )
    result = pipeline.sync_all(config={"mapping_file": str(bad)}, raise_on_error=False)
    assert not result.success
    text = step_failure_text(result)
    assert "not unique" in text and "needs one of" in text
    assert pipeline.qb_records() == []


@pytest.mark.parametrize("strategy", ["replace", "skip"])
def test_matching_strategies(pipeline, strategy):
    pipeline.sync_all()
    qb = pipeline.sandbox.quickbase
    record = next(r for r in pipeline.qb_records() if r.get(6))
    design_id = record[DESIGN_ID_FID]
    # someone edits the record in Quickbase, and Aurora's project name disappears
    project_id = record[21]
    pipeline.sandbox.aurora.primary.projects[project_id] = {
        **pipeline.sandbox.aurora.primary.projects[project_id], "name": None
    }
    result = pipeline.run(config={"matching_strategy": strategy})
    after = next(r for r in pipeline.qb_records() if r[DESIGN_ID_FID] == design_id)
    meta = export_metadata(result)
    if strategy == "replace":
        assert not after.get(6)  # cleared, as Aurora has no name
        assert meta["updated"] > 0
    else:
        assert after.get(6) == record[6]  # existing records are left alone
        assert meta["skipped_existing"] > 0 and meta["updated"] == 0
    assert len(qb.records(qb.table_id)) == len(set(_design_ids_in_quickbase(pipeline)))


def test_secrets_never_reach_logs_metadata_or_storage(pipeline, instance, tmp_path, monkeypatch):
    """Wired as in production (dg.EnvVar, read by Dagster from the environment at run time), with
    faults so error paths are exercised too."""
    for key, value in pipeline.sandbox.env().items():
        monkeypatch.setenv(key, value)
    pipeline.sandbox.configure(fault_5xx_rate=0.1, seed=9)
    pipeline.add_projects()
    result = pipeline.run(resources=build_resources(pipeline.settings))
    secrets = pipeline.sandbox.secrets()
    texts = [str(record) for record in instance.all_logs(result.run_id)]
    assert texts
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".duckdb" for p in files)
    for secret in secrets:
        assert all(secret not in t for t in texts), "a secret reached the event log"
        leaked = [str(p) for p in files if secret.encode() in p.read_bytes()]
        assert not leaked, f"a secret reached {leaked}"


def test_single_project_partition_with_materialize(pipeline):
    """The UI path: materialize one project's partition."""
    ids = pipeline.add_projects()
    result = pipeline.run(partition_key=ids[0])
    assert result.success
    staged = {r[0] for r in pipeline.query("select distinct project_id from staging.designs")}
    assert staged <= {ids[0]}


def test_quickbase_line_errors_are_logged_and_retried_next_run(pipeline):
    """A 207: Quickbase refuses some records of a batch (here a field wrongly set unique in the
    table, so a project's second design collides) and commits the others."""
    qb = pipeline.sandbox.quickbase
    project_field = qb.field_by_label(qb.table_id, "Aurora Project ID")
    qb.update_field(qb.table_id, project_field.id, unique=True)
    result = pipeline.sync_all()
    assert result.success
    meta = export_metadata(result)
    failed = pipeline.query("select design_id, message from ops.export_log where status = 'failed'")
    assert meta["failed"] == len(failed) > 0 and meta["created"] > 0
    assert all("unique" in message.lower() for _, message in failed)
    assert pipeline.query("select count(*) from ops.export_state where list_contains(?, design_id)",
                          [[d for d, _ in failed]])[0][0] == 0
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "export_without_failures")
    assert not check.passed

    qb.update_field(qb.table_id, project_field.id, unique=False)  # the admin fixes the table
    retry = export_metadata(pipeline.run())
    assert retry["created"] == len(failed) and retry["failed"] == 0
    assert set(_design_ids_in_quickbase(pipeline)) == _exportable(pipeline)


@pytest.mark.parametrize(
    "credential,variable,wrong",
    [("aurora_api_token", "AURORA_API_TOKEN", "sk_sand_WRONGKEY000000"),
     ("quickbase_user_token", "QB_USER_TOKEN", "b9x7wr_wrong_user_token_000")],
)
def test_a_refused_credential_stops_the_run_at_once_and_names_it(pipeline, credential, variable, wrong):
    """A 401/403 is not bad data: no quarantine, no retry of the request, the step or the run;
    the failure names the environment variable to check, never its value."""
    pipeline.add_projects()
    resources = build_resources(pipeline.settings, replace(pipeline.credentials, **{credential: wrong}))
    result = pipeline.run(resources=resources, raise_on_error=False)
    assert not result.success
    text = step_failure_text(result)
    assert variable in text and "refused" in text and wrong not in text
    assert not any(e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY for e in result.all_events)
    state = pipeline.sandbox.aurora if credential.startswith("aurora") else pipeline.sandbox.quickbase
    refused = [e for e in state.log.entries() if e.status in (401, 403)]
    assert 1 <= len(refused) <= pipeline.resources["aurora"].max_workers  # the requests in flight, none retried
    assert pipeline.qb_records() == []
