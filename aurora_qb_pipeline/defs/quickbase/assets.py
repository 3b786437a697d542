"""The Quickbase export asset: staged Aurora designs -> one Quickbase record per design.

It composes the plain functions of :mod:`aurora_qb_pipeline.export`: check the mapping against
the table, plan (held / refused / unchanged / to send), on a reconcile compare with what Quickbase
holds (:mod:`aurora_qb_pipeline.drift`), send in batches under Quickbase's body limit, report.
See those modules for why it is idempotent and when it stops.
"""

from typing import Optional

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from ...deletions import apply_deletions, load_deletion_config
from ...drift import export_finished, reconcile, reconcile_reason, request_reconcile
from ...export import ExportStopped, load_candidates, mapping_for, plan_export, report, skip_existing
from ...sync_status import add_sync_status
from ...export_send import BatchLimits, check_landed, send
from ...mapping import MappingError
from ...raw_payloads import read_documents
from ...store import HoldPolicy, prune_export_log
from ..aurora.changed import CHANGED_PROJECTS_KEY
from ..aurora.staging import DUCKDB_POOL, OWNERS, staging_key
from ..partitions import DAILY_RECONCILE_TRIGGER, TRIGGER_TAG
from ..resources import QuickbaseResource
from .lineage import column_lineage
from ..tenancy import names_of_asset
from ..retries import deterministic_failures

EXPORT_GROUP = "quickbase"
EXPORT_KEY = dg.AssetKey(["quickbase", "designs_export"])

# Retries a send whose transient error outlived the client's own retries; state is persisted
# after every batch, so a retried step resends only what Quickbase has not confirmed.
EXPORT_RETRY = dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


class ExportConfig(dg.Config):
    mapping_file: Optional[str] = Field(default=None, description="Field mapping file (default: the packaged one).")
    matching_strategy: Optional[str] = Field(
        default=None, description="Overrides the mapping file's strategy: enrich | replace | skip."
    )
    resend_unchanged: bool = Field(default=False, description="Send rows Quickbase already has with this content.")
    dry_run: bool = Field(default=False, description="Check and plan, send nothing.")
    max_records_per_request: Optional[int] = Field(
        default=None, ge=1, description="Cap on records per upsert (default: AURORA_QB_EXPORT_MAX_RECORDS)."
    )
    max_request_bytes: Optional[int] = Field(
        default=None, ge=1024, description="Largest upsert body (default: AURORA_QB_EXPORT_MAX_BYTES)."
    )
    hold_policy: Optional[str] = Field(
        default=None, description="Which quarantined rows hold a design: design | project "
        "(default: AURORA_QB_HOLD_POLICY).",
    )
    reconcile: Optional[bool] = Field(
        default=None,
        description="Compare with what Quickbase holds and resend records missing or edited there (drift). "
        "Default: on for the daily reconcile's runs, off otherwise.",
    )


def _hold_policy(value: str) -> HoldPolicy:
    try:
        return HoldPolicy(value)
    except ValueError:
        choices = ", ".join(p.value for p in HoldPolicy)
        raise dg.Failure(f"hold_policy must be one of {choices} (got {value!r})", allow_retries=False) from None


@dg.asset(
    key=EXPORT_KEY,
    # the event path's run stages through aurora/changed_projects; range runs through the staging assets
    deps=[*(staging_key(name) for name in ("project_addresses", "designs", "latest_proposals", "design_summaries")),
          CHANGED_PROJECTS_KEY],
    group_name=EXPORT_GROUP,
    pool=DUCKDB_POOL,
    owners=OWNERS,
    kinds={"quickbase", "duckdb"},
    retry_policy=EXPORT_RETRY,
)
def designs_export(
    context: dg.AssetExecutionContext, config: ExportConfig, quickbase: QuickbaseResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Upserts every staged design whose content changed into the Quickbase table (merge on Aurora Design ID);
    on a reconcile also those missing or edited in Quickbase."""
    client = quickbase.client
    drift = deletions = None
    with deterministic_failures():
        try:
            mapping = mapping_for(client, config.mapping_file, config.matching_strategy)
            deletion_config = load_deletion_config(config.mapping_file)
        except MappingError as exc:  # values may be lost when the table changed: check them once it fits
            request_reconcile(duckdb, f"the table did not fit the mapping: {exc.problems[0]}")
            raise
        hold_policy = _hold_policy(config.hold_policy or quickbase.hold_policy)
        candidates, last = load_candidates(duckdb, hold_policy)
        documents = read_documents(duckdb, mapping.raw_kinds) if mapping.raw_kinds else None
        plan = plan_export(candidates, last, mapping, config.resend_unchanged, documents)
        why = reconcile_reason(duckdb, mapping)
        if context.run.tags.get(TRIGGER_TAG) == DAILY_RECONCILE_TRIGGER:
            why = "the daily reconcile"
        reconciling = bool(why) if config.reconcile is None else config.reconcile
        existing = None
        if reconciling:
            drift, existing = reconcile(plan, client)
            context.log.info(f"reconcile ({why or 'run config'}): {drift.missing} records missing in Quickbase, "
                             f"{drift.edited} edited there, {drift.unchanged} as sent ({drift.requests} requests)")
        if not config.dry_run:
            skip_existing(plan, client, existing)
        add_sync_status(plan, duckdb, hold_policy)  # per-record status fields, when the table has them
        limits = BatchLimits(config.max_request_bytes or client.max_request_bytes,
                             config.max_records_per_request or client.max_records_per_request)
        batches = client.batches([r.record for r in plan.to_send], limits.max_records, limits.max_bytes)
        if config.dry_run:
            context.log.info(f"dry run: would send {len(plan.to_send)} records in {len(batches)} requests")
        else:
            send(plan, client, duckdb, context.run.run_id, batches, limits, warn=context.log.warning)
            export_finished(duckdb, mapping, reconciled=reconciling)
            deletions = apply_deletions(duckdb, client, mapping, deletion_config)
            if deletions.designs:
                context.log.info(f"designs deleted in Aurora: {deletions.designs} (policy "
                                 f"{deletion_config.policy.value}: {deletions.marked} marked, {deletions.deleted} "
                                 f"deleted, {deletions.left} left in Quickbase)")
            prune_export_log(duckdb, quickbase.export_log_retention_days)

    for failure in plan.tally.failures[:20]:
        context.log.warning(f"design {failure['design_id']} {failure['status']}: {failure['message']}")
    figures = report(plan, batches, config.dry_run, client.stats)
    metadata = {
        **figures,
        "quickbase_api": dg.MetadataValue.json(figures["quickbase_api"]),
        "failures": dg.MetadataValue.json(figures["failures"]),
        "preview": dg.MetadataValue.md(figures["preview"]),
        "reconcile": reconciling,
        "reconcile_reason": (why or "run config") if reconciling else "",
        "dagster/column_lineage": column_lineage(mapping, names=names_of_asset(context)),
    }
    if deletions is not None:
        metadata.update(deletions.as_metadata())
    if drift is not None:
        metadata.update({"drift_missing": drift.missing, "drift_edited": drift.edited,
                         "drift_unchanged": drift.unchanged, "drift": dg.MetadataValue.json(drift.as_metadata())})
    try:
        check_landed(plan)
    except ExportStopped as exc:
        raise dg.Failure(description=str(exc), metadata=metadata, allow_retries=False) from None
    return dg.MaterializeResult(metadata=metadata)
