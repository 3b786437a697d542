"""What an operator sees in the Dagster UI (GraphQL of a real `dagster dev`): the Aurora source and
the Quickbase sink in the asset graph and their observations, column schemas before anything
ran, freshness policies, and the integration's problems as a table on the export's check.

Runs after test_webserver.py (same `dagster dev`): it adds a project of its own."""

import pytest
from dagster import DagsterRunStatus

from aurora_qb_pipeline.defs.jobs import aurora_quickbase_sync
from aurora_qb_pipeline.defs.partitions import projects_partitions
from aurora_qb_pipeline.sandbox.launcher import MISSING_CHOICE

from .conftest import poll
from .test_webserver import ADD_PARTITION_MUTATION, FINISHED, RUN_QUERY, RUN_TIMEOUT_S, run_failure_report

pytestmark = pytest.mark.filterwarnings("ignore:Using variable_values:DeprecationWarning")

SOURCE, SINK, EXPORT = "aurora/tenant", "quickbase/designs_table", "quickbase/designs_export"
STAGED = ("aurora/project_addresses", "aurora/designs", "aurora/latest_proposals", "aurora/design_summaries",
          "aurora/design_arrays")

GRAPH_QUERY = """
query Graph {
  assetNodes {
    assetKey { path }
    groupName
    isObservable
    isMaterializable
    dependencyKeys { path }
    dependedByKeys { path }
    kinds
    internalFreshnessPolicy { ... on TimeWindowFreshnessPolicy { failWindowSeconds warnWindowSeconds } }
    metadataEntries {
      label
      ... on TableSchemaMetadataEntry { schema { columns { name type description constraints { nullable unique } } } }
    }
  }
}
"""

ASSET_QUERY = """
query Asset($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    ... on Asset {
      assetObservations(limit: 1) { runId metadataEntries { label
        ... on IntMetadataEntry { intValue } ... on TextMetadataEntry { text } } }
      assetMaterializations(limit: 1) { metadataEntries { label
        ... on TableColumnLineageMetadataEntry { lineage { columnName columnDeps { assetKey { path } columnName } } } } }
    }
  }
}
"""

CHECK_QUERY = """
query Check($key: AssetKeyInput!, $name: String!) {
  assetCheckExecutions(assetKey: $key, checkName: $name, limit: 1) {
    status
    evaluation { success severity description metadataEntries { label
      ... on TableMetadataEntry { table { records schema { columns { name } } } }
      ... on MarkdownMetadataEntry { mdStr } } }
  }
}
"""


def _path(key: str) -> dict:
    return {"path": key.split("/")}


@pytest.fixture(scope="module")
def graph(dagster_dev) -> dict:
    nodes = dagster_dev.graphql(GRAPH_QUERY)["assetNodes"]
    return {"/".join(n["assetKey"]["path"]): n for n in nodes}


def _schema(node) -> dict:
    [entry] = [e for e in node["metadataEntries"] if e["label"] == "dagster/column_schema"]
    return {c["name"]: c for c in entry["schema"]["columns"]}


def test_source_and_sink_frame_the_lineage(graph):
    source, sink = graph[SOURCE], graph[SINK]
    assert source["isObservable"] and not source["isMaterializable"] and "aurora" in source["kinds"]
    assert sink["isObservable"] and not sink["isMaterializable"] and "quickbase" in sink["kinds"]
    assert {"/".join(k["path"]) for k in source["dependedByKeys"]} == set(STAGED)
    assert [k["path"] for k in sink["dependencyKeys"]] == [EXPORT.split("/")]
    assert SINK in {"/".join(k["path"]) for k in graph[EXPORT]["dependedByKeys"]}


