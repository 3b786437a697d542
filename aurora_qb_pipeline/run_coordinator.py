"""The run coordinator of this pipeline's Dagster instance: Dagster's queued one, plus the tenant's
run tags on every run, whatever launched it.

Many tenants (README "Many tenants") means one code location per tenant. The asset jobs and op jobs
of a tenant's location carry the run tag ``aurora_qb/tenant=<name>`` themselves (``defs/tenancy.py``),
but Dagster builds some runs from no job of ours: the UI's "Materialize" runs the location's implicit
asset job, an asset backfill's runs are created from the asset selection with the backfill's tags
only. Every run, though, is submitted to the instance's run coordinator before it is queued, from the
webserver (UI, GraphQL), the daemon (sensors, schedules, backfills, run retries) and ``dagster job
launch`` alike; Dagster documents a ``QueuedRunCoordinator`` subclass as the place to attach tags to
submitted runs ("run attribution"). :class:`TenantRunCoordinator` adds, before the run is queued:

* ``aurora_qb/tenant=<name>``, from the run's code location (``TenantNames.location``,
  ``aurora_qb_pipeline__<name>``), else from a tenant tag it already has, else from its asset keys
  (a tenant's keys start with its name: ``acme/aurora/designs``);
* ``aurora_qb/tenant_trigger=<trigger>__<name>`` (``<trigger>`` alone without a tenant) on every run
  with a trigger tag (``aurora_qb/trigger``), so a tag concurrency limit with
  ``applyLimitPerUniqueValue`` holds per (tenant, trigger): one tenant's webhook storm never holds
  another tenant's webhook runs. The trigger tag itself keeps its value (the export, the alerts and
  ``aurora-qb status`` read it);
* ``aurora_qb/tenant_serial=<trigger>__<name>`` on the runs of the triggers in :data:`ONE_AT_A_TIME`
  (the nightly reconcile), limited to 1 per value: each tenant's reconcile waits only for its own.

A run launched without the daemon or the webserver (``execute_in_process``, the demo's runner) is not
submitted and keeps its job's tags. Configured in ``dagster.yaml`` (it takes the queued coordinator's
settings, and ``concurrency: runs:`` as usual)::

    run_coordinator:
      module: aurora_qb_pipeline.run_coordinator
      class: TenantRunCoordinator
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping, Optional

import dagster as dg

from .defs.partitions import DAILY_RECONCILE_TRIGGER, TRIGGER_TAG
from .tenants import DEFAULT_LOCATION, NAME_PATTERN, TENANT_TAG, TenantNames

TENANT_TRIGGER_TAG = "aurora_qb/tenant_trigger"
"""``<trigger>__<tenant>`` (``<trigger>`` without a tenant): the per-(tenant, trigger) limits' tag."""
TENANT_SERIAL_TAG = "aurora_qb/tenant_serial"
"""Set on runs of the triggers that run one at a time per tenant (limit 1 per value)."""
ONE_AT_A_TIME = frozenset({DAILY_RECONCILE_TRIGGER})
"""A nightly reconcile that has not ended when the next one is due is not joined by it."""

_LOCATION = re.compile(rf"^{re.escape(DEFAULT_LOCATION)}__({NAME_PATTERN[1:-1]})$")


def tenant_of_location(location_name: Optional[str]) -> Optional[str]:
    """The tenant a code location serves, from its name (``aurora_qb_pipeline__acme`` -> ``acme``)."""
    match = _LOCATION.match(location_name or "")
    return match.group(1) if match else None


def _tenant_name(value: Optional[str]) -> Optional[str]:
    return value if value and re.match(NAME_PATTERN, value) else None


def tenant_of_keys(keys: Iterable[dg.AssetKey]) -> Optional[str]:
    """The one tenant every key belongs to (None for single-tenant keys, or keys of several tenants):
    every asset of the pipeline has a two-part key, a tenant's has the tenant's name in front."""
    tenants = {_tenant_name(key.path[0]) if len(key.path) > 2 else None for key in keys}
    return tenants.pop() if len(tenants) == 1 else None


def tenant_tags(tags: Mapping[str, str], location_name: Optional[str] = None,
                asset_keys: Iterable[dg.AssetKey] = ()) -> dict[str, str]:
    """The tags a run with ``tags``, from ``location_name``, over ``asset_keys`` must carry besides
    its own (an empty dict when it has them all already)."""
    tenant = tenant_of_location(location_name) or _tenant_name(tags.get(TENANT_TAG)) or tenant_of_keys(asset_keys)
    names = TenantNames(tenant)
    wanted = dict(names.run_tags)
    trigger = tags.get(TRIGGER_TAG)
    if trigger:
        scoped = f"{trigger}__{tenant}" if tenant else trigger
        wanted[TENANT_TRIGGER_TAG] = scoped
        if trigger in ONE_AT_A_TIME:
            wanted[TENANT_SERIAL_TAG] = scoped
    return {key: value for key, value in wanted.items() if tags.get(key) != value}


def tags_for_run(run: dg.DagsterRun) -> dict[str, str]:
    """:func:`tenant_tags` of a run as the instance holds it."""
    origin = run.remote_job_origin
    keys = [*(run.asset_selection or ()), *(check.asset_key for check in run.asset_check_selection or ())]
    return tenant_tags(run.tags, origin.location_name if origin else None, keys)


class TenantRunCoordinator(dg.QueuedRunCoordinator):
    """``QueuedRunCoordinator`` that tags each submitted run with its tenant (module docstring)."""

    def submit_run(self, context: dg.SubmitRunContext) -> dg.DagsterRun:
        run = context.dagster_run
        extra = tags_for_run(run)
        if extra:
            self._instance.add_run_tags(run.run_id, extra)
            run = self._instance.get_run_by_id(run.run_id) or run.with_tags({**run.tags, **extra})
            context = dg.SubmitRunContext(run, context.workspace)
        return super().submit_run(context)
