"""Many Aurora tenants (issue 13): the tenants file, the per-tenant names, and two tenants' code
locations syncing their own sandbox tenants into their own Quickbase tables from one Dagster
instance (the daemon and code servers as separate processes: scaleout/test_tenants_postgres.py)."""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from aurora_qb_pipeline.cli import main as cli_main
from aurora_qb_pipeline.definitions import build_definitions
from aurora_qb_pipeline.defs.partitions import RANGE_END, RANGE_START, known_projects
from aurora_qb_pipeline.defs.resources import build_resources
from aurora_qb_pipeline.settings import Credentials, Settings
from aurora_qb_pipeline.tenants import TENANT_TAG, TenantNames, TenantsFileError, parse_tenants

from .conftest import sandbox_settings

TENANTS = """
tenants:
  - name: acme
    aurora_tenant_id: tenant-acme
    api_token_env: AURORA_API_TOKEN_ACME
  - name: globex
    aurora_tenant_id: tenant-globex
    partner: true
    quickbase_table_id_env: QB_TABLE_ID_GLOBEX
"""


def test_tenants_file_is_read_and_every_problem_reported_at_once():
    tenants = parse_tenants(TENANTS)
    assert tenants.names == ["acme", "globex"]
    assert tenants.get("globex").partner and tenants.get("acme").api_token_env == "AURORA_API_TOKEN_ACME"
    secret = "sk_live_0123456789abcdef"
    bad = yaml.safe_dump({"tenants": [
        {"name": "Acme Corp", "aurora_tenant_id": "a", "api_token_env": "AURORA_API_TOKEN_ACME"},
        {"name": "beta", "aurora_tenant_id": "b"},  # no credential
        {"name": "beta", "aurora_tenant_id": "b", "api_token_env": "X", "partner": True},  # both
        {"name": "gamma", "aurora_tenant_id": "c", "api_token_env": secret + "-value"},  # a value, not a name
        {"name": "delta", "aurora_tenant_id": " ", "partner": True, "colour": "red"},
    ]})
    with pytest.raises(TenantsFileError) as caught:
        parse_tenants(bad, Path("tenants.yaml"))
    problems = caught.value.problems
    text = str(caught.value)
    for where in ("tenants.0.name", "tenants.1", "tenants.2", "tenants.3.api_token_env",
                  "tenants.4.aurora_tenant_id", "tenants.4.colour"):
        assert any(p.startswith(where) for p in problems), (where, problems)
    assert secret not in text  # a pasted key is never echoed
    with pytest.raises(TenantsFileError, match="name must be unique; given more than once: acme"):
        parse_tenants(TENANTS.replace("globex", "acme"))
    with pytest.raises(TenantsFileError, match="not valid YAML"):
        parse_tenants("tenants: [")


def test_per_tenant_names_and_the_single_tenant_defaults():
    single, acme = TenantNames(None), TenantNames("acme")
    assert (single.partitions, single.pool, single.location, single.run_tags) == (
        "aurora_projects", "duckdb", "aurora_qb_pipeline", {})
    assert (acme.partitions, acme.pool, acme.location, acme.run_tags) == (
        "aurora_projects__acme", "duckdb__acme", "aurora_qb_pipeline__acme", {TENANT_TAG: "acme"})
    assert acme.key_path("aurora", "designs") == ["acme", "aurora", "designs"]
    assert acme.file(Path("/data/aurora_qb.duckdb")) == Path("/data/aurora_qb__acme.duckdb")
    assert TenantNames.of_key_path(["acme", "aurora", "designs"]) == acme
    assert TenantNames.of_key_path(["aurora", "designs"]) == single
    with pytest.raises(ValueError):
        TenantNames("../etc")


