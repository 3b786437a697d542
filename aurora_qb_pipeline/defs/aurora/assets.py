"""Aurora staging assets: one dynamic partition per Aurora project, staged in DuckDB.

Every asset fetches what it needs for the projects of its run (one project, or a whole range
when a backfill runs as a single run) with the table functions of :mod:`.project_set` (shared
with the event path, which stages an explicit project set in one run), validates the rows with
its pandera schema, sets the rows that fail aside in ``ops.quarantine`` with the reason, and
hands the rest to the DuckDB IO manager (schema ``staging``), which replaces exactly those
projects' rows (``partition_expr``). Each partition's materialization carries its own row counts.
"""

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from ...schemas import DesignArrays, Designs, DesignSummaries, LatestProposals, ProjectAddresses
from ...store import release_moved_designs
from ..resources import AuroraResource
from ..retries import staging_failures
from ..webhooks.resources import WebhookInboxResource
from .project_set import (
    addresses_rows,
    designs_rows,
    proposals_rows,
    summaries_and_arrays_rows,
    teach_design_projects,
)
from ..partitions import known_projects
from ..tenancy import names_of_asset
from .raw_staging import note_deletions, project_fetcher, stage_pricing
from .staging import (
    KEY_PREFIX,
    KINDS,
    OWNERS,
    PARTITION_METADATA,
    STAGING_ASSET_ARGS,
    TYPES,
    design_keys,
    quarantine_check,
    stage,
)


@dg.asset(**STAGING_ASSET_ARGS, key_prefix=KEY_PREFIX, owners=OWNERS, metadata=PARTITION_METADATA, kinds=KINDS,
          check_specs=[quarantine_check("project_addresses")], dagster_type=TYPES[ProjectAddresses])
def project_addresses(context: dg.AssetExecutionContext, aurora: AuroraResource, duckdb: DuckDBResource):
    """Customer and site address of each Aurora project, state/region names resolved with ISO 3166-2."""
    with staging_failures():
        client, keys = aurora.client, context.partition_keys
        known = known_projects(context.instance, names_of_asset(context).partitions)
        fetch = project_fetcher(context, client, keys, len(known))
        table = addresses_rows(client, keys, fetch)
        note_deletions(context.log, duckdb, client, keys, table)
        yield from stage(context, duckdb, table)


@dg.asset(**STAGING_ASSET_ARGS, key_prefix=KEY_PREFIX, owners=OWNERS, metadata=PARTITION_METADATA, kinds=KINDS,
          check_specs=[quarantine_check("designs")], dagster_type=TYPES[Designs])
def designs(context: dg.AssetExecutionContext, aurora: AuroraResource, duckdb: DuckDBResource,
            webhook_inbox: WebhookInboxResource):
    """Every design of each project, with system size in kW (Aurora reports watts). A design moved
    to one of these projects in Aurora leaves its old project's staged rows. The webhook inbox learns
    each design's project (a simulation event then costs no lookup)."""
    with staging_failures():
        table = designs_rows(aurora.client, context.partition_keys)
        note_deletions(context.log, duckdb, aurora.client, context.partition_keys, table)
        for event in stage(context, duckdb, table):
            if isinstance(event, dg.Output):
                for design_id, old_project in release_moved_designs(
                    duckdb, context.partition_keys, list(event.value["design_id"])
                ):
                    context.log.info(f"design {design_id} moved from project {old_project}: its old rows were dropped")
                teach_design_projects(context.log, webhook_inbox.inbox, event.value)
            yield event


@dg.asset(**STAGING_ASSET_ARGS, key_prefix=KEY_PREFIX, owners=OWNERS, metadata=PARTITION_METADATA, kinds=KINDS,
          check_specs=[quarantine_check("latest_proposals")], dagster_type=TYPES[LatestProposals],
          ins={"designs": dg.AssetIn(key=[KEY_PREFIX, "designs"])})
def latest_proposals(
    context: dg.AssetExecutionContext, aurora: AuroraResource, duckdb: DuckDBResource, designs: pd.DataFrame
):
    """The default (latest) proposal of each design: link and last update. Designs without one have no row."""
    with staging_failures():
        table = proposals_rows(aurora.client, designs)
        yield from stage(context, duckdb, table)


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
    with staging_failures():
        summaries, arrays = summaries_and_arrays_rows(aurora.client, designs)
        stage_pricing(context, duckdb, aurora.client, design_keys(designs), context.partition_keys,
                      aurora.fetch_pricing)
        yield from stage(context, duckdb, summaries, output_name="design_summaries")
        yield from stage(context, duckdb, arrays, output_name="design_arrays")
