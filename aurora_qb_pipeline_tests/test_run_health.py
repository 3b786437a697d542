"""The worker verdict, the run launcher's health check and recovery on runs recorded in a real
instance (the shipped instance settings), with real processes as workers; and the pieces that
make every run record its worker. The kill tests themselves are in ``crash/``."""

import json
import socket
from dataclasses import replace
import subprocess
import sys
import time

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.launcher import WorkerStatus
from dagster._core.test_utils import create_run_for_test

from aurora_qb_pipeline.cli import main as cli_main
from aurora_qb_pipeline.definitions import build_definitions
from aurora_qb_pipeline.defs.aurora.changed import EVENT_JOB_NAME, event_run_projects, event_run_request
from aurora_qb_pipeline.defs.partitions import MAX_RUNTIME_TAG, RANGE_END, RANGE_START, TRIGGER_TAG, range_run_requests
from aurora_qb_pipeline.defs.run_worker import WorkerHeartbeat
from aurora_qb_pipeline.instance import open_instance, prepare_dagster_home
from aurora_qb_pipeline.ranges import projects_per_day, requests_per_project, runtime_budget_s
from aurora_qb_pipeline.recovery import recover
from aurora_qb_pipeline.run_health import WORKER_TAG, WorkerRecord, judge, process_alive, process_domain
from aurora_qb_pipeline.run_launcher import MonitoredRunLauncher
from aurora_qb_pipeline.runner import RETRY_OF_TAG, recover_and_retry
from aurora_qb_pipeline.settings import Settings

Status = dg.DagsterRunStatus


@pytest.fixture
def home_instance(tmp_path):
    instance = open_instance(prepare_dagster_home(tmp_path / "home", fresh=True))
    yield instance
    instance.dispose()


