"""The event path's run (``aurora_event_sync``: ``aurora/changed_projects`` + the export) over a
scattered set of projects, against the sandbox; and the per-partition metadata of range runs."""

import json

import dagster as dg
import duckdb
import pytest

from aurora_qb_pipeline.defs.aurora.changed import (
    CHANGED_PROJECTS_KEY,
    EVENT_JOB_NAME,
    event_run_config,
    event_run_projects,
    event_run_request,
)
from aurora_qb_pipeline.defs.aurora.project_set import fetch_projects, write_projects
from aurora_qb_pipeline.defs.aurora.staging import staging_key
from aurora_qb_pipeline.defs.partitions import known_projects

from .conftest import export_metadata, exportable

TABLES = ("project_addresses", "designs", "latest_proposals", "design_summaries", "design_arrays")


def _mats(result, key):
    return [e.materialization for e in result.get_asset_materialization_events() if e.asset_key == key]


def _per_project_counts(pipeline, table):
    rows = pipeline.query(f"select project_id, count(*) from staging.{table} group by 1")
    return dict(rows)


def run_event(pipeline, project_ids, raise_on_error=True):
    job = pipeline.defs.resolve_job_def(EVENT_JOB_NAME)
    return job.execute_in_process(instance=pipeline.instance, run_config=event_run_config(project_ids),
                                  raise_on_error=raise_on_error)


def test_a_scattered_set_of_projects_is_one_run_and_one_upsert(pipeline):
    assert pipeline.sync_all().success
    order = known_projects(pipeline.instance)
    before = {t: _per_project_counts(pipeline, t) for t in TABLES}
    changed = pipeline.sandbox.aurora.mutate(0.25, seed=5)
    scattered = sorted(set(changed["project_ids"]) | {order[0], order[-1]})
    assert len(scattered) >= 3

    result = run_event(pipeline, scattered)
    assert result.success
    # one export, one upsert for every changed design of the scattered projects
    export = export_metadata(result)
    assert export["requests"] == 1
    assert export["sent"] >= len(set(changed["changed_design_ids"]) & exportable(pipeline)) > 0
    # a materialization of every partitioned staging asset for each staged project, with its own counts
    after = {t: _per_project_counts(pipeline, t) for t in TABLES}
    for table in TABLES:
        mats = _mats(result, staging_key(table))
        assert sorted(m.partition for m in mats) == scattered, table
        for m in mats:
            assert m.metadata["valid_rows"].value == after[table].get(m.partition, 0), (table, m.partition)
            assert "projects" not in m.metadata
    # projects outside the set are untouched; the set's rows are replaced, not appended
    for table in TABLES:
        untouched = {p: n for p, n in before[table].items() if p not in scattered}
        assert {p: n for p, n in after[table].items() if p not in scattered} == untouched
    assert _mats(result, CHANGED_PROJECTS_KEY)[0].metadata["projects"].value == len(scattered)
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["quarantine_rate"] and checks["designs_unique_across_projects"]
    assert "export_without_failures" in checks  # the export's check runs in the same run
    # the partitions' status follows: the latest materialization of each staged partition is this run's
    record = pipeline.instance.get_latest_materialization_event(staging_key("designs"))
    assert record.run_id == result.run_id
    status = pipeline.instance.get_materialized_partitions(staging_key("design_summaries"))
    assert set(scattered) <= set(status)

    # the same set again: nothing changed, so nothing is sent
    again = run_event(pipeline, list(reversed(scattered)))
    assert again.success and export_metadata(again)["sent"] == 0 and export_metadata(again)["requests"] == 0


