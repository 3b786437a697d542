"""What starts runs: the design-request sensor, project discovery and the daily reconcile.

Runs cover *ranges* of the ``aurora_projects`` dynamic partitions, launched with the range
tags, and the staging assets have ``BackfillPolicy.single_run()``: a batch of 1,000 new
projects is one run that fetches them all and makes one export, not 1,000 runs.

Aurora allows 90 requests a minute per key and every process shares one client-side bucket,
so the sensors give each tick a time budget and stop early (keeping their place in the
cursor) when runs are using the budget, rather than nearing Dagster's 60 s tick limit.
"""

import json
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable, Optional, Sequence

import dagster as dg

from .assets.staging import projects_partitions
from .jobs import aurora_quickbase_sync
from .resources.aurora import AuroraClient
from .resources.http import RateBudgetExhausted
from .transform import parse_aurora_time

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"

TICK_BUDGET_S = float(os.environ.get("AURORA_QB_SENSOR_TICK_BUDGET_S", "25"))
# Sparse projects become separate range runs; neighbouring ranges are merged only beyond this many
# runs a tick. Merging re-fetches the projects in the gaps, and Aurora's budget is the scarce thing.
MAX_RUNS_PER_TICK = int(os.environ.get("AURORA_QB_SENSOR_MAX_RUNS", "50"))
MAX_PAGES_PER_TICK = int(os.environ.get("AURORA_QB_SENSOR_MAX_PAGES", "20"))
# Design requests are listed newest submission first; one submitted longer ago than this
# before the watermark is assumed settled, so a scan can stop there.
SETTLED_AFTER = timedelta(days=int(os.environ.get("AURORA_QB_DESIGN_REQUEST_LOOKBACK_DAYS", "14")))
SYNC_STATUSES = frozenset({"designer_completed", "accepted"})
SKIP_STATUSES = frozenset({"designer_rejected"})
# Sensors and the schedule start stopped (turn them on in the UI); the UI demo starts them running.
_RUNNING = os.environ.get("AURORA_QB_AUTOMATION", "").lower() == "running"
SENSOR_STATUS = dg.DefaultSensorStatus.RUNNING if _RUNNING else dg.DefaultSensorStatus.STOPPED
SCHEDULE_STATUS = dg.DefaultScheduleStatus.RUNNING if _RUNNING else dg.DefaultScheduleStatus.STOPPED


# --- partition ranges ---------------------------------------------------------------------


def plan_ranges(order: Sequence[str], keys: Iterable[str], max_ranges: int) -> list[tuple[str, str]]:
    """Cover ``keys`` with at most ``max_ranges`` contiguous ranges of ``order``.

    Neighbouring ranges separated by the smallest gaps are merged first: refreshing a few
    projects nobody asked for is cheaper than launching another run."""
    position = {k: i for i, k in enumerate(order)}
    wanted = sorted({position[k] for k in keys if k in position})
    if not wanted:
        return []
    spans: list[list[int]] = [[wanted[0], wanted[0]]]
    for p in wanted[1:]:
        if p == spans[-1][1] + 1:
            spans[-1][1] = p
        else:
            spans.append([p, p])
    while len(spans) > max(1, max_ranges):
        gap_index = min(range(len(spans) - 1), key=lambda i: spans[i + 1][0] - spans[i][1])
        spans[gap_index][1] = spans[gap_index + 1][1]
        del spans[gap_index + 1]
    return [(order[a], order[b]) for a, b in spans]


def range_run_requests(
    order: Sequence[str], keys: Iterable[str], run_key_prefix: str, max_ranges: int = MAX_RUNS_PER_TICK
) -> list[dg.RunRequest]:
    return [
        dg.RunRequest(
            run_key=f"{run_key_prefix}:{start}..{end}",
            tags={RANGE_START: start, RANGE_END: end, "aurora_qb/trigger": run_key_prefix.split(":", 1)[0]},
        )
        for start, end in plan_ranges(order, keys, max_ranges)
    ]


# --- design-request sensor ----------------------------------------------------------------


