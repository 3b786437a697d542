"""The event path end to end, over loopback: a change in the Aurora sandbox -> its webhook
delivery (Aurora's GET, retries, duplicates, reordering, loss) -> the receiver -> the inbox ->
aurora_webhook_sensor -> a sync run -> the Quickbase record."""

from datetime import datetime, timezone

import dagster as dg
import requests

from aurora_qb_pipeline.defs.aurora.changed import CHANGED_PROJECTS_OP, EVENT_JOB_NAME, event_run_projects
from aurora_qb_pipeline.defs.aurora.schedules import build_daily_reconcile_schedule
from aurora_qb_pipeline.defs.webhooks.sensors import synced_after
from aurora_qb_pipeline.runner import run_job
from aurora_qb_pipeline.webhooks.events import SECRET_HEADER

from ..conftest import export_metadata
from ..test_pipeline import DESIGN_ID_FID
from .conftest import SECRET, module_counts

MODULES_FID = 8


def _records_by_design(pipeline):
    records = pipeline.qb_records()
    ids = [r[DESIGN_ID_FID] for r in records]
    assert len(ids) == len(set(ids)), "duplicate records in Quickbase"
    return {r[DESIGN_ID_FID]: r for r in records}


def _assert_quickbase_matches_aurora(pipeline, design_ids):
    """Every given design that Quickbase holds shows Aurora's module count of now."""
    records = _records_by_design(pipeline)
    expected = module_counts(pipeline, design_ids)
    checked = [d for d in design_ids if d in records]
    assert checked, "none of the changed designs is in Quickbase"
    assert {d: records[d][MODULES_FID] for d in checked} == {d: expected[d] for d in checked}


def _stale(pipeline, design_ids):
    records = _records_by_design(pipeline)
    now = module_counts(pipeline, design_ids)
    return [d for d in design_ids if d in records and records[d][MODULES_FID] != now[d]]


def _projects_run(instance, outcome):
    """Projects the runs of a tick staged: each tick is ONE event run (its run config names them)."""
    assert len(outcome.runs) <= 1
    return {p for run in outcome.runs for p in event_run_projects(run.dagster_run)}


def _requested(instance, result):
    """Projects the run requests of an evaluation name (one event run at most)."""
    requests = getattr(result, "run_requests", None) or []
    assert len(requests) <= 1 and all(r.job_name == EVENT_JOB_NAME for r in requests)
    return {p for r in requests for p in r.run_config["ops"][CHANGED_PROJECTS_OP]["config"]["project_ids"]}


def test_a_change_reaches_quickbase_through_the_webhook_and_a_lost_one_through_the_reconcile(
        pipeline, subscribed, inbox, event_path):
    assert pipeline.sync_all().success
    hub = pipeline.sandbox.aurora.webhooks
    changed = pipeline.sandbox.aurora.mutate(0.1, seed=7)
    assert _stale(pipeline, changed["changed_design_ids"])
    deliveries = hub.wait_settled(timeout=20)
    assert deliveries and all(d["status"] == "delivered" for d in deliveries)

    outcome = event_path.tick()
    assert outcome.runs and all(r.success for r in outcome.runs)
    # ONE run for exactly the changed projects, scattered as they are, and ONE upsert
    assert _projects_run(pipeline.instance, outcome) == set(changed["project_ids"])
    assert export_metadata(outcome.runs[0])["requests"] == 1
    _assert_quickbase_matches_aurora(pipeline, changed["changed_design_ids"])
    assert inbox.position("aurora_webhook_sensor") == inbox.summary()["events"]

    quiet = event_path.tick()  # nothing new: no run
    assert quiet.skip_reason and not quiet.runs

    # a project counts as synced only when a run that *started* after its event staged it
    project = changed["project_ids"][0]
    started = pipeline.instance.get_run_record_by_id(outcome.runs[-1].run_id).start_time
    assert synced_after(pipeline.instance, {project: started - 1.0}) == {project}
    assert synced_after(pipeline.instance, {project: started + 0.5}) == set()

    # an event lost on purpose: the event path never hears of it; the nightly reconcile repairs it
    hub.configure(drop_next=1000)
    hub.clear_log()
    lost = pipeline.sandbox.aurora.mutate(0.1, seed=31)
    assert hub.events() and all(e["dropped"] for e in hub.events()) and hub.deliveries() == []
    assert event_path.tick().skip_reason
    assert _stale(pipeline, lost["changed_design_ids"])
    schedule = build_daily_reconcile_schedule(pipeline.settings)
    with dg.build_schedule_context(instance=pipeline.instance,
                                   scheduled_execution_time=datetime.now(timezone.utc)) as context:
        request = schedule(context)
    assert run_job(pipeline.defs, pipeline.instance, dict(request.tags)).success
    assert _stale(pipeline, lost["changed_design_ids"]) == []