def test_unknown_projects_become_partitions_and_bad_config_fails_plainly(pipeline):
    project = pipeline.all_projects()[0]["id"]
    assert project not in known_projects(pipeline.instance)
    result = run_event(pipeline, [project])
    assert result.success
    assert project in known_projects(pipeline.instance)
    assert pipeline.query("select count(*) from staging.project_addresses where project_id = ?", [project]) == [(1,)]

    bad = run_event(pipeline, ["  "], raise_on_error=False)
    assert not bad.success
    failure = next(e for e in bad.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "project_ids" in failure.step_failure_data.error.message


def test_the_run_request_is_stable_and_names_its_projects(pipeline):
    first = event_run_request(["b", "a", "c"], "webhooks", "123.0", max_runtime_s=600)
    second = event_run_request(["c", "a", "b", "a"], "webhooks", "123.0", max_runtime_s=600)
    assert first.run_key == second.run_key and first.job_name == EVENT_JOB_NAME
    assert first.tags == {"aurora_qb/trigger": "webhooks", "aurora_qb/projects": "3", "dagster/max_runtime": "600"}
    assert event_run_request(["a", "b"], "webhooks", "123.0").run_key != first.run_key
    run = pipeline.instance.create_run_for_job(pipeline.defs.resolve_job_def(EVENT_JOB_NAME),
                                               run_config=first.run_config, tags=first.tags)
    assert event_run_projects(run) == ["a", "b", "c"]


def test_a_range_run_records_each_partitions_own_counts(pipeline):
    assert pipeline.sync_all().success
    order = known_projects(pipeline.instance)
    counts = {t: _per_project_counts(pipeline, t) for t in TABLES}
    result = pipeline.run(order[0], order[5])
    assert result.success
    for table in TABLES:
        mats = _mats(result, staging_key(table))
        assert sorted(m.partition for m in mats) == sorted(order[:6])
        got = {m.partition: m.metadata["valid_rows"].value for m in mats}
        assert got == {p: counts[table].get(p, 0) for p in order[:6]}, table
        assert all("projects" not in m.metadata and "preview" not in m.metadata for m in mats)
    # the quarantine check is run-scoped and says so, with the run's totals
    checks = [e for e in result.get_asset_check_evaluations() if e.check_name == "quarantine_rate"]
    assert len(checks) == len(TABLES)
    for check in checks:
        assert check.metadata["scope"].value == "run" and check.metadata["partitions"].value == 6
        assert check.metadata["partition_span"].value == f"{order[0]} .. {order[5]}"


def test_stage_projects_writes_in_one_transaction(pipeline):
    """A write that fails at the last table leaves every table as it was (nothing half-replaced)."""
    assert pipeline.sync_all().success
    order = known_projects(pipeline.instance)
    before = {t: pipeline.query(f"select * from staging.{t} order by all") for t in TABLES}
    quarantine = pipeline.query("select * from ops.quarantine order by all")
    pipeline.sandbox.aurora.mutate(0.5, seed=3)
    client = pipeline.aurora().client
    try:
        tables = fetch_projects(client, order[:4])
    finally:
        client.close()
    assert [t.name for t in tables] == list(TABLES)
    tables[-1].checked.valid = tables[-1].valid.assign(not_a_column=1)  # the insert of the last table fails
    with pytest.raises(duckdb.BinderException):
        write_projects(pipeline.resources["duckdb"], order[:4], tables, "test-run")
    assert {t: pipeline.query(f"select * from staging.{t} order by all") for t in TABLES} == before
    assert pipeline.query("select * from ops.quarantine order by all") == quarantine


def _staged_pricing(pipeline, project_ids):
    rows = pipeline.query("select project_id, object_id, payload from staging.aurora_raw "
                          "where kind = 'pricing' and list_contains(?, project_id)", [list(project_ids)])
    return {(p, d): json.loads(payload) for p, d, payload in rows}


def test_the_event_path_fetches_pricing_as_the_range_path_does(sandbox, instance, tmp_path, credentials):
    """With AURORA_QB_FETCH_PRICING on, an event run stages the pricing of its projects' designs
    (in its one transaction), the same payloads a range run stages; a key that loses pricing
    (403) switches it off with one warning and the run still succeeds."""
    from .conftest import Pipeline, sandbox_settings

    pipeline = Pipeline(sandbox, instance, sandbox_settings(sandbox, tmp_path, fetch_pricing=True), credentials)
    keys = pipeline.add_projects()
    tenant = sandbox.aurora.primary
    chosen = [pid for pid in keys if tenant.designs_of(pid)][:4]
    assert run_event(pipeline, chosen).success
    by_event = _staged_pricing(pipeline, chosen)
    designs = {(pid, d["id"]) for pid in chosen for d in tenant.designs_of(pid)}
    assert set(by_event) == designs
    for (_, design_id), pricing in by_event.items():
        assert pricing == sandbox.aurora.get_design_pricing(tenant.tenant_id, design_id)
    assert pipeline.run().success  # the range path over every project
    assert _staged_pricing(pipeline, chosen) == by_event

    sandbox.aurora.set_tenant_options(tenant.tenant_id, pricing=False)
    result = run_event(pipeline, chosen)
    assert result.success
    logs = [e.user_message for e in instance.all_logs(result.run_id)]
    assert len([m for m in logs if "pricing is switched off" in m]) == 1
    assert _staged_pricing(pipeline, chosen) == by_event  # what was staged before stays
