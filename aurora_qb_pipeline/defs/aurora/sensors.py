"""The sensors that start sync runs: design requests (changed designs) and project discovery.

Both are built from :class:`Settings` (interval, default status) by factories; their tuning
constants are in :class:`SensorTuning`. Aurora allows 90 requests a minute per key and every
process shares one client-side bucket, so a tick has a time budget and stops early (keeping its
place in the cursor) when runs are using the budget, rather than nearing Dagster's 60 s limit.
"""

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Optional

import dagster as dg

from ..cursors import JsonCursor
from ...clients import AuroraClient, NotFoundError, RateBudgetExhausted
from ...settings import Settings
from ...tenants import TenantNames
from ...transform import parse_aurora_time
from ..jobs import aurora_event_sync, aurora_quickbase_sync
from ..partitions import (
    RANGE_END,
    RANGE_START,
    known_projects,
    materialization_records,
    new_partitions_request,
    range_run_requests,
)
from ..resources import AuroraResource
from .changed import event_run_projects, event_run_request
from .staging import staging_key

PARTITION_TAG = "dagster/partition"
SYNC_STATUSES = frozenset({"designer_completed", "accepted"})
SKIP_STATUSES = frozenset({"designer_rejected"})
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED]


@dataclass(frozen=True)
class SensorTuning:
    """Constants of the sensors, not settings (tests pass their own):

    * ``tick_budget_s``: well under Dagster's 60 s evaluation limit;
    * ``max_pages_per_tick``: 20 pages of 250 is 5,000 requests listed in one tick; a longer scan
      resumes from the cursor;
    * ``settled_after``: a design request submitted this long before the watermark is assumed
      settled, so a scan can stop there;
    * ``list_recheck_after``: a tenant that answered 404 on the design-request list (Aurora
      documents no such endpoint) is asked again only this long after."""

    tick_budget_s: float = 25.0
    max_pages_per_tick: int = 20
    settled_after: timedelta = timedelta(days=14)
    list_recheck_after: timedelta = timedelta(days=1)


@dataclass
class DesignRequestCursor(JsonCursor):
    """Where the poller is. ``watermark``: newest event handled by the last finished scan.
    A scan pages through the list across ticks; ``page``/``scan_max`` track the one under way.
    ``deferred``: projects whose event came while a run covering them was queued or running.
    ``list_absent_since`` / ``list_probed_at``: when the tenant first / last answered 404 on the list."""

    watermark: Optional[str] = None
    page: int = 1
    scan_max: Optional[str] = None
    scans_completed: int = 0
    deferred: dict[str, str] = field(default_factory=dict)  # project -> event, waiting for a run in flight
    list_absent_since: Optional[float] = None
    list_probed_at: Optional[float] = None



def event_time(request: dict) -> Optional[datetime]:
    """When a design request last changed: reviewed (accepted), completed, or submitted."""
    for key in ("reviewed_at", "completed_at", "submission_time"):
        stamp = parse_aurora_time(request.get(key))
        if stamp:
            return stamp
    return None


@dataclass
class ScanResult:
    to_sync: dict[str, str] = field(default_factory=dict)  # project id -> newest event (iso)
    seen_projects: set[str] = field(default_factory=set)
    finished: bool = False
    pages: int = 0
    stopped_early: Optional[str] = None


def scan_design_requests(aurora: AuroraClient, cursor: DesignRequestCursor, tuning: SensorTuning) -> ScanResult:
    """Read design-request pages from ``cursor.page`` until the scan is done or the budget is spent."""
    result = ScanResult()
    watermark = parse_aurora_time(cursor.watermark)
    settled_before = watermark - tuning.settled_after if watermark else None
    deadline = time.monotonic() + tuning.tick_budget_s
    try:
        for page in aurora.pages("design_requests", first_page=cursor.page, deadline=deadline):
            result.pages += 1
            for request in page.items:
                status = request.get("status")
                stamp = event_time(request)
                if status in SKIP_STATUSES or stamp is None:
                    continue
                result.seen_projects.add(request["project_id"])
                if cursor.scan_max is None or stamp > parse_aurora_time(cursor.scan_max):
                    cursor.scan_max = stamp.isoformat()
                if status in SYNC_STATUSES and (watermark is None or stamp > watermark):
                    previous = result.to_sync.get(request["project_id"])
                    result.to_sync[request["project_id"]] = max(previous or "", stamp.isoformat())
            submitted = [parse_aurora_time(r.get("submission_time")) for r in page.items]
            settled = settled_before and submitted and all(s and s < settled_before for s in submitted)
            if page.last or settled:
                result.finished = True
                cursor.watermark = cursor.scan_max or cursor.watermark
                cursor.page, cursor.scan_max = 1, None
                cursor.scans_completed += 1
                return result
            cursor.page = page.number + 1
            if time.monotonic() >= deadline or result.pages >= tuning.max_pages_per_tick:
                break
    except RateBudgetExhausted:
        result.stopped_early = "rate budget in use by runs"
        return result
    result.stopped_early = "tick budget spent"
    return result


