"""``aurora-qb demo --site-survey``: one site survey walked through on the sandbox.

A site-survey partner app is made and enabled on the sandbox tenant, the survey tables are made
in Quickbase from their spec, the receiver (webhooks and the signed image links) is subscribed to
``site_survey_requested``; an Aurora user requests a survey; the request sensor's run creates the
Quickbase record; a surveyor fills it in but forgets the main breaker rating and marks it
Completed; the completion sensor's run sends it and Aurora's 422 comes back into Quickbase; the
surveyor fixes it; the next run sends it once more and Aurora marks the request completed.
"""

from __future__ import annotations

import argparse
import base64
import secrets
from pathlib import Path

from ..sandbox.launcher import Sandbox
from ..settings import Credentials, Settings

SCOPES = ["read_projects", "read_designs", "read_site_surveys", "write_site_surveys"]
# a 1x1 PNG: the photo a surveyor attaches
PHOTO = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


def run_site_survey_demo(args: argparse.Namespace, sandbox: Sandbox, home: Path) -> bool:
    from ..clients.partner import PartnerAuroraClient
    from ..clients.quickbase_app import QuickbaseAppClient
    from ..definitions import build_definitions
    from ..defs.resources import build_resources
    from ..defs.site_surveys.sensors import COMPLETION_SENSOR, REQUEST_SENSOR
    from ..instance import open_instance
    from ..runner import tick
    from ..site_surveys.file_links import FileLinks
    from ..site_surveys.receiver_routes import file_routes
    from ..site_surveys.subscribe import subscribe_site_surveys
    from ..site_surveys.tables import ensure_tables, load_spec
    from ..webhooks.inbox import Inbox
    from ..webhooks.receiver import ReceiverThread, create_receiver_app

    aurora, quickbase = sandbox.aurora, sandbox.quickbase
    app = aurora.create_partner_application("Quickbase Site Surveys", SCOPES)
    secret = secrets.token_urlsafe(32)
    receiver = ReceiverThread(None)
    env = {**sandbox.env(), "AURORA_PARTNER_APPLICATION_ID": app["application_id"],
           "AURORA_PARTNER_APPLICATION_KEY": app["application_key"], "AURORA_QB_WEBHOOK_SECRET": secret}
    settings = Settings.from_env(env, dagster_home=home, webhook_public_url=receiver.url)
    credentials = Credentials.from_env(env)
    options = settings.client_options()
    qb = QuickbaseAppClient(base_url=sandbox.quickbase_url, realm_hostname=quickbase.realm, user_token=quickbase.token,
                            app_id=quickbase.app_id, table_id=quickbase.table_id, options=options)
    inbox = Inbox(settings.inbox_database_url)
    receiver.app = create_receiver_app(inbox, [secret], file_routes(FileLinks(secret, receiver.url), lambda: qb))
    receiver.start()
    partner = PartnerAuroraClient(base_url=sandbox.aurora_url, application_id=app["application_id"],
                                  application_key=app["application_key"], tenant_id=credentials.aurora_tenant_id,
                                  options=options)
    instance = open_instance(home)
    defs = build_definitions(settings, build_resources(settings, credentials))
    cursors: dict[str, str] = {}

    def run(sensor: str) -> bool:
        outcome = tick(defs, instance, sensor, cursor=cursors.get(sensor))
        cursors[sensor] = outcome.cursor or ""
        print(f"   {sensor}: " + (outcome.skip_reason or f"{len(outcome.runs)} run(s), "
                                   f"success={all(r.success for r in outcome.runs)}"))
        return all(r.success for r in outcome.runs)

    try:
        print("\nSite survey: Quickbase as Aurora's site-survey app")
        tables = ensure_tables(qb, load_spec(), quickbase.table_id, quickbase.opportunities_table_id)
        print(f"1) `site-surveys init-tables`: {len(tables.made)} change(s) in Quickbase "
              f"({', '.join(t for t in tables.made if t.startswith('table'))})")
        changes = subscribe_site_surveys(partner, receiver.url, secret)
        print(f"2) `site-surveys subscribe`: {', '.join(c.action for c in changes)} site_survey_requested "
              f"-> {receiver.url}")
        project_id = next(p for p, designs in aurora.primary.project_design_ids.items() if designs)
        request = aurora.request_site_survey(project_id)
        aurora.webhooks.wait_settled(timeout=30)
        print(f"3) An Aurora user requests a survey of project {project_id}; webhook delivered to the receiver")
        ok = run(REQUEST_SENSOR)
        surveys = tables.surveys
        record = next(r for r in quickbase.records(surveys.id) if r.get(surveys.key_field_id) == request["id"])
        fid = surveys.fid
        print(f"   Quickbase survey record {record[3]}: {record[fid('Customer Name')]}, {record[fid('Site Address')]}, "
              f"status {record[fid('Survey Status')]}, screenshot copied "
              f"({len(record[fid('Design Screenshot')][0].content)} bytes)")

        print("4) The surveyor fills it in (forgetting the main breaker rating) and marks it Completed")
        photo = {"fileName": "main-panel.png", "data": base64.b64encode(PHOTO).decode()}
        quickbase.edit_record(surveys.id, record[3], {
            fid("Main Panel Location"): "garage", fid("Main Bus Rating (A)"): 200, fid("Main Panel Photo"): photo,
            fid("Service Type"): "single_phase_120_240v", fid("Survey Status"): "Completed"})
        planes = tables.planes
        quickbase.add_records(planes.id, [{
            planes.reference_field_id: record[3], planes.fid("Pitch (deg)"): 26.6, planes.fid("Azimuth (deg)"): 180,
            planes.fid("Roof Type"): "comp_shingle", planes.fid("Framing Type"): "rafters",
            planes.fid("Rafter Size"): "2x6", planes.fid("Rafter Spacing"): 24}])
        ok = run(COMPLETION_SENSOR) and ok
        record = next(r for r in quickbase.records(surveys.id) if r[3] == record[3])
        print(f"   Quickbase: status {record[fid('Survey Status')]!r}, Aurora said: {record[fid('Aurora Messages')]!r}")

        print("5) The surveyor adds the rating and marks it Completed again")
        quickbase.edit_record(surveys.id, record[3], {fid("Main Breaker Rating (A)"): 175,
                                                      fid("Survey Status"): "Completed"})
        ok = run(COMPLETION_SENSOR) and ok
        record = next(r for r in quickbase.records(surveys.id) if r[3] == record[3])
        view = aurora.site_survey(request["id"])
        images = aurora.wait_for_image_fetches(request["id"], timeout=30)
        print(f"   Quickbase: status {record[fid('Survey Status')]!r}; Aurora: request {view['status']} at "
              f"{view['completed_at']}, {len(view['mounting_planes'])} mounting plane(s), "
              f"{sum(i['status'] == 'fetched' for i in images)} of {len(images)} image(s) downloaded by Aurora "
              "through the receiver's signed links")
        ok = ok and view["status"] == "completed"
    finally:
        partner.close()
        receiver.stop()
        inbox.close()
        qb.close()
        instance.dispose()
    return ok
