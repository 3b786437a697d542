"""Through the GraphQL API of `dagster dev`: what the code location shows, a partition run that
reaches Quickbase, and sensor and schedule evaluations in the code server (the UI's "Test")."""

import time

import pytest
import yaml
from dagster import DagsterRunStatus

from aurora_qb_pipeline.definitions import build_definitions
from aurora_qb_pipeline.defs.aurora.changed import CHANGED_PROJECTS_OP, EVENT_JOB_NAME
from aurora_qb_pipeline.defs.aurora.staging import STAGING_GROUP
from aurora_qb_pipeline.defs.jobs import aurora_quickbase_sync
from aurora_qb_pipeline.defs.partitions import RANGE_END, RANGE_START, projects_partitions
from aurora_qb_pipeline.defs.quickbase.assets import EXPORT_KEY
from aurora_qb_pipeline.sandbox.launcher import MISSING_CHOICE
from aurora_qb_pipeline.settings import Settings

from .conftest import poll

pytestmark = pytest.mark.filterwarnings("ignore:Using variable_values:DeprecationWarning")  # gql, in the client

RUN_TIMEOUT_S = 120.0
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}

EXPORT = EXPORT_KEY.to_user_string()
LINE_ITEMS = "quickbase/design_line_items"  # unpartitioned, like the export
EXPECTED_ASSETS = {
    "aurora/project_addresses", "aurora/designs", "aurora/latest_proposals", "aurora/design_summaries",
    "aurora/design_arrays", EXPORT, LINE_ITEMS,
}
SOURCE_AND_SINK = {"aurora/tenant", "quickbase/designs_table"}  # observable, never materialized
EVENT_ASSET = "aurora/changed_projects"  # the event path's unpartitioned staging of a project set

REPOSITORY_QUERY = """
query Repository($selector: RepositorySelector!) {
  repositoryOrError(repositorySelector: $selector) {
    __typename
    ... on Repository {
      jobs { name }
      sensors { name sensorState { status } }
      schedules { name scheduleState { status } }
      assetNodes {
        assetKey { path }
        groupName
        description
        owners { ... on TeamAssetOwner { team } }
        kinds
        partitionDefinition { name }
        assetChecksOrError { ... on AssetChecks { checks { name } } }
      }
    }
    ... on PythonError { message }
  }
}
"""

ADD_PARTITION_MUTATION = """
mutation AddPartition($selector: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $selector, partitionsDefName: $name, partitionKey: $key) {
    __typename
    ... on AddDynamicPartitionSuccess { partitionKey }
    ... on PythonError { message }
    ... on DuplicateDynamicPartitionError { partitionName }
  }
}
"""

TICK_EVALUATION = """
    __typename
    ... on DryRunInstigationTick {
      evaluationResult {
        skipReason
        error { message stack }
        runRequests { runKey jobName runConfigYaml tags { key value } }
        dynamicPartitionsRequests { partitionsDefName partitionKeys type }
      }
    }
    ... on PythonError { message }
"""

SENSOR_DRY_RUN = f"""
mutation SensorDryRun($selector: SensorSelector!) {{
  sensorDryRun(selectorData: $selector, cursor: null) {{ {TICK_EVALUATION} }}
}}
"""

SCHEDULE_DRY_RUN = f"""
mutation ScheduleDryRun($selector: ScheduleSelector!, $timestamp: Float) {{
  scheduleDryRun(selectorData: $selector, timestamp: $timestamp) {{ {TICK_EVALUATION} }}
}}
"""

RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    ... on Run {
      status
      tags { key value }
      assetMaterializations { assetKey { path } partition }
      eventConnection(afterCursor: null) {
        events { __typename ... on MessageEvent { level stepKey message } }
      }
    }
  }
}
"""


def clean_project(tenant) -> str:
    """The project with the most designs among those Quickbase takes as they are: no generated
    quirks (nothing quarantined) and no module missing from the table's choices."""
    quirky = {i for ids in tenant.quirks.values() for i in ids}

    def exportable(design_id: str) -> bool:
        modules = {item["name"] for item in tenant.summaries[design_id]["bill_of_materials"]}
        return design_id not in quirky and MISSING_CHOICE not in modules

    clean = [
        pid for pid, design_ids in tenant.project_design_ids.items()
        if design_ids and pid not in quirky and all(map(exportable, design_ids))
    ]
    assert clean, f"the sandbox tenant has no project Quickbase takes as it is: {tenant.quirks}"
    return max(clean, key=lambda pid: len(tenant.project_design_ids[pid]))


