"""One tenant's code location: the single-tenant definitions with every per-tenant name applied.

:func:`for_tenant` takes what ``build_definitions`` builds for one tenant and renames, in one place,
what Dagster keeps instance-wide (a code location is isolated from the others in everything else):

* asset keys get the tenant in front (``acme/aurora/designs``), with their deps, inputs and checks
  (``AssetsDefinition.with_attributes``), so two tenants' assets never share a materialization;
* the projects' dynamic partitions become ``aurora_projects__<tenant>`` (dynamic partition sets are
  instance-wide: this is what makes the partitions carry the tenant);
* the DuckDB writer pool becomes ``duckdb__<tenant>``: each tenant writes its own DuckDB file, so
  the pool's limit of 1 holds per tenant and a tenant never queues behind another's writer;
* every job gets the run tag ``aurora_qb/tenant=<tenant>`` (so a tag concurrency limit with
  ``applyLimitPerUniqueValue`` keeps one tenant's backlog from taking every run slot): the asset jobs
  with their selection's keys renamed, the op jobs (site surveys, opportunities) as they are;
  sensors and schedules are pointed at the re-tagged jobs. Runs of no job of ours (the UI's
  "Materialize", asset backfills) get the tag when they are submitted (``run_coordinator.py``).

Job, sensor, schedule and resource names stay as they are inside each location.

Code that runs (assets, sensors) learns its names from :func:`names_of_asset` (the tenant is the
first part of a three-part key) or from ``Settings.names``; :func:`tenant_key` maps a single-tenant
key to a tenant's (the one helper every key reference goes through at run time).

Pool, partitions and job rebuilding reach into three internals (``OpDefinition._pool``, the record
``copy``, ``JobDefinition._copy``: no public way to add run tags to a built op job): Dagster is pinned
exactly, and the tests build a tenant's definitions and check each.
"""

from __future__ import annotations

import copy as shallow
from typing import Any, Iterable

import dagster as dg
from dagster._core.definitions.asset_selection import KeysAssetSelection, OperandListAssetSelection
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from dagster._record import copy as copy_record

from ..tenants import DEFAULT_PARTITIONS, DEFAULT_POOL, TenantNames

SINGLE_TENANT = TenantNames(None)


def tenant_key(key: dg.AssetKey, names: TenantNames) -> dg.AssetKey:
    """The key a single-tenant asset key has in ``names``' location."""
    return dg.AssetKey(names.key_path(*key.path)) if names.tenant else key


def names_of_asset(context: Any) -> TenantNames:
    """The names of the location an asset, check or observation runs in, from its key."""
    keys = getattr(getattr(context, "assets_def", None), "keys", None)
    if keys:
        return TenantNames.of_key_path(next(iter(keys)).path)
    checks = getattr(getattr(context, "assets_def", None), "check_keys", None)
    if checks:
        return TenantNames.of_key_path(next(iter(checks)).asset_key.path)
    return SINGLE_TENANT


def _keys_of(assets: Iterable[Any]) -> set[dg.AssetKey]:
    keys: set[dg.AssetKey] = set()
    for item in assets:
        if isinstance(item, dg.AssetsDefinition):
            keys |= set(item.keys) | set(item.dependency_keys) | {c.asset_key for c in item.check_keys}
        elif isinstance(item, dg.AssetSpec):
            keys |= {item.key, *(d.asset_key for d in item.deps)}
    return keys


def _with_pool(node: Any, pool: str) -> Any:
    if isinstance(node, dg.OpDefinition) and node.pool == DEFAULT_POOL:
        node = shallow.copy(node)
        node._pool = pool  # noqa: SLF001 - no public way to re-pool an op; dagster is pinned exactly
    return node


