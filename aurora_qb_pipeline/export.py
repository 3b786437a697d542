"""The Quickbase export as plain functions: plan and report here, send in
:mod:`aurora_qb_pipeline.export_send`, the reconcile's drift check in :mod:`aurora_qb_pipeline.drift`
(the export asset composes them).

Idempotent by construction:
* records are upserted with ``mergeFieldId`` on the unique "Aurora Design ID" field, so a rerun,
  a retried request or two overlapping runs update instead of duplicating;
* ``ops.export_state`` keeps a hash of what Quickbase last accepted per design, with the record id
  and its Date Modified; a row whose payload hash did not change is not sent again;
* rows Quickbase refuses (207 line errors) or that would be refused (a choice the field does
  not offer, a required value missing) go to ``ops.export_log`` with the reason and keep no
  state, so the next run tries them again; nothing is dropped.

Loud where a problem is not a record's: a refused credential, a table that changed under the
export (a mapped field deleted or retyped, the merge field no longer unique) or a request refused
as a whole stop the export at once with a plain message (:class:`ExportStopped`), after booking
what landed; a request refused as too large is split until its records land; an export that sent
records and landed none fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import pandas as pd
from dagster_duckdb import DuckDBResource

from .clients import QuickbaseClient
from .mapping import (
    EncodedRow,
    MappingError,
    MatchingStrategy,
    ResolvedMapping,
    add_custom_values,
    encode_row,
    load_mapping,
    mapping_never_fits,
    resolve_mapping,
)
from .schemas import EXPORT_CONTRACT, EXPORT_SOURCES
from .store import OPS_SCHEMA, STAGING_SCHEMA, HoldPolicy, ensure_tables, held_sql, read_table, staged_tables_present

_ALIASES = {"designs": "d", "design_summaries": "s", "latest_proposals": "p", "project_addresses": "a"}


def export_sql(hold_policy: HoldPolicy = HoldPolicy.DESIGN) -> str:
    """One row per staged design that has a valid summary; proposal and address are optional.
    Designs with quarantined rows (which ones: ``hold_policy``) are held back until the quarantine
    is cleared. The columns come from the export contract (schemas.py)."""
    return f"""
select {", ".join(f"{_ALIASES[table]}.{column}" for column, (table, _) in EXPORT_CONTRACT.items())},
       {held_sql(hold_policy)} as held
