"""Every request a deployment makes on one Aurora key goes through that key's one budget.

The two-tenant Postgres test once saw a 429 every time at ``TIME_SCALE = 0.5``: its fixture listed
each tenant's projects through an ``AuroraClient`` made with the default ``ClientOptions()``, whose
budget is private to the process, so the run that followed within the sandbox's window admitted
its full 90 on the shared bucket and the sandbox counted 91. The rule: a client for a deployment's
key (a run's, a sensor's, a command's, a test's) takes ``Settings.client_options()``, the options
the code location's resources are built from. Fast and in-process (the SQLite bucket, the real
sandbox on loopback); the bucket file is what two processes would share.
"""

from __future__ import annotations

from aurora_qb_pipeline.api_facts import AURORA_RATE_LIMIT
from aurora_qb_pipeline.clients import AuroraClient, ClientOptions
from aurora_qb_pipeline.defs.resources import build_resources
from aurora_qb_pipeline.sandbox.launcher import start_sandbox
from aurora_qb_pipeline.settings import Credentials, Settings

SCALE = 0.1  # Aurora's 90 a minute become 90 per 6 s: long enough that a burst of 90 fits in one window


def _tool_then_run_burst(tmp_path, tool_options) -> tuple[list[int], dict, float]:
    """A tool lists the projects (one request), then a run's client sends Aurora's 90 at once.
    Returns the statuses the sandbox answered the run's burst, the run client's counters, and the
    seconds from the tool's request to the burst's last one."""
    with start_sandbox(projects=5, designs_per_project=1, seed=13, time_scale=SCALE) as sandbox:
        env = {**sandbox.env(), "AURORA_QB_RATE_LIMIT_DB": str(tmp_path / "limits.sqlite"),
               "DAGSTER_HOME": str(tmp_path)}
        settings = Settings.from_env(env)
        tool = AuroraClient(base_url=env["AURORA_BASE_URL"], tenant_id=env["AURORA_TENANT_ID"],
                            api_token=env["AURORA_API_TOKEN"], options=tool_options(settings))
        try:
            ids = [p["id"] for p in tool.iter_projects()]
        finally:
            tool.close()
        run = build_resources(settings, Credentials.from_env(env))["aurora"].client  # what a run's steps use
        try:
            burst = [ids[i % len(ids)] for i in range(AURORA_RATE_LIMIT.requests)]
            assert len(run.map_concurrently(run.get_project, burst)) == len(burst)
            stats = run.stats
        finally:
            run.close()
        entries = sandbox.aurora.log.entries()
        statuses = [e.status for e in entries if e.path.endswith(tuple(ids))]
        span = max(e.ts for e in entries) - min(e.ts for e in entries)
    return statuses, stats, span


def test_a_tools_request_and_a_runs_burst_share_the_keys_budget(tmp_path):
    statuses, stats, span = _tool_then_run_burst(tmp_path, lambda settings: settings.client_options())
    assert 429 not in statuses and stats["rate_limited_429"] == 0
    # the tool's one request was counted: the run's 90th waited for it to leave the window
    assert span >= AURORA_RATE_LIMIT.scaled(SCALE).window_s, (span, stats)


def test_a_request_on_a_private_budget_costs_the_run_a_429(tmp_path):
    """The control: the sandbox is strict enough to refuse the one request too many, so the test
    above would see a leak. A client on a process-private budget (no shared location) is such a leak."""
    statuses, stats, _ = _tool_then_run_burst(tmp_path, lambda settings: ClientOptions.for_time_scale(SCALE))
    assert statuses.count(429) >= 1 and stats["rate_limited_429"] >= 1, (statuses, stats)


def test_a_partner_applications_own_key_has_one_budget_for_all_its_tenants(tmp_path):
    """A partner application's key exchanges tokens and manages webhooks for every tenant it serves;
    Aurora counts those requests against the application key, so they share one budget whichever
    tenant's client sends them (they were counted in each tenant's budget: two tenants' clients
    could send 2 x 90 a window on the one key)."""
    from aurora_qb_pipeline.clients.partner import PartnerAuroraClient

    with start_sandbox(projects=1, designs_per_project=1, seed=17, time_scale=SCALE) as sandbox:
        second = sandbox.add_tenant(seed=18, projects=1)
        tenants = [sandbox.aurora.primary.tenant_id, second["tenant_id"]]
        app = sandbox.aurora.create_partner_application("Budget", tenant_ids=tenants)
        settings = Settings.from_env({**sandbox.env(), "AURORA_QB_RATE_LIMIT_DB": str(tmp_path / "limits.sqlite"),
                                      "DAGSTER_HOME": str(tmp_path)})
        clients = [PartnerAuroraClient(base_url=sandbox.aurora_url, application_id=app["application_id"],
                                       application_key=app["application_key"], tenant_id=tenant,
                                       options=settings.client_options()) for tenant in tenants]
        try:
            calls = 50  # per tenant's client: 100 on the application key, more than its 90 a window
            for client in clients:
                assert client.list_webhooks() == []
            clients[0].map_concurrently(lambda i: clients[i % 2].list_webhooks(), range(2 * (calls - 1)))
        finally:
            for client in clients:
                client.close()
        entries = [e for e in sandbox.aurora.log.entries() if "/partner_applications/" in e.path]
    statuses = [e.status for e in entries]
    assert len(statuses) == 2 * calls and 429 not in statuses, statuses
    # the 91st waited for the first to leave the key's window
    assert max(e.ts for e in entries) - min(e.ts for e in entries) >= AURORA_RATE_LIMIT.scaled(SCALE).window_s
