"""The rate budget in Postgres: processes that share nothing but the database keep one API limit.

Mirrors ``test_http.py::test_rate_limit_is_shared_between_processes`` (SQLite, one machine) with
the real Aurora sandbox and its per-key limit, Aurora clients in two processes, and the bucket in
a real PostgreSQL server reached with a password from PGPASSWORD only.
"""

import multiprocessing
import time

import pytest
from pydantic import ValidationError

from aurora_qb_pipeline.api_facts import AURORA_RATE_LIMIT
from aurora_qb_pipeline.clients import AuroraClient
from aurora_qb_pipeline.clients.buckets import APPLICATION_NAME
from aurora_qb_pipeline.clients.http import RateLimitSettings, build_limiter
from aurora_qb_pipeline.defs.resources import build_resources
from aurora_qb_pipeline.sandbox.launcher import start_sandbox
from aurora_qb_pipeline.settings import Credentials, Settings

from ..conftest import TIME_SCALE
from .budget_worker import aurora_client, hammer



def test_settings_select_the_postgres_bucket_and_refuse_a_password_in_it():
    url = "postgresql://aurora_qb@db.internal:5432/dagster"
    settings = Settings.from_env({"AURORA_QB_RATE_LIMIT_URL": url, "DAGSTER_HOME": "/srv/dagster"})
    assert settings.rate_limit_location == url  # wins over the SQLite file
    assert Settings.from_env({"DAGSTER_HOME": "/srv/dagster"}).rate_limit_location.endswith(".sqlite")
    resources = build_resources(settings, Credentials("t", "k", "r", "u", "b"))
    assert resources["aurora"].rate_limit_db == resources["quickbase"].rate_limit_db == url
    # all from PGHOST, PGUSER, ... and SQLAlchemy's spelling (the webhook inbox's) are accepted too
    for accepted in ("postgresql://", "postgresql+psycopg://aurora_qb@db/dagster", "postgres://db/dagster"):
        assert Settings.from_env({"AURORA_QB_RATE_LIMIT_URL": accepted}).rate_limit_url == accepted

    for refused, reason in [
        ("postgresql://aurora_qb:hunter2secret@db/dagster", "PGPASSWORD"),
        ("postgresql://db/dagster?password=hunter2secret", "PGPASSWORD"),
        ("mysql://db/dagster", "Postgres URL"),
        ("/var/lib/aurora_qb/limits.sqlite", "Postgres URL"),
    ]:
        with pytest.raises(ValidationError) as err:
            Settings.from_env({"AURORA_QB_RATE_LIMIT_URL": refused})
        assert reason in str(err.value) and "hunter2secret" not in str(err.value)


def test_two_processes_share_one_postgres_budget_without_a_429(postgres):
    """Two processes, one bucket table in Postgres: together they stay under Aurora's per-key
    limit (the sandbox answers 429 past it), and neither the tenant id nor the key is stored."""
    db = postgres.create_database("rate_budget")
    url = postgres.url(db)  # no password: each process has PGPASSWORD
    with start_sandbox(projects=8, designs_per_project=1, seed=3, time_scale=TIME_SCALE) as sandbox:
        env = {**sandbox.env(), **postgres.env(db)}
        lister = AuroraClient(base_url=env["AURORA_BASE_URL"], tenant_id=env["AURORA_TENANT_ID"],
                              api_token=env["AURORA_API_TOKEN"])
        try:
            project_ids = [p["id"] for p in lister.iter_projects()]
        finally:
            lister.close()
        time.sleep(AURORA_RATE_LIMIT.scaled(TIME_SCALE).window_s * 1.2)  # the listing's window has passed

        repeats = 12  # 2 x 96 requests: more than two windows' worth of Aurora's 90
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=hammer, args=(env, url, project_ids, repeats)) for _ in range(2)]
        wall_start = time.time()
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
            assert p.exitcode == 0
        entries = [e for e in sandbox.aurora.log.entries() if e.ts >= wall_start]

    statuses = [e.status for e in entries]
    total = 2 * repeats * len(project_ids)
    assert statuses.count(200) == total, [(e.status, e.fault, e.path) for e in entries if e.status != 200][:10]
    assert 429 not in statuses
    window = AURORA_RATE_LIMIT.scaled(TIME_SCALE).window_s
    first, last = min(e.ts for e in entries), max(e.ts for e in entries)
    # 192 requests at 90 per window need at least two full windows after the first burst
    assert last - first >= (total // AURORA_RATE_LIMIT.requests - 0.05) * window * 0.99

    key = RateLimitSettings(90, 60, bucket=f"aurora:{env['AURORA_TENANT_ID']}").bucket_key
    with postgres.connect(db) as conn:
        tables = [r[0] for r in conn.execute("select tablename from pg_tables where schemaname = 'public'")]
        assert tables == [f"ratelimit___{key}"]
        names = [r[0] for r in conn.execute(f'select distinct name from "{tables[0]}"')]
        assert names == [key]
        dump = " ".join(tables + names)
        assert env["AURORA_TENANT_ID"] not in dump and env["AURORA_API_TOKEN"] not in dump


def _budget_connections(postgres, db: str) -> int:
    with postgres.connect(db) as conn:
        return conn.execute("select count(*) from pg_stat_activity where application_name = %s",
                            (APPLICATION_NAME,)).fetchone()[0]


def test_closing_a_client_closes_its_budget_connections(postgres, monkeypatch):
    """Every step and sensor tick makes a client and closes it: its bucket's connections go too."""
    db = postgres.create_database("rate_budget_close")
    monkeypatch.setenv("PGPASSWORD", postgres.password)  # libpq's variable, read by the bucket's pool
    with start_sandbox(projects=2, designs_per_project=1, seed=5, time_scale=TIME_SCALE) as sandbox:
        client = aurora_client(sandbox.env(), postgres.url(db))
        assert len(list(client.iter_projects())) == 2
        opened = _budget_connections(postgres, db)
        client.close()
        deadline = time.monotonic() + 10
        while (left := _budget_connections(postgres, db)) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert opened >= 1 and left == 0


def test_a_database_that_refuses_the_budget_says_why(postgres, monkeypatch):
    """No password in the environment: a clear error naming the cause, not a pool timeout."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="cannot be reached: .*password"):
        build_limiter(RateLimitSettings(5, 1.0, db_path=postgres.url("postgres"), bucket="aurora:t"))
    assert time.monotonic() - started < 30