def synced_since(instance: dg.DagsterInstance, events: dict[str, str], names: Optional[TenantNames] = None) -> set[str]:
    """Projects whose staging already ran after their design-request event (e.g. discovery
    synced them, or an earlier tick did): a new run for them would fetch the same data again.
    ``names``: the tenant's location (many tenants)."""
    if not events:
        return set()
    earliest = min(parse_aurora_time(t) for t in events.values())
    records_filter = dg.AssetRecordsFilter(
        asset_key=staging_key("design_summaries", names), asset_partitions=list(events),
        after_timestamp=earliest.timestamp(),
    )
    return {record.partition_key for record in materialization_records(instance, records_filter)
            if record.partition_key in events
            and record.timestamp > parse_aurora_time(events[record.partition_key]).timestamp()}


def projects_in_flight(instance: dg.DagsterInstance, order: list[str], names: Optional[TenantNames] = None) -> set[str]:
    """Projects covered by a sync run that is queued or running: a range run (by its range or
    partition tag) or an event run (by the project ids of its run config). ``names``: only the
    tenant's runs (many tenants: every location's jobs have the same names)."""
    tags = names.run_tags if names is not None and names.tenant else None
    position = {key: i for i, key in enumerate(order)}
    covered: set[str] = set()
    records = instance.get_run_records(dg.RunsFilter(job_name=aurora_quickbase_sync.name, statuses=IN_FLIGHT,
                                                     tags=tags))
    for record in records:
        tags = record.dagster_run.tags
        if tags.get(PARTITION_TAG):
            covered.add(tags[PARTITION_TAG])
        start, end = position.get(tags.get(RANGE_START, "")), position.get(tags.get(RANGE_END, ""))
        if start is not None and end is not None:
            covered.update(order[start : end + 1])
    for record in instance.get_run_records(dg.RunsFilter(job_name=aurora_event_sync.name, statuses=IN_FLIGHT,
                                                         tags=tags)):
        covered.update(event_run_projects(record.dagster_run))
    return covered


def sensor_status(settings: Settings) -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if settings.automation_running else dg.DefaultSensorStatus.STOPPED


LIST_ABSENT = (
    "This Aurora tenant answers 404 to GET /design_requests: Aurora documents no list of design requests "
    "(it is a sandbox extension), so this sensor stands down without failing. Design requests are followed "
    "through webhooks and by polling each known request (aurora_webhook_sensor); the nightly reconcile "
    "catches anything else."
)


