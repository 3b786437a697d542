"""Site surveys end to end on real servers: Aurora's webhook to the receiver, a Quickbase survey
record, a surveyor completing it in Quickbase, the upload to Aurora (images fetched by Aurora
through the receiver's signed links) and the completion; 422s written back and a fixed survey
sent once more; the same webhook delivered twice."""

from urllib.parse import urlencode

import requests

from aurora_qb_pipeline.sandbox.aurora.image_fetch import PENDING
from aurora_qb_pipeline.webhooks.events import SECRET_HEADER
from aurora_qb_pipeline_tests.site_surveys.conftest import PNG, SECRET, photo

ELECTRICAL = {"Main Panel Location": "garage", "Main Bus Rating (A)": 200, "Main Breaker Rating (A)": 175,
              "Service Type": "single_phase_120_240v", "Existing Grounding": "ground_rod",
              "Main Panel Manufacturer": "Square D", "Electrical Notes": "Label faded."}
PLANE = {"Units of Measurement": "imperial", "Pitch (deg)": 26.6, "Azimuth (deg)": 182.5, "Roof Type": "comp_shingle",
         "Framing Type": "rafters", "Rafter Size": "2x6", "Rafter Spacing": 24}


def fill(app, request_id, **overrides):
    """The surveyor's work: electrical data with a photo, one subpanel, one mounting plane."""
    electrical = {**ELECTRICAL, **overrides}
    app.edit(request_id, **{k: v for k, v in electrical.items() if v is not None}, **{"Main Panel Photo": photo()})
    app.add_child(app.tables.subpanels, request_id, **{"Location": "garage", "Bus Rating (A)": 100,
                                                       "Disconnect Size (A)": 60, "Photo": photo("sub.png")})
    app.add_child(app.tables.planes, request_id, **PLANE)


def test_request_to_quickbase_to_completed_in_aurora(survey_app):
    app = survey_app
    request = app.request_survey()
    request_id, design_id = request["id"], request["requested_for_design_id"]

    outcome = app.take_in()
    assert len(outcome.runs) == 1
    survey = app.survey(request_id)
    fid = app.tables.surveys.fid
    project = app.sandbox.aurora.primary.projects[request["project_id"]]
    assert survey[fid("Survey Status")] == "Requested"
    assert survey[fid("Aurora Design ID")] == design_id and survey[fid("Aurora Project ID")] == request["project_id"]
    assert project["customer_last_name"] in survey[fid("Customer Name")]
    assert survey[fid("Customer Email")] == project["customer_email"]
    assert survey[fid("Site Address")] == project["location"]["property_address"]
    assert survey[fid("Requested At")]
    screenshot = survey[fid("Design Screenshot")]
    assert len(screenshot) == 1 and screenshot[0].content.startswith(b"\x89PNG")  # copied, not linked
    designs = app.sandbox.quickbase.records(None)
    design_record = next(r[3] for r in designs if r[20] == design_id)
    assert survey[app.tables.surveys.reference_field_id] == design_record  # linked to the design's record

    assert app.send().skip_reason  # nothing completed yet
    fill(app, request_id)
    app.edit(request_id, **{"Survey Status": "Completed"})
    outcome = app.send()
    assert len(outcome.runs) == 1

    view = app.survey_view(request_id)
    assert view["status"] == "completed" and view["completed_at"]
    assert view["electrical"]["main_panel_location"] == "garage" and view["electrical"]["main_bus_rating"] == 200
    assert view["electrical"]["feeder_type"] is None  # empty in Quickbase: left out, not null
    assert view["subpanels"] == [{"location": "garage", "disconnect_location": None, "bus_rating": 100,
                                  "disconnect_size": 60, "notes": None, "images": view["subpanels"][0]["images"]}]
    assert view["mounting_planes"][0]["rafter_spacing"] == 24 and view["mounting_planes"][0]["roof_type"] == "comp_shingle"
    images = app.sandbox.aurora.wait_for_image_fetches(request_id)
    assert sorted(i["where"] for i in images) == ["electrical", "subpanels[0]"]
    assert all(i["status"] == "fetched" and i["bytes"] == len(PNG) for i in images), images  # via the receiver
    assert all(i["url"].startswith(app.receiver.url + "/quickbase/files/") for i in images)

    survey = app.survey(request_id)
    assert survey[fid("Survey Status")] == "Sent to Aurora" and not survey[fid("Aurora Messages")]
    assert survey[fid("Sent to Aurora At")]
    assert app.send().skip_reason  # sent once; nothing more to do


