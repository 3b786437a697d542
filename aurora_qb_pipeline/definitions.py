"""The Dagster code location: assets, checks, jobs, sensors, schedules and resources."""

from typing import Any

import dagster as dg

from .assets.export import export_without_failures, quickbase_export
from .assets.staging import staging_assets, staging_checks
from .automation import schedules, sensors
from .jobs import aurora_quickbase_sync, quickbase_export_job
from .settings import build_resources


def make_definitions(resources: dict[str, Any]) -> dg.Definitions:
    """Everything but the resources is fixed; tests, the demo and the benchmark pass their own."""
    return dg.Definitions(
        assets=[*staging_assets, quickbase_export],
        asset_checks=[*staging_checks, export_without_failures],
        jobs=[aurora_quickbase_sync, quickbase_export_job],
        sensors=sensors,
        schedules=schedules,
        resources=resources,
    )


defs = make_definitions(build_resources())
