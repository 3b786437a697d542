"""The two-way parts per tenant, in small pieces (issue 13; the end-to-end tests are
opportunities/test_tenants.py and site_surveys/test_tenants.py): the tenants file's new optional
fields, the resources a tenant's location gets, an inbox made before the follow-up's tenant
column, and the tenant in button signatures and image links."""

import sqlite3

import dagster as dg
import pytest
import yaml

from aurora_qb_pipeline.defs.resources import build_resources
from aurora_qb_pipeline.opportunities.buttons import sign
from aurora_qb_pipeline.settings import Settings
from aurora_qb_pipeline.site_surveys.file_links import FileLinks, FileRef
from aurora_qb_pipeline.tenant_apps import check_not_shared, opportunities_variable
from aurora_qb_pipeline.tenants import TenantsFileError, parse_tenants
from aurora_qb_pipeline.webhooks.inbox import Inbox

TENANTS = {"tenants": [
    {"name": "acme", "aurora_tenant_id": "t-acme", "api_token_env": "KEY_ACME",
     "quickbase_opportunities_table_id_env": "QB_OPPS_ACME", "quickbase_app_id": "app-acme",
     "quickbase_table_id_env": "QB_TABLE_ACME"},
    {"name": "globex", "aurora_tenant_id": "t-globex", "api_token_env": "KEY_GLOBEX"}]}


def test_new_optional_fields_of_the_tenants_file():
    tenants = parse_tenants(yaml.safe_dump(TENANTS))
    acme, globex = tenants.get("acme"), tenants.get("globex")
    assert opportunities_variable(acme) == "QB_OPPS_ACME" and acme.quickbase_app_id == "app-acme"
    assert opportunities_variable(globex) == "QB_OPPORTUNITIES_TABLE_ID" and globex.quickbase_app_id is None
    bad = {"tenants": [{**TENANTS["tenants"][1], "quickbase_opportunities_table_id_env": "not a name",
                        "quickbase_app_id": ""}]}
    with pytest.raises(TenantsFileError) as caught:
        parse_tenants(yaml.safe_dump(bad))
    assert {p.split(":")[0] for p in caught.value.problems} == {
        "tenants.0.quickbase_opportunities_table_id_env", "tenants.0.quickbase_app_id"}
    # sharing: globex alone uses the default variable, so nobody shares; two on the default do
    check_not_shared(tenants, "globex", "x", opportunities_variable, "setting")
    two = parse_tenants(yaml.safe_dump({"tenants": [TENANTS["tenants"][1], {**TENANTS["tenants"][1], "name": "initech",
                                                                             "aurora_tenant_id": "t-initech"}]}))
    with pytest.raises(ValueError, match="tenants globex, initech share x"):
        check_not_shared(two, "initech", "x", opportunities_variable, "setting")


def test_a_tenant_location_gets_its_own_tables_tenant_and_store(tmp_path):
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump(TENANTS))
    settings = Settings(tenants_file=path, tenant="acme", dagster_home=tmp_path, quickbase_app_id="app-shared",
                        aurora_partner_application_id="partner-1", opportunity_buttons=True)
    resources = build_resources(settings)
    opportunities, surveys = resources["opportunities"], resources["site_surveys"]
    assert opportunities.table_id.env_var_name == "QB_OPPS_ACME" and opportunities.tenant == "acme"
    assert surveys.tenant_id == "t-acme" and surveys.app_id == "app-acme" and surveys.tenant == "acme"
    assert surveys.designs_table_id.env_var_name == "QB_TABLE_ACME"
    globex = build_resources(settings.model_copy(update={"tenant": "globex"}))
    assert globex["opportunities"].table_id.env_var_name == "QB_OPPORTUNITIES_TABLE_ID"
    assert globex["site_surveys"].app_id == "app-shared" and globex["site_surveys"].tenant_id == "t-globex"
    # without a tenant: exactly as before
    plain = build_resources(Settings(dagster_home=tmp_path, aurora_partner_application_id="partner-1"))
    assert plain["opportunities"].tenant is None and plain["site_surveys"].tenant is None
    assert isinstance(plain["site_surveys"].tenant_id, dg.EnvVar)
    assert plain["site_surveys"].tenant_id.env_var_name == "AURORA_TENANT_ID"


