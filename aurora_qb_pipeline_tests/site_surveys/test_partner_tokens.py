"""Partner-app authentication against the Aurora sandbox: temporary tokens from the application
key, cached until shortly before expires_at, refreshed on a 401 (also in the middle of a run),
the webhook's session token used when it still works, and the key never in an error."""

import threading
import time

import pytest

from aurora_qb_pipeline.clients.http import AuthenticationError
from aurora_qb_pipeline.clients.partner import PartnerAuroraClient, parse_expires_at
from aurora_qb_pipeline_tests.site_surveys.test_site_survey_flow import fill

CREATE_TOKEN = r"/partner_applications/[^/]+/tenants/[^/]+/create_token"


def token_requests(sandbox):
    return [e for e in sandbox.aurora.log.entries() if e.path.endswith("/create_token")]


def test_expires_at_format():
    assert parse_expires_at("2023-07-29 04:30:46 UTC") == 1690605046.0
    assert parse_expires_at("2023-07-29T04:30:46Z") == 1690605046.0
    with pytest.raises(ValueError):
        parse_expires_at(None)


def test_token_cached_then_refreshed_before_expiry(survey_app):
    app = survey_app
    request_id = app.request_survey()["id"]
    now = [time.time()]
    client = PartnerAuroraClient(base_url=app.sandbox.aurora_url, application_id=app.application_id,
                                 application_key=app.credentials.aurora_partner_application_key,
                                 tenant_id=app.credentials.aurora_tenant_id, options=app.settings.client_options(),
                                 clock=lambda: now[0])
    try:
        for _ in range(3):
            assert client.get_site_survey_request(request_id)["id"] == request_id
        assert client.tokens.exchanges == 1  # one token for every request
        expiry = client.tokens._tokens[app.credentials.aurora_tenant_id].expires_at
        now[0] = expiry - client.tokens.refresh_margin_s / 2  # shortly before expires_at: due
        client.get_site_survey_request(request_id)
        assert client.tokens.exchanges == 2
        assert not [e for e in app.sandbox.aurora.log.entries() if e.status == 401]  # never refused
    finally:
        client.close()


def test_token_expired_mid_run_is_refreshed(survey_app):
    """The token expires while the upload run is between two requests: Aurora answers 401, the
    client makes a new token and sends the request again; the run succeeds."""
    app = survey_app
    request_id = app.request_survey()["id"]
    app.take_in()
    fill(app, request_id)
    app.edit(request_id, **{"Survey Status": "Completed"})
    gate = app.sandbox.aurora.gates.add("PUT", r"/tenants/[^/]+/site_surveys/[^/]+/electrical/subpanels", "before")
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.setdefault("tick", app.send()))
    runner.start()
    try:
        assert gate.wait_reached(20)
        assert app.sandbox.aurora.expire_partner_tokens(app.application_id) >= 1
    finally:
        gate.release()
        runner.join(60)
    assert outcome["tick"].runs and outcome["tick"].runs[0].success
    assert [e.status for e in app.sandbox.aurora.log.entries() if e.path.endswith("/electrical/subpanels")] == [401, 200]
    assert app.survey_view(request_id)["status"] == "completed"
    assert app.survey(request_id)[app.tables.surveys.fid("Survey Status")] == "Sent to Aurora"


def test_session_token_used_then_optional(survey_app):
    app = survey_app
    request_id = app.request_survey()["id"]
    session = app.inbox.latest(1)[0].params["session_token"]
    app.take_in()  # exchanges with the webhook's session token
    assert "session_token=" in token_requests(app.sandbox)[-1].query
    client = PartnerAuroraClient(base_url=app.sandbox.aurora_url, application_id=app.application_id,
                                 application_key=app.credentials.aurora_partner_application_key,
                                 tenant_id=app.credentials.aurora_tenant_id, options=app.settings.client_options())
    try:
        client.use_session_token(session + "x")  # unknown or expired: backend apps may go without
        assert client.get_site_survey_request(request_id)["id"] == request_id
        assert [e.status for e in token_requests(app.sandbox)[-2:]] == [401, 200]
    finally:
        client.close()


def test_wrong_application_key_names_the_variable(survey_app):
    app = survey_app
    request_id = app.request_survey()["id"]
    key = "ak_sand_" + "0" * 32
    client = PartnerAuroraClient(base_url=app.sandbox.aurora_url, application_id=app.application_id,
                                 application_key=key, tenant_id=app.credentials.aurora_tenant_id,
                                 options=app.settings.client_options())
    try:
        with pytest.raises(AuthenticationError) as caught:
            client.get_site_survey_request(request_id)
    finally:
        client.close()
    message = str(caught.value)
    assert "AURORA_PARTNER_APPLICATION_KEY" in message and key not in message
    assert app.application_id not in message and app.credentials.aurora_tenant_id not in message