def test_settings_name_the_tenant_and_its_duckdb_file(tmp_path):
    path = tmp_path / "tenants.yaml"
    path.write_text(TENANTS)
    settings = Settings.from_env({"AURORA_QB_TENANTS_FILE": str(path), "AURORA_QB_TENANT": "acme",
                                  "DAGSTER_HOME": "/srv/dagster"})
    assert settings.duckdb_file == "/srv/dagster/aurora_qb__acme.duckdb"
    assert settings.tenant_config().aurora_tenant_id == "tenant-acme"
    assert Settings(dagster_home="/srv/dagster").duckdb_file == "/srv/dagster/aurora_qb.duckdb"
    with pytest.raises(ValueError, match="AURORA_QB_TENANTS_FILE"):
        Settings.from_env({"AURORA_QB_TENANT": "acme"})
    with pytest.raises(KeyError, match="not in the tenants file"):
        Settings(tenants_file=path, tenant="initech").tenant_config()


def test_a_tenant_location_renames_keys_partitions_pool_and_tags_runs(tmp_path):
    path = tmp_path / "tenants.yaml"
    path.write_text(TENANTS)
    settings = Settings(tenants_file=path, tenant="globex", dagster_home=tmp_path,
                        aurora_partner_application_id="app-1")
    defs = build_definitions(settings)
    repo = defs.get_repository_def()
    keys = repo.asset_graph.get_all_asset_keys()
    assert keys and all(k.path[0] == "globex" and len(k.path) == 3 for k in keys)
    designs = repo.assets_defs_by_key[dg.AssetKey(["globex", "aurora", "designs"])]
    assert designs.partitions_def.name == "aurora_projects__globex"
    assert designs.node_def.pool == "duckdb__globex"
    export = repo.assets_defs_by_key[dg.AssetKey(["globex", "quickbase", "designs_export"])]
    assert dg.AssetKey(["globex", "aurora", "designs"]) in export.dependency_keys
    for job in ("aurora_quickbase_sync", "aurora_event_sync", "quickbase_export_only", "observe_sources_and_sinks"):
        assert repo.get_job(job).tags[TENANT_TAG] == "globex"
    # credentials: the tenant's id from the file, its key (here the partner key) and table id by variable name
    aurora, quickbase = defs.resources["aurora"], defs.resources["quickbase"]
    assert aurora.tenant_id == "tenant-globex" and aurora.partner_application_id == "app-1"
    assert isinstance(aurora.api_token, dg.EnvVar) and aurora.api_token.env_var_name == "AURORA_PARTNER_APPLICATION_KEY"
    assert quickbase.table_id.env_var_name == "QB_TABLE_ID_GLOBEX"
    assert defs.resources["duckdb"].database == str(tmp_path / "aurora_qb__globex.duckdb")
    # without a tenant nothing changes
    plain = build_definitions(Settings(dagster_home=tmp_path)).get_repository_def()
    assert all(len(k.path) == 2 for k in plain.asset_graph.get_all_asset_keys())
    assert TENANT_TAG not in plain.get_job("aurora_quickbase_sync").tags


def test_cli_checks_the_file_and_writes_one_location_per_tenant(tmp_path, capsys):
    path = tmp_path / "tenants.yaml"
    path.write_text(TENANTS)
    assert cli_main(["tenants", "check", "--file", str(path)]) == 0
    assert "duckdb__globex" in capsys.readouterr().out
    out = tmp_path / "workspace.yaml"
    assert cli_main(["tenants", "workspace", "--file", str(path), "--output", str(out)]) == 0
    entries = yaml.safe_load(out.read_text())["load_from"]
    assert [e["python_module"]["attribute"] for e in entries] == ["acme", "globex"]
    assert cli_main(["tenants", "workspace", "--file", str(path), "--output", str(out), "--grpc-host", "code"]) == 0
    assert [e["grpc_server"]["port"] for e in yaml.safe_load(out.read_text())["load_from"]] == [4000, 4001]
    (tmp_path / "bad.yaml").write_text("tenants: []")
    assert cli_main(["tenants", "check", "--file", str(tmp_path / "bad.yaml")]) == 2


