"""Every run of a tenant's code location carries the tenant, whatever launched it, and the per-trigger
limits hold per tenant (issue 13; ``run_coordinator.py``, ``defs/tenancy.py``, ``deploy/dagster.yaml``).

The UI-style runs go through Dagster's own GraphQL schema (the mutations the webserver serves to the
UI's "Materialize" and "Launch backfill") against a gRPC code server of the tenant's location in its
own process; the backfill's runs are created by the daemon's own backfill iteration."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._daemon.backfill import execute_backfill_iteration
from dagster._utils.tags import TagConcurrencyLimitsCounter
from dagster_graphql.client.query import LAUNCH_PIPELINE_EXECUTION_MUTATION
from dagster_graphql.test.utils import define_out_of_process_context, execute_dagster_graphql, materialize_assets

from aurora_qb_pipeline.cli import main as cli_main
from aurora_qb_pipeline.definitions import build_definitions
from aurora_qb_pipeline.defs.partitions import TRIGGER_TAG
from aurora_qb_pipeline.defs.resources import build_resources
from aurora_qb_pipeline.run_coordinator import (TENANT_SERIAL_TAG, TENANT_TRIGGER_TAG, TenantRunCoordinator,
                                                tenant_of_location, tenant_tags)
from aurora_qb_pipeline.settings import SECRET_VARIABLES, Credentials, Settings
from aurora_qb_pipeline.tenants import TENANT_TAG

from .conftest import sandbox_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOY_CONFIG = REPO_ROOT / "deploy" / "dagster.yaml"
SINGLE_HOST_CONFIG = REPO_ROOT / "aurora_qb_pipeline" / "config" / "dagster.yaml"
TENANTS = """
tenants:
  - name: acme
    aurora_tenant_id: tenant-acme
    api_token_env: AURORA_API_TOKEN_ACME
  - name: globex
    aurora_tenant_id: tenant-globex
    api_token_env: AURORA_API_TOKEN_GLOBEX
"""
LAUNCH_BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""


def _instance_overrides(path: Path) -> dict:
    """The run coordinator and run limits of an instance file, for a test instance on SQLite."""
    config = yaml.safe_load(path.read_text())
    return {key: config[key] for key in ("run_coordinator", "concurrency") if key in config}


def test_the_tenant_tags_of_a_run_whatever_launched_it():
    acme = dg.AssetKey(["acme", "aurora", "designs"])
    # from the code location, whatever the run's own tags say
    assert tenant_tags({}, "aurora_qb_pipeline__acme") == {TENANT_TAG: "acme"}
    assert tenant_tags({TENANT_TAG: "globex"}, "aurora_qb_pipeline__acme") == {TENANT_TAG: "acme"}
    # else from its tag, else from its assets' keys (a hand-named location)
    assert tenant_tags({TRIGGER_TAG: "webhooks", TENANT_TAG: "acme"}, "mine") == {TENANT_TRIGGER_TAG: "webhooks__acme"}
    assert tenant_tags({}, "mine", [acme, dg.AssetKey(["acme", "quickbase", "designs_export"])]) == {TENANT_TAG: "acme"}
    assert tenant_tags({}, "mine", [acme, dg.AssetKey(["globex", "aurora", "designs"])]) == {}
    # a value that is no tenant name (set by hand, a foreign asset) never stops a run from being submitted
    assert tenant_tags({TENANT_TAG: "Not A Name"}, "mine", [dg.AssetKey(["Foo Bar", "x", "y"])]) == {}
    # the nightly reconcile runs one at a time per tenant; a run already tagged needs nothing more
    reconcile = tenant_tags({TRIGGER_TAG: "daily_reconcile"}, "aurora_qb_pipeline__globex")
    assert reconcile == {TENANT_TAG: "globex", TENANT_TRIGGER_TAG: "daily_reconcile__globex",
                         TENANT_SERIAL_TAG: "daily_reconcile__globex"}
    assert tenant_tags({TRIGGER_TAG: "daily_reconcile", **reconcile}, "aurora_qb_pipeline__globex") == {}
    # one tenant: no tenant tag, the trigger's own name
    assert tenant_tags({TRIGGER_TAG: "discovery"}, "aurora_qb_pipeline", [dg.AssetKey(["aurora", "designs"])]) == {
        TENANT_TRIGGER_TAG: "discovery"}
    assert tenant_tags({}, "aurora_qb_pipeline") == {}
    assert [tenant_of_location(n) for n in ("aurora_qb_pipeline__acme", "aurora_qb_pipeline", "x__acme", None)] == [
        "acme", None, None, None]


@pytest.mark.parametrize("config", [DEPLOY_CONFIG, SINGLE_HOST_CONFIG], ids=["deploy", "single_host"])
def test_the_instance_files_name_the_tenant_run_coordinator(config, tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides=_instance_overrides(config)) as instance:
        assert isinstance(instance.run_coordinator, TenantRunCoordinator)
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4


def test_per_trigger_limits_hold_per_tenant(tmp_path):
    """deploy/dagster.yaml's limits, validated by Dagster's instance config schema and applied by the
    daemon's own counter, on the tags the coordinator gives each run."""
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides=_instance_overrides(DEPLOY_CONFIG)) as instance:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits

    def run(trigger, tenant=None):
        tags = {TRIGGER_TAG: trigger} if trigger else {}
        location = f"aurora_qb_pipeline__{tenant}" if tenant else "aurora_qb_pipeline"
        return dg.DagsterRun(job_name="aurora_event_sync", tags={**tags, **tenant_tags(tags, location)})

    storm = TagConcurrencyLimitsCounter(limits, [run("webhooks", "acme"), run("webhooks", "acme")])
    assert storm.is_blocked(run("webhooks", "acme"))  # at most 2 webhook runs of acme ...
    assert not storm.is_blocked(run("webhooks", "globex"))  # ... which never hold globex's webhook runs
    counter = TagConcurrencyLimitsCounter(limits, [run("webhooks", "acme"), run("discovery", "acme")])
    assert counter.is_blocked(run("design_requests", "acme"))  # 2 runs in progress per tenant
    assert not counter.is_blocked(run("design_requests", "globex"))
    reconcile = TagConcurrencyLimitsCounter(limits, [run("daily_reconcile", "acme")])
    assert reconcile.is_blocked(run("daily_reconcile", "acme"))  # one nightly reconcile at a time ...
    assert not reconcile.is_blocked(run("daily_reconcile", "globex"))  # ... per tenant
    # one tenant: the limits as before (2 per trigger, one reconcile at a time, a manual run free)
    single = TagConcurrencyLimitsCounter(limits, [run("design_requests"), run("design_requests"),
                                                  run("daily_reconcile")])
    assert single.is_blocked(run("design_requests")) and single.is_blocked(run("daily_reconcile"))
    assert not single.is_blocked(run("discovery")) and not single.is_blocked(run(None))


