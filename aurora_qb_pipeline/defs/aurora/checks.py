"""Checks of the staged Aurora data beyond each asset's own quarantine-rate check."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from ...store import STAGING_SCHEMA, connect
from .staging import staging_key


@dg.asset_check(
    asset=staging_key("designs"),
    blocking=True,
    description="No Aurora design id is staged under two projects: the export merges on it. A design moved "
    "to another project in Aurora leaves its old project's rows when its new project is staged, so this "
    "fails only when Aurora lists one design in two projects at once (in the same run).",
)
def designs_unique_across_projects(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with connect(duckdb) as conn:
        dupes = conn.execute(
            f"select design_id, list(distinct project_id order by project_id) from {STAGING_SCHEMA}.designs "
            "group by 1 having count(*) > 1 order by 1 limit 20"
        ).fetchall()
    return dg.AssetCheckResult(
        passed=not dupes,
        metadata={
            "duplicate_design_ids": dg.MetadataValue.json([d for d, _ in dupes]),
            "projects_of_duplicates": dg.MetadataValue.json({d: list(projects) for d, projects in dupes}),
        },
    )
