"""`aurora-qb log` and `aurora-qb status` on a sandbox run with refused, held and quarantined
designs: what an operator reads, as text and as JSON, in a separate process (as it is used)."""

import json
import subprocess
import sys
import threading
import time

import duckdb
import pytest

from aurora_qb_pipeline.instance import prepare_dagster_home
from aurora_qb_pipeline.sandbox.launcher import MISSING_CHOICE

from .conftest import TIME_SCALE, Pipeline, sandbox_settings
from aurora_qb_pipeline.sandbox.launcher import start_sandbox
from aurora_qb_pipeline.settings import Credentials


def _cli(pipeline, home, *args, env_extra=None, check=True):
    env = {**pipeline.sandbox.env(), "DAGSTER_HOME": str(home), "AURORA_QB_DUCKDB": pipeline.duckdb_path,
           "AURORA_QB_INBOX_URL": pipeline.settings.inbox_database_url, **(env_extra or {})}
    done = subprocess.run([sys.executable, "-m", "aurora_qb_pipeline.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120)
    if check:
        assert done.returncode in (0, 1), done.stderr
    return done


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """A sync of 12 projects with one design refused by Quickbase (a module model its field does not
    offer), one held back (its proposal link quarantined), one project's address quarantined."""
    import dagster as dg

    tmp = tmp_path_factory.mktemp("operator")
    home = prepare_dagster_home(tmp / "home", fresh=True)
    with start_sandbox(projects=12, designs_per_project=2.5, seed=15, time_scale=TIME_SCALE) as sb:
        aurora = sb.aurora.primary
        with_arrays = [d for d, s in aurora.summaries.items()
                       if s.get("arrays") and all(a.get("module", {}).get("name") != MISSING_CHOICE
                                                  for a in s["arrays"]) and d in aurora.proposals]
        refused, held = with_arrays[0], next(d for d in with_arrays[1:] if aurora.designs[d]["project_id"] !=
                                             aurora.designs[with_arrays[0]]["project_id"])
        for array in aurora.summaries[refused]["arrays"]:
            array["module"]["name"] = MISSING_CHOICE
        aurora.proposals[held]["proposal_link"] = "not a link"
        bad_project = next(p for p in aurora.projects if p not in {aurora.designs[refused]["project_id"],
                                                                  aurora.designs[held]["project_id"]})
        aurora.projects[bad_project]["location"]["latitude"] = "north"
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            settings = sandbox_settings(sb, tmp, dagster_home=home)
            pipeline = Pipeline(sb, instance, settings, Credentials.from_env(sb.env()))
            result = pipeline.sync_all()
            assert result.success
            pipeline.cases = {"refused": refused, "held": held, "project": bad_project, "run_id": result.run_id}
            yield pipeline, home
        finally:
            instance.dispose()


def test_log_names_each_problem_with_its_reason(synced):
    pipeline, home = synced
    cases = pipeline.cases
    text = _cli(pipeline, home, "log", "--status", "problems").stdout
    assert "refused" in text and cases["refused"] in text and "Module Model" in text
    assert "held" in text and cases["held"] in text and "proposal_link" in text
    assert "quarantined" in text and cases["project"] in text and "latitude" in text
    assert "created" not in text  # only problems were asked for

    entries = json.loads(_cli(pipeline, home, "log", "--json", "--limit", "0").stdout)["entries"]
    by_status = {}
    for entry in entries:
        by_status.setdefault(entry["status"], []).append(entry)
    [refused] = by_status["refused"]
    assert refused["design_id"] == cases["refused"] and "would refuse" in refused["reason"]
    assert refused["project_id"] == pipeline.sandbox.aurora.primary.designs[cases["refused"]]["project_id"]
    [held] = by_status["held"]
    assert held["design_id"] == cases["held"] and "latest_proposals" in held["reason"]
    assert {e["project_id"] for e in by_status["quarantined"]} >= {cases["project"]}
    assert all(e["run_id"] == cases["run_id"] for e in entries)
    created = {e["design_id"] for e in by_status["created"]}
    assert created == {r[20] for r in pipeline.qb_records()}
    assert not created & {cases["refused"], cases["held"]}

    # filters: project, design, run prefix, time
    project = json.loads(_cli(pipeline, home, "log", "--json", "--project", cases["project"]).stdout)["entries"]
    assert project and all(e["project_id"] == cases["project"] for e in project)
    one = json.loads(_cli(pipeline, home, "log", "--json", "--design", cases["held"]).stdout)["entries"]
    assert {e["status"] for e in one} == {"held", "quarantined"}  # its proposal row, and the design it holds
    assert json.loads(_cli(pipeline, home, "log", "--json", "--run", cases["run_id"][:8], "--limit", "0")
                      .stdout)["entries"] == entries
    assert json.loads(_cli(pipeline, home, "log", "--json", "--run", "ffffffff").stdout)["entries"] == []
    assert json.loads(_cli(pipeline, home, "log", "--json", "--since", "2999-01-01").stdout)["entries"] == []
    assert len(json.loads(_cli(pipeline, home, "log", "--json", "--since", "1h", "--limit", "0").stdout)
               ["entries"]) == len(entries)
    assert len(json.loads(_cli(pipeline, home, "log", "--json", "--latest", "--limit", "0").stdout)["entries"]) \
        == len(entries)  # one run: one entry per design, status and asset already
    bad = _cli(pipeline, home, "log", "--status", "lost", check=False)
    assert bad.returncode == 2 and "unknown status lost" in bad.stderr


def test_status_reports_sync_problems_and_credentials(synced):
    pipeline, home = synced
    cases = pipeline.cases
    done = _cli(pipeline, home, "status")
    assert done.returncode == 0, done.stdout + done.stderr
    text = done.stdout
    assert f"run {cases['run_id'][:8]}" in text and "Last successful sync" in text
    assert "held back (quarantined Aurora data): 1" in text and "refused by Quickbase: 1" in text
    assert "project_addresses 1" in text and "aurora-qb log --status problems --latest" in text
    assert text.count("accepted") == 2

    report = json.loads(_cli(pipeline, home, "status", "--json").stdout)
    assert report["last_successful_sync"]["run_id"] == cases["run_id"]
    assert report["runs_in_progress"] == []
    assert report["integration"]["held_designs"] == 1 and report["integration"]["refused_designs"] == 1
    assert report["integration"]["synced_designs"] == len(pipeline.qb_records())
    assert report["webhook_inbox"]["unread"] == 0
    assert [c["ok"] for c in report["credentials"]] == [True, True]

    token = pipeline.sandbox.env()["QB_USER_TOKEN"]
    refused = _cli(pipeline, home, "status", "--json", env_extra={"QB_USER_TOKEN": "wrong-token-1234"})
    assert refused.returncode == 1
    checks = {c["service"]: c for c in json.loads(refused.stdout)["credentials"]}
    assert checks["Aurora"]["ok"] and not checks["Quickbase"]["ok"]
    assert "QB_USER_TOKEN" in checks["Quickbase"]["detail"] and "wrong-token-1234" not in refused.stdout
    assert token not in refused.stdout + refused.stderr
    missing = _cli(pipeline, home, "status", env_extra={"AURORA_API_TOKEN": ""})
    assert missing.returncode == 1 and "AURORA_API_TOKEN not set" in missing.stdout


def test_log_waits_for_a_run_holding_the_file_then_says_so(synced):
    pipeline, home = synced
    writer = duckdb.connect(pipeline.duckdb_path)  # this process writes: the CLI's process cannot open it
    try:
        busy = _cli(pipeline, home, "log", "--wait", "1", check=False)
        assert busy.returncode == 3 and "locked by a running run" in busy.stderr and "Traceback" not in busy.stderr
        threading.Timer(1.0, writer.close).start()  # the run finishes its write within the wait
        started = time.monotonic()
        done = _cli(pipeline, home, "log", "--wait", "30", "--json")
        assert done.returncode == 0 and json.loads(done.stdout)["entries"]
        assert time.monotonic() - started < 30
    finally:
        writer.close()
