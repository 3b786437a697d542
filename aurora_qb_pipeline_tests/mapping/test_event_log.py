"""The demo's and benchmark's instance writes a leaner event log: one planned event per asset for a
range run (not one per partition), and every partition still recorded as materialized."""

import dagster as dg

from aurora_qb_pipeline.event_log import LeanSqliteEventLogStorage
from aurora_qb_pipeline.instance import open_instance, prepare_dagster_home

from ..conftest import Pipeline


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
