"""A site survey whose run failed on an outage is not left behind the sensors' cursors: the sensor
follows its run by status and launches exactly the failed surveys again after a backoff
(``defs/site_surveys/retry.py``). The outage is a sandbox scripted failure (``sandbox/failures.py``)
that outlives the client's retries."""

import json
import time

from aurora_qb_pipeline.definitions import build_definitions
from aurora_qb_pipeline.defs.site_surveys.retry import BATCH_TAG
from aurora_qb_pipeline.defs.site_surveys.sensors import COMPLETION_SENSOR, REQUEST_SENSOR, RequestCursor
from aurora_qb_pipeline.runner import tick
from aurora_qb_pipeline_tests.site_surveys.test_site_survey_flow import fill

INTERVAL_S = 150  # first retry after 150 * time scale 0.01 = 1.5 s


def slow_backoff(app):
    app.settings = app.settings.model_copy(update={"site_survey_interval_s": INTERVAL_S})
    app.defs = build_definitions(app.settings, app.pipeline.resources)


def raw_tick(app, sensor):
    outcome = tick(app.defs, app.instance, sensor, cursor=app.cursors.get(sensor))
    app.cursors[sensor] = outcome.cursor
    return outcome


def retry_after_backoff(app, sensor):
    """Tick until the retry is due (at most a few backoffs), returning the tick that launched it."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        time.sleep(0.3)
        outcome = raw_tick(app, sensor)
        if outcome.runs:
            return outcome
    raise AssertionError("the failed survey was never sent again")


def test_intake_failed_on_an_outage_is_taken_in_again_after_a_backoff(survey_app):
    app = survey_app
    slow_backoff(app)
    failing = app.request_survey()["id"]
    fine = app.request_survey()["id"]
    tenant = app.sandbox.aurora.primary.tenant_id
    outage = app.sandbox.aurora.failures.add("GET", f"/tenants/{tenant}/site_surveys/{failing}/request",
                                             status=503, times=None)

    first = raw_tick(app, REQUEST_SENSOR)
    assert len(first.runs) == 1 and not first.runs[0].success
    assert outage.served >= 1
    key = app.tables.surveys.key_field_id
    assert [r[key] for r in app.surveys()] == [fine]  # the other request was taken in
    cursor = json.loads(app.cursors[REQUEST_SENSOR])
    assert list(cursor["retry"]) == [] and len(cursor["batches"]) == 1  # verdict read at the next tick

    waiting = raw_tick(app, REQUEST_SENSOR)  # the run failed: the survey waits for its backoff
    assert not waiting.runs and "waiting for a retry" in waiting.skip_reason
    assert list(json.loads(app.cursors[REQUEST_SENSOR])["retry"]) == [failing]
    outage.clear()

    again = retry_after_backoff(app, REQUEST_SENSOR)
    run = again.runs[0]
    assert run.success
    assert run.dagster_run.run_config["ops"]["take_in_site_surveys"]["config"]["request_ids"] == [failing]
    assert BATCH_TAG in run.dagster_run.tags
    assert sorted(r[key] for r in app.surveys()) == sorted([failing, fine])  # one record each

    done = raw_tick(app, REQUEST_SENSOR)
    assert not done.runs and "waiting" not in done.skip_reason
    cursor = RequestCursor.parse(app.cursors[REQUEST_SENSOR])
    assert cursor.batches == {} and cursor.retry == {}


def test_upload_failed_on_an_outage_is_sent_again_and_old_cursors_still_parse(survey_app):
    app = survey_app
    slow_backoff(app)
    request_id = app.request_survey()["id"]
    app.take_in()
    fill(app, request_id)
    app.edit(request_id, **{"Survey Status": "Completed"})
    outage = app.sandbox.aurora.failures.add("PUT", f"/tenants/.*/site_surveys/{request_id}/electrical",
                                             status=502, times=None)
    first = raw_tick(app, COMPLETION_SENSOR)
    assert len(first.runs) == 1 and not first.runs[0].success
    fid = app.tables.surveys.fid
    assert app.survey(request_id)[fid("Survey Status")] == "Completed"  # past the cursor, still to send
    outage.clear()

    again = retry_after_backoff(app, COMPLETION_SENSOR)
    assert again.runs[0].success
    assert app.survey(request_id)[fid("Survey Status")] == "Sent to Aurora"
    assert app.survey_view(request_id)["status"] == "completed"
    assert "waiting" not in raw_tick(app, COMPLETION_SENSOR).skip_reason

    assert RequestCursor.parse("17").after == 17  # a cursor written before the retries


def test_retry_book_backs_off_gives_up_and_retries_a_batch_whose_run_never_came():
    import logging

    import dagster as dg

    from aurora_qb_pipeline.defs.site_surveys.retry import MAX_ATTEMPTS, NO_RUN_AFTER_S, RetryBook, backoff_s, follow_up

    assert [backoff_s(n, 10, 60) for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]
    log = logging.getLogger("test")
    with dg.DagsterInstance.ephemeral() as instance:
        book = RetryBook()
        now = 1_000_000.0
        book.launch({"a": (0, 7), "b": (MAX_ATTEMPTS, None)}, "m", now)
        follow_up(book, instance, now + 5, 10, 60, log)  # no run yet: waited for
        assert len(book.batches) == 1 and book.retry == {}
        follow_up(book, instance, now + NO_RUN_AFTER_S + 1, 10, 60, log)  # never came: all retried
        assert book.batches == {} and list(book.retry) == ["a"]  # b had its last attempt: given up
        attempts, due, ref = book.retry["a"]
        assert attempts == 1 and due == now + NO_RUN_AFTER_S + 1 + 10 and ref == 7
        assert book.due(due - 1) == {} and book.due(due) == {"a": (1, 7)} and book.retry == {}
