"""The project partitions, and run requests that cover ranges of them.

Discovery, the daily reconcile and the benchmark's full runs launch range runs with the range
tags; the webhook and design-request sensors launch one ``aurora_event_sync`` run for any set of
projects (``defs/aurora/changed.py``). Every trigger names itself in :data:`TRIGGER_TAG`.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Optional, Sequence

import dagster as dg

from ..ranges import plan_ranges

projects_partitions = dg.DynamicPartitionsDefinition(name="aurora_projects")

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
MAX_RUNTIME_TAG = "dagster/max_runtime"
"""Run monitoring ends a run that has been running longer than this many seconds."""
TRIGGER_TAG = "aurora_qb/trigger"
"""Tag naming what launched a run: discovery, design_requests, daily_reconcile, bench_..."""
DAILY_RECONCILE_TRIGGER = "daily_reconcile"
"""The daily reconcile's trigger: its export also compares with what Quickbase holds (drift)."""


def range_tags(start: str, end: str, trigger: str, max_runtime_s: Optional[int] = None) -> dict[str, str]:
    """Tags of a run over the partitions ``start`` .. ``end`` (inclusive, in partition order);
    ``max_runtime_s``: the run's budget, after which run monitoring ends it (``Settings.run_max_runtime_s``)."""
    tags = {RANGE_START: start, RANGE_END: end, TRIGGER_TAG: trigger}
    if max_runtime_s:
        tags[MAX_RUNTIME_TAG] = str(int(max_runtime_s))
    return tags


def range_run_requests(
    order: Sequence[str],
    keys: Iterable[str],
    trigger: str,
    run_key_suffix: str,
    max_ranges: int,
    max_runtime_s: Optional[Callable[[int], int]] = None,
) -> list[dg.RunRequest]:
    """Range runs covering ``keys`` (at most ``max_ranges``); run keys are stable for the same input.
    ``max_runtime_s(projects)`` sets each run's ``dagster/max_runtime`` from the size of its range."""
    position = {key: i for i, key in enumerate(order)}
    requests = []
    for start, end in plan_ranges(order, keys, max_ranges):
        budget = max_runtime_s(position[end] - position[start] + 1) if max_runtime_s else None
        requests.append(dg.RunRequest(run_key=f"{trigger}:{run_key_suffix}:{start}..{end}",
                                      tags=range_tags(start, end, trigger, budget)))
    return requests


def known_projects(instance: dg.DagsterInstance, partitions: str = projects_partitions.name) -> list[str]:
    """Project partition keys in the order they were added (``partitions``: a tenant's set, ``TenantNames.partitions``)."""
    return list(instance.get_dynamic_partitions(partitions))


def new_partitions_request(
    instance: dg.DagsterInstance, project_ids: Iterable[str], known: Optional[Sequence[str]] = None,
    partitions: str = projects_partitions.name,
) -> tuple[list[str], list[str], list[dg.AddDynamicPartitionsRequest]]:
    """(new keys, partition order once they are added, the add request). ``project_ids`` keep
    their order when given as a list; a set is sorted. ``partitions``: a tenant's set."""
    known = known_projects(instance, partitions) if known is None else list(known)
    seen = set(known)
    ordered = project_ids if isinstance(project_ids, list) else sorted(project_ids)
    new = [p for p in dict.fromkeys(ordered) if p not in seen]
    requests = [dg.AddDynamicPartitionsRequest(partitions_def_name=partitions, partition_keys=new)] if new else []
    return new, known + new, requests


def materialization_records(
    instance: dg.DagsterInstance, records_filter: dg.AssetRecordsFilter
) -> Iterator[dg.EventLogRecord]:
    """Every materialization record ``records_filter`` matches, following the instance's paging."""
    cursor = None
    while True:
        page = instance.fetch_materializations(records_filter, limit=1000, cursor=cursor)
        yield from page.records
        if not page.has_more:
            return
        cursor = page.cursor
