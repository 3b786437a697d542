"""Freshness, the source and sink, column schema and lineage, the problems check, the alert hook.

Freshness runs Dagster's own evaluator (the daemon's ``FreshnessDaemon``) over the code location
as the UI serves it, with the clock moved forward (``freeze_time``) while the schedule and the
sensors stay stopped: nothing syncs, and the export and staging assets go from fresh to overdue.
What the UI then shows is read through GraphQL, in process."""

import asyncio
import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.freshness import FreshnessDaemon
from dagster_graphql.test.utils import execute_dagster_graphql

from aurora_qb_pipeline.defs.alerts import AlertDeliveryFailed, AlertWebhookResource, alert_payload
from aurora_qb_pipeline.defs.aurora.source import AURORA_SOURCE_KEY
from aurora_qb_pipeline.defs.catalog import FRESHNESS_FAIL_WINDOW, FRESHNESS_WARN_WINDOW
from aurora_qb_pipeline.defs.quickbase.assets import EXPORT_KEY
from aurora_qb_pipeline.defs.quickbase.sink import QUICKBASE_SINK_KEY
from aurora_qb_pipeline.sandbox.launcher import MISSING_CHOICE

FRESHNESS_QUERY = """
query Freshness {
  assetNodes {
    assetKey { path }
    freshnessStatusInfo { freshnessStatus }
    internalFreshnessPolicy { ... on TimeWindowFreshnessPolicy { failWindowSeconds warnWindowSeconds } }
  }
}
"""


def _ui_freshness(instance) -> dict[str, tuple]:
    """Evaluate freshness as the daemon does, then read what the UI shows for each asset."""
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name="aurora_qb_pipeline.definitions", attribute="defs"),
        location_name="aurora_qb_pipeline")
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as process_context:
        asyncio.run(FreshnessDaemon()._evaluate_assets(process_context))  # noqa: SLF001 - the daemon's own pass
        result = execute_dagster_graphql(process_context.create_request_context(), FRESHNESS_QUERY)
    assert not result.errors, result.errors
    return {"/".join(n["assetKey"]["path"]): ((n["freshnessStatusInfo"] or {}).get("freshnessStatus"),
                                              n["internalFreshnessPolicy"])
            for n in result.data["assetNodes"]}


def test_a_stopped_schedule_makes_export_and_staging_overdue(pipeline):
    instance = pipeline.instance
    if True:
        assert pipeline.sync_all().success
        synced = datetime.now(timezone.utc)
        expected = {EXPORT_KEY.to_user_string(), "aurora/designs", "aurora/project_addresses",
                    "aurora/latest_proposals", "aurora/design_summaries", "aurora/design_arrays"}

        def states(after: timedelta) -> dict[str, str]:
            with freeze_time(synced + after):
                shown = _ui_freshness(instance)
            assert {k for k, (_, policy) in shown.items() if policy} == expected  # source and sink: none
            for key in expected:
                assert shown[key][1] == {"failWindowSeconds": FRESHNESS_FAIL_WINDOW.total_seconds(),
                                         "warnWindowSeconds": FRESHNESS_WARN_WINDOW.total_seconds()}
            return {k: shown[k][0] for k in expected}

        assert set(states(timedelta(hours=1)).values()) == {"HEALTHY"}
        # the schedule is stopped (the tests' default): the nightly reconcile does not come
        assert set(states(FRESHNESS_WARN_WINDOW + timedelta(minutes=5)).values()) == {"WARNING"}
        assert set(states(FRESHNESS_FAIL_WINDOW + timedelta(minutes=5)).values()) == {"DEGRADED"}


def _observe(pipeline):
    return pipeline.defs.resolve_job_def("observe_sources_and_sinks").execute_in_process(instance=pipeline.instance)


