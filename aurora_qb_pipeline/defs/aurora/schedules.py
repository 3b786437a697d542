"""The daily reconcile: refreshes every project on a budget, whatever the sensors missed."""

from datetime import datetime, timezone

import dagster as dg

from ...ranges import daily_slice, projects_per_day, requests_per_project
from ...settings import Settings
from ..jobs import aurora_quickbase_sync
from ..partitions import DAILY_RECONCILE_TRIGGER, known_projects, range_tags


def build_daily_reconcile_schedule(settings: Settings) -> dg.ScheduleDefinition:
    per_day = projects_per_day(settings.daily_budget_share, requests_per_project(settings.fetch_pricing))

    @dg.schedule(
        name="daily_reconcile_schedule",
        job=aurora_quickbase_sync,
        cron_schedule=settings.daily_cron,
        execution_timezone=settings.timezone,
        default_status=(
            dg.DefaultScheduleStatus.RUNNING if settings.automation_running else dg.DefaultScheduleStatus.STOPPED
        ),
        description=f"Nightly reconcile: refreshes as many projects as {settings.daily_budget_share:.0%} of Aurora's "
        f"daily request budget allows ({per_day:,} a night: all of them at ordinary sizes), in one range run, "
        "rotating through the rest on later nights. Its export also compares every record with what Quickbase "
        "holds and resends those missing or edited there (drift).",
    )
    def daily_reconcile_schedule(context: dg.ScheduleEvaluationContext):
        order = known_projects(context.instance, settings.names.partitions)
        if not order:
            return dg.SkipReason("no projects yet: the discovery sensor adds them")
        when = context.scheduled_execution_time or datetime.now(timezone.utc)
        start, end = daily_slice(order, when.toordinal(), per_day)
        return dg.RunRequest(run_key=f"reconcile:{when.date().isoformat()}",
                             tags=range_tags(start, end, DAILY_RECONCILE_TRIGGER, settings.run_max_runtime_s(
                                 order.index(end) - order.index(start) + 1)))

    return daily_reconcile_schedule


def build_schedules(settings: Settings) -> list[dg.ScheduleDefinition]:
    return [build_daily_reconcile_schedule(settings)]
