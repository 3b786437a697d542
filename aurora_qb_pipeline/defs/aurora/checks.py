"""Checks of the staged Aurora data beyond each asset's own quarantine-rate check."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from ...store import STAGING_SCHEMA, connect, table_exists
from .staging import staging_key


@dg.asset_check(
    asset=staging_key("designs"),
    blocking=True,
    description="Scope: the whole staged table, not the run's partitions. No Aurora design id is staged under two projects: the export merges on it. A design moved "
    "to another project in Aurora leaves its old project's rows when its new project is staged, so this "
    "fails only when Aurora lists one design in two projects at once (in the same run).",
)
def designs_unique_across_projects(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    dupes = duplicate_designs(duckdb)
    return dg.AssetCheckResult(
        passed=not dupes,
        metadata={
            "scope": "table",  # the whole staged table, whichever partitions the run staged
            "duplicate_design_ids": dg.MetadataValue.json(list(dupes)),
            "projects_of_duplicates": dg.MetadataValue.json(dupes),
        },
    )


def duplicate_designs(duckdb: DuckDBResource, limit: int = 20) -> dict[str, list[str]]:
    """{design id: its projects} of up to ``limit`` designs staged under more than one project."""
    with connect(duckdb) as conn:
        if not table_exists(conn, STAGING_SCHEMA, "designs"):
            return {}
        dupes = conn.execute(
            f"select design_id, list(distinct project_id order by project_id) from {STAGING_SCHEMA}.designs "
            f"group by 1 having count(*) > 1 order by 1 limit {int(limit)}"
        ).fetchall()
    return {design: list(projects) for design, projects in dupes}