from {STAGING_SCHEMA}.designs d
join {STAGING_SCHEMA}.design_summaries s using (design_id)
left join {STAGING_SCHEMA}.latest_proposals p using (design_id)
left join {STAGING_SCHEMA}.project_addresses a on a.project_id = d.project_id
order by d.project_id, d.design_id
"""
REQUIRED_TABLES = tuple(table for table, _ in EXPORT_SOURCES)


class NothingStaged(RuntimeError):
    """The staged tables the export reads do not exist yet."""


class ExportStopped(RuntimeError):
    """The export stopped at once for a problem of the whole request or table, not of a record:
    retrying cannot help, the message says what to fix, and what landed before is booked."""


class TableChanged(ExportStopped):
    """The Quickbase table stopped fitting the mapping during the export."""


class RequestRefused(ExportStopped):
    """Quickbase refused an upsert request as a whole (not record by record)."""


class NothingLanded(ExportStopped):
    """Every record the export sent was refused."""


@dataclass(frozen=True)
class LastExport:
    """What ``ops.export_state`` holds of a design: the hash Quickbase last accepted, its record
    id and Date Modified then."""

    content_hash: Optional[str]
    record_id: Optional[int] = None
    qb_modified: Optional[str] = None


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
    status_updates: int = 0  # records given only a new sync status (sync_status.py)
    requests: int = 0
    split_requests: int = 0
    answers_lost: int = 0
    failures: list[dict] = field(default_factory=list)

    @property
    def landed(self) -> int:
        return self.created + self.updated + self.unchanged

    def count_failure(self, status: str, design_id: str, message: str) -> tuple:
        setattr(self, status, getattr(self, status) + 1)
        if len(self.failures) < 50:
            self.failures.append({"design_id": design_id, "status": status, "message": message})
        return (design_id, status, message, None, None)


@dataclass
class ExportPlan:
    """What an export will do: the rows to send, and the log rows of those it will not."""

    mapping: ResolvedMapping
    to_send: list[EncodedRow]
    tally: ExportTally
    log_rows: list[tuple] = field(default_factory=list)  # (design_id, status, message, record id, hash)
    state_rows: list[tuple] = field(default_factory=list)  # (design_id, hash, record id, outcome, modified)
    last: dict[str, LastExport] = field(default_factory=dict)
    unchanged: list[EncodedRow] = field(default_factory=list)  # not sent: as last accepted
    reasons: dict[str, str] = field(default_factory=dict)  # design id -> why it is sent (the reconcile)


# --- plan ----------------------------------------------------------------------------------


def load_candidates(
    duckdb: DuckDBResource, hold_policy: HoldPolicy = HoldPolicy.DESIGN
) -> tuple[pd.DataFrame, dict[str, LastExport]]:
    """(one export row per staged design, {design id: what Quickbase last accepted})."""
    ensure_tables(duckdb)
    present = staged_tables_present(duckdb, REQUIRED_TABLES)
    if not all(present.values()):
        missing = [t for t, ok in present.items() if not ok]
        raise NothingStaged(
            f"Nothing staged yet: tables {', '.join(missing)} are missing. "
            "Materialize the Aurora staging assets for at least one project first."
        )
    state = read_table(
        duckdb, f"select design_id, content_hash, qb_record_id, qb_modified from {OPS_SCHEMA}.export_state"
    )
    last = {
        d: LastExport(h, None if pd.isna(rid) else int(rid), None if pd.isna(mod) else str(mod))
        for d, h, rid, mod in state.itertuples(index=False)
    }
    return read_table(duckdb, export_sql(hold_policy)), last


def plan_export(
    candidates: pd.DataFrame, last: dict[str, LastExport], mapping: ResolvedMapping, resend_unchanged: bool = False,
    documents: Optional[dict[str, dict]] = None,
) -> ExportPlan:
    """Sort candidates into held (quarantined), refused (Quickbase would reject them: logged),
    unchanged since the last export, and to send. ``documents``: {design id: {kind: raw payload}}
    for the custom mappings (:func:`.raw_payloads.read_documents`).

    Raises :class:`MappingError` when a custom mapping's values never fit its field (every
    problem at once), before anything is written."""
    plan = ExportPlan(mapping, [], ExportTally(considered=len(candidates)), last=last)
    custom = any(t.custom for t in mapping.targets)
    tallies: dict = {}
    for row in candidates.to_dict("records"):
        if row.pop("held"):
            plan.tally.held += 1
            continue
        if custom:
            add_custom_values(mapping, row, (documents or {}).get(str(row["design_id"])))
        encoded = encode_row(mapping, row, tallies)
        previous = last.get(encoded.design_id)
        if encoded.problems:
            plan.log_rows.append(plan.tally.count_failure("rejected", encoded.design_id, "; ".join(encoded.problems)))
        elif not resend_unchanged and previous is not None and previous.content_hash == encoded.content_hash:
            plan.tally.unchanged_since_last_export += 1
            plan.unchanged.append(encoded)
        else:
            plan.to_send.append(encoded)
            plan.log_rows += [(encoded.design_id, "truncated", note, None, encoded.content_hash)
                              for note in encoded.notes]
    never = mapping_never_fits(tallies, mapping)
    if never:
        raise MappingError(never)
    return plan


def skip_existing(plan: ExportPlan, quickbase: QuickbaseClient, existing: Optional[dict[str, int]] = None) -> None:
    """The ``skip`` strategy: rows whose design Quickbase already holds are not sent (logged, and
    their state kept so they are not asked about again until they change). ``existing``: the
    {key: record id} the reconcile already read, saving the lookup."""
    if plan.mapping.strategy is not MatchingStrategy.SKIP or not plan.to_send:
        return
    if existing is None:
        existing = quickbase.existing_keys(plan.mapping.merge_field_id, [r.design_id for r in plan.to_send])
    skipped = [r for r in plan.to_send if r.design_id in existing]
    plan.to_send = [r for r in plan.to_send if r.design_id not in existing]
    plan.tally.skipped_existing = len(skipped)
    plan.state_rows += [(r.design_id, r.content_hash, existing[r.design_id], "skipped", None) for r in skipped]
    plan.log_rows += [(r.design_id, "skipped", "exists in Quickbase", existing[r.design_id], r.content_hash)
                      for r in skipped]


# --- report --------------------------------------------------------------------------------


def report(plan: ExportPlan, batches: list[list[int]], dry_run: bool, api_stats: dict[str, Any]) -> dict[str, Any]:
    """The export's figures as plain values (the asset shows them as metadata)."""
    tally = plan.tally
    per_request = round(tally.sent / tally.requests, 1) if tally.requests else 0.0
    preview = pd.DataFrame(
        [{"design_id": r.design_id, **{str(k): v for k, v in r.record.items()}} for r in plan.to_send[:10]]
    )
    return {
        "strategy": plan.mapping.strategy.value,
        "dry_run": dry_run,
        **{k: v for k, v in vars(tally).items() if k != "failures"},
        "records_per_request": per_request,
        "planned_requests": len(batches),
        "quickbase_api": api_stats,
        "failures": tally.failures,
        "preview": preview.to_markdown(index=False) if len(preview) else "_nothing to send_",
    }


def failure_counts(duckdb: DuckDBResource, run_id: str) -> dict[str, int]:
    """{status: records} the export of run ``run_id`` logged."""
    ensure_tables(duckdb)
    rows = read_table(
        duckdb, f"select status, count(*) n from {OPS_SCHEMA}.export_log where run_id = ? group by 1", [run_id]
    )
    return dict(zip(rows["status"], rows["n"].astype(int))) if len(rows) else {}


def mapping_for(quickbase: QuickbaseClient, mapping_file: Optional[str], strategy: Optional[str]) -> ResolvedMapping:
    """The mapping file checked against the table's fields; ``strategy`` overrides the file's."""
    try:
        override = MatchingStrategy(strategy) if strategy else None
    except ValueError:
        raise MappingError([f"matching_strategy must be one of enrich, replace, skip (got {strategy!r})"]) from None
    return resolve_mapping(load_mapping(mapping_file), quickbase.get_fields(), override)
