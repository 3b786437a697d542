"""The Quickbase export: staged Aurora designs -> one Quickbase record per design.

Idempotent by construction:
* records are upserted with ``mergeFieldId`` on the unique "Aurora Design ID" field, so a rerun,
  a retried request or two overlapping runs update instead of duplicating;
* ``ops.export_state`` keeps a hash of what Quickbase last accepted per design; a row whose
  payload hash did not change is not sent again;
* rows Quickbase refuses (207 line errors) or that would be refused (a choice the field does
  not offer, a required value missing) go to ``ops.export_log`` with the reason and keep no
  state, so the next run tries them again; nothing is dropped.
"""


from dataclasses import dataclass, field
from typing import Optional

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from ..mapping import EncodedRow, MappingError, MatchingStrategy, ResolvedMapping, encode_row, load_mapping, resolve_mapping
from ..resources.http import PermanentApiError
from ..resources.quickbase import QuickbaseClient
from ..storage import OPS_SCHEMA, STAGING_SCHEMA, ensure_tables, read_table, staged_tables_present, write_export_results
from .staging import DUCKDB_POOL, design_summaries, designs, latest_proposals, project_addresses

EXPORT_GROUP = "quickbase"

# One row per staged design that has a valid summary; proposal and address are optional.
# Designs with anything quarantined are held back until the quarantine is cleared.
EXPORT_SQL = f"""
select d.design_id, d.project_id, a.project_name, a.customer_name, d.design_name, d.milestone,
       d.system_size_kw, d.system_size_stc_w, d.design_created_at,
       s.module_count, s.module_model, s.module_models, s.annual_energy_kwh, s.azimuth, s.azimuths, s.array_count,
       p.proposal_link, p.proposal_updated_at,
       a.street_address, a.street_address_2, a.city, a.state_code, a.state_name, a.postal_code,
       a.country, a.country_code,
       exists (select 1 from {OPS_SCHEMA}.quarantine q
               where q.record_key = d.design_id or (q.asset = 'project_addresses' and q.project_id = d.project_id))
         as held
from {STAGING_SCHEMA}.designs d
join {STAGING_SCHEMA}.design_summaries s using (design_id)
left join {STAGING_SCHEMA}.latest_proposals p using (design_id)
left join {STAGING_SCHEMA}.project_addresses a on a.project_id = d.project_id
order by d.project_id, d.design_id
"""
REQUIRED_TABLES = ("designs", "design_summaries", "latest_proposals", "project_addresses")


class ExportConfig(dg.Config):
    mapping_file: Optional[str] = None
    matching_strategy: Optional[str] = None  # overrides the mapping file: enrich | replace | skip
    resend_unchanged: bool = False  # send rows even when Quickbase already has this exact content
    dry_run: bool = False  # check and plan, send nothing


@dataclass
class ExportTally:
    considered: int = 0
    held: int = 0
    unchanged_since_last_export: int = 0
    sent: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    rejected: int = 0
    skipped_existing: int = 0
    requests: int = 0
    failures: list[dict] = field(default_factory=list)

    def count_failure(self, status: str, design_id: str, message: str) -> tuple:
        setattr(self, status, getattr(self, status) + 1)
        if len(self.failures) < 50:
            self.failures.append({"design_id": design_id, "status": status, "message": message})
        return (design_id, status, message, None, None)


def _load_candidates(duckdb: DuckDBResource) -> pd.DataFrame:
    ensure_tables(duckdb)
    present = staged_tables_present(duckdb, REQUIRED_TABLES)
    if not all(present.values()):
        missing = [t for t, ok in present.items() if not ok]
        raise dg.Failure(
            description=f"Nothing staged yet: tables {', '.join(missing)} are missing. "
            "Materialize the Aurora staging assets for at least one project first.",
            allow_retries=False,
        )
    return read_table(duckdb, EXPORT_SQL)


def _existing_merge_keys(quickbase: QuickbaseClient, merge_fid: int, design_ids: list[str]) -> set[str]:
    """Which of these design ids Quickbase already has (for the 'skip' strategy)."""
    found: set[str] = set()
    for start in range(0, len(design_ids), 100):
        chunk = design_ids[start : start + 100]
        where = "OR".join("{%d.EX.'%s'}" % (merge_fid, d.replace("'", "\\'")) for d in chunk)
        found.update(str(r[str(merge_fid)]) for r in quickbase.query([merge_fid], where=where))
    return found


def _send_batch(
    quickbase: QuickbaseClient, mapping: ResolvedMapping, batch: list[EncodedRow], tally: ExportTally
) -> tuple[list[tuple], list[tuple]]:
    """Upsert one batch; returns (export-log rows, export-state rows)."""
    log_rows: list[tuple] = []
    state_rows: list[tuple] = []
    try:
        result = quickbase.upsert([r.record for r in batch], mapping.merge_field_id, fields_to_return=[3])
    except PermanentApiError as exc:
        message = quickbase.redact(str(exc))
        for row in batch:
            log_rows.append(tally.count_failure("failed", row.design_id, message))
        return log_rows, state_rows
    tally.requests += 1
    tally.sent += len(batch)
    created, updated = set(result.created), set(result.updated)
    returned = iter(result.data)
    for position, row in enumerate(batch):
        if position in result.line_errors:
            log_rows.append(tally.count_failure("failed", row.design_id, "; ".join(result.line_errors[position])))
            continue
        record_id = (next(returned, None) or {}).get("3", {}).get("value")
        outcome = "created" if record_id in created else "updated" if record_id in updated else "unchanged"
        setattr(tally, outcome, getattr(tally, outcome) + 1)
        log_rows.append((row.design_id, outcome, None, record_id, row.content_hash))
        state_rows.append((row.design_id, row.content_hash, record_id, outcome))
    return log_rows, state_rows


