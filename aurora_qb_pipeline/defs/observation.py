"""Observing the source and the sink: a job over both observable assets and its schedule.

``observe_sources_and_sinks`` observes ``aurora/tenant`` (one Aurora request) and
``quickbase/designs_table`` (one Quickbase query); ``observe_sources_schedule`` runs it every
hour (on with ``AURORA_QB_AUTOMATION=running``). The UI's "Observe sources" does the same by hand.
"""

import dagster as dg

from ..settings import Settings
from .aurora.source import AURORA_SOURCE_KEY
from .quickbase.sink import QUICKBASE_SINK_KEY

observe_sources_and_sinks = dg.define_asset_job(
    "observe_sources_and_sinks",
    selection=dg.AssetSelection.assets(AURORA_SOURCE_KEY, QUICKBASE_SINK_KEY),
    description="Observe the Aurora tenant (newest project, project count) and the Quickbase table (record count, "
    "last modified): two cheap requests.",
    executor_def=dg.in_process_executor,
)


def build_observation_schedules(settings: Settings) -> list[dg.ScheduleDefinition]:
    return [dg.ScheduleDefinition(
        name="observe_sources_schedule",
        job=observe_sources_and_sinks,
        cron_schedule="17 * * * *",
        execution_timezone=settings.timezone,
        default_status=(dg.DefaultScheduleStatus.RUNNING if settings.automation_running
                        else dg.DefaultScheduleStatus.STOPPED),
        description="Hourly observation of the Aurora source and the Quickbase sink (two requests).",
    )]
