"""Aurora staging assets: one dynamic partition per Aurora project, staged in DuckDB.

Every asset fetches what it needs for the projects of its run (one project, or a whole range
when a backfill runs as a single run), validates the rows with its pandera schema, sets the
rows that fail aside in ``ops.quarantine`` with the reason, and hands the rest to the DuckDB
IO manager (schema ``staging``), which replaces exactly those projects' rows (``partition_expr``).
"""

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from ...schemas import DesignArrays, Designs, DesignSummaries, LatestProposals, ProjectAddresses
from ...store import release_moved_designs
from ...transform import design_rows, project_address_row, proposal_row
from ...validation import summaries_and_arrays
from ..resources import AuroraResource
from ..retries import staging_failures
from ..partitions import known_projects
from .raw_staging import (
    design_raw,
    designs_raw,
    keep_raw,
    noting_deletions,
    project_fetcher,
    project_raw,
    stage_pricing,
)
from .staging import (
    KEY_PREFIX,
    KINDS,
    OWNERS,
    PARTITION_METADATA,
    STAGING_ASSET_ARGS,
    TYPES,
    ApiStatsDelta,
    Fetched,
    describe_design,
    describe_project,
    design_keys,
    fetch_and_stage,
    fetch_each,
    quarantine_check,
    stage,
)


@dg.asset(**STAGING_ASSET_ARGS, key_prefix=KEY_PREFIX, owners=OWNERS, metadata=PARTITION_METADATA, kinds=KINDS,
          check_specs=[quarantine_check("project_addresses")], dagster_type=TYPES[ProjectAddresses])
def project_addresses(context: dg.AssetExecutionContext, aurora: AuroraResource, duckdb: DuckDBResource):
    """Customer and site address of each Aurora project, state/region names resolved with ISO 3166-2."""
    client = aurora.client
    yield from fetch_and_stage(
        context, duckdb, client, "project_addresses", ProjectAddresses, "project_id",
        context.partition_keys,
        project_fetcher(context, client, context.partition_keys, len(known_projects(context.instance))),
        describe_project,
        lambda pid, project: [project_address_row(pid, project)],
        after_fetch=noting_deletions(context, duckdb, client, context.partition_keys, "project", project_raw),
    )


@dg.asset(**STAGING_ASSET_ARGS, key_prefix=KEY_PREFIX, owners=OWNERS, metadata=PARTITION_METADATA, kinds=KINDS,
          check_specs=[quarantine_check("designs")], dagster_type=TYPES[Designs])
def designs(context: dg.AssetExecutionContext, aurora: AuroraResource, duckdb: DuckDBResource):
    """Every design of each project, with system size in kW (Aurora reports watts). A design moved
    to one of these projects in Aurora leaves its old project's staged rows."""
    client = aurora.client
    for event in fetch_and_stage(
        context, duckdb, client, "designs", Designs, "design_id",
        context.partition_keys, client.list_designs, describe_project,
        design_rows,
        after_fetch=noting_deletions(context, duckdb, client, context.partition_keys, "design", designs_raw),
    ):
        if isinstance(event, dg.Output):
            for design_id, old_project in release_moved_designs(
                duckdb, context.partition_keys, list(event.value["design_id"])
            ):
                context.log.info(f"design {design_id} moved from project {old_project}: its old rows were dropped")
        yield event


@dg.asset(**STAGING_ASSET_ARGS, key_prefix=KEY_PREFIX, owners=OWNERS, metadata=PARTITION_METADATA, kinds=KINDS,
          check_specs=[quarantine_check("latest_proposals")], dagster_type=TYPES[LatestProposals],
          ins={"designs": dg.AssetIn(key=[KEY_PREFIX, "designs"])})
def latest_proposals(
    context: dg.AssetExecutionContext, aurora: AuroraResource, duckdb: DuckDBResource, designs: pd.DataFrame
):
    """The default (latest) proposal of each design: link and last update. Designs without one have no row."""
    client = aurora.client
    yield from fetch_and_stage(
        context, duckdb, client, "latest_proposals", LatestProposals, "design_id",
        design_keys(designs), lambda key: client.get_default_proposal(key[1]), describe_design,
        lambda key, proposal: [proposal_row(key[0], key[1], proposal)] if proposal is not None else [],
        after_fetch=lambda found, _: keep_raw(duckdb, "proposal", context.partition_keys, found, design_raw),
    )


@dg.multi_asset(
    outs={
        "design_summaries": dg.AssetOut(
            key_prefix=KEY_PREFIX, owners=OWNERS, metadata=PARTITION_METADATA, kinds=KINDS,
            dagster_type=TYPES[DesignSummaries],
            description="One row per design condensing all its arrays: module model (the one with most modules) "
            "and count, annual energy, azimuth of the largest array and the list of all azimuths.",
        ),
        "design_arrays": dg.AssetOut(
            key_prefix=KEY_PREFIX, owners=OWNERS, metadata=PARTITION_METADATA, kinds=KINDS,
            dagster_type=TYPES[DesignArrays],
            description="Every array of every design on its own row: module, count, rating, azimuth, pitch, size.",
        ),
    },
    ins={"designs": dg.AssetIn(key=[KEY_PREFIX, "designs"])},
    check_specs=[quarantine_check("design_summaries"), quarantine_check("design_arrays")],
    **STAGING_ASSET_ARGS,
)
def design_summaries_and_arrays(
    context: dg.AssetExecutionContext, aurora: AuroraResource, duckdb: DuckDBResource, designs: pd.DataFrame
):
    """Fetches each design's summary once and stages it twice: condensed (design_summaries) and
    per array (design_arrays)."""
    client = aurora.client
    with staging_failures():
        stats = ApiStatsDelta(client)
        found, failures = fetch_each(
            client, design_keys(designs), lambda k: client.get_design_summary(k[1]), describe_design
        )
        summaries, arrays = summaries_and_arrays(found)
        keep_raw(duckdb, "summary", context.partition_keys, found, design_raw)
        stage_pricing(context, duckdb, client, design_keys(designs), context.partition_keys, aurora.fetch_pricing)
        api = stats()
        yield from stage(context, duckdb, "design_summaries", DesignSummaries, Fetched(failures=failures),
                         "design_id", api, output_name="design_summaries", checked=summaries)
        yield from stage(context, duckdb, "design_arrays", DesignArrays, Fetched(), "design_id", {},
                         output_name="design_arrays", checked=arrays)