def test_two_tenants_sync_into_their_own_tables_from_one_instance(sandbox, instance, tmp_path):
    others = {name: sandbox.add_tenant(seed=seed, projects=6) for name, seed in (("acme", 301), ("globex", 302))}
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump({"tenants": [
        {"name": name, "aurora_tenant_id": t["tenant_id"], "api_token_env": f"AURORA_API_TOKEN_{name.upper()}"}
        for name, t in others.items()]}))
    env = sandbox.env()
    for name, tenant in others.items():
        settings = sandbox_settings(sandbox, tmp_path, tenants_file=path, tenant=name)
        credentials = Credentials(tenant["tenant_id"], tenant["api_token"], env["QB_REALM_HOSTNAME"],
                                  env["QB_USER_TOKEN"], tenant["table_id"])
        defs = build_definitions(settings, build_resources(settings, credentials))
        client = build_resources(settings, credentials)["aurora"].client
        ids = [p["id"] for p in client.iter_projects()]
        client.close()
        instance.add_dynamic_partitions(settings.names.partitions, ids)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = defs.resolve_job_def("aurora_quickbase_sync").execute_in_process(
                instance=instance, tags={RANGE_START: ids[0], RANGE_END: ids[-1]})
        assert result.success
        assert result.dagster_run.tags[TENANT_TAG] == name
        staged = {e.asset_key for e in result.get_asset_materialization_events()}
        assert dg.AssetKey([name, "aurora", "designs"]) in staged and all(k.path[0] == name for k in staged)
        with duckdb.connect(settings.duckdb_file, read_only=True) as conn:
            design_ids = {r[0] for r in conn.execute("select design_id from staging.designs").fetchall()}
        assert Path(settings.duckdb_file).name == f"aurora_qb__{name}.duckdb"
        tenant_designs = set(sandbox.aurora.tenants[tenant["tenant_id"]].designs)
        assert design_ids == tenant_designs  # this tenant's designs and no other's
        records = sandbox.quickbase.records(tenant["table_id"])
        sent = {str(r[20]) for r in records}  # field 20: Aurora Design ID
        assert sent and sent <= tenant_designs
    # the partitions carry the tenant; the single-tenant set stays empty
    assert set(known_projects(instance, "aurora_projects__acme")).isdisjoint(
        known_projects(instance, "aurora_projects__globex"))
    assert known_projects(instance) == []
    assert sandbox.quickbase.records(sandbox.quickbase.table_id) == []  # the primary table untouched


def test_bench_tenants_mode_runs_at_a_tiny_size(tmp_path):
    """The many-tenants benchmark end to end (nothing timed: its figures are the README's)."""
    from aurora_qb_pipeline import bench

    path = tmp_path / "bench.json"
    assert bench.main(["--mode", "tenants", "--tenants", "2", "--tenant-projects", "5", "--projects", "5",
                       "--designs", "10", "--time-scale", "0.01", "--quiet", "--json", str(path)]) == 0
    import json

    result = json.loads(path.read_text())["modes"]["tenants"]
    steps = result["steps"]
    assert result["data"]["tenant_servers"] == "own"  # an Aurora sandbox process per tenant, as Aurora's own fleet
    assert [s["key"] for s in steps] == ["one_tenant", "one_tenant_t0", "tenants_full_sync",
                                         "tenants_full_sync_t1", "tenants_full_sync_t2"]
    assert all(s["ok"] and s["aurora_requests"] > 0 and s["records_sent"] > 0 for s in steps)
    total, *tenants = steps[2:]
    assert all(s["detail"]["tenant_tag"] == [s["key"].rsplit("_", 1)[1]] for s in tenants)
    assert total["aurora_lower_bound_s"] == max(s["aurora_lower_bound_s"] for s in tenants)
    assert total["aurora_429"] == 0 and total["aurora_requests"] == sum(s["aurora_requests"] for s in tenants)
    assert total["detail"]["x_one_alone"] > 0 and total["detail"]["sandbox_cpu_s"] >= 0
    for tenant in tenants:  # where each tenant's time went: before, during and after its Aurora requests
        timeline = tenant["detail"]["timeline"]
        assert set(timeline) == {"before_first_request_s", "first_to_last_request_s", "after_last_request_s"}
        assert sum(timeline.values()) == pytest.approx(tenant["wall_s"], abs=0.5)
        (steps_of_run,) = tenant["detail"]["run_steps"].values()
        assert any(key.endswith("designs_export") for key in steps_of_run)