def test_every_job_of_a_tenant_location_and_its_sensors_carry_the_tenant(tmp_path):
    (tmp_path / "tenants.yaml").write_text(TENANTS)
    settings = Settings(tenants_file=tmp_path / "tenants.yaml", tenant="acme", dagster_home=tmp_path)
    repo = build_definitions(settings).get_repository_def()
    jobs = {job.name: job for job in repo.get_all_jobs() if not job.name.startswith("__")}
    assert {"site_survey_intake", "site_survey_upload", "aurora_quickbase_sync"} <= set(jobs)
    for job in jobs.values():  # op jobs (site surveys, opportunities) as well as asset jobs
        assert job.run_tags[TENANT_TAG] == "acme" and job.tags[TENANT_TAG] == "acme", job.name
    for sensor in repo.sensor_defs:
        for job in sensor.jobs if sensor.has_jobs else []:
            assert job.run_tags[TENANT_TAG] == "acme", (sensor.name, job.name)


def test_a_tenant_sensor_run_carries_the_tenant_and_its_trigger(sandbox, instance, tmp_path):
    acme = sandbox.add_tenant(seed=311, projects=4)
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump({"tenants": [{"name": "acme", "aurora_tenant_id": acme["tenant_id"],
                                                 "api_token_env": "AURORA_API_TOKEN_ACME"}]}))
    env = sandbox.env()
    settings = sandbox_settings(sandbox, tmp_path, tenants_file=path, tenant="acme")
    credentials = Credentials(acme["tenant_id"], acme["api_token"], env["QB_REALM_HOSTNAME"], env["QB_USER_TOKEN"],
                              acme["table_id"])
    defs = build_definitions(settings, build_resources(settings, credentials))
    sensor = defs.resolve_sensor_def("project_discovery_sensor")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with dg.build_sensor_context(instance=instance, definitions=defs, resources=dict(defs.resources)) as context:
            result = sensor(context)
    requests = result.run_requests
    assert requests and all(r.tags[TRIGGER_TAG] == "discovery" for r in requests)
    job = sensor.job
    for request in requests:  # as the daemon makes the run: the job's run tags under the request's
        tags = {**job.run_tags, **request.tags}
        assert tags[TENANT_TAG] == "acme"
        assert tenant_tags(tags, settings.names.location) == {TENANT_TRIGGER_TAG: "discovery__acme"}


