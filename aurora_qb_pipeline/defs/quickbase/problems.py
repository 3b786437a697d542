"""``integration_problems``: the integration log's problems in the Dagster UI.

A warning check on the export, run after every export: the designs refused by Quickbase, held
back because part of their Aurora data is quarantined, and the quarantined rows, each with its
reason, newest first, as a table in the check's metadata (the same entries as
``aurora-qb log --status problems``). It fails (a warning) while any problem is outstanding.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from ...integration_log import PROBLEMS, LogFilter, read_counts, read_log
from ...store import HoldPolicy, connect, ensure_tables
from ..aurora.staging import DUCKDB_POOL
from ..resources import QuickbaseResource
from .assets import EXPORT_KEY

SHOWN = 50
PROBLEM_COLUMNS = dg.TableSchema(columns=[
    dg.TableColumn("time", "string", description="When it happened (UTC)."),
    dg.TableColumn("status", "string", description="refused, held or quarantined."),
    dg.TableColumn("project", "string", description="Aurora project id."),
    dg.TableColumn("design", "string", description="Aurora design id (empty for a project's own row)."),
    dg.TableColumn("run", "string", description="The run that found it (first 8 characters)."),
    dg.TableColumn("reason", "string", description="Why, and what to fix."),
])


@dg.asset_check(
    asset=EXPORT_KEY,
    pool=DUCKDB_POOL,
    description="No design is refused by Quickbase or held back by quarantined Aurora data, and nothing is "
    "quarantined. The metadata lists the newest problems with their reasons (as `aurora-qb log --status problems`).",
)
def integration_problems(duckdb: DuckDBResource, quickbase: QuickbaseResource) -> dg.AssetCheckResult:
    ensure_tables(duckdb)
    policy = HoldPolicy(quickbase.hold_policy)
    with connect(duckdb) as conn:
        problems = read_log(conn, LogFilter(statuses=PROBLEMS, limit=SHOWN), policy)
        counts = read_counts(conn, policy)
    quarantined = sum(counts.quarantined_by_asset.values())
    rows = [{"time": e.at.strftime("%Y-%m-%d %H:%M:%S") if e.at else "", "status": e.status,
             "project": e.project_id or "", "design": e.design_id or "", "run": (e.run_id or "")[:8],
             "reason": e.reason} for e in problems]
    summary = (f"{counts.refused_designs} design(s) refused by Quickbase, {counts.held_designs} held back by "
               f"quarantined Aurora data, {quarantined} row(s) quarantined. Details: `aurora-qb log --status problems`.")
    return dg.AssetCheckResult(
        passed=not (counts.refused_designs or counts.held_designs or quarantined),
        severity=dg.AssetCheckSeverity.WARN,
        description=summary,
        metadata={
            "refused_designs": counts.refused_designs,
            "held_designs": counts.held_designs,
            "quarantined_rows": quarantined,
            "quarantined_by_asset": dg.MetadataValue.json(counts.quarantined_by_asset),
            "recent_problems": dg.MetadataValue.table(
                records=[dg.TableRecord(row) for row in rows], schema=PROBLEM_COLUMNS),
            "recent_problems_md": dg.MetadataValue.md(_markdown(rows, summary)),
        },
    )


def _markdown(rows: list[dict], summary: str) -> str:
    if not rows:
        return "_No problems: every staged design is in Quickbase._"
    import pandas as pd

    escaped = [{k: str(v).replace("|", "\\|").replace("\n", " ") for k, v in row.items()} for row in rows]
    return summary + "\n\n" + pd.DataFrame(escaped).to_markdown(index=False)
