"""``aurora_webhook_sensor``: Aurora's webhooks (through the inbox) and the design requests the
pipeline follows become sync runs.

A tick reads the inbox rows after its cursor, resolves each event to its project within the
tick's budget (``webhooks/resolve.py``), polls the followed design requests that are due, adds
unknown projects as partitions and requests the sync of the affected projects, except those a
run already staged after the event (the run *started* after it, so it fetched after the change)
and those a queued or running sync run covers: they wait in the cursor for that run to end.
Projects to sync become ONE run of ``aurora_event_sync`` (``aurora/changed_projects`` stages
exactly them, then one export) in exactly one function, :func:`sync_run_requests`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

import dagster as dg

from ..cursors import JsonCursor
from ...settings import Settings
from ...tenants import TenantNames
from ...webhooks.resolve import EventResolver, PollingTuning, PollResult, poll_design_requests
from ...webhooks.triggers import TriggerRules, load_trigger_rules
from ..aurora.sensors import projects_in_flight, sensor_status
from ..aurora.changed import event_run_request
from ..aurora.staging import staging_key
from ..jobs import aurora_event_sync
from ..partitions import materialization_records, new_partitions_request
from ..resources import AuroraResource
from .resources import WebhookInboxResource

SENSOR_NAME = "aurora_webhook_sensor"
TRIGGER = "webhooks"


@dataclass(frozen=True)
class WebhookTuning:
    """Constants of the webhook sensor, not settings (tests pass their own):

    * ``tick_budget_s``: well under Dagster's 60 s evaluation limit;
    * ``max_events_per_tick``: inbox rows read per tick (the rest wait for the next one);
    * ``retention_s``: events every reader has read are deleted after this long;
    * ``polling``: how followed design requests are polled."""

    tick_budget_s: float = 25.0
    max_events_per_tick: int = 2000
    retention_s: float = 30 * 24 * 3600.0
    polling: PollingTuning = PollingTuning()


@dataclass
class WebhookCursor(JsonCursor):
    """``last_id``: the last inbox row handled. ``deferred``: projects (-> newest event, epoch
    seconds) whose event came while a run covering them was queued or running."""

    last_id: int = 0
    deferred: dict[str, float] = field(default_factory=dict)
    ticks: int = 0



def synced_after(instance: dg.DagsterInstance, events: dict[str, float], names: Optional[TenantNames] = None) -> set[str]:
    """Projects whose staging was done by a run that started after their newest event: that run
    fetched from Aurora after the change, so another sync would fetch the same data. ``names``: the
    tenant's location (many tenants)."""
    if not events:
        return set()
    records_filter = dg.AssetRecordsFilter(asset_key=staging_key("designs", names), asset_partitions=list(events),
                                           after_timestamp=min(events.values()))
    starts: dict[str, Optional[float]] = {}
    done: set[str] = set()
    for record in materialization_records(instance, records_filter):
        key = record.partition_key
        if key not in events or key in done:
            continue
        if record.run_id not in starts:
            run = instance.get_run_record_by_id(record.run_id)
            starts[record.run_id] = run.start_time if run else None
        started = starts[record.run_id]
        if started is not None and started > events[key]:
            done.add(key)
    return done


def sync_run_requests(projects: dict[str, float], max_runtime_s: Optional[int] = None) -> list[dg.RunRequest]:
    """THE step from "projects to sync this tick" to run requests: ONE run of ``aurora_event_sync``
    for all of them (Dagster cannot run a scattered partition set in one partitioned run; the event
    run stages an explicit set, see ``defs/aurora/changed.py``), with one export. The run key is
    stable for the same input (newest event + the projects), so a replayed tick launches nothing twice."""
    if not projects:
        return []
    newest = f"{max(projects.values()):.6f}"
    return [event_run_request(projects, TRIGGER, newest, max_runtime_s)]


