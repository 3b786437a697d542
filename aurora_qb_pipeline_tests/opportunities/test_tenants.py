"""Opportunities and the design-request follow-up per tenant (issue 13): two Aurora tenants of the
sandbox, each with its own opportunities table; each tenant's location (its own definitions,
credentials and store tables) acts only on its own opportunities, button clicks and design
requests, and writes only its own table. A button signed for one tenant is refused (401) at the
other's path of the real receiver, even for the same record id."""

import time

import pytest
import requests
import yaml

from aurora_qb_pipeline.definitions import build_definitions
from aurora_qb_pipeline.defs.opportunities.sensors import SENSOR_NAME
from aurora_qb_pipeline.defs.resources import build_resources
from aurora_qb_pipeline.defs.webhooks.sensors import SENSOR_NAME as WEBHOOK_SENSOR
from aurora_qb_pipeline.opportunities.buttons import button_url, sign
from aurora_qb_pipeline.opportunities.store import OpportunityStore
from aurora_qb_pipeline.opportunities.sync import STATUS_REQUESTED
from aurora_qb_pipeline.runner import tick
from aurora_qb_pipeline.sandbox.quickbase.opportunities import add_opportunities_table
from aurora_qb_pipeline.settings import Credentials
from aurora_qb_pipeline.tenant_apps import button_routes_for_tenants
from aurora_qb_pipeline.webhooks.inbox import Inbox
from aurora_qb_pipeline.webhooks.receiver import ReceiverThread, create_receiver_app

from ..conftest import sandbox_settings
from .conftest import MAGIC, SECRET, Opportunities

NAMES = ("acme", "globex")


class TenantOpportunities(Opportunities):
    """A tenant's own Opportunities table, edited as a Quickbase user would."""

    def __init__(self, sandbox, table_id):
        self.qb, self.table_id = sandbox.quickbase, table_id
        self.fid = {name: self.qb.field_by_label(table_id, label).id for name, label in self.LABELS.items()}


class Tenant:
    """One tenant's code location over the shared sandbox, instance and inbox database."""

    def __init__(self, name, sandbox, instance, tmp_path, path, aurora_tenant):
        self.name, self.sandbox, self.instance = name, sandbox, instance
        self.tenant_id = aurora_tenant["tenant_id"]
        self.designs_table = aurora_tenant["table_id"]
        self.table_id = add_opportunities_table(sandbox.quickbase, sandbox.quickbase.app_id, self.designs_table)
        self.settings = sandbox_settings(sandbox, tmp_path, tenants_file=path, tenant=name, opportunities_sync=True,
                                         opportunity_buttons=True)
        env = sandbox.env()
        credentials = Credentials(self.tenant_id, aurora_tenant["api_token"], env["QB_REALM_HOSTNAME"],
                                  env["QB_USER_TOKEN"], self.designs_table,
                                  quickbase_opportunities_table_id=self.table_id, webhook_secret=SECRET)
        self.defs = build_definitions(self.settings, build_resources(self.settings, credentials))
        self.cursor = None
        self.opportunities = TenantOpportunities(sandbox, self.table_id)

    def tick(self):
        outcome = tick(self.defs, self.instance, SENSOR_NAME, cursor=self.cursor)
        self.cursor = outcome.cursor
        for run in outcome.runs:
            assert run.success, run
            assert run.dagster_run.tags.get("aurora_qb/trigger")
        return outcome

    def projects_for(self, record_id):
        return self.sandbox.aurora.find_projects(self.tenant_id, str(record_id))


@pytest.fixture
def tenants(sandbox, instance, tmp_path):
    made = {name: sandbox.add_tenant(seed=seed, projects=2) for name, seed in zip(NAMES, (401, 402))}
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump({"tenants": [
        {"name": name, "aurora_tenant_id": t["tenant_id"], "api_token_env": f"AURORA_API_TOKEN_{name.upper()}",
         "quickbase_table_id_env": f"QB_TABLE_ID_{name.upper()}",
         "quickbase_opportunities_table_id_env": f"QB_OPPORTUNITIES_TABLE_ID_{name.upper()}"}
        for name, t in made.items()]}))
    return {name: Tenant(name, sandbox, instance, tmp_path, path, made[name]) for name in NAMES}


