"""Opportunities flagged ready become Aurora projects and design requests, written back; bad
input is reported on the opportunity and not retried until someone changes it; a rerun or a
second flag never makes a second project."""

from aurora_qb_pipeline.opportunities.sync import STATUS_ERROR, STATUS_REQUESTED


def test_a_ready_opportunity_becomes_a_project_and_a_tracked_design_request(pipeline, opportunities, path):
    rid = opportunities.add()
    waiting = opportunities.add(ready=False, last_name="Hopper")
    path.tick()

    projects = opportunities.projects_for(rid)
    assert len(projects) == 1
    project = projects[0]
    assert project["customer_last_name"] == "Lovelace" and project["external_provider_id"] == rid
    assert project["location"]["property_address"] == "901 Mears Ct, Stanford, CA 94305, USA"
    record = opportunities.get(rid)
    assert record["project_id"] == project["id"]
    assert record["sync_status"] == STATUS_REQUESTED and not record["sync_error"]
    request_id = record["design_request_id"]
    assert pipeline.sandbox.aurora.get_design_request(None, request_id)["project_id"] == project["id"]
    # handed to the design-request tracking of the webhook path, not followed by a second mechanism
    from aurora_qb_pipeline.webhooks.inbox import Inbox

    inbox = Inbox(pipeline.settings.inbox_database_url)
    try:
        tracked = inbox.tracked_design_requests([request_id])[request_id]
    finally:
        inbox.close()
    assert tracked.project_id == project["id"] and tracked.source == "opportunity"
    assert opportunities.projects_for(waiting) == [] and opportunities.get(waiting)["project_id"] is None
    # every opportunity carries its button signatures
    assert len(opportunities.get(waiting)["create_signature"]) == 64


def test_the_same_opportunity_flagged_twice_makes_one_project(pipeline, opportunities, path):
    rid = opportunities.add()
    path.tick()
    opportunities.edit(rid, ready=False)
    opportunities.edit(rid, ready=True)
    path.tick()
    path.tick()
    assert len(opportunities.projects_for(rid)) == 1


def test_an_address_aurora_refuses_is_an_error_on_the_opportunity_and_not_retried_blindly(
        pipeline, opportunities, path):
    rid = opportunities.add(street="Main Street", city="Nowhere", state="ZZ", postal_code="1")
    path.tick()
    record = opportunities.get(rid)
    assert record["sync_status"] == STATUS_ERROR
    assert "could not locate" in record["sync_error"] and "422" in record["sync_error"]
    assert opportunities.projects_for(rid) == []
    posts = len([r for r in pipeline.sandbox.aurora.log.entries() if r.method == "POST"])
    outcome = path.tick()  # unchanged since the error: nothing is sent again
    assert outcome.runs == [] and "1 unchanged since an error" in outcome.skip_reason
    assert len([r for r in pipeline.sandbox.aurora.log.entries() if r.method == "POST"]) == posts

    # the salesperson fixes the address: the next tick tries again, and the error is cleared
    opportunities.edit(rid, street="901 Mears Ct", city="Stanford", state="CA", postal_code="94305")
    path.tick()
    record = opportunities.get(rid)
    assert record["sync_status"] == STATUS_REQUESTED and not record["sync_error"]
    assert len(opportunities.projects_for(rid)) == 1


def test_missing_values_are_reported_all_at_once(pipeline, opportunities, path):
    rid = opportunities.add(last_name=None, city=None, postal_code=None)
    path.tick()
    record = opportunities.get(rid)
    assert record["sync_status"] == STATUS_ERROR
    for label in ("Customer Last Name", "City", "Postal Code"):
        assert f"{label} is empty" in record["sync_error"]
    assert opportunities.projects_for(rid) == []
