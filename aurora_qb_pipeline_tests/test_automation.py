"""Sensors and the schedule, evaluated with build_sensor_context / build_schedule_context."""

import json
from datetime import datetime, timezone

import dagster as dg
import pytest

from aurora_qb_pipeline.definitions import build_definitions
from aurora_qb_pipeline.defs.aurora.schedules import build_daily_reconcile_schedule
from aurora_qb_pipeline.defs.aurora.sensors import (
    SensorTuning,
    build_design_request_sensor,
    build_project_discovery_sensor,
)
from aurora_qb_pipeline.defs.jobs import aurora_quickbase_sync
from aurora_qb_pipeline.defs.aurora.changed import CHANGED_PROJECTS_OP, EVENT_JOB_NAME
from aurora_qb_pipeline.defs.partitions import RANGE_END, RANGE_START, known_projects
from aurora_qb_pipeline.defs.resources import aurora_resource
from aurora_qb_pipeline.ranges import daily_slice, plan_ranges
from aurora_qb_pipeline.runner import apply_partition_requests, run_job
from aurora_qb_pipeline.settings import Settings

from .conftest import sandbox_settings


@pytest.mark.parametrize(
    "keys,max_ranges,expected",
    [
        (["a", "b", "c"], 5, [("a", "c")]),
        (["a", "c", "j"], 5, [("a", "a"), ("c", "c"), ("j", "j")]),
        (["a", "c", "j"], 2, [("a", "c"), ("j", "j")]),  # the smallest gap is merged first
        (["a", "c", "j"], 1, [("a", "j")]),
        (["zz"], 3, []),  # unknown keys are ignored
    ],
)
def test_plan_ranges(keys, max_ranges, expected):
    assert plan_ranges(list("abcdefghij"), keys, max_ranges) == expected


def test_daily_slices_rotate_through_everything():
    order = [f"p{i}" for i in range(10)]
    slices = {daily_slice(order, day, 4) for day in range(6)}
    assert slices == {("p0", "p3"), ("p4", "p7"), ("p8", "p9")}
    assert daily_slice(order, 123, 100) == ("p0", "p9")


def _evaluate(sensor, instance, resources, cursor=None):
    """(result, the cursor the daemon would store after this tick)."""
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        result = sensor(context)
        return result, getattr(result, "cursor", None) or context.cursor


def _covered(order, run_requests):
    """Partition keys the run requests cover: a range run's range in partition order, an event
    run's projects (run config)."""
    keys = []
    for request in run_requests:
        if request.job_name == EVENT_JOB_NAME:
            keys += request.run_config["ops"][CHANGED_PROJECTS_OP]["config"]["project_ids"]
            continue
        start, end = order.index(request.tags[RANGE_START]), order.index(request.tags[RANGE_END])
        keys += order[start : end + 1]
    return keys


def _order(instance):
    return known_projects(instance)


def _sensors(pipeline, tuning=SensorTuning()):
    """(design-request sensor, discovery sensor) as the definitions build them from settings."""
    return (build_design_request_sensor(pipeline.settings, tuning),
            build_project_discovery_sensor(pipeline.settings, tuning))


def _aurora(pipeline, **fields):
    return {"aurora": pipeline.aurora(**fields)}


def test_discovery_adds_new_projects_as_one_range_run(pipeline):
    instance, resources = pipeline.instance, _aurora(pipeline)
    _, project_discovery_sensor = _sensors(pipeline)
    result, _ = _evaluate(project_discovery_sensor, instance, resources)
    added = apply_partition_requests(instance, result.dynamic_partitions_requests)
    assert sorted(added) == sorted(p["id"] for p in pipeline.all_projects())
    assert len(result.run_requests) == 1
    assert _covered(_order(instance), result.run_requests) == _order(instance)

    again, _ = _evaluate(project_discovery_sensor, instance, resources)
    assert isinstance(again, dg.SkipReason)

    new_ids = pipeline.sandbox.aurora.add_projects(3)["project_ids"]
    third, _ = _evaluate(project_discovery_sensor, instance, resources)
    apply_partition_requests(instance, third.dynamic_partitions_requests)
    assert sorted(_covered(_order(instance), third.run_requests)) == sorted(new_ids)