def test_422_written_back_and_fixed_survey_sent_once(survey_app):
    app = survey_app
    request_id = app.request_survey()["id"]
    app.take_in()
    fill(app, request_id, **{"Main Breaker Rating (A)": None})
    app.add_child(app.tables.subpanels, request_id, **{"Location": "attic", "Bus Rating (A)": 100.5})
    app.edit(request_id, **{"Survey Status": "Completed"})
    app.send()

    fid = app.tables.surveys.fid
    survey = app.survey(request_id)
    assert survey[fid("Survey Status")] == "Needs Fixes"
    assert survey[fid("Aurora Messages")].splitlines() == ["subpanels[1].bus_rating must be an integer, got 100.5."]
    view = app.survey_view(request_id)
    assert view["status"] == "requested"
    attempts = [(h["action"], h["outcome"]) for h in view["history"]]
    assert attempts == [("electrical", 200), ("subpanels", 422), ("mounting_planes", 200)]  # not completed

    for _ in range(2):  # unchanged: never sent again
        assert app.send().skip_reason
    assert len(app.survey_view(request_id)["history"]) == 3

    bad = next(r for r in app.sandbox.quickbase.records(app.tables.subpanels.id)
               if r[app.tables.subpanels.fid("Location")] == "attic")
    app.sandbox.quickbase.edit_record(app.tables.subpanels.id, bad[3], {app.tables.subpanels.fid("Bus Rating (A)"): 125})
    app.edit(request_id, **{"Survey Status": "Completed"})  # the surveyor sends it again
    app.send()
    survey = app.survey(request_id)
    assert survey[fid("Survey Status")] == "Needs Fixes"
    assert survey[fid("Aurora Messages")] == "electrical.main_breaker_rating is required at completion."

    app.edit(request_id, **{"Main Breaker Rating (A)": 150, "Survey Status": "Completed"})
    outcome = app.send()
    assert len(outcome.runs) == 1
    assert app.survey(request_id)[fid("Survey Status")] == "Sent to Aurora"
    view = app.survey_view(request_id)
    assert view["status"] == "completed" and [s["bus_rating"] for s in view["subpanels"]] == [100, 125]
    statuses = [h["outcome"] for h in view["history"] if h["action"] == "status"]
    assert statuses == [422, 200]  # each fix sent once
    assert app.send().skip_reason


def test_same_webhook_delivered_twice_makes_one_survey(survey_app):
    app = survey_app
    request_id = app.request_survey()["id"]
    assert len(app.sandbox.aurora.webhooks.deliveries("site_survey_requested")) == 1
    row = app.inbox.latest(1)[0]  # what Aurora sent (its delivery log masks the session token)
    assert row.event == "site_survey_requested" and row.params["site_survey_request_id"] == request_id
    url = f"{app.receiver.url}/aurora/events/site_survey_requested?{urlencode(row.params)}"

    def deliver_again():
        answer = requests.get(url, headers={SECRET_HEADER: SECRET}, timeout=5)
        assert answer.status_code == 200, answer.text

    deliver_again()  # before any run read it: one inbox row, two deliveries
    assert app.inbox.summary()["events"] == 1
    app.take_in()
    deliver_again()  # after: stored again (it might be news), taken in again: still one record
    outcome = app.take_in()
    assert len(outcome.runs) == 1
    app.edit(request_id, **{"Survey Status": "In Progress"})
    deliver_again()
    app.take_in()

    key = app.tables.surveys.key_field_id
    records = [r for r in app.surveys() if r.get(key) == request_id]
    assert len(records) == 1
    fid = app.tables.surveys.fid
    assert records[0][fid("Survey Status")] == "In Progress"  # the surveyor's status is kept
    assert len(records[0][fid("Design Screenshot")]) == 1  # copied once


def test_image_links_are_signed(survey_app):
    app = survey_app
    request_id = app.request_survey()["id"]
    app.take_in()
    survey = app.survey(request_id)
    from aurora_qb_pipeline.site_surveys.file_links import FileRef

    ref = FileRef(app.tables.surveys.id, survey[3], app.tables.surveys.fid("Design Screenshot"), 1, "shot.png")
    good = app.links.url(ref)
    answer = requests.get(good, timeout=5)
    assert answer.status_code == 200 and answer.content.startswith(b"\x89PNG") and answer.headers["content-type"] == "image/png"
    token = good.split("/quickbase/files/")[1].split("/")[0]
    body, signature = token.split(".")
    forged = good.replace(token, body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + signature)
    assert requests.get(forged, timeout=5).status_code == 403
    assert PENDING  # (imported for the flow test)


def test_expired_screenshot_does_not_lose_the_survey(survey_app):
    app = survey_app
    app.sandbox.aurora.services.screenshot_url_ttl_s = 0.001  # expired before it is fetched
    request_id = app.request_survey()["id"]
    app.take_in()
    fid = app.tables.surveys.fid
    survey = app.survey(request_id)
    assert survey[fid("Survey Status")] == "Requested" and not survey.get(fid("Design Screenshot"))
    app.sandbox.aurora.services.screenshot_url_ttl_s = 24 * 3600.0
    row = app.inbox.latest(1)[0]
    answer = requests.get(f"{app.receiver.url}/aurora/events/site_survey_requested?{urlencode(row.params)}",
                          headers={SECRET_HEADER: SECRET}, timeout=5)  # Aurora delivers it again
    assert answer.status_code == 200
    app.take_in()
    assert len(app.survey(request_id)[fid("Design Screenshot")]) == 1


def test_survey_already_completed_in_aurora_is_only_marked_sent(survey_app):
    """A run completed the request in Aurora but could not write back to Quickbase; the survey is
    sent again (status still Completed): nothing is uploaded, the outcome is written."""
    app = survey_app
    request_id = app.request_survey()["id"]
    app.take_in()
    fill(app, request_id)
    app.aurora.put_electrical(request_id, {"main_panel_location": "garage", "main_bus_rating": 200,
                                           "main_breaker_rating": 175})
    app.aurora.complete_site_survey(request_id)
    before = len(app.survey_view(request_id)["history"])
    app.edit(request_id, **{"Survey Status": "Completed"})
    app.send()
    assert len(app.survey_view(request_id)["history"]) == before  # no upload refused as "completed"
    assert app.survey(request_id)[app.tables.surveys.fid("Survey Status")] == "Sent to Aurora"
