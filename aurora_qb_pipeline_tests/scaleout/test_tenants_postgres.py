"""Many tenants, really deployed (issue 13): PostgreSQL 15, the daemon and one gRPC code server per
tenant as separate processes (each started with ``AURORA_QB_TENANT=<name>`` and only its own key),
two tenants syncing at the same time against two sandbox tenants, each key limited by the sandbox
to Aurora's 90 requests a minute (scaled).

Shows: every run carries its tenant's tag and writes its tenant's keys, partitions, pool and DuckDB
file; the per-key budgets hold (no 429 from Aurora); each tenant's Quickbase table holds exactly
its exportable designs; and two tenants side by side take about as long as one alone, because their
runs hold different pools and different rate budgets. Every request the test itself makes on a
tenant's key goes through that key's budget too (the fixture's listing; ``test_budget_leaks.py``).
(The speed figure itself is the benchmark's: ``aurora-qb bench --mode tenants``; the bound asserted
here is generous.)
"""

from __future__ import annotations

import json
import subprocess
import uuid

import dagster as dg
import pytest
import yaml

from aurora_qb_pipeline.clients import AuroraClient
from aurora_qb_pipeline.defs.partitions import RANGE_END, RANGE_START, TRIGGER_TAG, known_projects
from aurora_qb_pipeline.sandbox.launcher import MISSING_CHOICE, start_sandbox
from aurora_qb_pipeline.settings import Settings
from aurora_qb_pipeline.tenants import TENANT_TAG, TenantNames

from .stack import BIN, running_tenant_stack, wait_for
from .test_postgres_deployment import DESIGN_ID_FID, FINISHED, _exportable

JOB = "aurora_quickbase_sync"
# Aurora's 90 a minute become 90 per 30 s: longer than from the fixture's listing to the first run's
# requests (14-17 s here), so what the fixture and the run workers send on a key fall in one window (at
# 0.25 the fixture's request outside the budget mostly went unnoticed), and each tenant's rate bound (~39 s of a 42-52 s run) sets the pace
# more than the loaded machine does. 145-165 s in all here (90 s at 0.25).
TIME_SCALE = 0.5
PROJECTS = 24
TENANTS = ("acme", "globex")


@pytest.fixture(scope="module")
def tenants_deployment(postgres, tmp_path_factory):
    database = postgres.create_database("dagster_tenants")
    pg_env = postgres.env(database)
    root = tmp_path_factory.mktemp("tenants")
    with start_sandbox(projects=4, seed=5, time_scale=TIME_SCALE) as sandbox, \
            pytest.MonkeyPatch.context() as env:
        for name, value in pg_env.items():
            env.setenv(name, value)
        added = {name: sandbox.add_tenant(seed=500 + i, projects=PROJECTS) for i, name in enumerate(TENANTS)}
        tenants_file = root / "tenants.yaml"
        tenants_file.write_text(yaml.safe_dump({"tenants": [
            {"name": name, "aurora_tenant_id": t["tenant_id"], "api_token_env": f"AURORA_API_TOKEN_{name.upper()}",
             "quickbase_table_id_env": f"QB_TABLE_ID_{name.upper()}"} for name, t in added.items()]}))
        tenant_env = {name: {f"AURORA_API_TOKEN_{name.upper()}": t["api_token"],
                             f"QB_TABLE_ID_{name.upper()}": t["table_id"]} for name, t in added.items()}
        sandbox_env = {k: v for k, v in sandbox.env().items() if k not in ("AURORA_API_TOKEN", "QB_TABLE_ID")}
        with running_tenant_stack(root / "dagster_home", pg_env, sandbox_env, root / "aurora_qb.duckdb",
                                  tenants_file, tenant_env) as stack:
            instance = dg.DagsterInstance.from_config(str(stack.home))
            try:
                required = set(instance.get_required_daemon_types())
                wait_for(lambda: True if required <= set(instance.get_daemon_heartbeats()) else None, 120,
                         "the daemon's heartbeats", stack.logs)
                for name, tenant in added.items():  # as each tenant's discovery sensor would
                    # on the tenant's own budget (the deployment's Postgres bucket, scaled window): a
                    # client on a private one made the request no run's budget counted, a 429 later
                    settings = Settings.from_env({**stack.code_env, **tenant_env[name], "AURORA_QB_TENANT": name})
                    client = AuroraClient(base_url=sandbox.aurora_url, tenant_id=tenant["tenant_id"],
                                          api_token=tenant["api_token"], options=settings.client_options())
                    try:
                        ids = [p["id"] for p in client.iter_projects()]
                    finally:
                        client.close()
                    instance.add_dynamic_partitions(TenantNames(name).partitions, ids)
                yield stack, instance, sandbox, added, root
            finally:
                instance.dispose()