def _completed_projects(aurora_state):
    return {
        r["project_id"]
        for r in aurora_state.primary.design_requests.values()
        if r["status"] in ("designer_completed", "accepted")
    }


def test_design_request_sensor_skips_rejected_and_uses_a_watermark(pipeline):
    instance, resources = pipeline.instance, _aurora(pipeline)
    design_request_sensor, _ = _sensors(pipeline)
    aurora = pipeline.sandbox.aurora
    rejected_only = {
        r["project_id"] for r in aurora.primary.design_requests.values() if r["status"] == "designer_rejected"
    } - _completed_projects(aurora)

    first, cursor = _evaluate(design_request_sensor, instance, resources)
    apply_partition_requests(instance, first.dynamic_partitions_requests)
    synced = set(_covered(_order(instance), first.run_requests))
    assert json.loads(cursor)["watermark"] and json.loads(cursor)["page"] == 1
    # ONE run for exactly the projects with a completed or accepted request: no range, no extra project
    (request,) = first.run_requests
    assert request.job_name == EVENT_JOB_NAME and request.tags["aurora_qb/trigger"] == "design_requests"
    assert synced == _completed_projects(aurora) and rejected_only.isdisjoint(synced)
    assert int(request.tags["dagster/max_runtime"]) == pipeline.settings.run_max_runtime_s(len(synced))

    quiet, cursor = _evaluate(design_request_sensor, instance, resources, cursor)
    assert isinstance(quiet, dg.SkipReason)

    changed = aurora.mutate(0.1, seed=4)
    before = cursor
    third, cursor = _evaluate(design_request_sensor, instance, resources, before)
    apply_partition_requests(instance, third.dynamic_partitions_requests)
    covered = set(_covered(_order(instance), third.run_requests))
    assert set(changed["project_ids"]) <= covered and len(third.run_requests) == 1
    # the same tick evaluated again yields the same run keys, so Dagster launches nothing twice
    replay, _ = _evaluate(design_request_sensor, instance, resources, before)
    assert [r.run_key for r in replay.run_requests] == [r.run_key for r in third.run_requests]


def test_design_request_scan_pages_across_ticks(pipeline):
    design_request_sensor, _ = _sensors(pipeline, SensorTuning(max_pages_per_tick=1))
    instance, resources = pipeline.instance, _aurora(pipeline, per_page=5)
    total = len(pipeline.sandbox.aurora.primary.design_requests)
    cursor, synced, ticks = None, set(), 0
    while True:
        result, cursor = _evaluate(design_request_sensor, instance, resources, cursor)
        ticks += 1
        state = json.loads(cursor)
        if not isinstance(result, dg.SkipReason):
            apply_partition_requests(instance, result.dynamic_partitions_requests)
            synced |= set(_covered(_order(instance), result.run_requests))
        if state["scans_completed"]:
            break
        assert state["page"] == ticks + 1  # the next tick resumes where this one stopped
    assert ticks == total // 5 + 1
    assert _completed_projects(pipeline.sandbox.aurora) <= synced


def test_sensor_ends_its_tick_when_runs_hold_the_rate_budget(pipeline, sandbox, tmp_path):
    # the client at the real pace (90 requests a minute) while the sandbox runs 100x faster
    real_pace = sandbox_settings(sandbox, tmp_path, time_scale=1.0)
    run_client = aurora_resource(real_pace, pipeline.credentials).client
    for _ in range(90):  # a "run" has just used the whole minute's budget
        next(run_client.pages("projects"))
    run_client.close()
    sensor = build_design_request_sensor(real_pace, SensorTuning(tick_budget_s=0.3))
    resources = {"aurora": aurora_resource(real_pace, pipeline.credentials)}
    result, cursor = _evaluate(sensor, pipeline.instance, resources)
    assert isinstance(result, dg.SkipReason) and "rate budget" in result.skip_message
    assert json.loads(cursor)["page"] == 1  # nothing lost: the next tick starts the scan