def build_design_request_sensor(settings: Settings, tuning: SensorTuning = SensorTuning()) -> dg.SensorDefinition:
    @dg.sensor(
        name="design_request_sensor",
        job=aurora_event_sync,
        minimum_interval_seconds=settings.design_request_interval_s,
        default_status=sensor_status(settings),
        description="Polls the list of Aurora design requests, an optional accelerator (Aurora documents no list "
        "endpoint; a tenant answering 404 is asked again a day later, without failing ticks). Completed and accepted "
        "ones (not designer_rejected) sync their project: new projects become partitions, and the affected projects "
        "sync in ONE run (aurora_event_sync: stage exactly them, one export). Projects a queued or running sync run "
        "covers wait for it to end.",
    )
    def design_request_sensor(context: dg.SensorEvaluationContext, aurora: AuroraResource):
        cursor = DesignRequestCursor.parse(context.cursor)
        now = time.time()
        if cursor.list_probed_at and now - cursor.list_probed_at < tuning.list_recheck_after.total_seconds():
            return dg.SkipReason(LIST_ABSENT)
        try:
            scan = scan_design_requests(aurora.client, cursor, tuning)
        except NotFoundError:
            if cursor.list_absent_since is None:
                context.log.warning(f"{LIST_ABSENT} Asking again in {tuning.list_recheck_after}.")
                cursor.list_absent_since = now
            cursor.list_probed_at = now
            context.update_cursor(cursor.dump())
            return dg.SkipReason(LIST_ABSENT)
        if cursor.list_absent_since is not None:
            context.log.info("The tenant answers the design-request list again; polling it as an accelerator.")
            cursor.list_absent_since = cursor.list_probed_at = None
        new, order, partition_requests = new_partitions_request(
            context.instance, scan.seen_projects | set(scan.to_sync), partitions=settings.names.partitions
        )
        wanted = {**cursor.deferred}
        for pid, stamp in scan.to_sync.items():
            wanted[pid] = max(wanted.get(pid, ""), stamp)
        fresh = synced_since(context.instance, wanted, settings.names)
        busy = projects_in_flight(context.instance, order, settings.names)
        # a project a queued or running run covers waits (kept in the cursor) for that run to end:
        # if the run staged it after the event, the next tick finds it synced; if not, it runs then
        cursor.deferred = {pid: stamp for pid, stamp in wanted.items() if pid not in fresh and pid in busy}
        to_sync = {pid: stamp for pid, stamp in wanted.items() if pid not in fresh and pid not in busy}
        newest = max(to_sync.values(), default="")
        runs = [event_run_request(to_sync, "design_requests", newest, settings.run_max_runtime_s(len(to_sync)))
                ] if to_sync else []
        summary = (
            f"read {scan.pages} page(s); {len(to_sync)} project(s) to sync"
            f" ({len(fresh)} already synced since their request, {len(cursor.deferred)} waiting for a run"
            f" in flight); {len(new)} new partition(s)"
            + (f"; stopped early: {scan.stopped_early}" if scan.stopped_early else "")
            + ("; scan complete" if scan.finished else f"; resumes at page {cursor.page}")
        )
        context.log.info(summary)
        if not runs and not partition_requests:
            context.update_cursor(cursor.dump())  # the scan's progress is kept even when nothing runs
            return dg.SkipReason(summary)
        return dg.SensorResult(run_requests=runs, dynamic_partitions_requests=partition_requests, cursor=cursor.dump())

    return design_request_sensor


def build_project_discovery_sensor(settings: Settings, tuning: SensorTuning = SensorTuning()) -> dg.SensorDefinition:
    @dg.sensor(
        name="project_discovery_sensor",
        job=aurora_quickbase_sync,
        minimum_interval_seconds=settings.discovery_interval_s,
        default_status=sensor_status(settings),
        description="Lists Aurora projects (newest first) and adds every unknown one as a partition, launching one "
        "range run for the batch. Stops at the first page with nothing new.",
    )
    def project_discovery_sensor(context: dg.SensorEvaluationContext, aurora: AuroraResource):
        known_order = known_projects(context.instance, settings.names.partitions)
        known = set(known_order)
        found: list[str] = []
        pages = 0
        try:
            deadline = time.monotonic() + tuning.tick_budget_s
            for page in aurora.client.pages("projects", deadline=deadline):
                pages += 1
                fresh = [p["id"] for p in page.items if p["id"] not in known and p["id"] not in found]
                found.extend(fresh)
                if not fresh or time.monotonic() >= deadline:
                    break
        except RateBudgetExhausted:
            pass
        if not found:
            return dg.SkipReason(f"no new projects on {pages} page(s)")
        # oldest first, so partitions follow Aurora's creation order
        new, order, partition_requests = new_partitions_request(context.instance, found[::-1], known_order,
                                                                settings.names.partitions)
        runs = range_run_requests(order, new, "discovery", new[0], max_ranges=1,
                                  max_runtime_s=settings.run_max_runtime_s)
        context.log.info(f"discovered {len(new)} project(s)")
        return dg.SensorResult(run_requests=runs, dynamic_partitions_requests=partition_requests)

    return project_discovery_sensor


def build_sensors(settings: Settings, tuning: SensorTuning = SensorTuning()) -> list[dg.SensorDefinition]:
    return [build_design_request_sensor(settings, tuning), build_project_discovery_sensor(settings, tuning)]
