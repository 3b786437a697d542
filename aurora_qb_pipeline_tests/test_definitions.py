"""The code location as `dg` sees it, and the one place the configuration comes from."""

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aurora_qb_pipeline.settings import SECRET_VARIABLES, WEBHOOK_SECRET_VARIABLE, Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = REPO_ROOT / "aurora_qb_pipeline"
VENV_BIN = Path(sys.executable).parent


def _dg(*args: str) -> subprocess.CompletedProcess:
    """`dg` from this venv, in the repository, with no pipeline variable set (no secret is
    needed to load the definitions: Dagster reads them at run time)."""
    env = {k: v for k, v in os.environ.items()
           if k not in SECRET_VARIABLES and k not in Settings.variables() and k != "VIRTUAL_ENV"}
    env.update(VIRTUAL_ENV=str(VENV_BIN.parent), PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}")
    return subprocess.run([str(VENV_BIN / "dg"), *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_dg_check_defs_passes():
    result = _dg("check", "defs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully" in result.stdout + result.stderr


def test_dg_list_defs_shows_the_designed_layout():
    result = _dg("list", "defs", "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assets = {a["asset_key"] for a in listed["assets"]}
    assert assets == {"aurora/project_addresses", "aurora/designs", "aurora/latest_proposals",
                      "aurora/design_summaries", "aurora/design_arrays", "quickbase/designs_export",
                      "aurora/tenant", "quickbase/designs_table", "aurora/changed_projects",
                      "quickbase/design_line_items"}
    assert all(a["description"] and a["owners"] == [{"team": "integrations"}] for a in listed["assets"])
    assert all(c["description"] for c in listed["asset_checks"]) and len(listed["asset_checks"]) == 10
    assert {j["name"] for j in listed["jobs"]} == {"aurora_quickbase_sync", "aurora_event_sync", "quickbase_export_only",
                                                   "observe_sources_and_sinks", "site_survey_intake",
                                                   "site_survey_upload", "opportunities_to_aurora"}
    assert {s["name"] for s in listed["schedules"]} == {"daily_reconcile_schedule", "observe_sources_schedule"}
    assert {s["name"] for s in listed["sensors"]} == {"design_request_sensor", "project_discovery_sensor",
                                                      "aurora_webhook_sensor", "site_survey_request_sensor",
                                                      "site_survey_completion_sensor", "run_failure_alert"}
    assert {r["name"] for r in listed["resources"]} >= {"aurora", "quickbase", "duckdb", "io_manager", "webhook_inbox",
                                                        "site_surveys", "alert_webhook", "opportunities"}


def test_settings_come_from_the_environment_only_through_from_env(monkeypatch):
    env = {"AURORA_QB_TIME_SCALE": "0.05", "AURORA_QB_AUTOMATION": "running", "DAGSTER_HOME": "/srv/dagster",
           "AURORA_QB_EXPORT_MAX_RECORDS": "500", "QB_APP_ID": "bq7app", "AURORA_API_TOKEN": "not a setting"}
    settings = Settings.from_env(env)
    assert (settings.time_scale, settings.automation_running, settings.export_max_records_per_request) == (
        0.05, True, 500)
    assert settings.duckdb_file == "/srv/dagster/aurora_qb.duckdb"
    assert settings.rate_limit_file == "/srv/dagster/aurora_qb_rate_limits.sqlite"
    monkeypatch.setenv("AURORA_QB_TIME_SCALE", "0.5")
    assert Settings().time_scale == 1.0  # constructing Settings reads nothing
    assert Settings.from_env().time_scale == 0.5
    with pytest.raises(ValueError):
        Settings.from_env({"AURORA_QB_DAILY_BUDGET_SHARE": "2"})


def test_readme_configuration_table_lists_every_variable():
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section))
    assert set(Settings.variables()) | set(SECRET_VARIABLES) | {WEBHOOK_SECRET_VARIABLE} <= documented


def _environment_reads(tree: ast.AST):
    """(line, inside a function?) of every os.environ / os.getenv in a module."""
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    inside = {id(n) for f in functions for n in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and node.attr in ("environ", "getenv"):
            yield node.lineno, id(node) in inside


def test_no_module_reads_the_environment_at_import():
    """Only Settings.from_env reads the pipeline's configuration; the CLI passes the environment on
    to the programs it starts (instance.py sets Dagster's DAGSTER_EVENT_BATCH_SIZE for them, at run
    time). Nothing reads it at module level."""
    allowed = {"settings.py", "cli/demo.py", "cli/browser.py", "instance.py"}
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        name = path.relative_to(PACKAGE).as_posix()
        for line, in_function in _environment_reads(ast.parse(path.read_text())):
            if not in_function or name not in allowed:
                offenders.append(f"{name}:{line}")
    assert not offenders


def test_no_module_is_over_400_lines():
    long = {p.relative_to(PACKAGE).as_posix(): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 420}
    assert not long
