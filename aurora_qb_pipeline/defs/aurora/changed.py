"""The event path's run: ``aurora/changed_projects`` stages exactly the projects a sensor tick
found changed (any set, scattered or not) and the same run's export upserts them in one request.

Why an unpartitioned asset and not a run of the partitioned ones: Dagster scopes a run to one
partition or one contiguous range (run tags), and a single-run backfill of scattered partitions
still becomes one run per range (dagster-io/dagster#32335), so 25 scattered changes were 24 runs
and 24 one-record upserts. This asset takes the projects from run config, stages them with
:func:`~.project_set.stage_projects` (the same table functions as the partitioned assets, one
DuckDB transaction), and logs, for every staged project, an ``AssetMaterialization`` of each
partitioned staging asset for that project's partition with that project's row counts: the
partitions' status in the UI, and the sensors' "synced since the event" test, stay true.
"""


import hashlib
from typing import Optional, Sequence

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from ..partitions import MAX_RUNTIME_TAG, TRIGGER_TAG
from ..tenancy import names_of_asset
from ..resources import AuroraResource
from ..retries import STEP_RETRY, staging_failures
from .checks import duplicate_designs
from ..webhooks.resources import WebhookInboxResource
from .project_set import StagedProjects, stage_projects, teach_design_projects
from .staging import DUCKDB_POOL, KINDS, MAX_QUARANTINE_FRACTION, OWNERS, log_problems, run_scope, staging_key

EVENT_GROUP = "aurora_events"
CHANGED_PROJECTS_KEY = dg.AssetKey(["aurora", "changed_projects"])
CHANGED_PROJECTS_OP = CHANGED_PROJECTS_KEY.to_python_identifier()
"""The op name run config addresses: ``aurora__changed_projects``."""
EVENT_JOB_NAME = "aurora_event_sync"
PROJECT_COUNT_TAG = "aurora_qb/projects"
"""On an event run: how many projects it stages (the ids are in its run config)."""


class ChangedProjectsConfig(dg.Config):
    project_ids: list[str] = Field(
        description="Aurora project ids to stage, at least one (unknown ones are added as partitions first)."
    )


@dg.asset(
    key=CHANGED_PROJECTS_KEY,
    group_name=EVENT_GROUP,
    pool=DUCKDB_POOL,
    retry_policy=STEP_RETRY,
    owners=OWNERS,
    kinds=KINDS,
    check_specs=[
        dg.AssetCheckSpec(
            "quarantine_rate", asset=CHANGED_PROJECTS_KEY, blocking=True,
            description=f"Scope: this run's projects. At most {MAX_QUARANTINE_FRACTION:.0%} of the rows of each "
            "staging table the run staged may be quarantined, as the partitioned assets' own check; more stops "
            "the export.",
        ),
        dg.AssetCheckSpec(
            "designs_unique_across_projects", asset=CHANGED_PROJECTS_KEY, blocking=True,
            description="Scope: the whole staged designs table, as the check of aurora/designs. No design id is "
            "staged under two projects (the export merges on it).",
        ),
    ],
)
def changed_projects(context: dg.AssetExecutionContext, config: ChangedProjectsConfig, aurora: AuroraResource,
                     duckdb: DuckDBResource, webhook_inbox: WebhookInboxResource):
    """The projects a webhook or design-request tick found changed, staged in one run (any set of projects,
    not only a contiguous range): fetch, validate, quarantine, write DuckDB in one transaction, and record a
    materialization of each partitioned staging asset for each project's partition."""
    ids = list(dict.fromkeys(config.project_ids))
    if not ids or not all(isinstance(pid, str) and pid.strip() for pid in ids):
        raise dg.Failure("run config project_ids must name at least one Aurora project, with no empty id",
                         allow_retries=False)
    partitions = names_of_asset(context).partitions  # the tenant's set in a tenant's location
    known = set(context.instance.get_dynamic_partitions(partitions))
    unknown = [pid for pid in ids if pid not in known]
    if unknown:  # the sensors add them first; a run launched by hand may not have
        context.instance.add_dynamic_partitions(partitions, unknown)
    with staging_failures():
        staged = stage_projects(ids, aurora.client, duckdb, context.run.run_id, aurora.fetch_pricing, context.log)
    for design_id, old_project in staged.moved_designs:
        context.log.info(f"design {design_id} moved from project {old_project}: its old rows were dropped")
    teach_design_projects(context.log, webhook_inbox.inbox, staged.table("designs").valid)
    yield from partition_materializations(context, staged)
    passed = all(table.passed for table in staged.tables)
    yield dg.MaterializeResult(
        metadata={
            "projects": len(ids),
            "project_ids": dg.MetadataValue.json(ids[:200]),
            **{f"{t.name}_rows": len(t.valid) for t in staged.tables},
            "quarantined_rows": sum(len(t.rejected) for t in staged.tables),
            "moved_designs": len(staged.moved_designs),
            **{f"aurora_{k}": v for k, v in staged.api.items()},
        }
    )
    yield dg.AssetCheckResult(
        check_name="quarantine_rate", passed=passed,
        metadata={**run_scope(ids), "tables": dg.MetadataValue.json({t.name: t.totals() for t in staged.tables})},
    )
    dupes = duplicate_designs(duckdb)
    yield dg.AssetCheckResult(check_name="designs_unique_across_projects", passed=not dupes,
                              metadata={"duplicate_design_ids": dg.MetadataValue.json(sorted(dupes))})


def partition_materializations(context: dg.AssetExecutionContext, staged: StagedProjects):
    """Problems to the log, then one materialization per staging table and project, each with
    that project's own counts."""
    names = names_of_asset(context)
    for table in staged.tables:
        log_problems(context.log, table)
        key = staging_key(table.name, names)
        for pid, counts in table.per_project(staged.project_ids).items():
            yield dg.AssetMaterialization(asset_key=key, partition=pid, metadata=counts)


def event_run_config(project_ids: Sequence[str]) -> dg.RunConfig:
    return dg.RunConfig(ops={CHANGED_PROJECTS_OP: ChangedProjectsConfig(project_ids=list(project_ids))})


def event_run_request(project_ids: Sequence[str], trigger: str, run_key_suffix: str,
                      max_runtime_s: Optional[int] = None) -> dg.RunRequest:
    """ONE run of ``aurora_event_sync`` for ``project_ids`` (sorted, so the run key, stable for the
    same input, does not depend on their order: a replayed tick launches nothing twice)."""
    ids = sorted(set(project_ids))
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
    tags = {TRIGGER_TAG: trigger, PROJECT_COUNT_TAG: str(len(ids))}
    if max_runtime_s:
        tags[MAX_RUNTIME_TAG] = str(int(max_runtime_s))
    return dg.RunRequest(run_key=f"{trigger}:{run_key_suffix}:{len(ids)}:{digest}", job_name=EVENT_JOB_NAME,
                         run_config=event_run_config(ids), tags=tags)


def event_run_projects(run: dg.DagsterRun) -> list[str]:
    """The projects an ``aurora_event_sync`` run stages (from its run config)."""
    ops = (run.run_config or {}).get("ops") or {}
    return list(((ops.get(CHANGED_PROJECTS_OP) or {}).get("config") or {}).get("project_ids") or [])
