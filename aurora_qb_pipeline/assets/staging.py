"""Aurora staging assets: one dynamic partition per Aurora project, staged in DuckDB.

Every asset fetches what it needs for the projects of its run (one project, or a whole range
when a backfill runs as a single run), validates the rows with its pandera schema, sets the
rows that fail aside in ``ops.quarantine`` with the reason, and hands the rest to the DuckDB
IO manager, which replaces exactly those projects' rows (``partition_expr``).
"""


import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from dagster_pandera import pandera_schema_to_dagster_type

from ..resources.aurora import AuroraClient
from ..resources.http import PermanentApiError
from ..schemas import (
    DesignArrays,
    Designs,
    DesignSummaries,
    LatestProposals,
    ProjectAddresses,
    Validated,
    validate_rows,
)
from ..storage import STAGING_SCHEMA, ensure_staging_table, replace_quarantine
from ..transform import array_rows, design_row, project_address_row, proposal_row, summary_row

with warnings.catch_warnings():  # the function is marked beta
    warnings.simplefilter("ignore")
    # Shows each table's columns and checks in the UI; the assets themselves call Schema.validate,
    # because this type check discards the coerced frame.
    TYPES = {schema: pandera_schema_to_dagster_type(schema) for schema in
             (ProjectAddresses, Designs, LatestProposals, DesignSummaries, DesignArrays)}

projects_partitions = dg.DynamicPartitionsDefinition(name="aurora_projects")

STAGING_GROUP = "aurora_staging"
DUCKDB_POOL = "duckdb"
MAX_QUARANTINE_FRACTION = 0.25

