"""The parts of the site-survey app on their own: the table spec and its choice lists, making
the tables twice, the webhook as the receiver reads it, and sensors that stand down unconfigured."""

import dagster as dg
import pytest
import yaml

from aurora_qb_pipeline.api_facts import AURORA_SITE_SURVEY_ENUMS
from aurora_qb_pipeline.definitions import build_definitions
from aurora_qb_pipeline.defs.site_surveys.resources import site_survey_resource
from aurora_qb_pipeline.defs.site_surveys.sensors import build_completion_sensor, build_request_sensor
from aurora_qb_pipeline.defs.webhooks.resources import WebhookInboxResource
from aurora_qb_pipeline.sandbox.aurora import survey_input
from aurora_qb_pipeline.settings import Credentials, Settings
from aurora_qb_pipeline.site_surveys.tables import SPEC_FILE, ensure_tables, load_spec
from aurora_qb_pipeline.webhooks.events import KNOWN_EVENTS, PARTNER_EVENTS, parse_delivery


def test_choice_lists_come_from_the_one_home_of_the_enums():
    spec = load_spec()
    choices = {f.choices_from: f.choices for t in spec.tables for f in t.fields if f.choices_from}
    assert set(choices) == set(AURORA_SITE_SURVEY_ENUMS)  # every enum of the guide is a choice list
    assert all(choices[name] == list(values) for name, values in AURORA_SITE_SURVEY_ENUMS.items())
    assert survey_input.ENUMS is AURORA_SITE_SURVEY_ENUMS  # the sandbox checks the same values


def test_spec_problems_are_listed(tmp_path):
    raw = yaml.safe_load(SPEC_FILE.read_text())
    raw["tables"][0]["key_field"] = "Nope"
    raw["tables"][1]["fields"][0]["choices_from"] = "colour"
    raw["tables"][2]["parent"]["table"] = "opportunities"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError) as caught:
        load_spec(bad)
    message = str(caught.value)
    assert "key_field 'Nope'" in message and "choices_from 'colour'" in message


def test_tables_made_once(survey_app):
    again = ensure_tables(survey_app.qb, load_spec(), survey_app.sandbox.quickbase.table_id)
    assert again.made == []  # the fixture made them; nothing to do the second time
    assert again.surveys.id == survey_app.tables.surveys.id
    fields = {f["label"]: f for f in survey_app.qb.fields_of(again.surveys.id)}
    key = fields["Aurora Site Survey Request ID"]
    assert key["unique"] and key["required"]
    planes = {f["label"]: f for f in survey_app.qb.fields_of(again.planes.id)}
    assert planes["Roof Type"]["properties"]["choices"] == list(AURORA_SITE_SURVEY_ENUMS["roof_type"])
    relations = survey_app.qb.relationships(again.planes.id)
    assert [r["parentTableId"] for r in relations] == [again.surveys.id]


def test_the_receiver_reads_site_survey_requested():
    assert "site_survey_requested" in PARTNER_EVENTS and "site_survey_requested" not in KNOWN_EVENTS
    event = parse_delivery("site_survey_requested",
                           "site_survey_request_id=3fa85f64-5717&tenant_id=t-1&session_token=st_ab12&token=secret")
    assert event.known and event.tenant_id == "t-1"
    assert event.params == {"site_survey_request_id": "3fa85f64-5717", "tenant_id": "t-1", "session_token": "st_ab12"}
    template = PARTNER_EVENTS["site_survey_requested"].template("https://hooks.example.com")
    assert template == ("https://hooks.example.com/aurora/events/site_survey_requested?site_survey_request_id="
                        "<SITE_SURVEY_REQUEST_ID>&tenant_id=<TENANT_ID>&session_token=<SESSION_TOKEN>")


def test_sensors_stand_down_until_configured(tmp_path):
    settings = Settings(QB_APP_ID="bq1", AURORA_QB_INBOX_URL=f"sqlite:///{tmp_path / 'inbox.sqlite'}")
    credentials = Credentials("tenant", "key", "realm.quickbase.com", "qb-token", "bq2table")
    resources = {"site_surveys": site_survey_resource(settings, credentials),
                 "webhook_inbox": WebhookInboxResource(url=settings.inbox_database_url)}
    for sensor in (build_request_sensor(settings), build_completion_sensor(settings)):
        with dg.build_sensor_context(resources=resources) as context:
            result = sensor(context)
        assert isinstance(result, dg.SkipReason)
        assert "AURORA_PARTNER_APPLICATION_ID" in result.skip_message
        assert "AURORA_PARTNER_APPLICATION_KEY" in result.skip_message


def test_init_tables_command(survey_sandbox, tmp_path, capsys):
    from aurora_qb_pipeline.cli import main

    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in survey_sandbox.env().items()))
    assert main(["site-surveys", "init-tables", "--env-file", str(env_file)]) == 0
    first = capsys.readouterr().out
    assert "table Site Surveys" in first and "relationship Site Surveys -> designs" in first
    assert main(["site-surveys", "init-tables", "--env-file", str(env_file)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    names = {t["name"] for t in survey_sandbox.quickbase.describe()["apps"][0]["tables"]}
    assert {"Site Surveys", "Site Survey Subpanels", "Site Survey Mounting Planes"} <= names


def test_survey_links_to_the_opportunity_of_its_project(survey_app):
    """Issue 14's opportunities: a survey whose project was made for an opportunity (its
    external_provider_id is the opportunity's Record ID#) is linked to it, when the survey table
    has the optional reference; a table made before (no such field) keeps working unlinked."""
    app = survey_app
    sandbox = app.sandbox
    opportunities_id = sandbox.quickbase.opportunities_table_id
    made = sandbox.quickbase.add_records(opportunities_id, [{}]).record_ids["created"][0]
    project_id = next(p for p, ds in sandbox.aurora.primary.project_design_ids.items() if ds)
    sandbox.aurora.primary.projects[project_id]["external_provider_id"] = str(made)

    before = app.request_survey(project_id)["id"]  # the survey table as made before: no opportunity link
    assert "opportunities" not in app.tables.surveys.links
    app.take_in()
    assert "Related Opportunity" not in app.tables.surveys.fields

    tables = ensure_tables(app.qb, load_spec(), sandbox.quickbase.table_id, opportunities_id)
    assert tables.made == ["relationship Site Surveys -> opportunities"]
    assert ensure_tables(app.qb, load_spec(), sandbox.quickbase.table_id, opportunities_id).made == []
    reference = tables.surveys.links["opportunities"]
    assert reference == tables.surveys.fid("Related Opportunity")
    app.defs = build_definitions(app.settings, app.pipeline.resources)  # a new code location load

    after = app.request_survey(project_id)["id"]
    app.take_in()
    assert app.survey(after)[reference] == made
    assert not app.survey(before).get(reference)  # taken in before the link existed
    other = next(p for p, ds in sandbox.aurora.primary.project_design_ids.items() if ds and p != project_id)
    unlinked = app.request_survey(other)["id"]  # a project not made from an opportunity
    app.take_in()
    assert not app.survey(unlinked).get(reference)
