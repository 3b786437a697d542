"""Jobs: the full sync (staging for a range of projects, then the export), the event path's sync
(staging for any set of projects, then the export) and the export alone."""

import dagster as dg

from .aurora.changed import CHANGED_PROJECTS_KEY, EVENT_JOB_NAME
from .aurora.staging import STAGING_GROUP
from .quickbase.assets import EXPORT_GROUP, EXPORT_KEY
from .quickbase.line_items import LINE_ITEMS_KEY

# Steps of a run take turns anyway (they all write DuckDB, pool "duckdb", and share Aurora's
# rate budget), so one process per run is enough: no process start per step.
ONE_PROCESS = dg.in_process_executor

aurora_quickbase_sync = dg.define_asset_job(
    "aurora_quickbase_sync",
    selection=dg.AssetSelection.groups(STAGING_GROUP, EXPORT_GROUP),
    description="Fetch the selected Aurora projects, validate and stage them, then upsert changed designs into Quickbase.",
    executor_def=ONE_PROCESS,
)

aurora_event_sync = dg.define_asset_job(
    EVENT_JOB_NAME,
    selection=dg.AssetSelection.assets(CHANGED_PROJECTS_KEY, EXPORT_KEY, LINE_ITEMS_KEY),
    description="Stage exactly the projects in run config (any set: what a webhook or design-request tick found "
    "changed) in one run, then upsert changed designs into Quickbase in one export (and their line items).",
    executor_def=ONE_PROCESS,
)

quickbase_export_only = dg.define_asset_job(
    "quickbase_export_only",
    selection=dg.AssetSelection.groups(EXPORT_GROUP),
    description="Send staged designs that changed (or failed last time) to Quickbase, without calling Aurora.",
    executor_def=ONE_PROCESS,
)