@pytest.fixture
def sleeper():
    """A live process to stand for a run worker."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process
    process.kill()
    process.wait()


def finished_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def record_for(run_id: str, pid: int, heartbeat: float = 0.0) -> WorkerRecord:
    """The record a worker process ``pid`` on this host would write."""
    import psutil

    started = psutil.Process(pid).create_time() if process_alive(WorkerRecord(run_id, "", pid, 0, 0)) else 1.0
    return WorkerRecord(run_id, socket.gethostname(), pid, started, heartbeat or time.time(), process_domain())


def started_run(instance, record=None, status=Status.STARTED, job_name="aurora_quickbase_sync", run_config=None,
                **tags):
    run = create_run_for_test(instance, job_name=job_name, tags=tags, run_config=run_config)
    instance.report_dagster_event(
        DagsterEvent(event_type_value=DagsterEventType.RUN_START.value, job_name=run.job_name), run_id=run.run_id
    )
    if record is not None:
        instance.add_run_tags(run.run_id, {WORKER_TAG: record(run.run_id).dump()})
    if status == Status.CANCELING:
        instance.report_run_canceling(instance.get_run_by_id(run.run_id))
    return instance.get_run_by_id(run.run_id)


# --- the verdict -----------------------------------------------------------------------------


def test_verdict_on_this_host_follows_the_process(sleeper):
    now = time.time()
    alive = record_for("r1", sleeper.pid, heartbeat=now - 3600)  # an old heartbeat does not matter here
    assert judge("r1", {WORKER_TAG: alive.dump()}, now - 3600).alive
    gone = judge("r1", {WORKER_TAG: record_for("r1", finished_pid()).dump()}, now)
    assert not gone.alive and "is gone" in gone.reason
    reused = replace(alive, started=alive.started - 500)  # the same pid, but another process
    assert not judge("r1", {WORKER_TAG: reused.dump()}, now).alive
    # the same host name, another pid namespace (a pod beside this one): judged by its heartbeat
    beside = replace(alive, domain=socket.gethostname() + "/other-boot/1", heartbeat=now - 3600)
    assert not beside.local and not judge("r1", {WORKER_TAG: beside.dump()}, now - 3600, now=now).alive


def test_verdict_on_another_host_follows_the_heartbeat():
    now = time.time()
    fresh = WorkerRecord("r1", "another-host", 1, 1.0, now - 60, "another-host/boot/1")
    assert judge("r1", {WORKER_TAG: fresh.dump()}, now - 3600, now=now, stale_after_s=180).alive
    stale = judge("r1", {WORKER_TAG: fresh.beat(now - 200).dump()}, now - 3600, now=now, stale_after_s=180)
    assert not stale.alive and "no heartbeat for 200 s" in stale.reason


def test_without_a_record_of_its_own_a_run_is_dead_only_after_the_stale_time(sleeper):
    now = time.time()
    assert judge("r2", {}, now - 10, now=now, stale_after_s=180).alive
    assert not judge("r2", {}, now - 200, now=now, stale_after_s=180).alive
    inherited = record_for("r1", sleeper.pid).dump()  # a retried run inherits its parent's tags
    assert not judge("r2", {WORKER_TAG: inherited}, now - 200, now=now, stale_after_s=180).alive
    assert judge("r2", {WORKER_TAG: "not json"}, now - 10, now=now).alive


# --- the run launcher and recovery on a real instance ---------------------------------------


def test_shipped_instance_monitors_runs_with_the_worker_health_check(home_instance, sleeper):
    launcher = home_instance.run_launcher
    assert isinstance(launcher, MonitoredRunLauncher) and launcher.supports_check_run_worker_health
    assert home_instance.run_monitoring_enabled
    assert home_instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
    assert home_instance.run_monitoring_max_runtime_seconds >= runtime_budget_s(projects_per_day(0.5))
    live = started_run(home_instance, lambda rid: record_for(rid, sleeper.pid))
    dead = started_run(home_instance, lambda rid: record_for(rid, finished_pid()))
    assert launcher.check_run_worker_health(live).status == WorkerStatus.RUNNING
    result = launcher.check_run_worker_health(dead)
    assert result.status == WorkerStatus.FAILED and "is gone" in result.msg


def test_recover_ends_dead_runs_frees_their_slots_and_leaves_live_ones(home_instance, sleeper):
    storage = home_instance.event_log_storage
    storage.set_concurrency_slots("duckdb", 1)
    live = started_run(home_instance, lambda rid: record_for(rid, sleeper.pid))
    dead = started_run(home_instance, lambda rid: record_for(rid, finished_pid()))
    canceling = started_run(home_instance, lambda rid: record_for(rid, finished_pid()), status=Status.CANCELING)
    storage.claim_concurrency_slot("duckdb", dead.run_id, "aurora__designs")

    dry = recover(home_instance, dry_run=True)
    assert {(f.run_id, f.action) for f in dry.findings} == {
        (dead.run_id, "would mark failed"), (canceling.run_id, "would mark canceled"),
        (dead.run_id, "would free its slots")}
    assert home_instance.get_run_by_id(dead.run_id).status == Status.STARTED

    report = recover(home_instance, by="a test")
    actions = {(f.run_id, f.action) for f in report.findings}
    assert actions == {(dead.run_id, "marked failed"), (canceling.run_id, "marked canceled"),
                       (dead.run_id, "freed its slots")}
    assert home_instance.get_run_by_id(live.run_id).status == Status.STARTED
    assert home_instance.get_run_by_id(canceling.run_id).status == Status.CANCELED
    failed = home_instance.get_run_by_id(dead.run_id)
    assert failed.status == Status.FAILURE
    assert storage.get_concurrency_info("duckdb").claimed_slots == []
    message = next(e.dagster_event.message for e in home_instance.all_logs(dead.run_id)
                   if e.is_dagster_event and e.dagster_event.event_type_value == "PIPELINE_FAILURE")
    assert message.startswith("Marked failed by a test: its worker, process") and "is gone" in message
    assert recover(home_instance).findings == []  # nothing left to do


def test_recover_ends_a_run_past_its_max_runtime_and_kills_its_worker(home_instance, sleeper):
    run = started_run(home_instance, lambda rid: record_for(rid, sleeper.pid), **{MAX_RUNTIME_TAG: "0.5"})
    time.sleep(0.6)
    (finding,) = recover(home_instance).findings
    assert finding.action == "ended its worker, marked failed" and "maximum runtime of 0.5 s" in finding.problem
    assert sleeper.wait(timeout=10) == -9
    assert home_instance.get_run_by_id(run.run_id).status == Status.FAILURE


def test_recover_command_prints_what_it_found(home_instance, capsys):
    dead = started_run(home_instance, lambda rid: record_for(rid, finished_pid()))
    home = home_instance.root_directory
    assert cli_main(["recover", "--home", home, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "1 problem(s) found (dry run: nothing changed)" in out and dead.run_id[:8] in out
    assert "would mark failed" in out
    assert cli_main(["recover", "--home", home, "--json"]) == 0
    (finding,) = json.loads(capsys.readouterr().out)["findings"]
    assert (finding["run_id"], finding["action"]) == (dead.run_id, "marked failed")
    assert cli_main(["recover", "--home", str(home_instance.root_directory) + "/nowhere"]) == 2


# --- every run records its worker; range runs carry their budget -----------------------------


def test_the_heartbeat_refreshes_the_record_until_stopped(home_instance):
    run = started_run(home_instance)
    heartbeat = WorkerHeartbeat(home_instance, run.run_id, interval_s=0.05).start()
    first = WorkerRecord.parse(home_instance.get_run_by_id(run.run_id).tags[WORKER_TAG])
    time.sleep(0.5)
    heartbeat.stop()
    last = WorkerRecord.parse(home_instance.get_run_by_id(run.run_id).tags[WORKER_TAG])
    assert first.local and first.pid == last.pid and last.heartbeat > first.heartbeat
    assert judge(run.run_id, home_instance.get_run_by_id(run.run_id).tags, time.time() - 3600).alive
    time.sleep(0.2)
    assert WorkerRecord.parse(home_instance.get_run_by_id(run.run_id).tags[WORKER_TAG]) == last  # stopped


def test_every_step_starts_the_run_worker_and_runs_in_the_worker_process():
    """The worker record is started by the ``duckdb`` resource: every asset and check needs it
    (a run without it would be taken for dead), and steps run in the process the record names."""
    defs = build_definitions(Settings())
    graph = defs.resolve_asset_graph()
    for assets_def in graph.assets_defs:
        assert "duckdb" in assets_def.required_resource_keys, assets_def.keys
    for job_name in ("aurora_quickbase_sync", "aurora_event_sync", "quickbase_export_only", "__ASSET_JOB"):
        assert defs.resolve_job_def(job_name).executor_def.name == dg.in_process_executor.name
    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == dg.in_process_executor.name


def test_range_runs_carry_a_max_runtime_from_their_size():
    order = [f"p{i:03}" for i in range(300)]
    settings = Settings()
    (small,), (large,) = (range_run_requests(order, keys, "t", "x", 1, settings.run_max_runtime_s)
                          for keys in (["p001", "p002"], order))
    assert int(small.tags[MAX_RUNTIME_TAG]) == runtime_budget_s(2)
    assert int(large.tags[MAX_RUNTIME_TAG]) == runtime_budget_s(300) > int(small.tags[MAX_RUNTIME_TAG])
    assert (small.tags[RANGE_START], small.tags[RANGE_END]) == ("p001", "p002")
    # one project: its own ~6 requests plus the nightly reconcile it may queue behind (12 h), +25%, +30 min
    assert runtime_budget_s(1) == pytest.approx(1.25 * (6.004 / 90 * 60 + 12 * 3600) + 1800, abs=10)
    assert runtime_budget_s(1, time_scale=0.01) < 3600
    # a range's own share grows with its requests: pricing adds one a design (settings.fetch_pricing)
    priced = Settings(fetch_pricing=True)
    assert runtime_budget_s(9000, requests_each=requests_per_project(pricing=True)) > runtime_budget_s(9000)
    assert priced.run_max_runtime_s(9000) == runtime_budget_s(9000, requests_each=8.504)


def test_the_local_runner_ends_a_dead_run_and_runs_its_projects_once_more(pipeline):
    """Without a daemon, ``runner.tick`` does what run monitoring and run retries would: the dead
    run is marked failed and its range runs again, once."""
    keys = pipeline.add_projects()
    instance = pipeline.instance
    dead = started_run(instance, lambda rid: record_for(rid, finished_pid()),
                       **{RANGE_START: keys[0], RANGE_END: keys[-1], TRIGGER_TAG: "discovery"})
    (retry,) = recover_and_retry(pipeline.defs, instance)
    assert retry.success and retry.dagster_run.tags[RETRY_OF_TAG] == dead.run_id
    assert (retry.dagster_run.tags[RANGE_START], retry.dagster_run.tags[RANGE_END]) == (keys[0], keys[-1])
    assert instance.get_run_by_id(dead.run_id).status == Status.FAILURE
    assert len(pipeline.qb_records()) > 0
    # a retry whose worker dies too is ended, not run a third time
    again = started_run(instance, lambda rid: record_for(rid, finished_pid()), **{RETRY_OF_TAG: dead.run_id})
    assert recover_and_retry(pipeline.defs, instance) == []
    assert instance.get_run_by_id(again.run_id).status == Status.FAILURE


def test_a_dead_event_run_runs_its_projects_once_more(pipeline):
    """The event path's run (``aurora_event_sync``) carries its projects in run config: the local
    runner's retry of a dead one stages exactly those projects again."""
    ids = [p["id"] for p in pipeline.all_projects()][::3][:3]
    request = event_run_request(ids, "webhooks", "1.0")
    dead = started_run(pipeline.instance, lambda rid: record_for(rid, finished_pid()), job_name=EVENT_JOB_NAME,
                       run_config=request.run_config, **request.tags)
    (retry,) = recover_and_retry(pipeline.defs, pipeline.instance)
    assert retry.success and retry.dagster_run.tags[RETRY_OF_TAG] == dead.run_id
    assert retry.dagster_run.job_name == EVENT_JOB_NAME and event_run_projects(retry.dagster_run) == sorted(ids)
    staged = {p for (p,) in pipeline.query("select distinct project_id from staging.designs")}
    assert staged <= set(ids) and staged
    assert pipeline.instance.get_run_by_id(dead.run_id).status == Status.FAILURE
