"""On the documented API only: a tenant that answers 404 to the design-request list (as Aurora
does), the list sensor standing down without failing, and the design requests the pipeline knows
of polled one by one until they are final."""

import json

from aurora_qb_pipeline.defs.aurora.sensors import LIST_ABSENT
from aurora_qb_pipeline.defs.webhooks.sensors import WebhookTuning
from aurora_qb_pipeline.runner import tick
from aurora_qb_pipeline.webhooks.resolve import PollingTuning

from .conftest import EventPath

DUE_AT_ONCE = WebhookTuning(polling=PollingTuning(first_check_after_s=0))


def _aurora_requests(sandbox, path_part=""):
    return [e for e in sandbox.aurora.log.entries() if path_part in e.path]


def test_a_tenant_without_the_list_endpoint_fails_no_tick(pipeline):
    sandbox = pipeline.sandbox
    sandbox.aurora.set_tenant_options(design_request_list=False)
    first = tick(pipeline.defs, pipeline.instance, "design_request_sensor")
    assert first.skip_reason == LIST_ABSENT and not first.runs
    state = json.loads(first.cursor)
    assert state["list_absent_since"] and state["list_probed_at"]
    sandbox.aurora.log.clear()
    again = tick(pipeline.defs, pipeline.instance, "design_request_sensor", cursor=first.cursor)
    assert again.skip_reason == LIST_ABSENT
    assert _aurora_requests(sandbox) == []  # asked again only a day later
    assert json.loads(again.cursor) == state


def test_followed_design_requests_are_polled_until_final(pipeline, inbox):
    sandbox, aurora = pipeline.sandbox, pipeline.sandbox.aurora
    aurora.set_tenant_options(design_request_list=False)
    tenant = aurora.primary
    residential = [p for p in tenant.projects.values() if p["project_type"] == "residential"]
    # created by the pipeline (issue 14) and recorded in the inbox as followed; no webhook arrives
    kept = aurora.create_design_request(tenant.tenant_id, residential[0]["id"])
    refused = aurora.create_design_request(tenant.tenant_id, residential[1]["id"])
    for request in (kept, refused):
        inbox.track_design_request(request["id"], source="pipeline", project_id=request["project_id"],
                                   status="submitted")
    path = EventPath(pipeline, DUE_AT_ONCE)
    assert path.tick().skip_reason  # both still submitted

    aurora.complete_design_request(kept["id"])
    aurora.reject_design_request(refused["id"])
    completed = path.tick()
    assert completed.new_partitions == [kept["project_id"]] and [r.success for r in completed.runs] == [True]
    followed = inbox.tracked_design_requests([kept["id"], refused["id"]])
    assert (followed[kept["id"]].status, followed[kept["id"]].final) == ("designer_completed", False)
    assert (followed[refused["id"]].status, followed[refused["id"]].final) == ("designer_rejected", True)

    accepted = aurora.accept_design_request(tenant.tenant_id, kept["id"])  # in the app: no webhook subscribed
    outcome = path.tick()
    assert [r.success for r in outcome.runs] == [True]
    assert inbox.tracked_design_requests([kept["id"]])[kept["id"]].final
    assert inbox.design_projects([accepted["design_id"]]) == {accepted["design_id"]: kept["project_id"]}
    assert accepted["design_id"] in {r[20] for r in pipeline.qb_records()}

    listed = [e for e in sandbox.aurora.log.entries() if e.method == "GET" and e.path.endswith("/design_requests")]
    assert listed == []  # only the documented retrieve, request by request
    sandbox.aurora.log.clear()
    assert path.tick().skip_reason and _aurora_requests(sandbox) == []  # nothing left to poll
