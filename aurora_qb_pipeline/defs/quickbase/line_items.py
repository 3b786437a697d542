"""The line items asset: each design's bill of materials in a child Quickbase table.

Runs after the design export in the same run (it needs the designs' record ids for the reference
field) and composes :func:`aurora_qb_pipeline.line_items.export_line_items`. When no line items
table is configured (``QB_LINE_ITEMS_TABLE_ID``) it does nothing and says so."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from ...line_items import export_line_items, load_spec
from ...store import HoldPolicy
from ..aurora.staging import DUCKDB_POOL, OWNERS
from ..resources import QuickbaseResource
from ..retries import deterministic_failures
from .assets import EXPORT_GROUP, EXPORT_KEY, EXPORT_RETRY

LINE_ITEMS_KEY = dg.AssetKey(["quickbase", "design_line_items"])


@dg.asset(
    key=LINE_ITEMS_KEY,
    deps=[EXPORT_KEY],
    group_name=EXPORT_GROUP,
    pool=DUCKDB_POOL,
    owners=OWNERS,
    kinds={"quickbase", "duckdb"},
    retry_policy=EXPORT_RETRY,
)
def design_line_items(
    context: dg.AssetExecutionContext, quickbase: QuickbaseResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Upserts each exported design's bill of materials (one record per component, merged on
    design id + component id, related to the design's record) into the line items table, and
    deletes components removed from the design in Aurora."""
    if not quickbase.line_items_table_id:
        context.log.info("line items are not synced: QB_LINE_ITEMS_TABLE_ID is not set")
        return dg.MaterializeResult(metadata={"enabled": False})
    client = quickbase.client.for_table(quickbase.line_items_table_id)
    try:
        with deterministic_failures():
            tally = export_line_items(duckdb, client, load_spec(), HoldPolicy(quickbase.hold_policy))
        stats = client.stats
    finally:
        client.close()
    for failure in tally.failures:
        context.log.warning(f"line item refused: {failure}")
    return dg.MaterializeResult(metadata={
        "enabled": True, **{k: v for k, v in vars(tally).items() if k != "failures"},
        "records_per_request": round(tally.sent / tally.requests, 1) if tally.requests else 0.0,
        "quickbase_api": dg.MetadataValue.json(stats),
    })