@pytest.fixture
def tenant_workspace(tmp_path, monkeypatch):
    """A Dagster instance with the production run coordinator and limits (on SQLite), and the GraphQL
    context of a workspace holding tenant acme's location, served by its own gRPC code server."""
    (tmp_path / "tenants.yaml").write_text(TENANTS)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("AURORA_QB_TENANTS_FILE", str(tmp_path / "tenants.yaml"))  # read by the code server
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("AURORA_QB_TENANT", raising=False)
    for name in (*SECRET_VARIABLES, "AURORA_API_TOKEN_ACME"):  # resolved at launch; no run is executed
        monkeypatch.setenv(name, "not-used")
    workspace = tmp_path / "workspace.yaml"
    assert cli_main(["tenants", "workspace", "--file", str(tmp_path / "tenants.yaml"), "--output", str(workspace)]) == 0
    entries = yaml.safe_load(workspace.read_text())["load_from"]
    workspace.write_text(yaml.safe_dump({"load_from": [e for e in entries
                                                       if e["python_module"]["attribute"] == "acme"]}))
    with dg.instance_for_test(temp_dir=str(home), overrides=_instance_overrides(DEPLOY_CONFIG)) as instance:
        with define_out_of_process_context(str(workspace), None, instance) as context:
            yield instance, context


def _launched_run(instance, result) -> dg.DagsterRun:
    launch = result.data["launchPipelineExecution"]
    assert launch["__typename"] == "LaunchRunSuccess", launch.get("message", launch)
    return instance.get_run_by_id(launch["run"]["runId"])


def test_ui_materialize_op_job_and_backfill_runs_carry_the_tenant(tenant_workspace):
    instance, context = tenant_workspace
    location = "aurora_qb_pipeline__acme"
    designs = dg.AssetKey(["acme", "aurora", "designs"])
    instance.add_dynamic_partitions("aurora_projects__acme", ["p1", "p2"])

    # "Materialize" on an asset: the location's implicit asset job, no tag from any job of ours
    run = _launched_run(instance, materialize_assets(context, [designs], ["p1"], location_name=location)[0])
    assert run.job_name == "__ASSET_JOB" and run.status == dg.DagsterRunStatus.QUEUED
    assert run.tags[TENANT_TAG] == "acme" and TENANT_TRIGGER_TAG not in run.tags

    # an op job launched from the launchpad
    result = execute_dagster_graphql(context, LAUNCH_PIPELINE_EXECUTION_MUTATION, {"executionParams": {
        "selector": {"repositoryLocationName": location, "repositoryName": "__repository__",
                     "pipelineName": "site_survey_intake"},
        "runConfigData": {"ops": {"take_in_site_surveys": {"config": {"request_ids": []}}}},
        "executionMetadata": {"tags": [{"key": TRIGGER_TAG, "value": "site_survey_webhooks"}]}}})
    run = _launched_run(instance, result)
    assert run.tags[TENANT_TAG] == "acme" and run.tags[TENANT_TRIGGER_TAG] == "site_survey_webhooks__acme"

    # an asset backfill from the UI: its runs are made by the daemon from the asset selection (one
    # run over the range here: the staging assets' backfill policy)
    result = execute_dagster_graphql(context, LAUNCH_BACKFILL, {"params": {
        "assetSelection": [designs.to_graphql_input()], "partitionNames": ["p1", "p2"],
        "tags": [{"key": TRIGGER_TAG, "value": "backfill"}]}})
    assert result.data["launchPartitionBackfill"]["__typename"] == "LaunchBackfillSuccess", result.data
    backfill_id = result.data["launchPartitionBackfill"]["backfillId"]
    runs = []
    for _ in range(5):
        list(execute_backfill_iteration(context.process_context, logging.getLogger("backfill")))
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        if runs:
            break
    assert runs and {r.job_name for r in runs} == {"__ASSET_JOB"}
    for run in runs:
        assert run.tags[TENANT_TAG] == "acme" and run.tags[TENANT_TRIGGER_TAG] == "backfill__acme"
    # the tenant tag finds every one of them
    assert len(instance.get_runs(dg.RunsFilter(tags={TENANT_TAG: "acme"}))) == 2 + len(runs)