def build_webhook_sensor(settings: Settings, tuning: WebhookTuning = WebhookTuning(),
                         rules: Optional[TriggerRules] = None) -> dg.SensorDefinition:
    """The sensor; the trigger rules are read (and checked, every problem at once) here, when the
    definitions load, unless given."""
    rules = rules if rules is not None else load_trigger_rules(settings.webhook_triggers_file)
    syncing = ", ".join(rules.enabled_events())

    @dg.sensor(
        name=SENSOR_NAME,
        job=aurora_event_sync,
        minimum_interval_seconds=settings.webhook_interval_s,
        default_status=sensor_status(settings),
        description="Reads Aurora webhook events from the inbox the receiver (`aurora-qb webhooks serve`) writes, "
        f"resolves each to its project, applies the trigger rules (syncing: {syncing}), polls followed design "
        "requests until they are final, adds unknown projects as partitions and syncs the affected projects in ONE run "
        "(aurora_event_sync: stage exactly them, one Quickbase export).",
    )
    def aurora_webhook_sensor(context: dg.SensorEvaluationContext, aurora: AuroraResource,
                              webhook_inbox: WebhookInboxResource):
        cursor = WebhookCursor.parse(context.cursor)
        inbox = webhook_inbox.inbox
        deadline = time.monotonic() + tuning.tick_budget_s
        # many tenants: the receiver serves them all; each tenant's sensor reads only its own events
        # (a partner subscription's deliveries carry tenant_id; README "Many tenants")
        # (and follows, polls, only its own design requests: another tenant's key cannot read them)
        tenant_id = aurora.tenant_id if settings.tenant else None
        rows = inbox.read(cursor.last_id, tuning.max_events_per_tick, tenant_id=tenant_id)
        resolver = EventResolver(aurora.client, inbox, rules, deadline, tuning.polling, settings.time_scale,
                                 tenant_id=tenant_id)
        resolved = resolver.handle(rows, cursor.last_id)
        polled = PollResult()
        if resolved.stopped_early is None:
            polled = poll_design_requests(aurora.client, inbox, rules, deadline, tuning.polling, settings.time_scale,
                                          tenant_id=tenant_id)
        wanted = dict(cursor.deferred)
        for source in (resolved.to_sync, polled.to_sync):
            for project, when in source.items():
                wanted[project] = max(wanted.get(project, 0.0), when)
        new, order, partition_requests = new_partitions_request(context.instance, sorted(wanted, key=wanted.get),
                                                                partitions=settings.names.partitions)
        fresh = synced_after(context.instance, wanted, settings.names)
        busy = projects_in_flight(context.instance, order, settings.names)
        cursor.deferred = {p: t for p, t in wanted.items() if p not in fresh and p in busy}
        to_sync = {p: t for p, t in wanted.items() if p not in fresh and p not in busy}
        runs = sync_run_requests(to_sync, settings.run_max_runtime_s(len(to_sync)) if to_sync else None)

        inbox.mark_read(f"{SENSOR_NAME}__{settings.tenant}" if settings.tenant else SENSOR_NAME, resolved.last_id)
        if cursor.ticks % 100 == 0:
            inbox.purge(time.time() - tuning.retention_s)
        cursor.last_id, cursor.ticks = resolved.last_id, cursor.ticks + 1
        counts = dict(sorted(resolved.counts.items()))
        stopped = resolved.stopped_early or polled.stopped_early
        summary = (
            f"read {len(rows)} event(s) {counts}; polled {polled.checked} design request(s) ({polled.changed} changed); "
            f"{len(to_sync)} project(s) to sync ({len(fresh)} already synced since their event, "
            f"{len(cursor.deferred)} waiting for a run in flight); {len(new)} new partition(s)"
            + (f"; stopped early: {stopped}" if stopped else "")
        )
        context.log.info(summary)
        if not runs and not partition_requests:
            context.update_cursor(cursor.dump())
            return dg.SkipReason(summary)
        return dg.SensorResult(run_requests=runs, dynamic_partitions_requests=partition_requests, cursor=cursor.dump())

    return aurora_webhook_sensor


def build_webhook_sensors(settings: Settings, tuning: WebhookTuning = WebhookTuning()) -> list[dg.SensorDefinition]:
    return [build_webhook_sensor(settings, tuning)]