def test_column_schemas_and_freshness_are_defined_with_the_assets(graph):
    designs = _schema(graph["aurora/designs"])
    assert designs["system_size_kw"]["type"] == "float" and "system_size_stc" in designs["system_size_kw"]["description"]
    assert designs["design_id"]["constraints"]["unique"] and designs["design_name"]["constraints"]["nullable"]
    for key in STAGED:
        assert _schema(graph[key]), key
    export = _schema(graph[EXPORT])
    assert "aurora/designs.system_size_kw" in export["System Size (kW)"]["description"]
    assert _schema(graph[SINK]) == export
    for key in (*STAGED, EXPORT):
        assert graph[key]["internalFreshnessPolicy"]["failWindowSeconds"] > graph[key]["internalFreshnessPolicy"][
            "warnWindowSeconds"] > 24 * 3600
    assert graph[SOURCE]["internalFreshnessPolicy"] is None


def _run(dagster_dev, job: str, tags=None) -> str:
    client = dagster_dev.client
    run_id = client.submit_job_execution(job, repository_location_name=dagster_dev.location_name,
                                         repository_name=dagster_dev.repository_name, tags=tags or {})

    def finished():
        status = client.get_run_status(run_id)
        return status if status in FINISHED else None

    status = poll(finished, RUN_TIMEOUT_S, f"run {run_id} to finish", dagster_dev.log_tail, interval_s=1.0)
    assert status == DagsterRunStatus.SUCCESS, run_failure_report(
        dagster_dev, dagster_dev.graphql(RUN_QUERY, runId=run_id)["runOrError"])
    return run_id


def test_observing_source_and_sink_and_the_problems_table(dagster_dev):
    tenant = dagster_dev.sandbox.aurora.primary
    # a project with a design Quickbase would refuse (a module model its field does not offer)
    project = next(p for p, ids in tenant.project_design_ids.items() if ids and all(
        tenant.summaries[d].get("arrays") for d in ids))
    design = tenant.project_design_ids[project][0]
    for array in tenant.summaries[design]["arrays"]:
        array["module"]["name"] = MISSING_CHOICE
    added = dagster_dev.graphql(ADD_PARTITION_MUTATION, selector=dagster_dev.repository_selector,
                                name=projects_partitions.name, key=project)["addDynamicPartition"]
    assert added["__typename"] in ("AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError")
    _run(dagster_dev, aurora_quickbase_sync.name, {"dagster/partition": project})
    observed = _run(dagster_dev, "observe_sources_and_sinks")

    def observation(key):
        asset = dagster_dev.graphql(ASSET_QUERY, key=_path(key))["assetOrError"]
        [latest] = asset["assetObservations"]
        assert latest["runId"] == observed
        return {e["label"]: e.get("intValue", e.get("text")) for e in latest["metadataEntries"]}

    newest = max(tenant.projects.values(), key=lambda p: p["created_at"])
    source = observation(SOURCE)
    assert source["newest_project_id"] == newest["id"] and source["project_count"] == len(tenant.projects)
    sink = observation(SINK)
    quickbase = dagster_dev.sandbox.quickbase
    assert sink["record_count"] == len(quickbase.records(quickbase.table_id)) > 0 and sink["last_modified"]

    export = dagster_dev.graphql(ASSET_QUERY, key=_path(EXPORT))["assetOrError"]["assetMaterializations"][0]
    [lineage] = [e["lineage"] for e in export["metadataEntries"] if e["label"] == "dagster/column_lineage"]
    deps = {c["columnName"]: c["columnDeps"] for c in lineage}
    assert deps["Azimuth"] == [{"assetKey": {"path": ["aurora", "design_summaries"]}, "columnName": "azimuth"}]

    [execution] = dagster_dev.graphql(CHECK_QUERY, key=_path(EXPORT), name="integration_problems")[
        "assetCheckExecutions"]
    evaluation = execution["evaluation"]
    assert not evaluation["success"] and evaluation["severity"] == "WARN" and "refused" in evaluation["description"]
    [table] = [e["table"] for e in evaluation["metadataEntries"] if e["label"] == "recent_problems"]
    assert [c["name"] for c in table["schema"]["columns"]][:3] == ["time", "status", "project"]
    assert any(design in record and "refused" in record for record in table["records"])
