"""Fixtures of the site-survey flow: both sandboxes, a site-survey partner app enabled on the
tenant, the receiver on loopback (webhooks + the signed image links), the survey tables made in
the Quickbase sandbox through the API from the YAML spec, and the partner subscription made as
`aurora-qb site-surveys subscribe` makes it."""

import base64

import pytest

from aurora_qb_pipeline.clients.partner import PartnerAuroraClient
from aurora_qb_pipeline.clients.quickbase_app import QuickbaseAppClient
from aurora_qb_pipeline.definitions import build_definitions
from aurora_qb_pipeline.defs.site_surveys.sensors import COMPLETION_SENSOR, REQUEST_SENSOR
from aurora_qb_pipeline.runner import tick
from aurora_qb_pipeline.sandbox.launcher import start_sandbox
from aurora_qb_pipeline.sandbox.quickbase import DESIGN_ID_FIELD
from aurora_qb_pipeline.settings import Credentials, Settings
from aurora_qb_pipeline.site_surveys.file_links import FileLinks
from aurora_qb_pipeline.site_surveys.receiver_routes import file_routes
from aurora_qb_pipeline.site_surveys.subscribe import subscribe_site_surveys
from aurora_qb_pipeline.site_surveys.tables import ensure_tables, load_spec
from aurora_qb_pipeline.webhooks.inbox import Inbox
from aurora_qb_pipeline.webhooks.receiver import ReceiverThread, create_receiver_app
from aurora_qb_pipeline_tests.conftest import Pipeline

SECRET = "test-webhook-secret-5f2c9a7e41"
SURVEY_SCOPES = ["read_projects", "read_designs", "read_site_surveys", "write_site_surveys"]
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


class SurveyApp:
    """The whole site-survey setup of one test, and what a surveyor does in Quickbase."""

    def __init__(self, sandbox, tmp_path, instance):
        self.sandbox, self.instance = sandbox, instance
        app = sandbox.aurora.create_partner_application("Quickbase Site Surveys", SURVEY_SCOPES)
        self.application_id = app["application_id"]
        env = {**sandbox.env(), "AURORA_PARTNER_APPLICATION_ID": self.application_id,
               "AURORA_PARTNER_APPLICATION_KEY": app["application_key"], "AURORA_QB_WEBHOOK_SECRET": SECRET}
        self.inbox = Inbox(f"sqlite:///{tmp_path / 'webhook_inbox.sqlite'}")
        self.receiver = ReceiverThread(None)
        self.settings = Settings.from_env(
            env, duckdb_path=tmp_path / "aurora_qb.duckdb", rate_limit_db=tmp_path / "rate_limits.sqlite",
            inbox_url=f"sqlite:///{tmp_path / 'webhook_inbox.sqlite'}", webhook_public_url=self.receiver.url)
        self.credentials = Credentials.from_env(env)
        options = self.settings.client_options()
        self.qb = QuickbaseAppClient(base_url=sandbox.quickbase_url, realm_hostname=sandbox.quickbase.realm,
                                     user_token=sandbox.quickbase.token, app_id=sandbox.quickbase.app_id,
                                     table_id=sandbox.quickbase.table_id, options=options)
        self.links = FileLinks(SECRET, self.receiver.url)
        self.receiver.app = create_receiver_app(self.inbox, [SECRET], file_routes(self.links, lambda: self.qb))
        self.receiver.start()
        self.tables = ensure_tables(self.qb, load_spec(), sandbox.quickbase.table_id)
        self.aurora = PartnerAuroraClient(base_url=sandbox.aurora_url, application_id=self.application_id,
                                          application_key=app["application_key"],
                                          tenant_id=sandbox.aurora.primary.tenant_id, options=options)
        subscribe_site_surveys(self.aurora, self.receiver.url, SECRET)
        self.pipeline = Pipeline(sandbox, instance, self.settings, self.credentials)
        self.defs = build_definitions(self.settings, self.pipeline.resources)
        self.cursors = {}

    def close(self):
        self.receiver.stop()
        self.aurora.close()
        self.qb.close()
        self.inbox.close()

    # --- Aurora side --------------------------------------------------------------------------
    def request_survey(self, project_id=None, with_design_record=True):
        """An Aurora user requests a survey; waits until the webhook reached the receiver."""
        aurora = self.sandbox.aurora
        project_id = project_id or next(p for p, ds in aurora.primary.project_design_ids.items() if ds)
        design_id = aurora.primary.project_design_ids[project_id][-1]
        if with_design_record:  # the design as the export made it in the designs table
            self.sandbox.quickbase.add_records(None, [{DESIGN_ID_FIELD: design_id, 21: project_id}], DESIGN_ID_FIELD)
        request = aurora.request_site_survey(project_id)
        aurora.webhooks.wait_settled()
        return request

    def survey_view(self, request_id):
        return self.sandbox.aurora.site_survey(request_id)

    # --- the pipeline -------------------------------------------------------------------------
    def tick(self, sensor):
        outcome = tick(self.defs, self.instance, sensor, cursor=self.cursors.get(sensor))
        self.cursors[sensor] = outcome.cursor
        for run in outcome.runs:
            assert run.success, [e.message for e in run.all_events if e.is_failure]
        return outcome

    def take_in(self):
        return self.tick(REQUEST_SENSOR)

    def send(self):
        return self.tick(COMPLETION_SENSOR)

    # --- Quickbase side (what a surveyor does) ------------------------------------------------
    def surveys(self):
        return self.sandbox.quickbase.records(self.tables.surveys.id)

    def survey(self, request_id):
        key = self.tables.surveys.key_field_id
        return next(r for r in self.surveys() if r.get(key) == request_id)

    def edit(self, request_id, **labels):
        """The surveyor edits the survey record: ``labels`` as {"Main Bus Rating (A)": 200, ...}."""
        record = self.survey(request_id)
        fid = self.tables.surveys.fid
        values = {fid(label.replace("_", " ")): value for label, value in labels.items()}
        return self.sandbox.quickbase.edit_record(self.tables.surveys.id, record[3], values)

    def add_child(self, table, request_id, **labels):
        record = self.survey(request_id)
        values = {table.fid(label): value for label, value in labels.items()}
        values[table.reference_field_id] = record[3]
        result = self.sandbox.quickbase.add_records(table.id, [values])
        assert not result.line_errors, result.line_errors
        return result.record_ids["created"][0]


def photo(name="panel.png"):
    return {"fileName": name, "data": base64.b64encode(PNG).decode()}


@pytest.fixture
def survey_sandbox():
    with start_sandbox(projects=6, designs_per_project=2, seed=21, time_scale=0.01) as sb:
        yield sb


@pytest.fixture
def survey_app(survey_sandbox, tmp_path, instance):
    app = SurveyApp(survey_sandbox, tmp_path, instance)
    yield app
    app.close()
