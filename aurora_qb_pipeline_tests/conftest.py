"""Shared fixtures: sandbox servers, a Dagster instance, settings and resources pointing at the
sandbox (explicit values, each test its own DuckDB file and rate-limit bucket), and a helper that
runs the sync job over a range of projects."""

import warnings
from contextlib import contextmanager

import dagster as dg
import pytest
from hypothesis import HealthCheck, settings

from aurora_qb_pipeline.definitions import build_definitions
from aurora_qb_pipeline.defs.jobs import aurora_quickbase_sync
from aurora_qb_pipeline.defs.partitions import RANGE_END, RANGE_START, known_projects, projects_partitions
from aurora_qb_pipeline.defs.quickbase.assets import EXPORT_KEY
from aurora_qb_pipeline.defs.resources import aurora_resource, build_resources
from aurora_qb_pipeline.sandbox.aurora.overrides import AnswerOverrides, serve_with_overrides
from aurora_qb_pipeline.sandbox.launcher import MISSING_CHOICE, start_sandbox
from aurora_qb_pipeline.settings import Credentials, Settings

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

# Hypothesis profiles. "ci" (the default) keeps the property tests to a modest, fixed set of
# examples; "fuzz" is a long campaign: pytest aurora_qb_pipeline_tests/fuzz --hypothesis-profile=fuzz
# (README, "Bad input from Aurora"). The end-to-end property runs 1 example per 20 of the profile.
_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
               print_blob=True)
settings.register_profile("ci", max_examples=100, derandomize=True, database=None, **_COMMON)
settings.register_profile("fuzz", max_examples=4000, **_COMMON)
settings.load_profile("ci")  # --hypothesis-profile, read after this file, overrides it

TIME_SCALE = 0.01  # every rate window, latency and backoff 100x shorter than in production
EXPORT_OP = EXPORT_KEY.to_python_identifier()  # the export's op name, for run config


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


def sandbox_settings(sandbox, tmp_path, **overrides) -> Settings:
    """Settings pointing at ``sandbox``; DuckDB file, rate-limit bucket and webhook inbox of this test only."""
    return Settings.from_env(
        sandbox.env(), duckdb_path=tmp_path / "aurora_qb.duckdb", rate_limit_db=tmp_path / "rate_limits.sqlite",
        **{"inbox_url": f"sqlite:///{tmp_path / 'webhook_inbox.sqlite'}", **overrides},
    )


@pytest.fixture
def settings(sandbox, tmp_path):
    return sandbox_settings(sandbox, tmp_path)


@pytest.fixture
def credentials(sandbox):
    return Credentials.from_env(sandbox.env())


class Pipeline:
    """Runs the sync job over project partitions against a sandbox, as the daemon would."""

    def __init__(self, sandbox, instance, settings, credentials):
        self.sandbox, self.instance, self.settings, self.credentials = sandbox, instance, settings, credentials
        self.duckdb_path = settings.duckdb_file
        self.resources = build_resources(settings, credentials)
        self.defs = build_definitions(settings, self.resources)

    def aurora(self, **fields):
        """An Aurora resource of this sandbox (``fields`` override, e.g. ``per_page=5``)."""
        return aurora_resource(self.settings, self.credentials, **fields)

    def add_projects(self, project_ids=None):
        ids = project_ids or [p["id"] for p in self.all_projects()]
        known = set(known_projects(self.instance))
        self.instance.add_dynamic_partitions(projects_partitions.name, [p for p in ids if p not in known])
        return ids

    def all_projects(self):
        client = self.aurora().client
        try:
            return list(client.iter_projects())
        finally:
            client.close()

    def run(self, first=None, last=None, config=None, raise_on_error=True, resources=None, partition_key=None):
        defs = self.defs if resources is None else build_definitions(self.settings, resources)
        if partition_key:
            tags = {}
        else:
            keys = known_projects(self.instance)
            tags = {RANGE_START: first or keys[0], RANGE_END: last or keys[-1]}
        run_config = {"ops": {EXPORT_OP: {"config": config}}} if config else None
        return defs.resolve_job_def(aurora_quickbase_sync.name).execute_in_process(
            instance=self.instance, tags=tags, run_config=run_config, raise_on_error=raise_on_error,
            partition_key=partition_key,
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


def exportable(pipeline, hold_policy="design"):
    """Staged designs the export should have sent: a valid summary, nothing of their own
    quarantined (nor, under the 'project' hold policy, their project's address), and a module
    model the Quickbase table offers."""
    project_hold = ("and d.project_id not in (select project_id from ops.quarantine where asset = 'project_addresses' "
                    "and project_id is not null)") if hold_policy == "project" else ""
    rows = pipeline.query(
        f"""select d.design_id, s.module_model from staging.designs d join staging.design_summaries s using (design_id)
            where d.design_id not in (select record_key from ops.quarantine where record_key is not null)
            {project_hold}"""
    )
    return {d for d, model in rows if model != MISSING_CHOICE}


@contextmanager
def corruptible_pipeline(tmp_path, instance, projects=24, seed=11, **settings):
    """A :class:`Pipeline` whose Aurora answers tests may corrupt: ``pipeline.overrides``
    (:class:`AnswerOverrides`) rewrites answers the emulator's encoder cannot write (bare arrays,
    NaN, surrogates, non-JSON bodies); everything else is changed in ``pipeline.sandbox.aurora``."""
    with start_sandbox(projects=projects, designs_per_project=2.5, seed=seed, time_scale=TIME_SCALE) as sb:
        overrides = AnswerOverrides()
        with serve_with_overrides(sb.aurora, overrides) as server:
            pipeline = Pipeline(sb, instance, sandbox_settings(sb, tmp_path, aurora_base_url=server.url, **settings),
                                Credentials.from_env(sb.env()))
            pipeline.overrides = overrides
            yield pipeline


def retried_steps(result) -> list:
    return [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]


def export_metadata(result):
    mats = [m for m in result.get_asset_materialization_events() if m.asset_key == EXPORT_KEY]
    return {k: v.value for k, v in mats[-1].materialization.metadata.items()}


def step_failure_text(result) -> str:
    """The message (and user data) of the run's first step failure."""
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    return failure.step_failure_data.error.message + str(failure.step_failure_data.user_failure_data)


@pytest.fixture
def pipeline(sandbox, instance, settings, credentials):
    return Pipeline(sandbox, instance, settings, credentials)