def _launch(stack, tenant: str, keys: list[str], trigger: str) -> tuple[str, subprocess.Popen]:
    run_id = str(uuid.uuid4())
    tags = {RANGE_START: keys[0], RANGE_END: keys[-1], TRIGGER_TAG: trigger}
    process = subprocess.Popen(
        [str(BIN / "dagster"), "job", "launch", "-w", str(stack.workspace), "-l", TenantNames(tenant).location,
         "-j", JOB, "--run-id", run_id, "--tags", json.dumps(tags)],
        env=stack.daemon_env, cwd=stack.home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return run_id, process


def _run_all(stack, instance, launches: list[tuple[str, str]]) -> list[dg.RunRecord]:
    """Launch ``(tenant, trigger)`` runs at once over each tenant's partitions; wait for them all."""
    started = [_launch(stack, tenant, known_projects(instance, TenantNames(tenant).partitions), trigger)
               for tenant, trigger in launches]
    for _, process in started:
        output, _ = process.communicate(timeout=180)
        assert process.returncode == 0, output

    def finished():
        records = [instance.get_run_record_by_id(run_id) for run_id, _ in started]
        return records if all(r and r.dagster_run.status in FINISHED for r in records) else None

    records = wait_for(finished, 600, "the runs to finish", stack.logs, interval_s=1.0)
    detail = "\n".join(f"{r.dagster_run.run_id[:8]} {e.dagster_event.message}" for r in records
                       for e in instance.all_logs(r.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE))
    assert [r.dagster_run.status for r in records] == [dg.DagsterRunStatus.SUCCESS] * len(records), \
        detail + stack.logs()
    return records


def _span(records: list[dg.RunRecord]) -> float:
    return max(r.end_time for r in records) - min(r.start_time for r in records)


def test_two_tenants_sync_side_by_side_in_about_the_time_of_one(tenants_deployment):
    stack, instance, sandbox, added, root = tenants_deployment
    sandbox.aurora.log.clear()

    alone = _run_all(stack, instance, [("acme", "alone")])
    together = _run_all(stack, instance, [("acme", "together"), ("globex", "together")])

    # every run carries its tenant and ran in its own code location's names
    for record in alone + together:
        run = record.dagster_run
        tenant = run.tags[TENANT_TAG]
        assert run.remote_job_origin.location_name == TenantNames(tenant).location
        keys = {r.event_log_entry.dagster_event.asset_key for r in instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=10_000).records}
        assert keys and all(k.path[0] == tenant for k in keys), keys

    # the per-key budgets held: not one 429 from Aurora, and both tenants were asked
    entries = sandbox.aurora.log.entries()
    assert not [(e.method, e.path) for e in entries if e.status == 429]
    for tenant in added.values():
        assert any(tenant["tenant_id"] in e.path for e in entries)

    # each tenant's Quickbase table holds exactly its exportable designs, in its own DuckDB file
    for name, tenant in added.items():
        duckdb_file = root / f"aurora_qb__{name}.duckdb"
        in_quickbase = [r[DESIGN_ID_FID] for r in sandbox.quickbase.records(tenant["table_id"])]
        assert in_quickbase and len(in_quickbase) == len(set(in_quickbase))
        assert set(in_quickbase) == _exportable(duckdb_file, MISSING_CHOICE)
        assert set(in_quickbase) <= set(sandbox.aurora.tenants[tenant["tenant_id"]].designs)
        # the tenant's DuckDB writer pool (limit 1) lives in Postgres next to the others
        info = instance.event_log_storage.get_concurrency_info(TenantNames(name).pool)
        assert info.slot_count == 1 and info.active_slot_count == 0
    assert sandbox.quickbase.records(sandbox.quickbase.table_id) == []  # the primary tenant's table untouched

    # the two ran at the same time (different pools, different budgets), so together took about as
    # long as one alone; one after the other would take twice as long
    assert max(r.start_time for r in together) < min(r.end_time for r in together)
    one, two = _span(alone), _span(together)
    each = ", ".join(f"{r.dagster_run.tags[TENANT_TAG]} {r.end_time - r.start_time:.1f} s" for r in together)
    print(f"\none tenant alone: {one:.1f} s; two side by side: {two:.1f} s ({two / one:.2f}x; throughput "
          f"{2 * one / two:.2f}x one's; each run: {each})")
    assert two < 1.6 * one, f"one tenant alone {one:.1f} s, two side by side {two:.1f} s"
