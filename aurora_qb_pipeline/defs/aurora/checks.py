"""Checks of the staged Aurora data beyond each asset's own quarantine-rate check."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from ...store import STAGING_SCHEMA, connect
from .staging import staging_key


@dg.asset_check(
    asset=staging_key("designs"),
    blocking=True,
    description="No Aurora design id is staged twice (across projects): the export merges on it.",
)
def designs_unique_across_projects(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with connect(duckdb) as conn:
        dupes = conn.execute(
            f"select design_id, count(*) n from {STAGING_SCHEMA}.designs group by 1 having n > 1 limit 20"
        ).fetchall()
    return dg.AssetCheckResult(
        passed=not dupes,
        metadata={"duplicate_design_ids": dg.MetadataValue.json([d for d, _ in dupes])},
    )
