"""Site surveys per tenant (issue 13): one partner app enabled on two Aurora tenants, one receiver
on loopback for both, each tenant's survey tables in its own Quickbase app (globex's with a token
of its own). Each tenant's location takes in only its own tenant's site_survey_requested events
into its own tables, and sends only its own completed surveys, to its own tenant in Aurora, with
images Aurora fetches through links that name the tenant (downloaded with that tenant's token)."""

import pytest
import yaml

from aurora_qb_pipeline.clients.partner import PartnerAuroraClient
from aurora_qb_pipeline.clients.quickbase_app import QuickbaseAppClient
from aurora_qb_pipeline.definitions import build_definitions
from aurora_qb_pipeline.defs.resources import build_resources
from aurora_qb_pipeline.sandbox.launcher import MISSING_CHOICE
from aurora_qb_pipeline.sandbox.aurora.synthetic import MODULE_CATALOGUE
from aurora_qb_pipeline.settings import Credentials, Settings
from aurora_qb_pipeline.site_surveys.receiver_routes import routes_from_environment
from aurora_qb_pipeline.site_surveys.subscribe import subscribe_site_surveys
from aurora_qb_pipeline.site_surveys.tables import ensure_tables, load_spec
from aurora_qb_pipeline.webhooks.inbox import Inbox
from aurora_qb_pipeline.webhooks.receiver import ReceiverThread, create_receiver_app

from .conftest import PNG, SECRET, SURVEY_SCOPES, SurveyApp
from .test_site_survey_flow import fill

NAMES = ("acme", "globex")


class TenantSurveys(SurveyApp):
    """One tenant's location and its survey tables (SurveyApp's surveyor helpers over them)."""

    def __init__(self, name, sandbox, instance, settings, credentials, qb):
        self.name, self.sandbox, self.instance, self.settings, self.qb = name, sandbox, instance, settings, qb
        self.tenant_id = credentials.aurora_tenant_id
        self.tables = ensure_tables(qb, load_spec(), credentials.quickbase_table_id)
        self.defs = build_definitions(settings, build_resources(settings, credentials))
        self.cursors = {}

    def request(self):
        tenant = self.sandbox.aurora.tenants[self.tenant_id]
        project_id = next(p for p, ds in tenant.project_design_ids.items() if ds)
        request = self.sandbox.aurora.request_site_survey(project_id)
        self.sandbox.aurora.webhooks.wait_settled()
        return request


@pytest.fixture
def tenants(survey_sandbox, instance, tmp_path, monkeypatch):
    sandbox = survey_sandbox
    made = {name: sandbox.add_tenant(seed=seed, projects=2) for name, seed in zip(NAMES, (501, 502))}
    app = sandbox.aurora.create_partner_application("Quickbase Site Surveys", SURVEY_SCOPES,
                                                    tenant_ids=[t["tenant_id"] for t in made.values()])
    qb_state = sandbox.quickbase
    # globex keeps its Quickbase tables in an app of its own, reached with a token of its own
    globex_app = qb_state.add_app("Globex Solar", "Globex's own app.")
    globex_token = qb_state.add_token([globex_app.id])
    globex_designs = qb_state.add_design_table(globex_app.id, [m for m in MODULE_CATALOGUE if m != MISSING_CHOICE])
    quickbase = {"acme": (qb_state.app_id, str(qb_state.token), made["acme"]["table_id"]),
                 "globex": (globex_app.id, globex_token, str(globex_designs.id))}
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump({"tenants": [
        {"name": "acme", "aurora_tenant_id": made["acme"]["tenant_id"], "api_token_env": "AURORA_API_TOKEN_ACME",
         "quickbase_table_id_env": "QB_TABLE_ID_ACME"},
        {"name": "globex", "aurora_tenant_id": made["globex"]["tenant_id"], "api_token_env": "AURORA_API_TOKEN_GLOBEX",
         "quickbase_table_id_env": "QB_TABLE_ID_GLOBEX", "quickbase_user_token_env": "QB_USER_TOKEN_GLOBEX",
         "quickbase_app_id": globex_app.id}]}))
    env = {**sandbox.env(), "AURORA_PARTNER_APPLICATION_ID": app["application_id"],
           "AURORA_PARTNER_APPLICATION_KEY": app["application_key"], "AURORA_QB_WEBHOOK_SECRET": SECRET}
    inbox_url = f"sqlite:///{tmp_path / 'webhook_inbox.sqlite'}"
    inbox = Inbox(inbox_url)
    receiver = ReceiverThread(None)
    options = Settings.from_env(env).client_options()
    clients = {name: QuickbaseAppClient(base_url=sandbox.quickbase_url, realm_hostname=qb_state.realm,
                                        user_token=token, app_id=app_id, table_id=table, options=options)
               for name, (app_id, token, table) in quickbase.items()}
    # the receiver as `aurora-qb webhooks serve` builds it from its environment: each tenant's image
    # links downloaded with that tenant's Quickbase token
    served = {**env, "AURORA_QB_TENANTS_FILE": str(path), "AURORA_QB_WEBHOOK_PUBLIC_URL": receiver.url,
              "QB_USER_TOKEN_GLOBEX": globex_token}
    for name, value in served.items():
        monkeypatch.setenv(name, value)
    receiver.app = create_receiver_app(inbox, [SECRET], routes_from_environment(Settings.from_env(), SECRET))
    receiver.start()
    partner = PartnerAuroraClient(base_url=sandbox.aurora_url, application_id=app["application_id"],
                                  application_key=app["application_key"], tenant_id=made["acme"]["tenant_id"],
                                  options=options)
    subscribe_site_surveys(partner, receiver.url, SECRET)  # one partner subscription: every tenant's requests
    located = {}
    for name, (app_id, token, table) in quickbase.items():
        settings = Settings.from_env(env, duckdb_path=tmp_path / "aurora_qb.duckdb",
                                     rate_limit_db=tmp_path / "rate_limits.sqlite", inbox_url=inbox_url,
                                     webhook_public_url=receiver.url, tenants_file=path, tenant=name)
        credentials = Credentials(made[name]["tenant_id"], made[name]["api_token"], qb_state.realm, token, table,
                                  aurora_partner_application_key=app["application_key"], webhook_secret=SECRET)
        located[name] = TenantSurveys(name, sandbox, instance, settings, credentials, clients[name])
    yield located
    receiver.stop()
    partner.close()
    for client in clients.values():
        client.close()
    inbox.close()