def _retarget(item: Any, renames: dict[dg.AssetKey, dg.AssetKey], partitions: dg.PartitionsDefinition,
              pool: str) -> Any:
    if isinstance(item, dg.AssetSpec):
        return item.replace_attributes(key=renames[item.key], deps=[renames.get(d.asset_key, d.asset_key)
                                                                    for d in item.deps])
    if not isinstance(item, dg.AssetsDefinition):
        raise TypeError(f"cannot make {type(item).__name__} tenant-specific")
    item = item.with_attributes(asset_key_replacements=renames)
    attributes = item.get_attributes_dict()
    specs = [spec.replace_attributes(partitions_def=partitions)
             if isinstance(spec.partitions_def, dg.DynamicPartitionsDefinition)
             and spec.partitions_def.name == DEFAULT_PARTITIONS else spec
             for spec in attributes["specs"]]
    return item.__class__.dagster_internal_init(
        **{**attributes, "specs": specs, "node_def": _with_pool(attributes["node_def"], pool)})


def _with_run_tags(job: dg.JobDefinition, tags: dict[str, str]) -> dg.JobDefinition:
    # JobDefinition._copy keeps everything else of the job (resources, executor, hooks, config). The tags
    # go where the job keeps its run tags: its ``tags`` unless it has separate ``run_tags`` (the UI's
    # launch reads ``tags``, the daemon ``run_tags``; without separate run tags both are ``tags``).
    if job.has_separately_defined_run_tags:
        return job._copy(run_tags={**job.run_tags, **tags})  # noqa: SLF001 - dagster is pinned exactly
    return job._copy(tags={**job.tags, **tags})  # noqa: SLF001


def _rename_selection(selection: dg.AssetSelection, renames: dict[dg.AssetKey, dg.AssetKey]) -> dg.AssetSelection:
    if isinstance(selection, KeysAssetSelection):
        return copy_record(selection, selected_keys=[renames.get(k, k) for k in selection.selected_keys])
    if isinstance(selection, OperandListAssetSelection):
        return copy_record(selection, operands=[_rename_selection(s, renames) for s in selection.operands])
    return selection  # groups and the like name no key


def for_tenant(defs: dg.Definitions, names: TenantNames) -> dg.Definitions:
    """``defs`` (one tenant's, built from its settings) with the tenant's names applied (module doc)."""
    if names.tenant is None:
        return defs
    renames = {key: tenant_key(key, names) for key in _keys_of([*(defs.assets or []), *(defs.asset_checks or [])])}
    partitions = dg.DynamicPartitionsDefinition(name=names.partitions)
    assets = [_retarget(a, renames, partitions, names.pool) for a in defs.assets or []]
    checks = [_retarget(c, renames, partitions, names.pool) for c in defs.asset_checks or []]
    jobs: dict[str, Any] = {}
    for job in defs.jobs or []:
        if isinstance(job, UnresolvedAssetJobDefinition) and job.name not in jobs:
            jobs[job.name] = copy_record(job, selection=_rename_selection(job.selection, renames),
                                         tags={**(job.tags or {}), **names.run_tags})
        elif isinstance(job, dg.JobDefinition) and job.name not in jobs:
            jobs[job.name] = _with_run_tags(job, names.run_tags)  # an op job: it names no asset
        elif job.name not in jobs:
            jobs[job.name] = job
    sensors = []
    for sensor in defs.sensors or []:
        if sensor.has_jobs and any(j.name in jobs for j in sensor.jobs):
            sensor = sensor.with_attributes(jobs=[jobs.get(j.name, j) for j in sensor.jobs])
        sensors.append(sensor)
    schedules = []
    for schedule in defs.schedules or []:
        if schedule.has_job and schedule.job.name in jobs:  # type: ignore[union-attr]
            schedule = schedule.with_attributes(job=jobs[schedule.job.name])  # type: ignore[union-attr]
        schedules.append(schedule)
    return copy_record(defs, assets=assets, asset_checks=checks, jobs=list(jobs.values()), sensors=sensors,
                   schedules=schedules)