def test_each_tenant_creates_projects_for_its_own_opportunities_only(tenants, sandbox, tmp_path):
    acme, globex = tenants["acme"], tenants["globex"]
    a = acme.opportunities.add(last_name="Acme")
    g = globex.opportunities.add(last_name="Globex", ready=False)  # not flagged yet
    assert a == g  # the same record id in two tables: the stores must keep them apart

    outcome = globex.tick()
    assert outcome.runs == [] and globex.projects_for(g) == []
    acme.tick()
    assert len(acme.projects_for(a)) == 1
    assert globex.projects_for(g) == [] and acme.projects_for(g)[0]["customer_last_name"] == "Acme"
    assert acme.opportunities.get(a)["sync_status"] == STATUS_REQUESTED
    assert globex.opportunities.get(g)["project_id"] in (None, "")  # the other table untouched

    globex.opportunities.edit(g, ready=True)
    globex.tick()
    project = globex.projects_for(g)
    assert len(project) == 1 and project[0]["customer_last_name"] == "Globex"
    assert len(acme.projects_for(a)) == 1  # acme's sensor made nothing more
    assert acme.tick().runs == [] and globex.tick().runs == []

    # each tenant's store holds its own row for record 1; the single-tenant tables stay empty
    url = acme.settings.inbox_database_url
    for tenant in (acme, globex):
        store = OpportunityStore(url, tenant=tenant.name)
        assert store.get([a])[a].project_id == tenant.projects_for(a)[0]["id"]
        store.close()
    plain = OpportunityStore(url)
    assert plain.get([a]) == {}
    plain.close()

    # the follow-up of the design requests made: each tenant's, polled only by that tenant
    inbox = Inbox(url)
    try:
        requests_made = {t.name: t.opportunities.get(a)["design_request_id"] for t in (acme, globex)}
        tracked = inbox.tracked_design_requests(requests_made.values())
        assert {t.name: tracked[requests_made[t.name]].tenant_id for t in (acme, globex)} == {
            "acme": acme.tenant_id, "globex": globex.tenant_id}
        due = {r.id for r in inbox.due_design_requests(time.time() + 10**9, 100, acme.tenant_id)}
        assert due == {requests_made["acme"]}
        # acme's webhook sensor polls its own request with its own key; globex's is left to globex
        # (acme's key would get a 404 for it, which would end its follow-up)
        tick(acme.defs, acme.instance, WEBHOOK_SENSOR)
        tracked = inbox.tracked_design_requests(requests_made.values())
        assert tracked[requests_made["acme"]].checks == 1
        assert tracked[requests_made["globex"]].checks == 0 and not tracked[requests_made["globex"]].final
        tick(globex.defs, globex.instance, WEBHOOK_SENSOR)
        tracked = inbox.tracked_design_requests(requests_made.values())
        assert tracked[requests_made["globex"]].checks == 1 and tracked[requests_made["globex"]].last_error is None
    finally:
        inbox.close()


def test_a_button_signed_for_one_tenant_is_refused_by_the_other(tenants, sandbox):
    acme, globex = tenants["acme"], tenants["globex"]
    a = acme.opportunities.add(ready=False)
    g = globex.opportunities.add(ready=False, last_name="Globex")
    assert a == g
    acme.tick(), globex.tick()  # stamp the signatures
    signature = acme.opportunities.get(a)["create_signature"]
    assert signature == sign(SECRET, acme.table_id, a, "create", "acme")
    assert signature != globex.opportunities.get(g)["create_signature"]

    url = acme.settings.inbox_database_url
    environ = {"QB_OPPORTUNITIES_TABLE_ID_ACME": acme.table_id, "QB_OPPORTUNITIES_TABLE_ID_GLOBEX": globex.table_id}
    inbox = Inbox(url)
    app = create_receiver_app(inbox, [SECRET], button_routes_for_tenants(
        acme.settings.tenants(), environ, url, [SECRET]))
    stores = {name: OpportunityStore(url, tenant=name) for name in NAMES}
    try:
        with ReceiverThread(app) as receiver:
            # acme's signature at globex's path (same record id): refused, nothing queued
            answer = requests.get(button_url(receiver.url, g, "create", signature, "globex"), timeout=10)
            assert answer.status_code == 401
            # and the single-tenant path is not served in a many-tenant receiver
            assert requests.get(button_url(receiver.url, a, "create", signature), timeout=10).status_code == 404
            assert stores["globex"].queued(0) == [] and stores["acme"].queued(0) == []
            answer = requests.get(button_url(receiver.url, a, "create", signature, "acme"), timeout=10)
            assert answer.status_code == 200 and "Queued" in answer.text
        assert [q.record_id for q in stores["acme"].queued(0)] == [a] and stores["globex"].queued(0) == []
        # even were both tenants to name the same table, the signature names its tenant
        shared = dict.fromkeys(environ, acme.table_id)
        same_table = create_receiver_app(inbox, [SECRET], button_routes_for_tenants(
            acme.settings.tenants(), shared, url, [SECRET]))
        with ReceiverThread(same_table) as receiver:
            answer = requests.get(button_url(receiver.url, a, "create", signature, "globex"), timeout=10)
            assert answer.status_code == 401 and stores["globex"].queued(0) == []
        assert globex.tick().runs == [] and globex.projects_for(g) == []
        assert len(acme.tick().runs) == 1 and len(acme.projects_for(a)) == 1
    finally:
        for store in stores.values():
            store.close()
        inbox.close()


def test_tenants_sharing_one_opportunities_table_do_not_load(sandbox, tmp_path):
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump({"tenants": [
        {"name": "acme", "aurora_tenant_id": "t-acme", "api_token_env": "KEY_ACME"},
        {"name": "globex", "aurora_tenant_id": "t-globex", "api_token_env": "KEY_GLOBEX"}]}))
    settings = sandbox_settings(sandbox, tmp_path, tenants_file=path, tenant="acme", opportunities_sync=True)
    with pytest.raises(ValueError, match="tenants acme, globex share one opportunities table.*"
                                         "quickbase_opportunities_table_id_env"):
        build_definitions(settings)
    one = tmp_path / "one.yaml"
    one.write_text(yaml.safe_dump({"tenants": [{"name": "acme", "aurora_tenant_id": "t-acme",
                                                "api_token_env": "KEY_ACME"}]}))
    build_definitions(sandbox_settings(sandbox, tmp_path, tenants_file=one, tenant="acme", opportunities_sync=True))


__all__ = ["MAGIC"]