def test_source_and_sink_are_observed_and_lineage_reaches_quickbase_fields(pipeline):
    graph = pipeline.defs.resolve_asset_graph()
    assert AURORA_SOURCE_KEY in graph.get(dg.AssetKey(["aurora", "designs"])).parent_keys
    assert graph.get(QUICKBASE_SINK_KEY).parent_keys == {EXPORT_KEY}
    assert graph.get(AURORA_SOURCE_KEY).is_observable and graph.get(QUICKBASE_SINK_KEY).is_observable

    # column schemas are there before anything ran, with descriptions and constraints
    designs = graph.get(dg.AssetKey(["aurora", "designs"])).metadata["dagster/column_schema"]
    size = next(c for c in designs.columns if c.name == "system_size_kw")
    assert size.type == "float" and "system_size_stc" in size.description and "(kW)" in size.description
    assert "greater_than_or_equal_to(0)" in size.constraints.other
    assert next(c for c in designs.columns if c.name == "design_id").constraints.unique
    export_columns = graph.get(EXPORT_KEY).metadata["dagster/column_schema"].columns
    merge = next(c for c in export_columns if c.name == "Aurora Design ID")
    assert merge.constraints.unique and "aurora/designs.design_id" in merge.description
    assert graph.get(QUICKBASE_SINK_KEY).metadata["dagster/column_schema"].columns == export_columns

    observed = _observe(pipeline)
    assert observed.success
    before = {e.asset_observation_data.asset_observation.asset_key: e.asset_observation_data.asset_observation
              for e in observed.all_events if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION}
    aurora = pipeline.sandbox.aurora.primary
    newest = max(aurora.projects.values(), key=lambda p: p["created_at"])
    source = {k: v.value for k, v in before[AURORA_SOURCE_KEY].metadata.items()}
    assert source["newest_project_id"] == newest["id"] and source["projects_known"] == 0
    assert source["project_count"] == len(aurora.projects) == source["first_page_projects_not_yet_known"]
    assert before[QUICKBASE_SINK_KEY].metadata["record_count"].value == 0

    result = pipeline.sync_all()
    lineage = next(m for m in result.get_asset_materialization_events() if m.asset_key == EXPORT_KEY) \
        .materialization.metadata["dagster/column_lineage"].value
    assert lineage.deps_by_column["System Size (kW)"] == [dg.TableColumnDep(dg.AssetKey(["aurora", "designs"]),
                                                                            "system_size_kw")]
    assert lineage.deps_by_column["City"] == [dg.TableColumnDep(dg.AssetKey(["aurora", "project_addresses"]), "city")]
    observation = pipeline.instance.fetch_observations(QUICKBASE_SINK_KEY, limit=1)
    assert observation.records  # recorded in the instance, where the UI reads it
    after = {e.asset_observation_data.asset_observation.asset_key: e.asset_observation_data.asset_observation
             for e in _observe(pipeline).all_events if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION}
    sink = {k: v.value for k, v in after[QUICKBASE_SINK_KEY].metadata.items()}
    assert sink["record_count"] == len(pipeline.qb_records()) > 0 and sink["last_modified"]
    assert {k: v.value for k, v in after[AURORA_SOURCE_KEY].metadata.items()}["first_page_projects_not_yet_known"] == 0


def test_problems_check_shows_refused_designs_as_a_table(pipeline):
    aurora = pipeline.sandbox.aurora.primary
    refused = next(d for d, s in aurora.summaries.items() if s.get("arrays") and all(a.get("module") for a in s["arrays"]))
    for array in aurora.summaries[refused]["arrays"]:
        array["module"]["name"] = MISSING_CHOICE
    result = pipeline.sync_all()
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "integration_problems"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    table = check.metadata["recent_problems"]
    rows = [r.data for r in table.records]
    assert any(r["status"] == "refused" and r["design"] == refused and "Module Model" in r["reason"] for r in rows)
    assert [c.name for c in table.schema.columns] == ["time", "status", "project", "design", "run", "reason"]
    assert check.metadata["refused_designs"].value >= 1
    assert "aurora-qb log" in check.metadata["recent_problems_md"].value


class _Receiver(BaseHTTPRequestHandler):
    answers: list[int] = []
    bodies: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status = self.answers.pop(0) if self.answers else 200
        if status == 200:
            self.bodies.append(body)
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.answers, _Receiver.bodies = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/secret-token-in-path"
    server.shutdown()


def test_run_failure_alert_posts_with_retries_and_never_shows_the_url(pipeline, receiver, caplog):
    result = pipeline.sync_all(config={"hold_policy": "bogus"}, raise_on_error=False)  # the export step fails
    assert not result.success
    failure = next(e for e in pipeline.instance.all_logs(result.run_id)
                   if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.PIPELINE_FAILURE)
    sensor = pipeline.defs.resolve_sensor_def("run_failure_alert")

    def evaluate(url):
        resource = AlertWebhookResource(url=url, backoff_initial_s=0.01, timeout_s=2)
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_instance=pipeline.instance, dagster_event=failure.dagster_event,
            dagster_run=result.dagster_run, resources={"alert_webhook": resource}).for_run_failure()
        return sensor(context)

    _Receiver.answers = [503, 500]  # two transient answers, then accepted
    evaluate(receiver)
    [body] = _Receiver.bodies
    assert body["run_id"] == result.run_id and body["job"] == "aurora_quickbase_sync" and result.run_id[:8] in body["text"]
    assert body == alert_payload(result.dagster_run, failure.dagster_event.message)

    _Receiver.answers = [500] * 10
    with pytest.raises(AlertDeliveryFailed) as refused:
        evaluate(receiver)
    assert "HTTP 500" in str(refused.value) and "secret-token" not in str(refused.value)
    with pytest.raises(AlertDeliveryFailed) as unreachable:
        evaluate("http://127.0.0.1:9/hooks/secret-token-in-path")
    assert "secret-token" not in str(unreachable.value) and "ConnectionError" in str(unreachable.value)
    assert "secret-token" not in caplog.text
    evaluate(None)  # alerting off: nothing sent, no error