def test_daily_schedule_requests_one_range_run_over_the_budgeted_slice(pipeline):
    instance = pipeline.instance
    daily_reconcile_schedule = build_daily_reconcile_schedule(pipeline.settings)
    when = datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=when) as context:
        assert isinstance(daily_reconcile_schedule(context), dg.SkipReason)
    ids = pipeline.add_projects()
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=when) as context:
        request = daily_reconcile_schedule(context)
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (ids[0], ids[-1])
    assert request.run_key == "reconcile:2026-11-22"
    assert daily_reconcile_schedule.execution_timezone


def test_a_large_batch_is_one_run_over_all_partitions(pipeline):
    defs, instance = pipeline.defs, pipeline.instance
    design_request_sensor, project_discovery_sensor = _sensors(pipeline)
    result, _ = _evaluate(project_discovery_sensor, instance, _aurora(pipeline))
    apply_partition_requests(instance, result.dynamic_partitions_requests)
    (request,) = result.run_requests
    run = run_job(defs, instance, dict(request.tags))
    assert run.success
    staged = {r[0] for r in pipeline.query("select distinct project_id from staging.project_addresses")}
    assert staged == set(_order(instance))
    assert len(instance.get_run_records()) == 1

    # design requests older than that sync need no run: the first tick only sets its watermark
    after, cursor = _evaluate(design_request_sensor, instance, _aurora(pipeline))
    assert isinstance(after, dg.SkipReason) and "already synced" in after.skip_message
    assert json.loads(cursor)["watermark"]


def test_definitions_load_with_every_automation():
    defs = build_definitions(Settings(daily_cron="30 3 * * *", timezone="Europe/Berlin", automation_running=True))
    assert {s.name for s in defs.sensors} == {"design_request_sensor", "project_discovery_sensor",
                                              "aurora_webhook_sensor", "site_survey_request_sensor",
                                              "site_survey_completion_sensor", "run_failure_alert"}
    assert {s.name for s in defs.schedules} == {"daily_reconcile_schedule", "observe_sources_schedule"}
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in defs.sensors)
    defs.resolve_job_def("aurora_quickbase_sync")
    dg.Definitions.validate_loadable(defs)
    schedule = defs.resolve_schedule_def("daily_reconcile_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("30 3 * * *", "Europe/Berlin")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_design_requests_wait_for_a_run_in_flight_over_their_projects(pipeline):
    """The UI demo starts both sensors: while discovery's run over every project is running, the
    design-request sensor launches nothing for those projects; once the run has staged them, it
    finds them synced. (It used to launch a run per project the discovery run was syncing.)"""
    from dagster._core.test_utils import create_run_for_test

    instance = pipeline.instance
    design_request_sensor, project_discovery_sensor = _sensors(pipeline)
    discovered, _ = _evaluate(project_discovery_sensor, instance, _aurora(pipeline))
    apply_partition_requests(instance, discovered.dynamic_partitions_requests)
    (request,) = discovered.run_requests
    running = create_run_for_test(instance, job_name=aurora_quickbase_sync.name, tags=dict(request.tags),
                                  status=dg.DagsterRunStatus.STARTED)

    waiting, cursor = _evaluate(design_request_sensor, instance, _aurora(pipeline))
    assert isinstance(waiting, dg.SkipReason) and "waiting for a run" in waiting.skip_message
    deferred = json.loads(cursor)["deferred"]
    assert set(deferred) == _completed_projects(pipeline.sandbox.aurora)

    instance.delete_run(running.run_id)  # that run does its work (here: its equivalent, in process)
    assert run_job(pipeline.defs, instance, dict(request.tags)).success
    after, cursor = _evaluate(design_request_sensor, instance, _aurora(pipeline), cursor)
    assert isinstance(after, dg.SkipReason) and json.loads(cursor)["deferred"] == {}