@pytest.fixture(scope="module")
def repository(dagster_dev):
    result = dagster_dev.graphql(REPOSITORY_QUERY, selector=dagster_dev.repository_selector)["repositoryOrError"]
    assert result["__typename"] == "Repository", result
    return result


def test_repository_exposes_assets_and_checks(repository):
    nodes = {"/".join(n["assetKey"]["path"]): n for n in repository["assetNodes"]}
    assert set(nodes) == EXPECTED_ASSETS | SOURCE_AND_SINK | {EVENT_ASSET}
    assert nodes[EVENT_ASSET]["partitionDefinition"] is None and nodes[EVENT_ASSET]["groupName"] == "aurora_events"
    staging = {key for key, node in nodes.items() if node["groupName"] == STAGING_GROUP}
    assert staging == EXPECTED_ASSETS - {EXPORT, LINE_ITEMS}
    assert {nodes[key]["partitionDefinition"]["name"] for key in staging} == {projects_partitions.name}
    # every asset says what it is, who owns it and what it touches; no two share a description
    assert all(node["description"] for node in nodes.values())
    assert len({node["description"] for node in nodes.values()}) == len(nodes)
    assert all(node["owners"] == [{"team": "integrations"}] for node in nodes.values())
    assert all({"aurora", "duckdb"} <= set(nodes[key]["kinds"]) for key in staging | {EVENT_ASSET})
    assert {"quickbase", "duckdb"} <= set(nodes[EXPORT]["kinds"])

    shown = {(key, check["name"]) for key, node in nodes.items() for check in node["assetChecksOrError"]["checks"]}
    graph = build_definitions(Settings()).resolve_asset_graph()
    defined = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert shown == defined
    assert (EXPORT, "export_without_failures") in shown


def test_repository_exposes_job_sensors_and_schedule(repository):
    assert aurora_quickbase_sync.name in {job["name"] for job in repository["jobs"]}
    sensors = {s["name"]: s["sensorState"]["status"] for s in repository["sensors"]}
    assert sensors == {"design_request_sensor": "STOPPED", "project_discovery_sensor": "STOPPED",
                       "aurora_webhook_sensor": "STOPPED", "site_survey_request_sensor": "STOPPED",
                       "site_survey_completion_sensor": "STOPPED", "run_failure_alert": "STOPPED"}
    schedules = {s["name"]: s for s in repository["schedules"]}
    assert set(schedules) == {"daily_reconcile_schedule", "observe_sources_schedule"}
    assert schedules["observe_sources_schedule"]["scheduleState"]["status"] == "STOPPED"
    assert schedules["daily_reconcile_schedule"]["scheduleState"]["status"] == "STOPPED"


def run_failure_report(dagster_dev, run: dict) -> str:
    errors = [
        f"  [{e.get('stepKey') or 'run'}] {e['message'][:500]}"
        for e in run["eventConnection"]["events"]
        if e.get("level") in ("ERROR", "CRITICAL") or e["__typename"].endswith("FailureEvent")
    ]
    return "\n".join(["run errors:", *errors[-15:], dagster_dev.log_tail()])


@pytest.fixture(scope="module")
def project_partition(dagster_dev) -> str:
    """One clean sandbox project, added to ``aurora_projects`` as the UI's "add partition" does."""
    project_id = clean_project(dagster_dev.sandbox.aurora.primary)
    added = dagster_dev.graphql(
        ADD_PARTITION_MUTATION, selector=dagster_dev.repository_selector, name=projects_partitions.name, key=project_id,
    )["addDynamicPartition"]
    assert added == {"__typename": "AddDynamicPartitionSuccess", "partitionKey": project_id}
    return project_id


