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
from dagster_duckdb import DuckDBResource
from dagster_pandera import pandera_schema_to_dagster_type

from ...clients import AuroraClient, AuthenticationError, PermanentApiError
from ...coerce import preview
from ...schemas import DesignArrays, Designs, DesignSummaries, LatestProposals, ProjectAddresses
from ...store import ensure_staging_table, replace_quarantine
from ...validation import Validated, note_text, validate_rows
from ..partitions import projects_partitions
from ..retries import STEP_RETRY, TRANSIENT_ERRORS, staging_failures

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
        description=f"At most {MAX_QUARANTINE_FRACTION:.0%} of the rows of {asset_name} this run staged may be "
        "quarantined; more points at a systemic problem (an API change) and stops the export.",
    )


def _preview(frame: pd.DataFrame, rows: int = 5) -> dg.MetadataValue:
    """The first rows as a markdown table (whatever text they hold is valid UTF-8 by now)."""
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
    checked: Optional[Validated] = None,
) -> Iterator[Any]:
    """Validate (unless ``checked`` already is), quarantine, record the notes, and yield the output
    and its quarantine-rate check."""
    checked = checked or validate_rows(schema, fetched.rows, key_column)
    rejected = [*checked.rejected, *fetched.failures]
    ensure_staging_table(duckdb, asset_name, schema)
    replace_quarantine(duckdb, asset_name, context.partition_keys, rejected, key_column, context.run.run_id,
                       checked.notes)
    total = len(checked.valid) + len(rejected)
    fraction = len(rejected) / total if total else 0.0
    for row in rejected[:20]:
        where = row.get(key_column) or row.get("project_id")
        context.log.warning(f"{asset_name}: quarantined {key_column} {where}: {row['reason']}")
    for note in checked.notes[:20]:
        context.log.info(f"{asset_name}: repaired {note['record_key'] or note['project_id']}: {note_text(note)}")
    yield dg.Output(
        checked.valid,
        output_name=output_name,
        metadata={
            "projects": len(context.partition_keys),
            "valid_rows": len(checked.valid),
            "quarantined_rows": len(rejected),
            "repaired_values": len(checked.notes),
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
    after_fetch: Optional[Callable[[list, list], None]] = None,
) -> Iterator[Any]:
    """The whole of a single-output staging asset: fetch each item, turn answers into rows
    (``to_rows(item, answer)``), then :func:`stage` them; only transient errors are retried.
    ``after_fetch(found, failures)``: called with the answers ([(item, answer)]) and the failure
    rows before anything is staged (keeps the raw answers, notes deletions; it may drop failure
    rows it explains, such as a 404 for a project deleted in Aurora)."""
    with staging_failures():
        stats = ApiStatsDelta(aurora)
        found, failures = fetch_each(aurora, items, fetch, describe)
        fetched = read_each(found, to_rows, describe)
        if after_fetch is not None:
            after_fetch(found, failures)
        fetched.failures[:0] = failures
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
