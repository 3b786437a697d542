"""`aurora-qb log` and `aurora-qb status` with many tenants: two tenants synced into their own DuckDB
files and Quickbase tables from one Dagster home; the commands run in their own process, as used."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import dagster as dg
import pytest
import yaml

from aurora_qb_pipeline.definitions import build_definitions
from aurora_qb_pipeline.defs.partitions import RANGE_END, RANGE_START
from aurora_qb_pipeline.defs.resources import build_resources
from aurora_qb_pipeline.instance import prepare_dagster_home
from aurora_qb_pipeline.sandbox.launcher import start_sandbox
from aurora_qb_pipeline.settings import Credentials
from aurora_qb_pipeline.tenants import TENANT_TAG

from .conftest import TIME_SCALE, sandbox_settings

NAMES = ("acme", "globex")


@pytest.fixture(scope="module")
def two_tenants(tmp_path_factory):
    """Tenants acme and globex synced (each its own sandbox tenant, table and DuckDB file); the
    environment the commands run in."""
    tmp = tmp_path_factory.mktemp("tenant_cli")
    home = prepare_dagster_home(tmp / "home", fresh=True)
    with start_sandbox(projects=2, seed=17, time_scale=TIME_SCALE) as sandbox:
        tenants = {name: sandbox.add_tenant(seed=400 + i, projects=3) for i, name in enumerate(NAMES)}
        path = tmp / "tenants.yaml"
        path.write_text(yaml.safe_dump({"tenants": [
            {"name": name, "aurora_tenant_id": t["tenant_id"], "api_token_env": f"AURORA_API_TOKEN_{name.upper()}",
             "quickbase_table_id_env": f"QB_TABLE_ID_{name.upper()}"} for name, t in tenants.items()]}))
        env = sandbox.env()
        cli_env = {**env, "DAGSTER_HOME": str(home), "AURORA_QB_TENANTS_FILE": str(path),
                   "AURORA_QB_DUCKDB": str(tmp / "aurora_qb.duckdb"),
                   "AURORA_QB_INBOX_URL": f"sqlite:///{tmp / 'webhook_inbox.sqlite'}"}
        designs = {}
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            for name, tenant in tenants.items():
                cli_env[f"AURORA_API_TOKEN_{name.upper()}"] = tenant["api_token"]
                cli_env[f"QB_TABLE_ID_{name.upper()}"] = tenant["table_id"]
                settings = sandbox_settings(sandbox, tmp, tenants_file=path, tenant=name, dagster_home=home)
                credentials = Credentials(tenant["tenant_id"], tenant["api_token"], env["QB_REALM_HOSTNAME"],
                                          env["QB_USER_TOKEN"], tenant["table_id"])
                resources = build_resources(settings, credentials)
                client = resources["aurora"].client
                ids = [p["id"] for p in client.iter_projects()]
                client.close()
                instance.add_dynamic_partitions(settings.names.partitions, ids)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = build_definitions(settings, resources).resolve_job_def(
                        "aurora_quickbase_sync").execute_in_process(
                        instance=instance, tags={RANGE_START: ids[0], RANGE_END: ids[-1]})
                assert result.success and result.dagster_run.tags[TENANT_TAG] == name
                designs[name] = set(sandbox.aurora.tenants[tenant["tenant_id"]].designs)
        finally:
            instance.dispose()
        yield cli_env, designs


def _cli(env, *args, **extra):
    done = subprocess.run([sys.executable, "-m", "aurora_qb_pipeline.cli", *args], env={**env, **extra},
                          capture_output=True, text=True, timeout=120)
    return done


def test_log_names_the_tenant_of_each_line(two_tenants):
    env, designs = two_tenants
    done = _cli(env, "log", "--json", "--limit", "0")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report["duckdb_files"]) == set(NAMES)
    entries = report["entries"]
    for name in NAMES:
        mine = [e for e in entries if e["tenant"] == name]
        assert mine and {e["design_id"] for e in mine} <= designs[name]
        assert {e["asset"] for e in mine} == {f"{name}/quickbase/designs_export"}
    assert {e["tenant"] for e in entries} == set(NAMES)

    one = json.loads(_cli(env, "log", "--json", "--limit", "0", "--tenant", "globex").stdout)["entries"]
    assert one and {e["tenant"] for e in one} == {"globex"}
    assert json.loads(_cli(env, "log", "--json", "--limit", "0", AURORA_QB_TENANT="acme").stdout)["entries"] == [
        e for e in entries if e["tenant"] == "acme"]
    text = _cli(env, "log", "--limit", "5").stdout
    assert text.splitlines()[0].split()[0] == "tenant" and "aurora_qb__acme.duckdb" in text
    unknown = _cli(env, "log", "--tenant", "initech")
    assert unknown.returncode == 2 and "not in the tenants file" in unknown.stderr and "Traceback" not in unknown.stderr


def test_status_reports_each_tenant(two_tenants):
    env, _ = two_tenants
    done = _cli(env, "status", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["last_successful_sync"]["tenant"] in NAMES
    assert set(report["tenants"]) == set(NAMES)
    assert all(t["synced_designs"] > 0 for t in report["tenants"].values())
    assert [(c["service"], c["ok"]) for c in report["credentials"]] == [
        ("Aurora (acme)", True), ("Quickbase (acme)", True), ("Aurora (globex)", True), ("Quickbase (globex)", True)]
    text = _cli(env, "status", "--no-check").stdout
    assert "Tenant acme (" in text and "Tenant globex (" in text and ", tenant " in text

    acme = json.loads(_cli(env, "status", "--json", "--tenant", "acme").stdout)
    assert acme["tenant"] == "acme" and acme["last_successful_sync"]["tenant"] == "acme"
    assert acme["duckdb_file"].endswith("aurora_qb__acme.duckdb") and acme["integration"]["synced_designs"] > 0
    assert [c["service"] for c in acme["credentials"]] == ["Aurora (acme)", "Quickbase (acme)"]
    # a tenant's own key variable, named as the operator set it
    missing = _cli(env, "status", "--tenant", "globex", AURORA_API_TOKEN_GLOBEX="")
    assert missing.returncode == 1 and "AURORA_API_TOKEN_GLOBEX not set" in missing.stdout
