"""The Dagster code location: the ``defs/`` folder plus what is built from the settings.

``dg`` and ``dagster dev`` load :func:`defs`; the settings are read from the environment once,
there, and nowhere at import time. Tests, the demo and the benchmark call
:func:`build_definitions` with their own ``Settings`` and resources.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import dagster as dg

from .defs.alerts import alert_webhook_resource, build_alert_sensors
from .defs.aurora.schedules import build_schedules
from .defs.aurora.sensors import SensorTuning, build_sensors
from .defs.opportunities.sensors import build_opportunities_sensors
from .defs.catalog import annotate
from .defs.observation import build_observation_schedules
from .defs.resources import build_resources
from .defs.site_surveys.sensors import build_site_survey_sensors
from .defs.tenancy import for_tenant
from .defs.webhooks.sensors import WebhookTuning, build_webhook_sensors
from .line_items import load_spec
from .settings import Settings


def build_definitions(
    settings: Settings, resources: Optional[dict[str, Any]] = None, tuning: SensorTuning = SensorTuning(),
    webhook_tuning: WebhookTuning = WebhookTuning(),
) -> dg.Definitions:
    """Assets, checks and jobs of ``defs/``, the sensors and schedule built from ``settings``,
    and ``resources`` (default: from ``settings``, secrets as ``dg.EnvVar``). Column schemas, the
    source edges and freshness policies are applied to the assets (``defs/catalog.py``). With
    ``settings.tenant`` set (many tenants), the definitions are that tenant's code location: its names
    applied by ``defs/tenancy.py`` (key prefix, partitions, pool, run tag), its DuckDB file and
    credentials from the settings."""
    resources = resources if resources is not None else build_resources(settings)
    if settings.line_items_table_id:
        load_spec()  # the line items declaration, deletion policy included, fails here, named
    defs = dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(
            # every job, the implicit one of the UI's "Materialize" included, runs its steps in the
            # run worker's process: they take turns on the duckdb pool anyway, and the worker
            # record (defs/run_worker.py) names the one process that executes the run
            executor=dg.in_process_executor,
            sensors=build_sensors(settings, tuning) + build_webhook_sensors(settings, webhook_tuning)
            + build_opportunities_sensors(settings)
            + build_site_survey_sensors(settings) + build_alert_sensors(settings),
            schedules=build_schedules(settings) + build_observation_schedules(settings),
            resources={"alert_webhook": alert_webhook_resource(settings), **resources},
        ),
    )
    return for_tenant(annotate(defs), settings.names)


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings.from_env())
