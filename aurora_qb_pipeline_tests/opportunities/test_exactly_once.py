"""Exactly once: a process killed after Aurora created the project but before anything was
written back leaves its intent in the store; the next attempt finds the project by
external_provider_id instead of creating a second one."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from aurora_qb_pipeline.defs.resources import opportunities_resource
from aurora_qb_pipeline.definitions import build_definitions
from aurora_qb_pipeline.opportunities.store import OpportunityStore
from aurora_qb_pipeline.opportunities.sync import STATUS_REQUESTED

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_killed_between_project_creation_and_write_back_then_rerun_makes_one_project(
        pipeline, opportunities, path, tmp_path):
    rid = opportunities.add()
    gate = pipeline.sandbox.aurora.gates.add("POST", r"/tenants/[^/]+/projects", "after")
    env = {**os.environ, **pipeline.sandbox.env(), "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "run_once.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "aurora_qb_pipeline_tests.opportunities.run_once",
                             pipeline.settings.inbox_database_url, rid],
                            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert gate.wait_reached(60), (tmp_path / "run_once.log").read_text()
        assert len(opportunities.projects_for(rid)) == 1  # Aurora made it; the answer is held
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        gate.release()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    record = opportunities.get(rid)
    assert record["project_id"] is None  # nothing was written back
    store = OpportunityStore(pipeline.settings.inbox_database_url)
    try:
        assert store.get([rid])[rid].state == "claimed"  # the intent, recorded before the POST
    finally:
        store.close()

    # the next tick (the dead process's claim has outlived its lease) resumes the opportunity
    pipeline.resources["opportunities"] = opportunities_resource(pipeline.settings, pipeline.credentials, lease_s=0.2)
    path.defs = build_definitions(pipeline.settings, pipeline.resources)
    time.sleep(0.3)
    path.tick()
    path.tick()
    projects = opportunities.projects_for(rid)
    assert len(projects) == 1
    record = opportunities.get(rid)
    assert record["project_id"] == projects[0]["id"] and record["sync_status"] == STATUS_REQUESTED
    posts = [e for e in pipeline.sandbox.aurora.log.entries() if e.method == "POST" and e.path.endswith("/projects")]
    assert len(posts) == 1  # the rerun looked the project up; it never asked for another