@dataclass
class DesignRequestCursor:
    """Where the poller is. ``watermark``: newest event handled by the last finished scan.
    A scan pages through the list across ticks; ``page``/``scan_max`` track the one under way."""

    watermark: Optional[str] = None
    page: int = 1
    scan_max: Optional[str] = None
    scans_completed: int = 0

    @classmethod
    def parse(cls, raw: Optional[str]) -> "DesignRequestCursor":
        if not raw:
            return cls()
        values = json.loads(raw)
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


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


def scan_design_requests(aurora: AuroraClient, cursor: DesignRequestCursor, budget_s: float) -> ScanResult:
    """Read design-request pages from ``cursor.page`` until the scan is done or the budget is spent."""
    result = ScanResult()
    watermark = parse_aurora_time(cursor.watermark)
    settled_before = watermark - SETTLED_AFTER if watermark else None
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline and result.pages < MAX_PAGES_PER_TICK:
        try:
            items = aurora.design_request_page(cursor.page, throttle_timeout=max(0.0, deadline - time.monotonic()))
        except RateBudgetExhausted:
            result.stopped_early = "rate budget in use by runs"
            return result
        result.pages += 1
        for request in items:
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
        submitted = [parse_aurora_time(r.get("submission_time")) for r in items]
        settled = settled_before and submitted and all(s and s < settled_before for s in submitted)
        if len(items) < aurora.per_page or settled:
            result.finished = True
            cursor.watermark = cursor.scan_max or cursor.watermark
            cursor.page, cursor.scan_max = 1, None
            cursor.scans_completed += 1
            return result
        cursor.page += 1
    result.stopped_early = "tick budget spent"
    return result


def synced_since(instance: dg.DagsterInstance, events: dict[str, str]) -> set[str]:
    """Projects whose staging already ran after their design-request event (e.g. discovery
    synced them, or an earlier tick did): a new run for them would fetch the same data again."""
    if not events:
        return set()
    earliest = min(parse_aurora_time(t) for t in events.values())
    records_filter = dg.AssetRecordsFilter(
        asset_key=dg.AssetKey("design_summaries"), asset_partitions=list(events), after_timestamp=earliest.timestamp()
    )
    done: set[str] = set()
    cursor = None
    while True:
        page = instance.fetch_materializations(records_filter, limit=1000, cursor=cursor)
        for record in page.records:
            key = record.partition_key
            if key in events and record.timestamp > parse_aurora_time(events[key]).timestamp():
                done.add(key)
        if not page.has_more:
            return done
        cursor = page.cursor


def _new_partitions_request(context, project_ids: Iterable[str], known: Optional[Sequence[str]] = None):
    """(new keys, partition order once they are added, the add request). ``project_ids`` keep
    their order when given as a list; a set is sorted."""
    known = list(context.instance.get_dynamic_partitions(projects_partitions.name)) if known is None else known
    seen = set(known)
    ordered = project_ids if isinstance(project_ids, list) else sorted(project_ids)
    new = [p for p in dict.fromkeys(ordered) if p not in seen]
    requests = [projects_partitions.build_add_request(new)] if new else []
    return new, list(known) + new, requests


@dg.sensor(
    job=aurora_quickbase_sync,
    minimum_interval_seconds=int(os.environ.get("AURORA_QB_SENSOR_INTERVAL_S", "60")),
    default_status=SENSOR_STATUS,
    description="Polls Aurora design requests. Completed and accepted ones (not designer_rejected) sync their "
    "project: new projects become partitions, and the affected projects run in as few range runs as possible.",
)
def design_request_sensor(context: dg.SensorEvaluationContext, aurora: AuroraClient):
    cursor = DesignRequestCursor.parse(context.cursor)
    scan = scan_design_requests(aurora, cursor, TICK_BUDGET_S)
    new, order, partition_requests = _new_partitions_request(context, scan.seen_projects | set(scan.to_sync))
    fresh = synced_since(context.instance, scan.to_sync)
    to_sync = {pid: stamp for pid, stamp in scan.to_sync.items() if pid not in fresh}
    newest = max(to_sync.values(), default="")
    runs = range_run_requests(order, to_sync, f"design_requests:{newest}")
    summary = (
        f"read {scan.pages} page(s); {len(to_sync)} project(s) to sync"
        f" ({len(fresh)} already synced since their request); {len(new)} new partition(s)"
        + (f"; stopped early: {scan.stopped_early}" if scan.stopped_early else "")
        + ("; scan complete" if scan.finished else f"; resumes at page {cursor.page}")
    )
    context.log.info(summary)
    if not runs and not partition_requests:
        context.update_cursor(cursor.dump())  # the scan's progress is kept even when nothing runs
        return dg.SkipReason(summary)
    return dg.SensorResult(run_requests=runs, dynamic_partitions_requests=partition_requests, cursor=cursor.dump())