# API assets retry the whole step when the client's own retries were not enough.
STEP_RETRY = dg.RetryPolicy(max_retries=2, delay=15, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

STAGING_ASSET_ARGS: dict[str, Any] = dict(
    partitions_def=projects_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=DUCKDB_POOL,
    group_name=STAGING_GROUP,
    retry_policy=STEP_RETRY,
)
PARTITION_METADATA = {"partition_expr": "project_id"}


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

    A permanent API error (404, 403, 422) for one item becomes a failure row with the reason
    and the others go on; transient errors that outlived the client's retries propagate and
    fail the step (Dagster then retries it)."""

    def one(item):
        try:
            return item, fetch(item), None
        except PermanentApiError as exc:
            return item, None, {**describe(item), "reason": f"fetch failed: {aurora.redact(str(exc))}"}

    results = aurora.map_concurrently(one, items)
    return [(item, answer) for item, answer, failure in results if not failure], [f for *_, f in results if f]


def _quarantine_check(asset_name: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        "quarantine_rate",
        asset=asset_name,
        blocking=True,
        description=f"At most {MAX_QUARANTINE_FRACTION:.0%} of the rows this run staged may be quarantined; "
        "more points at a systemic problem (API change, bad credentials) and stops the export.",
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
    checked: Validated = validate_rows(schema, fetched.rows)
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
        asset_key=asset_name,
        check_name="quarantine_rate",
        passed=fraction <= MAX_QUARANTINE_FRACTION,
        metadata={"quarantined_rows": len(rejected), "rows": total, "fraction": round(fraction, 4)},
    )


class ApiStatsDelta:
    """What a client did during one asset, from its cumulative counters."""

    def __init__(self, client: AuroraClient):
        self._client = client
        self._before = client.stats

    def __call__(self) -> dict[str, float]:
        after = self._client.stats
        return {k: round(after[k] - self._before.get(k, 0), 3) for k in after}


def _describe_project(project_id: str) -> dict:
    return {"project_id": project_id}


def _design_keys(designs: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(designs["project_id"], designs["design_id"]))


def _describe_design(key: tuple[str, str]) -> dict:
    return {"project_id": key[0], "design_id": key[1]}


@dg.asset(**STAGING_ASSET_ARGS, metadata=PARTITION_METADATA, check_specs=[_quarantine_check("project_addresses")],
          kinds={"api", "duckdb"}, dagster_type=TYPES[ProjectAddresses])
def project_addresses(context: dg.AssetExecutionContext, aurora: AuroraClient, duckdb: DuckDBResource):
    """Customer and site address of each Aurora project, state/region names resolved with ISO 3166-2."""
    stats = ApiStatsDelta(aurora)
    found, failures = fetch_each(aurora, context.partition_keys, aurora.get_project, _describe_project)
    fetched = Fetched([project_address_row(pid, project) for pid, project in found], failures)
    yield from stage(context, duckdb, "project_addresses", ProjectAddresses, fetched, "project_id", stats())


@dg.asset(**STAGING_ASSET_ARGS, metadata=PARTITION_METADATA, check_specs=[_quarantine_check("designs")],
          kinds={"api", "duckdb"}, dagster_type=TYPES[Designs])
def designs(context: dg.AssetExecutionContext, aurora: AuroraClient, duckdb: DuckDBResource):
    """Every design of each project, with system size in kW (Aurora reports watts)."""
    stats = ApiStatsDelta(aurora)
    found, failures = fetch_each(aurora, context.partition_keys, aurora.list_designs, _describe_project)
    fetched = Fetched([design_row(pid, d) for pid, items in found for d in items], failures)
    yield from stage(context, duckdb, "designs", Designs, fetched, "design_id", stats())


@dg.asset(**STAGING_ASSET_ARGS, metadata=PARTITION_METADATA, check_specs=[_quarantine_check("latest_proposals")],
          kinds={"api", "duckdb"}, dagster_type=TYPES[LatestProposals])
def latest_proposals(
    context: dg.AssetExecutionContext, aurora: AuroraClient, duckdb: DuckDBResource, designs: pd.DataFrame
):
    """The default (latest) proposal of each design: link and last update. Designs without one have no row."""
    stats = ApiStatsDelta(aurora)
    found, failures = fetch_each(
        aurora, _design_keys(designs), lambda k: aurora.get_default_proposal(k[1]), _describe_design
    )
    fetched = Fetched([proposal_row(pid, did, p) for (pid, did), p in found if p is not None], failures)
    yield from stage(context, duckdb, "latest_proposals", LatestProposals, fetched, "design_id", stats())


@dg.multi_asset(
    outs={
        "design_summaries": dg.AssetOut(
            metadata=PARTITION_METADATA, kinds={"api", "duckdb"}, dagster_type=TYPES[DesignSummaries]
        ),
        "design_arrays": dg.AssetOut(metadata=PARTITION_METADATA, kinds={"duckdb"}, dagster_type=TYPES[DesignArrays]),
    },
    check_specs=[_quarantine_check("design_summaries"), _quarantine_check("design_arrays")],
    **STAGING_ASSET_ARGS,
)
def design_summaries(
    context: dg.AssetExecutionContext, aurora: AuroraClient, duckdb: DuckDBResource, designs: pd.DataFrame
):
    """Design summaries: module model and count, annual energy and azimuth condensed over all
    arrays (design_summaries), and every array on its own row (design_arrays)."""
    stats = ApiStatsDelta(aurora)
    found, failures = fetch_each(
        aurora, _design_keys(designs), lambda k: aurora.get_design_summary(k[1]), _describe_design
    )
    summaries, arrays = Fetched(failures=failures), Fetched()
    for (pid, did), summary in found:
        rows = array_rows(pid, did, summary)
        arrays.rows.extend(rows)
        summaries.rows.append(summary_row(pid, did, summary, rows))
    api = stats()
    yield from stage(context, duckdb, "design_summaries", DesignSummaries, summaries, "design_id", api,
                     output_name="design_summaries")
    yield from stage(context, duckdb, "design_arrays", DesignArrays, arrays, "design_id", {},
                     output_name="design_arrays")


@dg.asset_check(asset=designs, blocking=True, description="No Aurora design id is staged twice (across projects).")
def designs_unique_across_projects(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        dupes = conn.execute(
            f"select design_id, count(*) n from {STAGING_SCHEMA}.designs group by 1 having n > 1 limit 20"
        ).fetchall()
    return dg.AssetCheckResult(
        passed=not dupes,
        metadata={"duplicate_design_ids": dg.MetadataValue.json([d for d, _ in dupes])},
    )


staging_assets = [project_addresses, designs, latest_proposals, design_summaries]
staging_checks = [designs_unique_across_projects]
