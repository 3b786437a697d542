"""Checks of the Quickbase export."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from ...export import failure_counts
from .assets import EXPORT_KEY


@dg.asset_check(
    asset=EXPORT_KEY,
    description="Every record this export handled was accepted by Quickbase (failed and rejected ones are "
    "retried on the next export; see ops.export_log).",
)
def export_without_failures(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource) -> dg.AssetCheckResult:
    counts = failure_counts(duckdb, context.run.run_id)
    bad = counts.get("failed", 0) + counts.get("rejected", 0)
    return dg.AssetCheckResult(
        passed=bad == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"status_counts": dg.MetadataValue.json(counts), "failed_or_rejected": bad},
        description="Failed and rejected records are retried on the next export; see ops.export_log.",
    )