# --- project discovery ----------------------------------------------------------------------


@dg.sensor(
    job=aurora_quickbase_sync,
    minimum_interval_seconds=int(os.environ.get("AURORA_QB_DISCOVERY_INTERVAL_S", "300")),
    default_status=SENSOR_STATUS,
    description="Lists Aurora projects (newest first) and adds every unknown one as a partition, launching one "
    "range run for the batch. Stops at the first page with nothing new.",
)
def project_discovery_sensor(context: dg.SensorEvaluationContext, aurora: AuroraClient):
    known_order = list(context.instance.get_dynamic_partitions(projects_partitions.name))
    known = set(known_order)
    found: list[str] = []
    deadline = time.monotonic() + TICK_BUDGET_S
    page = 1
    while time.monotonic() < deadline:
        try:
            items = aurora.project_page(page, throttle_timeout=max(0.0, deadline - time.monotonic()))
        except RateBudgetExhausted:
            break
        fresh = [p["id"] for p in items if p["id"] not in known and p["id"] not in found]
        found.extend(fresh)
        if not fresh or len(items) < aurora.per_page:
            break
        page += 1
    if not found:
        return dg.SkipReason(f"no new projects on {page} page(s)")
    # oldest first, so partitions follow Aurora's creation order
    new, order, partition_requests = _new_partitions_request(context, found[::-1], known_order)
    runs = range_run_requests(order, new, f"discovery:{new[0]}", max_ranges=1)
    context.log.info(f"discovered {len(new)} project(s)")
    return dg.SensorResult(run_requests=runs, dynamic_partitions_requests=partition_requests)


# --- daily reconcile ------------------------------------------------------------------------


def daily_slice(order: Sequence[str], day_number: int, per_day: int) -> tuple[str, str]:
    """The contiguous slice of partitions to refresh on a given day, rotating through all of them."""
    slices = max(1, -(-len(order) // max(1, per_day)))
    index = day_number % slices
    start = index * per_day
    return order[start], order[min(len(order), start + per_day) - 1]


def projects_per_day(
    rate_per_minute: int = 90,
    budget_share: float = float(os.environ.get("AURORA_QB_DAILY_BUDGET_SHARE", "0.5")),
    requests_per_project: float = float(os.environ.get("AURORA_QB_REQUESTS_PER_PROJECT", "7")),
) -> int:
    """How many projects one day's share of Aurora's budget refreshes: 90/min x 1,440 min x share,
    over ~7 requests a project (project, design list, and a summary and proposal per design)."""
    return int(rate_per_minute * 60 * 24 * budget_share // requests_per_project)


@dg.schedule(
    job=aurora_quickbase_sync,
    cron_schedule=os.environ.get("AURORA_QB_DAILY_CRON", "0 2 * * *"),
    execution_timezone=os.environ.get("AURORA_QB_TIMEZONE", "America/Los_Angeles"),
    default_status=SCHEDULE_STATUS,
    description="Nightly reconcile: refreshes as many projects as half of Aurora's daily request budget allows "
    "(all of them at ordinary sizes), in one range run, rotating through the rest on later nights.",
)
def daily_reconcile_schedule(context: dg.ScheduleEvaluationContext):
    order = list(context.instance.get_dynamic_partitions(projects_partitions.name))
    if not order:
        return dg.SkipReason("no projects yet: the discovery sensor adds them")
    when = context.scheduled_execution_time or datetime.now(timezone.utc)
    start, end = daily_slice(order, when.toordinal(), projects_per_day())
    return dg.RunRequest(
        run_key=f"reconcile:{when.date().isoformat()}",
        tags={RANGE_START: start, RANGE_END: end, "aurora_qb/trigger": "daily_reconcile"},
    )


sensors = [design_request_sensor, project_discovery_sensor]
schedules = [daily_reconcile_schedule]
