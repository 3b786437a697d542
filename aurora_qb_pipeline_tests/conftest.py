"""Shared fixtures: sandbox servers, a Dagster instance, a temporary DuckDB, and a helper that
materializes the whole pipeline for a range of projects."""

import warnings

import dagster as dg
import pytest

from aurora_qb_pipeline.assets.export import export_without_failures, quickbase_export
from aurora_qb_pipeline.assets.staging import projects_partitions, staging_assets, staging_checks
from aurora_qb_pipeline.automation import RANGE_END, RANGE_START
from aurora_qb_pipeline.sandbox.launcher import start_sandbox

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

ALL_ASSETS = [*staging_assets, quickbase_export]
ALL_CHECKS = [*staging_checks, export_without_failures]
TIME_SCALE = 0.01  # every rate window, latency and backoff 100x shorter than in production


@pytest.fixture
def sandbox():
    with start_sandbox(projects=24, designs_per_project=2.5, seed=11, time_scale=TIME_SCALE) as sb:
        yield sb


@pytest.fixture
def instance(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as inst:
        yield inst


@pytest.fixture
def duckdb_path(tmp_path):
    return str(tmp_path / "aurora_qb.duckdb")


@pytest.fixture(autouse=True)
def _isolated_rate_limit_db(tmp_path, monkeypatch):
    """Each test gets its own shared-bucket file so tests never throttle each other."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    yield


class Pipeline:
    """Runs the sync job over project partitions against a sandbox, as the daemon would."""

    def __init__(self, sandbox, instance, duckdb_path):
        self.sandbox, self.instance, self.duckdb_path = sandbox, instance, duckdb_path
        self.resources = sandbox.resources(duckdb_path)

    def add_projects(self, project_ids=None):
        ids = project_ids or [p["id"] for p in self.all_projects()]
        known = set(self.instance.get_dynamic_partitions(projects_partitions.name))
        self.instance.add_dynamic_partitions(projects_partitions.name, [p for p in ids if p not in known])
        return ids

    def all_projects(self):
        return list(self.resources["aurora"].iter_projects())

    def run(self, first=None, last=None, config=None, raise_on_error=True, resources=None, selection=None):
        keys = self.instance.get_dynamic_partitions(projects_partitions.name)
        tags = {RANGE_START: first or keys[0], RANGE_END: last or keys[-1]}
        run_config = {"ops": {"quickbase_export": {"config": config}}} if config else None
        return dg.materialize(
            ALL_ASSETS + ALL_CHECKS if selection is None else selection,
            instance=self.instance,
            resources=resources or self.resources,
            tags=tags,
            run_config=run_config,
            raise_on_error=raise_on_error,
        )

    def sync_all(self, **kwargs):
        self.add_projects()
        return self.run(**kwargs)

    def query(self, sql, params=None):
        import duckdb

        with duckdb.connect(self.duckdb_path) as conn:
            return conn.execute(sql, params or []).fetchall()

    def qb_records(self):
        return self.sandbox.quickbase.records(self.sandbox.quickbase.table_id)


def export_metadata(result):
    mats = [
        m for m in result.get_asset_materialization_events()
        if m.asset_key == dg.AssetKey("quickbase_export")
    ]
    return {k: v.value for k, v in mats[-1].materialization.metadata.items()}


@pytest.fixture
def pipeline(sandbox, instance, duckdb_path):
    return Pipeline(sandbox, instance, duckdb_path)
