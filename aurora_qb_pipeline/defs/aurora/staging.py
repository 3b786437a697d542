"""What every Aurora staging asset does with what it fetched: fetch concurrently (a refused item
or a malformed answer becomes a quarantine row naming it, an authentication error stops the run),
turn answers into rows (never raising on a value), validate them with the pandera schema,
quarantine the rejects, record the repairs, yield the output and its quarantine-rate check.

Only transient errors reach the step retry policy (:func:`..retries.staging_failures`)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Sequence

import dagster as dg
import pandas as pd
from dagster._core.execution.context.metadata_logging import (  # not exported; dagster is pinned exactly
    AssetMetadataHandle,
    OutputMetadataAccumulator,
)
from dagster_duckdb import DuckDBResource
from dagster_pandera import pandera_schema_to_dagster_type

from ...clients import AuroraClient, AuthenticationError, PermanentApiError
from ...coerce import preview
from ...schemas import DesignArrays, Designs, DesignSummaries, LatestProposals, ProjectAddresses
from ...raw_payloads import replace_raw
from ...store import ensure_staging_table, replace_quarantine
from ...validation import note_text
from ..partitions import projects_partitions
from ..retries import STEP_RETRY, TRANSIENT_ERRORS
from ..tenancy import tenant_key
from ...tenants import TenantNames

with warnings.catch_warnings():  # the function is marked beta
    warnings.simplefilter("ignore")
    # Shows each table's columns and checks in the UI; the assets themselves call Schema.validate,
    # because this type check discards the coerced frame.
    TYPES = {schema: pandera_schema_to_dagster_type(schema) for schema in
             (ProjectAddresses, Designs, LatestProposals, DesignSummaries, DesignArrays)}

KEY_PREFIX = "aurora"
STAGING_GROUP = "aurora_staging"
DUCKDB_POOL = "duckdb"
OWNERS = ["team:integrations"]
KINDS = {"aurora", "duckdb"}
MAX_QUARANTINE_FRACTION = 0.25
PARTITION_METADATA = {"partition_expr": "project_id"}

STAGING_ASSET_ARGS: dict[str, Any] = dict(
    partitions_def=projects_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=DUCKDB_POOL,
    group_name=STAGING_GROUP,
    retry_policy=STEP_RETRY,
)


def staging_key(name: str, names: Optional[TenantNames] = None) -> dg.AssetKey:
    """A staging asset's key (in ``names``' location when given: many tenants)."""
    key = dg.AssetKey([KEY_PREFIX, name])
    return tenant_key(key, names) if names is not None else key


@dataclass
class Fetched:
    """Rows fetched for a set of projects, plus what could not be fetched and why."""

    rows: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)


def fetch_each(
    aurora: AuroraClient,
    items: Sequence[Any],
    fetch: Callable[[Any], Any],
    describe: Callable[[Any], dict],
) -> tuple[list[tuple[Any, Any]], list[dict]]:
    """Fetch every item concurrently; returns ([(item, answer)], [failure rows]).

    A permanent API error for one item (404, 422, a malformed answer: not JSON, a bare array, a
    missing or null envelope key) becomes a failure row with the reason, which names its path,
    and the others go on. A refused credential (401/403) is raised: every other item would be refused too.
    Transient errors that outlived the client's retries propagate and fail the step (its retry
    policy then retries it)."""

    def one(item):
        try:
            return item, fetch(item), None
        except AuthenticationError:
            raise
        except PermanentApiError as exc:
            return item, None, {**describe(item), "reason": f"fetch failed: {aurora.redact(str(exc))}",
                                "status": exc.status}

    results = aurora.map_concurrently(one, items)
    return [(item, answer) for item, answer, failure in results if not failure], [f for *_, f in results if f]


def read_each(
    found: Sequence[tuple[Any, Any]], to_rows: Callable[[Any, Any], list[dict]], describe: Callable[[Any], dict]
) -> Fetched:
    """Rows of every answer. The transform never raises on a value; should it raise all the same
    (a bug), that one answer is quarantined with the error, naming its project or design, and
    the others go on."""
    fetched = Fetched()
    for item, answer in found:
        try:
            fetched.rows.extend(to_rows(item, answer))
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - reported per item
            fetched.failures.append({**describe(item), "reason": f"could not read the answer: {type(exc).__name__}: "
                                     f"{preview(str(exc), 200)}"})
    return fetched


def quarantine_check(asset_name: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        "quarantine_rate",
        asset=staging_key(asset_name),
        blocking=True,
        description=f"Scope: the run, i.e. all the partitions (projects) one run staged together, not each "
        f"partition. At most {MAX_QUARANTINE_FRACTION:.0%} of the rows of {asset_name} the run staged may be "
        "quarantined; more points at a systemic problem (an API change) and stops the export. Each partition's "
        "own counts are on its materialization.",
    )


def _preview(frame: pd.DataFrame, rows: int = 5) -> dg.MetadataValue:
    """The first rows as a markdown table (whatever text they hold is valid UTF-8 by now)."""
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False) if len(frame) else "_no rows_")


def run_scope(project_ids: Sequence[str]) -> dict[str, Any]:
    """Check metadata naming the partitions a run-scoped check evaluated."""
    ids = list(project_ids)
    return {"scope": "run", "partitions": len(ids),
            "partition_span": f"{ids[0]} .. {ids[-1]}" if len(ids) > 1 else (ids[0] if ids else "")}


def check_metadata(table, project_ids: Sequence[str]) -> dict[str, Any]:
    """The run-scoped quarantine check's metadata: scope, totals, what Aurora was asked, a preview."""
    totals = table.totals()
    return {**run_scope(project_ids), "rows": totals["valid_rows"] + totals["quarantined_rows"], **totals,
            **{f"aurora_{k}": v for k, v in table.api.items()}, "preview": _preview(table.valid)}


