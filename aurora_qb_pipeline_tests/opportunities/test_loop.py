"""End to end through the loop: an opportunity in Quickbase -> an Aurora project and design
request -> the design service completes it (the magic address: at once) and a designer accepts
it in the app -> the design-request tracking of the webhook path syncs the project -> the design
is in the designs table, linked to its opportunity."""

from aurora_qb_pipeline.defs.webhooks.sensors import SENSOR_NAME as WEBHOOK_SENSOR
from aurora_qb_pipeline.runner import tick


def test_opportunity_to_design_in_quickbase_linked_to_it(pipeline, opportunities, path):
    rid = opportunities.add()
    path.tick()
    record = opportunities.get(rid)
    request_id = record["design_request_id"]
    aurora = pipeline.sandbox.aurora
    assert aurora.get_design_request(None, request_id)["status"] == "designer_completed"  # magic address
    aurora.accept_design_request(None, request_id)  # a designer accepts the model in Aurora's app
    design_id = aurora.get_design_request(None, request_id)["design_id"]

    outcome = tick(path.defs, pipeline.instance, WEBHOOK_SENSOR)
    assert outcome.runs and all(r.success for r in outcome.runs)
    qb = pipeline.sandbox.quickbase
    reference = qb.field_by_label(qb.table_id, "Opportunity").id
    design_fid = qb.field_by_label(qb.table_id, "Aurora Design ID").id
    designs = {r[design_fid]: r for r in qb.records(qb.table_id)}
    assert designs[design_id][reference] == int(rid)
    assert designs[design_id][qb.field_by_label(qb.table_id, "Aurora Project ID").id] == record["project_id"]