@dg.asset(
    deps=[project_addresses, designs, latest_proposals, design_summaries.keys_by_output_name["design_summaries"]],
    group_name=EXPORT_GROUP,
    pool=DUCKDB_POOL,
    kinds={"quickbase", "duckdb"},
    retry_policy=dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
)
def quickbase_export(
    context: dg.AssetExecutionContext, config: ExportConfig, quickbase: QuickbaseClient, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Upsert every staged design whose content changed into the Quickbase table (merge on Aurora Design ID)."""
    try:
        mapping_config = load_mapping(config.mapping_file)
        strategy = MatchingStrategy(config.matching_strategy) if config.matching_strategy else None
        mapping = resolve_mapping(mapping_config, quickbase.get_fields(), strategy)
    except (MappingError, ValueError) as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None

    candidates = _load_candidates(duckdb)
    state = read_table(duckdb, f"select design_id, content_hash from {OPS_SCHEMA}.export_state")
    last_hash = dict(zip(state["design_id"], state["content_hash"]))
    tally = ExportTally(considered=len(candidates))
    run_id = context.run.run_id
    log_rows: list[tuple] = []
    to_send: list[EncodedRow] = []
    for row in candidates.to_dict("records"):
        if row.pop("held"):
            tally.held += 1
            continue
        encoded = encode_row(mapping, row)
        if encoded.problems:
            log_rows.append(tally.count_failure("rejected", encoded.design_id, "; ".join(encoded.problems)))
        elif not config.resend_unchanged and last_hash.get(encoded.design_id) == encoded.content_hash:
            tally.unchanged_since_last_export += 1
        else:
            to_send.append(encoded)

    if mapping.strategy is MatchingStrategy.SKIP and to_send and not config.dry_run:
        existing = _existing_merge_keys(quickbase, mapping.merge_field_id, [r.design_id for r in to_send])
        skipped = [r for r in to_send if r.design_id in existing]
        to_send = [r for r in to_send if r.design_id not in existing]
        tally.skipped_existing = len(skipped)
        state_rows = [(r.design_id, r.content_hash, None, "skipped") for r in skipped]
        log_rows += [(r.design_id, "skipped", "exists in Quickbase", None, r.content_hash) for r in skipped]
        write_export_results(duckdb, run_id, log_rows, state_rows)
        log_rows = []

    batches = quickbase.batches([r.record for r in to_send])
    if config.dry_run:
        context.log.info(f"dry run: would send {len(to_send)} records in {len(batches)} requests")
    else:
        write_export_results(duckdb, run_id, log_rows, [])
        for indexes in batches:
            batch_log, batch_state = _send_batch(quickbase, mapping, [to_send[i] for i in indexes], tally)
            # persist after every batch: a crash later loses nothing and resends nothing
            write_export_results(duckdb, run_id, batch_log, batch_state)

    for failure in tally.failures[:20]:
        context.log.warning(f"design {failure['design_id']} {failure['status']}: {failure['message']}")
    per_request = round(tally.sent / tally.requests, 1) if tally.requests else 0.0
    preview = pd.DataFrame([{"design_id": r.design_id, **{str(k): v for k, v in r.record.items()}} for r in to_send[:10]])
    return dg.MaterializeResult(
        metadata={
            "strategy": mapping.strategy.value,
            "dry_run": config.dry_run,
            **{k: v for k, v in vars(tally).items() if k != "failures"},
            "records_per_request": per_request,
            "planned_requests": len(batches),
            "quickbase_api": dg.MetadataValue.json(quickbase.stats),
            "failures": dg.MetadataValue.json(tally.failures),
            "preview": dg.MetadataValue.md(preview.to_markdown(index=False) if len(preview) else "_nothing to send_"),
        }
    )


@dg.asset_check(asset=quickbase_export, description="Every record this export handled was accepted by Quickbase.")
def export_without_failures(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource) -> dg.AssetCheckResult:
    ensure_tables(duckdb)
    rows = read_table(
        duckdb,
        f"select status, count(*) n from {OPS_SCHEMA}.export_log where run_id = ? group by 1",
        [context.run.run_id],
    )
    counts = dict(zip(rows["status"], rows["n"].astype(int))) if len(rows) else {}
    bad = counts.get("failed", 0) + counts.get("rejected", 0)
    return dg.AssetCheckResult(
        passed=bad == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"status_counts": dg.MetadataValue.json(counts), "failed_or_rejected": bad},
        description="Failed and rejected records are retried on the next export; see ops.export_log.",
    )