def stage(context: dg.AssetExecutionContext, duckdb: DuckDBResource, table, output_name: str = "result") -> Iterator[Any]:
    """The partitioned assets' end of a staging step for the run's partitions: record the
    quarantine and notes, put each partition's own row counts on its materialization
    (``add_asset_metadata(partition_key=...)``: a range run no longer repeats its totals on every
    partition), yield the output for the atomic DuckDB IO manager and the run-scoped quarantine-rate
    check (totals, what Aurora was asked and a preview are on the check). ``table``: a
    :class:`~.project_set.TableRows`."""
    keys = context.partition_keys
    ensure_staging_table(duckdb, table.name, table.schema)
    replace_quarantine(duckdb, table.name, keys, table.rejected, table.key_column, context.run.run_id,
                       table.checked.notes)
    if table.raw_kind:  # Aurora's answers as JSON next to the typed rows (raw_payloads.py)
        replace_raw(duckdb, table.raw_kind, keys, table.raw)
    log_problems(context.log, table)
    key = context.asset_key_for_output(output_name)  # the tenant's key in a tenant's location
    add_partition_metadata(context, key, table.per_project(keys))
    yield dg.Output(table.valid, output_name=output_name)
    yield dg.AssetCheckResult(asset_key=key, check_name="quarantine_rate", passed=table.passed,
                              metadata=check_metadata(table, keys))


def add_partition_metadata(context: dg.AssetExecutionContext, asset_key: dg.AssetKey,
                           by_partition: dict[str, dict[str, Any]]) -> None:
    """What ``context.add_asset_metadata(metadata, asset_key=, partition_key=)`` does, for many
    partitions at once. The public call checks each key by loading every partition key of the run
    from the instance and copies all the metadata gathered so far, each time: O(partitions²), which
    made a 1,000-project range run take minutes longer. Here the keys are checked once and added in
    one step to the same per-partition store (``OutputMetadataAccumulator``, not exported: dagster
    is pinned exactly), which Dagster merges into each partition's materialization."""
    targeted = set(context.partition_keys)
    stray = [key for key in by_partition if key not in targeted]
    if stray:
        raise dg.DagsterInvariantViolationError(f"metadata for partitions this run does not target: {stray[:5]}")
    step = context.get_step_execution_context()
    store = dict(step._metadata_accumulator.per_output_metadata)  # noqa: SLF001
    for key, metadata in by_partition.items():
        handle = AssetMetadataHandle(asset_key=asset_key, partition_key=key)
        store[handle] = {**store.get(handle, {}), **metadata}
    step._metadata_accumulator = OutputMetadataAccumulator(per_output_metadata=store)  # noqa: SLF001


def log_problems(log, table) -> None:
    for row in table.rejected[:20]:
        where = row.get(table.key_column) or row.get("project_id")
        log.warning(f"{table.name}: quarantined {table.key_column} {where}: {row['reason']}")
    for note in table.checked.notes[:20]:
        log.info(f"{table.name}: repaired {note['record_key'] or note['project_id']}: {note_text(note)}")


class ApiStatsDelta:
    """What a client did during one asset, from its cumulative counters."""

    def __init__(self, client: AuroraClient):
        self._client = client
        self._before = client.stats

    def __call__(self) -> dict[str, float]:
        after = self._client.stats
        return {k: round(after[k] - self._before.get(k, 0), 3) for k in after}


def describe_project(project_id: str) -> dict:
    return {"project_id": project_id}


def design_keys(designs: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(designs["project_id"], designs["design_id"]))


def describe_design(key: tuple[str, str]) -> dict:
    return {"project_id": key[0], "design_id": key[1]}