def test_partition_run_through_graphql_syncs_quickbase(dagster_dev, project_partition):
    client = dagster_dev.client
    run_id = client.submit_job_execution(
        aurora_quickbase_sync.name,
        repository_location_name=dagster_dev.location_name,
        repository_name=dagster_dev.repository_name,
        tags={"dagster/partition": project_partition},
    )

    def finished_status():
        status = client.get_run_status(run_id)
        return status if status in FINISHED else None

    status = poll(finished_status, RUN_TIMEOUT_S, f"run {run_id} to finish", dagster_dev.log_tail, interval_s=1.0)
    run = dagster_dev.graphql(RUN_QUERY, runId=run_id)["runOrError"]
    assert status == DagsterRunStatus.SUCCESS, run_failure_report(dagster_dev, run)

    assert {"key": "dagster/partition", "value": project_partition} in run["tags"]
    materialized = {("/".join(m["assetKey"]["path"]), m["partition"]) for m in run["assetMaterializations"]}
    assert {key for key, _ in materialized} == EXPECTED_ASSETS
    assert {partition for key, partition in materialized if key not in (EXPORT, LINE_ITEMS)} == {project_partition}

    quickbase = dagster_dev.sandbox.quickbase
    design_id_field = quickbase.field_by_label(quickbase.table_id, "Aurora Design ID").id
    exported = [record[design_id_field] for record in quickbase.records(quickbase.table_id)]
    assert sorted(exported) == sorted(dagster_dev.sandbox.aurora.primary.project_design_ids[project_partition])


def tick_evaluation(dagster_dev, mutation: str, **variables) -> dict:
    """The code server's evaluation of a sensor or schedule (the UI's "Test" button), which
    goes through the same checks as a daemon tick; fails on an evaluation error."""
    (result,) = dagster_dev.graphql(mutation, **variables).values()
    assert result["__typename"] == "DryRunInstigationTick", result
    evaluation = result["evaluationResult"]
    error = evaluation["error"]
    assert error is None, f"evaluation failed: {error['message']}{''.join(error['stack'])}"
    return evaluation


def sensor_evaluation(dagster_dev, sensor_name: str) -> dict:
    sensor = {**dagster_dev.repository_selector, "sensorName": sensor_name}
    return tick_evaluation(dagster_dev, SENSOR_DRY_RUN, selector=sensor)


def requested_ranges(evaluation: dict) -> list[tuple[str, str]]:
    tags = [{t["key"]: t["value"] for t in request["tags"]} for request in evaluation["runRequests"]]
    return [(t[RANGE_START], t[RANGE_END]) for t in tags]


def added_partitions(evaluation: dict) -> set[str]:
    requests = evaluation["dynamicPartitionsRequests"] or []
    assert {(r["partitionsDefName"], r["type"]) for r in requests} <= {(projects_partitions.name, "ADD_PARTITIONS")}
    return {key for r in requests for key in r["partitionKeys"]}


def test_project_discovery_sensor_evaluates_in_code_server(dagster_dev, project_partition):
    evaluation = sensor_evaluation(dagster_dev, "project_discovery_sensor")
    projects = set(dagster_dev.sandbox.aurora.primary.projects)
    assert added_partitions(evaluation) == projects - {project_partition}
    (first_and_last,) = requested_ranges(evaluation)
    assert set(first_and_last) <= projects


def test_design_request_sensor_evaluates_in_code_server(dagster_dev, project_partition):
    evaluation = sensor_evaluation(dagster_dev, "design_request_sensor")
    projects = set(dagster_dev.sandbox.aurora.primary.projects)
    assert added_partitions(evaluation) <= projects - {project_partition}
    # ONE event run for all the projects with a completed request, named in its run config
    requests = evaluation["runRequests"] or []
    assert len(requests) <= 1 and (requests or evaluation["skipReason"])
    for request in requests:
        assert request["jobName"] == EVENT_JOB_NAME
        config = yaml.safe_load(request["runConfigYaml"])
        assert set(config["ops"][CHANGED_PROJECTS_OP]["config"]["project_ids"]) <= projects


def test_daily_reconcile_schedule_evaluates_in_code_server(dagster_dev, project_partition):
    schedule = {**dagster_dev.repository_selector, "scheduleName": "daily_reconcile_schedule"}
    evaluation = tick_evaluation(dagster_dev, SCHEDULE_DRY_RUN, selector=schedule, timestamp=time.time())
    assert requested_ranges(evaluation) == [(project_partition, project_partition)]