def test_an_inbox_made_before_the_tenant_column_gets_it(tmp_path):
    path = tmp_path / "old_inbox.sqlite"
    with sqlite3.connect(path) as conn:  # the follow-up table as it was made before
        conn.execute("CREATE TABLE tracked_design_requests (id VARCHAR(128) PRIMARY KEY, project_id VARCHAR(128), "
                     "design_id VARCHAR(128), status VARCHAR(64), source VARCHAR(32) NOT NULL, final BOOLEAN NOT NULL, "
                     "first_seen_at FLOAT NOT NULL, last_checked_at FLOAT, next_check_at FLOAT NOT NULL, "
                     "checks INTEGER NOT NULL, last_error TEXT)")
        conn.execute("INSERT INTO tracked_design_requests VALUES ('old', 'p', NULL, 'submitted', 'webhook', 0, 1, "
                     "NULL, 1, 0, NULL)")
    inbox = Inbox(f"sqlite:///{path}")
    try:
        inbox.track_design_request("new", source="opportunity", project_id="p2", tenant_id="t-acme", now=2)
        assert inbox.tracked_design_requests(["old"])["old"].tenant_id is None
        assert [r.id for r in inbox.due_design_requests(10, 10, "t-acme")] == ["new"]
        assert [r.id for r in inbox.due_design_requests(10, 10)] == ["old", "new"]
        # what is learned later never takes the tenant away
        inbox.track_design_request("new", source="webhook", status="accepted", final=True)
        assert inbox.tracked_design_requests(["new"])["new"].tenant_id == "t-acme"
    finally:
        inbox.close()
    Inbox(f"sqlite:///{path}").close()  # opening it again is harmless


def test_signatures_and_image_links_name_the_tenant():
    secret = "s" * 32
    assert sign(secret, "tbl", "7", "create") != sign(secret, "tbl", "7", "create", "acme")
    assert sign(secret, "tbl", "7", "create", "acme") != sign(secret, "tbl", "7", "create", "globex")
    ref = FileRef("tbl", 7, 8, 1, "a.png")
    acme = FileLinks(secret, "https://hooks.example.com", tenant="acme")
    token = acme.url(ref).split("/quickbase/files/")[1].split("/")[0]
    assert acme.verify(token).tenant == "acme"
    plain = FileLinks(secret, "https://hooks.example.com")
    assert plain.verify(plain.url(ref).split("/quickbase/files/")[1].split("/")[0]).tenant is None


def test_the_receiver_serves_each_tenants_buttons_from_the_environment(tmp_path, monkeypatch):
    """``aurora-qb webhooks serve``'s app (built from the environment) with a tenants file: one set of
    buttons per tenant whose opportunities table is set, each queuing into that tenant's store."""
    import requests

    from aurora_qb_pipeline.opportunities.buttons import button_url
    from aurora_qb_pipeline.opportunities.store import OpportunityStore
    from aurora_qb_pipeline.webhooks.receiver import ReceiverThread, app_from_environment

    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump(TENANTS))
    secret, inbox_url = "r" * 32, f"sqlite:///{tmp_path / 'inbox.sqlite'}"
    for name, value in {"AURORA_QB_WEBHOOK_SECRET": secret, "AURORA_QB_TENANTS_FILE": str(path),
                        "AURORA_QB_INBOX_URL": inbox_url, "QB_OPPS_ACME": "tbl-acme"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("QB_OPPORTUNITIES_TABLE_ID", raising=False)  # globex's table: not set, no buttons
    with ReceiverThread(app_from_environment()) as receiver:
        good = button_url(receiver.url, "7", "sync", sign(secret, "tbl-acme", "7", "sync", "acme"), "acme")
        assert requests.get(good, timeout=10).status_code == 200
        at_globex = good.replace("/tenants/acme/", "/tenants/globex/")
        assert requests.get(at_globex, timeout=10).status_code == 404
    stores = {name: OpportunityStore(inbox_url, tenant=name) for name in ("acme", "globex")}
    try:
        assert [(q.record_id, q.action) for q in stores["acme"].queued(0)] == [("7", "sync")]
        assert stores["globex"].queued(0) == []
    finally:
        for store in stores.values():
            store.close()
