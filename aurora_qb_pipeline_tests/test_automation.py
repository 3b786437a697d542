"""Sensors and the schedule, evaluated with build_sensor_context / build_schedule_context."""

import json
from datetime import datetime, timezone

import dagster as dg
import pytest

from aurora_qb_pipeline import automation
from aurora_qb_pipeline.assets.staging import projects_partitions
from aurora_qb_pipeline.automation import (
    RANGE_END,
    RANGE_START,
    daily_reconcile_schedule,
    daily_slice,
    design_request_sensor,
    plan_ranges,
    project_discovery_sensor,
)
from aurora_qb_pipeline.definitions import make_definitions
from aurora_qb_pipeline.local_runner import apply_partition_requests, run_job


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
    """Partition keys the range run requests cover, in partition order."""
    keys = []
    for request in run_requests:
        start, end = order.index(request.tags[RANGE_START]), order.index(request.tags[RANGE_END])
        keys += order[start : end + 1]
    return keys


def _order(instance):
    return list(instance.get_dynamic_partitions(projects_partitions.name))


def test_discovery_adds_new_projects_as_one_range_run(pipeline):
    instance, resources = pipeline.instance, {"aurora": pipeline.resources["aurora"]}
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
    instance, resources = pipeline.instance, {"aurora": pipeline.resources["aurora"]}
    aurora = pipeline.sandbox.aurora
    rejected_only = {
        r["project_id"] for r in aurora.primary.design_requests.values() if r["status"] == "designer_rejected"
    } - _completed_projects(aurora)

    first, cursor = _evaluate(design_request_sensor, instance, resources)
    apply_partition_requests(instance, first.dynamic_partitions_requests)
    synced = set(_covered(_order(instance), first.run_requests))
    assert _completed_projects(aurora) <= synced
    assert json.loads(cursor)["watermark"] and json.loads(cursor)["page"] == 1
    # ranges may cover a few extra projects between wanted ones, but never start or end on an unwanted one
    assert all(r.tags[RANGE_START] in _completed_projects(aurora) for r in first.run_requests)
    assert rejected_only.isdisjoint({r.tags[RANGE_START] for r in first.run_requests})
    assert len(first.run_requests) <= automation.MAX_RUNS_PER_TICK

    quiet, cursor = _evaluate(design_request_sensor, instance, resources, cursor)
    assert isinstance(quiet, dg.SkipReason)

    changed = aurora.mutate(0.1, seed=4)
    before = cursor
    third, cursor = _evaluate(design_request_sensor, instance, resources, before)
    apply_partition_requests(instance, third.dynamic_partitions_requests)
    covered = set(_covered(_order(instance), third.run_requests))
    assert set(changed["project_ids"]) <= covered
    # the same tick evaluated again yields the same run keys, so Dagster launches nothing twice
    replay, _ = _evaluate(design_request_sensor, instance, resources, before)
    assert [r.run_key for r in replay.run_requests] == [r.run_key for r in third.run_requests]


def test_design_request_scan_pages_across_ticks(pipeline, monkeypatch):
    monkeypatch.setattr(automation, "MAX_PAGES_PER_TICK", 1)
    aurora_client = pipeline.sandbox.aurora_client(page_size=5)
    instance, resources = pipeline.instance, {"aurora": aurora_client}
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


def test_sensor_ends_its_tick_when_runs_hold_the_rate_budget(pipeline, monkeypatch):
    monkeypatch.setattr(automation, "TICK_BUDGET_S", 0.3)
    client = pipeline.sandbox.aurora_client(rate_limit_per_window=1, rate_window_s=60.0)
    client.design_request_page(1)  # a "run" has just used the whole minute's budget
    result, cursor = _evaluate(design_request_sensor, pipeline.instance, {"aurora": client})
    assert isinstance(result, dg.SkipReason) and "rate budget" in result.skip_message
    assert json.loads(cursor)["page"] == 1  # nothing lost: the next tick starts the scan


def test_daily_schedule_requests_one_range_run_over_the_budgeted_slice(pipeline):
    instance = pipeline.instance
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
    defs = make_definitions(pipeline.resources)
    instance = pipeline.instance
    result, _ = _evaluate(project_discovery_sensor, instance, {"aurora": pipeline.resources["aurora"]})
    apply_partition_requests(instance, result.dynamic_partitions_requests)
    (request,) = result.run_requests
    run = run_job(defs, instance, dict(request.tags))
    assert run.success
    staged = {r[0] for r in pipeline.query("select distinct project_id from staging.project_addresses")}
    assert staged == set(_order(instance))
    assert len(instance.get_run_records()) == 1

    # design requests older than that sync need no run: the first tick only sets its watermark
    after, cursor = _evaluate(design_request_sensor, instance, {"aurora": pipeline.resources["aurora"]})
    assert isinstance(after, dg.SkipReason) and "already synced" in after.skip_message
    assert json.loads(cursor)["watermark"]


def test_definitions_load_with_every_automation():
    from aurora_qb_pipeline.definitions import defs

    assert {s.name for s in defs.sensors} == {"design_request_sensor", "project_discovery_sensor"}
    assert {s.name for s in defs.schedules} == {"daily_reconcile_schedule"}
    defs.resolve_job_def("aurora_quickbase_sync")
    dg.Definitions.validate_loadable(defs)
