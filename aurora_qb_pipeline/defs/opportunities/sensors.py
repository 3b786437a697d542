"""``quickbase_opportunities_sensor``: opportunities flagged ready, and button clicks, become runs.

A tick queries Quickbase for opportunities with the ready flag, no Aurora Project ID, and a Date
Modified on or after the cursor (``{2.OAF.'...'}``: several records can share a millisecond; a
record seen again gives the same run key, which Dagster launches once), passes over those whose
last attempt failed and that nobody changed since, reads the button clicks queued by the receiver
after its cursor, and launches one ``opportunities_to_aurora`` run for all of them. "Sync from
Aurora now" clicks become sync runs of the opportunity's project. When the buttons are on it also
writes the signatures into opportunities that have none yet.

Many tenants: a tenant's sensor reads its own opportunities table, the clicks queued in its own
store and only its tenant's events of the shared inbox (under a consumer name of its own); its runs
use the tenant's Aurora key and rate budget. A location whose tenant would share the opportunities
table with another tenant does not load (``tenant_apps.check_not_shared``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Optional

import dagster as dg

from ..cursors import JsonCursor
from ...clients.quickbase import quote
from ...opportunities.presale import STAGE_EVENTS, stage_updates
from ...opportunities.sync import due, read_opportunities, stamp_signatures
from ...settings import Settings
from ..aurora.sensors import sensor_status
from ..jobs import aurora_quickbase_sync
from ..partitions import TRIGGER_TAG, new_partitions_request, range_run_requests
from ...tenant_apps import check_not_shared, opportunities_variable
from ..resources import AuroraResource, QuickbaseResource
from .jobs import JOB_NAME, opportunities_to_aurora
from ..webhooks.resources import WebhookInboxResource
from .resources import OpportunitiesResource

SENSOR_NAME = "quickbase_opportunities_sensor"
TRIGGER = "opportunities"


@dataclass
class OpportunityCursor(JsonCursor):
    modified_since: Optional[str] = None
    request_id: int = 0
    inbox_id: int = 0  # the last webhook inbox row read for pre-sale stages



def _run_key(ids: list[str], clicked: list[str], cursor: OpportunityCursor, attempts: int) -> str:
    """Stable for the same input (a replayed tick launches nothing twice); ``attempts`` (of the
    unfinished ones) moves with every attempt, so a resumed opportunity gets a new run."""
    digest = hashlib.sha256(json.dumps([sorted(ids), sorted(clicked), attempts]).encode()).hexdigest()[:16]
    return f"opportunities:{cursor.modified_since}:{cursor.request_id}:{cursor.inbox_id}:{digest}"


def build_opportunities_sensor(settings: Settings) -> dg.SensorDefinition:
    check_not_shared(settings.tenants(), settings.tenant, "one opportunities table",
                     opportunities_variable, "quickbase_opportunities_table_id_env")
    consumer = f"{SENSOR_NAME}__{settings.tenant}" if settings.tenant else SENSOR_NAME

    @dg.sensor(
        name=SENSOR_NAME,
        jobs=[opportunities_to_aurora, aurora_quickbase_sync],
        minimum_interval_seconds=settings.opportunities_interval_s,
        default_status=sensor_status(settings),
        description="Polls the Quickbase opportunities table for opportunities flagged ready for Aurora (Date "
        "Modified after its cursor) and reads the button clicks the receiver queued; launches one "
        "opportunities_to_aurora run for them, and a sync run for 'Sync from Aurora now'.",
    )
    def quickbase_opportunities_sensor(context: dg.SensorEvaluationContext, quickbase: QuickbaseResource,
                                       opportunities: OpportunitiesResource, webhook_inbox: WebhookInboxResource,
                                       aurora: AuroraResource):
        cursor = OpportunityCursor.parse(context.cursor)
        opps = opportunities.table(quickbase.client)
        fields = opportunities.fields(quickbase.client)
        store = opportunities.store
        where = "{%d.EX.true}AND{%d.EX.''}" % (fields["ready"], fields["project_id"])
        if cursor.modified_since:
            where += "AND{2.OAF.%s}" % quote(cursor.modified_since)
        found = read_opportunities(opps, fields, where=where)
        ready, unchanged = due(found, store)
        clicks = store.queued(cursor.request_id)
        create = [c.record_id for c in clicks if c.action == "create"]
        sync_now = [c.record_id for c in clicks if c.action == "sync"]
        stamped = 0
        if opportunities.button_secret:
            from ...opportunities.sync import OpportunitySync

            stamped = stamp_signatures(OpportunitySync(None, opps, fields, store, None, opportunities.button_secret))
        events = webhook_inbox.inbox.read(cursor.inbox_id, 2000, sources=["aurora"],
                                          tenant_id=aurora.tenant_id if settings.tenant else None)
        linked = store.linked_projects(r.params.get("project_id", "") for r in events if r.event in STAGE_EVENTS)
        stages = stage_updates(events, linked)
        runs: list[dg.RunRequest] = []
        partition_requests = []
        retry = store.unfinished()  # attempts that failed or died half way
        attempts = sum(row.attempts for row in store.get(retry).values())
        ids = sorted({o.record_id for o in ready} | set(create) | set(retry), key=int)
        if found:
            cursor.modified_since = max([o.modified for o in found if o.modified] + [cursor.modified_since or ""])
        if clicks:
            cursor.request_id = clicks[-1].id
        if events:
            cursor.inbox_id = events[-1].id
            webhook_inbox.inbox.mark_read(consumer, cursor.inbox_id)
        if ids or stages:
            clicked = sorted(set(create) | set(retry))  # tried again whatever their ready flag says now
            config = {"ops": {"create_aurora_projects": {"config": {
                "record_ids": ids, "clicked": clicked, "stage_updates": [asdict(u) for u in stages]}}}}
            runs.append(dg.RunRequest(run_key=_run_key(ids, clicked, cursor, attempts), job_name=JOB_NAME, run_config=config,
                                      tags={TRIGGER_TAG: TRIGGER}))
        if sync_now:
            rows = store.get(sync_now)
            linked = {r.project_id for r in rows.values() if r.project_id}
            linked |= {o.get("project_id") for o in read_opportunities(opps, fields, record_ids=sync_now)
                       if o.get("project_id")}
            if linked:
                _, order, partition_requests = new_partitions_request(context.instance, sorted(linked),
                                                                     partitions=settings.names.partitions)
                runs += [r.with_replaced_attrs(job_name=aurora_quickbase_sync.name) for r in
                         range_run_requests(order, sorted(linked), "opportunity_button", str(cursor.request_id), 10)]
        summary = (f"{len(found)} ready opportunit(ies) changed, {len(unchanged)} unchanged since an error; "
                   f"{len(create)} create click(s), {len(sync_now)} sync click(s); {len(retry)} unfinished attempt(s) "
                   f"resumed; {len(stages)} pre-sale stage(s); {stamped} signed")
        context.log.info(summary)
        if not runs:
            context.update_cursor(cursor.dump())
            return dg.SkipReason(summary)
        return dg.SensorResult(run_requests=runs, dynamic_partitions_requests=partition_requests,
                               cursor=cursor.dump())

    return quickbase_opportunities_sensor


def build_opportunities_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    return [build_opportunities_sensor(settings)] if settings.opportunities_sync else []
