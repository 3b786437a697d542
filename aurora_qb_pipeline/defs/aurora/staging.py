"""What every Aurora staging asset does with what it fetched: fetch concurrently (a refused item
becomes a quarantine row, an authentication error stops the run), validate with the pandera
schema, quarantine the rejects, yield the output and its quarantine-rate check."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from dagster_pandera import pandera_schema_to_dagster_type

from ...clients import AuroraClient, AuthenticationError, PermanentApiError
from ...schemas import DesignArrays, Designs, DesignSummaries, LatestProposals, ProjectAddresses, validate_rows
from ...store import ensure_staging_table, replace_quarantine
from ..partitions import projects_partitions
from ..retries import STEP_RETRY, deterministic_failures

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


def staging_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([KEY_PREFIX, name])


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

    A permanent API error (404, 422) for one item becomes a failure row with the reason and the
    others go on. A refused credential (401/403) is raised: every other item would be refused too.
    Transient errors that outlived the client's retries propagate and fail the step (its retry
    policy then retries it)."""

    def one(item):
        try:
            return item, fetch(item), None
        except AuthenticationError:
            raise
        except PermanentApiError as exc:
            return item, None, {**describe(item), "reason": f"fetch failed: {aurora.redact(str(exc))}"}

    results = aurora.map_concurrently(one, items)
    return [(item, answer) for item, answer, failure in results if not failure], [f for *_, f in results if f]


def quarantine_check(asset_name: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        "quarantine_rate",
        asset=staging_key(asset_name),
        blocking=True,
        description=f"At most {MAX_QUARANTINE_FRACTION:.0%} of the rows of {asset_name} this run staged may be "
        "quarantined; more points at a systemic problem (an API change) and stops the export.",
    )


def _preview(frame: pd.DataFrame, rows: int = 5) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False) if len(frame) else "_no rows_")


def stage(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    asset_name: str,
    schema,
    fetched: Fetched,
    key_column: str,
    api_stats: dict[str, float],
    output_name: str = "result",
) -> Iterator[Any]:
    """Validate, quarantine, and yield the output and its quarantine-rate check."""
    checked = validate_rows(schema, fetched.rows)
    rejected = pd.concat([checked.rejected, pd.DataFrame(fetched.failures)], ignore_index=True)
    if "reason" not in rejected:
        rejected["reason"] = []
    ensure_staging_table(duckdb, asset_name, schema)
    replace_quarantine(duckdb, asset_name, context.partition_keys, rejected, key_column, context.run.run_id)
    total = len(checked.valid) + len(rejected)
    fraction = len(rejected) / total if total else 0.0
    for reason in rejected["reason"].head(20):
        context.log.warning(f"{asset_name}: quarantined a row: {reason}")
    yield dg.Output(
        checked.valid,
        output_name=output_name,
        metadata={
            "projects": len(context.partition_keys),
            "valid_rows": len(checked.valid),
            "quarantined_rows": len(rejected),
            **{f"aurora_{k}": v for k, v in api_stats.items()},
            "preview": _preview(checked.valid),
        },
    )
    yield dg.AssetCheckResult(
        asset_key=staging_key(asset_name),
        check_name="quarantine_rate",
        passed=fraction <= MAX_QUARANTINE_FRACTION,
        metadata={"quarantined_rows": len(rejected), "rows": total, "fraction": round(fraction, 4)},
    )


def fetch_and_stage(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    aurora: AuroraClient,
    asset_name: str,
    schema,
    key_column: str,
    items: Sequence[Any],
    fetch: Callable[[Any], Any],
    describe: Callable[[Any], dict],
    to_rows: Callable[[Any, Any], list[dict]],
) -> Iterator[Any]:
    """The whole of a single-output staging asset: fetch each item, turn answers into rows
    (``to_rows(item, answer)``), then :func:`stage` them; deterministic errors are not retried."""
    with deterministic_failures():
        stats = ApiStatsDelta(aurora)
        found, failures = fetch_each(aurora, items, fetch, describe)
        fetched = Fetched([row for item, answer in found for row in to_rows(item, answer)], failures)
        yield from stage(context, duckdb, asset_name, schema, fetched, key_column, stats())


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