def test_deliveries_missed_while_the_receiver_is_down_arrive_with_auroras_retries(pipeline, subscribed,
                                                                                  event_path):
    hub, aurora = pipeline.sandbox.aurora.webhooks, pipeline.sandbox.aurora
    project_id = next(iter(aurora.primary.projects))
    subscribed.stop()
    aurora.set_project_status(project_id, "Design Ready")
    hub.wait_for(lambda log: log and len(log[-1]["attempts"]) >= 2, timeout=10)  # refused twice (now, +30 s scaled)
    assert event_path.tick().skip_reason  # nothing reached the inbox
    subscribed.start()
    (delivery,) = hub.wait_settled(timeout=30)  # the next retry (after 5 min scaled) reaches it
    assert delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]][-1] == 200
    assert all(a["status_code"] is None for a in delivery["attempts"][:-1])

    outcome = event_path.tick()  # an unknown project: added as a partition and synced
    assert outcome.new_partitions == [project_id]
    assert [r.success for r in outcome.runs] == [True]
    staged = pipeline.query("select distinct project_id from staging.project_addresses")
    assert staged == [(project_id,)]


def test_duplicated_and_reordered_deliveries_leave_exactly_one_correct_record(pipeline, subscribed, inbox,
                                                                              event_path):
    assert pipeline.sync_all().success
    hub, aurora = pipeline.sandbox.aurora.webhooks, pipeline.sandbox.aurora
    hub.configure(duplicate_next=1000, reorder_window_real_s=0.5)
    first = aurora.mutate(0.05, seed=21)
    second = aurora.mutate(0.05, seed=22)  # later changes, delivered before the earlier ones
    log = hub.wait_settled(timeout=30)
    events = hub.events()
    assert all(e["duplicated"] for e in events) and len(log) == 2 * len(events)
    arrival = [d["event_id"] for d in sorted(log, key=lambda d: d["attempts"][0]["ts"]) if not d["duplicate"]]
    assert arrival[0] == events[-1]["id"] and arrival != [e["id"] for e in events]  # newest first
    summary = inbox.summary()
    assert summary["events"] == len(events) and summary["deliveries"] == 2 * len(events)

    outcome = event_path.tick()
    assert outcome.runs and all(r.success for r in outcome.runs)
    changed = set(first["changed_design_ids"]) | set(second["changed_design_ids"])
    _assert_quickbase_matches_aurora(pipeline, sorted(changed))
    assert len(pipeline.qb_records()) == len(_records_by_design(pipeline))


def test_trigger_rules_decide_which_events_sync(pipeline, subscribed, inbox, event_path):
    aurora = pipeline.sandbox.aurora
    projects = list(aurora.primary.projects)
    design = next(d for d in aurora.primary.designs.values() if d["project_id"] == projects[2])
    aurora.set_project_status(projects[0], "Site Survey")  # not a trigger status
    aurora.set_project_status(projects[1], "design ready")  # matched without regard to case
    agreement = aurora.create_agreement(design["id"])  # sent: not a trigger
    aurora.set_agreement_status(agreement["id"], "viewed")
    aurora.webhooks.publish(aurora.primary.tenant_id, "agreement_status_changed", PROJECT_ID=projects[3],
                            AGREEMENT_ID="ag-1", STATUS="countersigned")  # a status Aurora may add one day
    aurora.webhooks.wait_settled(timeout=20)
    gone = requests.get(f"{subscribed.url}/aurora/events/performance_simulation_job_completed",
                        params={"design_id": "deleted-design-0001", "job_id": "j1", "status": "succeeded"},
                        headers={SECRET_HEADER: SECRET}, timeout=5)  # a design Aurora no longer has: 404
    assert gone.json()["status"] == "stored"
    first = event_path.evaluate()
    assert _requested(pipeline.instance, first) == {projects[1]}

    aurora.set_agreement_status(agreement["id"], "signed")
    aurora.webhooks.wait_settled(timeout=20)
    assert _requested(pipeline.instance, event_path.evaluate()) == {projects[2]}
    assert inbox.summary()["unread"] == 0
