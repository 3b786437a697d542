"""The demo's and benchmark's instance writes a leaner event log: one planned event per asset for a
range run (not one per partition), and every partition still recorded as materialized."""

import dagster as dg

from aurora_qb_pipeline.defs.partitions import projects_partitions
from aurora_qb_pipeline.event_log import LeanSqliteEventLogStorage
from aurora_qb_pipeline.instance import open_instance, prepare_dagster_home
from aurora_qb_pipeline.sandbox.launcher import start_sandbox
from aurora_qb_pipeline.settings import Credentials

from ..conftest import TIME_SCALE, Pipeline, sandbox_settings


def test_range_run_on_the_lean_event_log(sandbox, tmp_path, settings, credentials):
    instance = open_instance(prepare_dagster_home(tmp_path / "home", fresh=True))
    try:
        assert isinstance(instance.event_log_storage, LeanSqliteEventLogStorage)
        pipeline = Pipeline(sandbox, instance, settings, credentials)
        keys = pipeline.add_projects()
        result = pipeline.run()
        assert result.success
        planned = instance.get_records_for_run(
            result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, limit=1000).records
        assert len(planned) == len({r.event_log_entry.dagster_event.asset_key for r in planned}) < len(keys)
        designs = dg.AssetKey(["aurora", "designs"])
        materialized = instance.get_materialized_partitions(designs)
        assert materialized == set(keys)
    finally:
        instance.dispose()


# --- asset events written in batches (DAGSTER_EVENT_BATCH_SIZE) ------------------------------------

STAGED = [dg.AssetKey(["aurora", name]) for name in
          ("project_addresses", "designs", "latest_proposals", "design_summaries", "design_arrays")]


def _commits_during(action):
    """(what ``action`` returns, SQLite commits made meanwhile by any SQLAlchemy engine)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    commits = []

    def count(_conn):
        commits.append(1)

    event.listen(Engine, "commit", count)
    try:
        return action(), len(commits)
    finally:
        event.remove(Engine, "commit", count)


def _tag(record, key, value):
    """A tag's value, the run's own values (its id as code version, the data versions hashed from
    it) named instead of given, so that two runs compare."""
    if value == record.run_id:
        return "<run id>"
    return "<hash of the run>" if "data_version" in key else value


def _materialization_view(instance, key, home):
    """What the instance says about ``key``'s materializations, without run ids, times and storage
    ids (which differ between two instances), checking those against each other on the way."""
    records = sorted(instance.fetch_materializations(key, limit=10_000).records, key=lambda r: r.storage_id)
    by_partition = {}
    for record in records:
        materialization = record.asset_materialization
        by_partition.setdefault(record.partition_key, []).append((
            {k: str(v.value).replace(str(home), "<home>") if k == "dagster/table_name" else v.value
             for k, v in materialization.metadata.items()},
            {k: _tag(record, k, v) for k, v in (materialization.tags or {}).items()},
        ))
    latest = instance.get_latest_storage_id_by_partition(key, dg.DagsterEventType.ASSET_MATERIALIZATION)
    # latest per partition: the last record of that partition
    assert latest == {p: max(r.storage_id for r in records if r.partition_key == p) for p in by_partition}
    # the asset's entry: its last materialization is the last record, and the asset's last run
    entry = instance.get_asset_records([key])[0].asset_entry
    assert entry.last_materialization_record.storage_id == records[-1].storage_id
    assert instance.get_latest_materialization_event(key).dagster_event.partition == records[-1].partition_key
    assert entry.last_run_id == records[-1].run_id
    partitions = sorted(by_partition)
    status = instance.get_status_by_partition(key, partitions, projects_partitions)
    return {"records": by_partition, "materialized": instance.get_materialized_partitions(key),
            "status": status, "last_partition": records[-1].partition_key}


def _range_run(tmp_path, monkeypatch, batch_size):
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", batch_size)
    with start_sandbox(projects=12, designs_per_project=2.5, seed=5, time_scale=TIME_SCALE) as sandbox:
        instance = open_instance(prepare_dagster_home(tmp_path / "home", fresh=True))
        try:
            pipeline = Pipeline(sandbox, instance, sandbox_settings(sandbox, tmp_path),
                                Credentials.from_env(sandbox.env()))
            keys = pipeline.add_projects()
            result, commits = _commits_during(pipeline.run)
            assert result.success
            return {key: _materialization_view(instance, key, tmp_path) for key in STAGED}, commits, len(keys)
        finally:
            instance.dispose()


def test_batched_asset_events_record_the_same_materializations(tmp_path, monkeypatch):
    """A range run writes each staged asset's per-partition materializations as one batch: the
    records per partition, latest per partition, partition status and the asset's last
    materialization are what one-by-one storage gives; the run commits far less often."""
    one_by_one, commits_alone, projects = _range_run(tmp_path / "alone", monkeypatch, "0")
    batched, commits_batched, _ = _range_run(tmp_path / "batched", monkeypatch, "1000")
    assert batched == one_by_one
    for view in batched.values():
        assert len(view["materialized"]) == projects
    # one by one: two commits per asset event (run file + index file); batched: two per asset
    assert commits_alone - commits_batched >= 2 * len(STAGED) * (projects - 1)


def test_batch_size_is_set_for_the_processes_the_cli_starts_unless_set_already():
    from aurora_qb_pipeline.instance import EVENT_BATCH_SIZE, EVENT_BATCH_VARIABLE, batch_asset_events

    assert batch_asset_events({"QB_TABLE_ID": "t"}) == {"QB_TABLE_ID": "t", EVENT_BATCH_VARIABLE: str(EVENT_BATCH_SIZE)}
    assert batch_asset_events({EVENT_BATCH_VARIABLE: "0"}) == {EVENT_BATCH_VARIABLE: "0"}  # an operator's choice stays