def test_bench_tenants_mode_defaults_to_a_time_scale_where_budgets_set_the_pace():
    from aurora_qb_pipeline import bench

    assert bench.parse_args(["--mode", "tenants"]).time_scale == 0.1
    assert bench.parse_args(["--mode", "both"]).time_scale == 0.01
    assert bench.parse_args(["--mode", "tenants", "--time-scale", "1"]).time_scale == 1.0


def test_each_tenant_reads_only_its_own_events_from_the_shared_inbox(tmp_path):
    from aurora_qb_pipeline.webhooks.events import parse_delivery
    from aurora_qb_pipeline.webhooks.inbox import Inbox

    inbox = Inbox(f"sqlite:///{tmp_path / 'inbox.sqlite'}")
    try:
        for tenant, design in (("tenant-acme", "d1"), ("tenant-globex", "d2"), ("tenant-acme", "d3")):
            inbox.append(parse_delivery("project_status_changed", f"project_id={design}&status=x&tenant_id={tenant}"))
        assert [r.params["project_id"] for r in inbox.read(0, tenant_id="tenant-acme")] == ["d1", "d3"]
        assert [r.params["project_id"] for r in inbox.read(0, tenant_id="tenant-globex")] == ["d2"]
        assert len(inbox.read(0)) == 3  # the single-tenant sensor reads everything, as before
    finally:
        inbox.close()


def test_a_tenant_counts_only_its_own_runs_in_flight(instance):
    from aurora_qb_pipeline.defs.aurora.changed import EVENT_JOB_NAME, event_run_config
    from aurora_qb_pipeline.defs.aurora.sensors import projects_in_flight

    for tenant, project in (("acme", "p-acme"), ("globex", "p-globex")):
        instance.add_run(dg.DagsterRun(job_name=EVENT_JOB_NAME, status=dg.DagsterRunStatus.STARTED,
                                       run_config=event_run_config([project]).to_config_dict(),
                                       tags={TENANT_TAG: tenant}))
    assert projects_in_flight(instance, [], TenantNames("acme")) == {"p-acme"}
    assert projects_in_flight(instance, []) == {"p-acme", "p-globex"}  # single tenant: every run, as before


def test_bench_tenants_goal_line_reads_the_measured_ratio():
    """The report's goal line for many tenants: the phase against the slowest tenant's own bound
    (measured, not estimated), beside one tenant alone; and where each tenant's time went."""
    from types import SimpleNamespace

    from aurora_qb_pipeline.bench.report import tenant_goal_lines
    from aurora_qb_pipeline.bench.tenants import timeline

    where = timeline([SimpleNamespace(ts=t) for t in (101.0, 150.0, 110.0)], started=100.0, ended_at=155.0)
    assert where == {"before_first_request_s": 1.0, "first_to_last_request_s": 49.0, "after_last_request_s": 5.0}
    assert timeline([], 0.0, 1.0) == {}

    def step(key, wall, ratio, **detail):
        return {"key": key, "wall_s": wall, "ratio_to_lower_bound": ratio, "aurora_lower_bound_s": 100.0,
                "aurora_429": 0, "cpu_s": 1.0, "detail": detail}

    result = {"steps": [step("one_tenant", 101.0, 1.01, sandbox_cpu_s=1.0),
                        step("one_tenant_t0", 101.0, 1.01, timeline=where),
                        step("tenants_full_sync", 112.0, 1.12, tenants=4, x_one_alone=1.109, sandbox_cpu_s=4.0)]}
    lines = tenant_goal_lines(result, 1.0)
    assert "1.12x the slowest tenant's bound" in lines[0] and "NOT MET" in lines[0] and "1.109x" in lines[0]
    assert "1.0 s before its first Aurora request" in lines[1]
    result["steps"][2]["ratio_to_lower_bound"] = 1.05
    assert "goal at most 1.1x: met" in tenant_goal_lines(result, 1.0)[0]
    assert tenant_goal_lines(None, 1.0) == [] and tenant_goal_lines({"steps": []}, 1.0) == []