def test_each_tenant_takes_in_and_sends_only_its_own_surveys(tenants, survey_sandbox):
    acme, globex = tenants["acme"], tenants["globex"]
    assert acme.tables.surveys.id != globex.tables.surveys.id
    mine = {t.name: t.request() for t in (acme, globex)}
    assert survey_sandbox.aurora.tenants[globex.tenant_id].site_surveys[mine["globex"]["id"]]

    outcome = acme.take_in()
    assert len(outcome.runs) == 1
    keys = {t.name: [r.get(t.tables.surveys.key_field_id) for r in t.surveys()] for t in (acme, globex)}
    assert keys == {"acme": [mine["acme"]["id"]], "globex": []}  # acme's event only, into acme's table
    assert acme.take_in().skip_reason  # read; nothing more
    assert len(globex.take_in().runs) == 1
    assert [r.get(globex.tables.surveys.key_field_id) for r in globex.surveys()] == [mine["globex"]["id"]]
    assert [r.get(acme.tables.surveys.key_field_id) for r in acme.surveys()] == [mine["acme"]["id"]]

    # globex's surveyor completes the survey in globex's app: only globex's location sends it
    request_id = mine["globex"]["id"]
    fill(globex, request_id)
    globex.edit(request_id, **{"Survey Status": "Completed"})
    assert acme.send().skip_reason
    assert len(globex.send().runs) == 1
    view = survey_sandbox.aurora.site_survey(request_id)
    assert view["status"] == "completed"
    images = survey_sandbox.aurora.wait_for_image_fetches(request_id)
    assert images and all(i["status"] == "fetched" and i["bytes"] == len(PNG) for i in images), images
    assert survey_sandbox.aurora.site_survey(mine["acme"]["id"])["status"] == "requested"  # acme's untouched


def test_tenants_sharing_the_survey_app_stand_down(survey_sandbox, instance, tmp_path):
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump({"tenants": [
        {"name": "acme", "aurora_tenant_id": "t-acme", "api_token_env": "KEY_ACME"},
        {"name": "globex", "aurora_tenant_id": "t-globex", "api_token_env": "KEY_GLOBEX"}]}))
    env = {**survey_sandbox.env(), "AURORA_PARTNER_APPLICATION_ID": "app-1",
           "AURORA_PARTNER_APPLICATION_KEY": "key", "AURORA_QB_WEBHOOK_SECRET": SECRET}
    settings = Settings.from_env(env, tenants_file=path, tenant="acme", dagster_home=tmp_path)
    located = TenantSurveys.__new__(TenantSurveys)
    located.defs, located.instance, located.cursors = build_definitions(
        settings, build_resources(settings, Credentials.from_env(env))), instance, {}
    for outcome in (located.take_in(), located.send()):
        assert "tenants acme, globex share the Quickbase app" in outcome.skip_reason
        assert "quickbase_app_id" in outcome.skip_reason
