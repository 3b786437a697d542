"""The reconcile's drift check: compare what Quickbase actually holds with what the export last
sent, and resend what is missing or differs.

The incremental export trusts ``ops.export_state``: a design whose content did not change since
Quickbase last accepted it is not sent. Records deleted or edited by hand in Quickbase are then
never repaired. The reconcile (the daily schedule's run, or any export with ``reconcile: true``)
reads every record of the table in one paged query (merge key, record id and the mapped fields,
so one request per page whatever the table's size) and compares the mapped fields with what the
export would send (:func:`aurora_qb_pipeline.mapping.values_match`):

* **missing**: no record holds the design id -> sent again (created), under every strategy;
* **edited**: a mapped field holds another value than the one the export sent (a hand edit,
  another integration, a field cleared by a type change) -> sent again under ``enrich`` and
  ``replace`` (``enrich`` restores the values Aurora has and keeps hand-typed ones where Aurora
  has none, as it always does), left alone under ``skip``;
* **unchanged**: as sent.

Records whose design id no staged design has are counted (``not_staged``) and left alone.

Besides the nightly run, an export reconciles by itself when the table changed under an earlier
one (:func:`request_reconcile`; a mapped field deleted or retyped may have cleared values) or when
the mapped fields' ids or types differ from the last export's (:func:`reconcile_reason`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from dagster_duckdb import DuckDBResource

from .api_facts import QUICKBASE_RECORD_ID_FIELD
from .clients import QuickbaseClient
from .export import ExportPlan
from .mapping import EncodedRow, MatchingStrategy, ResolvedMapping, values_match
from .store import read_meta, write_meta

EXAMPLES = 20  # design ids per category shown in the run's metadata
RECONCILE_REQUEST = "reconcile_requested"  # ops.export_meta: why the next export compares with Quickbase
TABLE_SIGNATURE = "table_signature"  # ops.export_meta: mapped field ids and types at the last export


@dataclass
class DriftReport:
    """What the reconcile found among the designs the export believed in Quickbase as sent."""

    checked: int = 0
    missing: int = 0
    edited: int = 0
    unchanged: int = 0
    edited_left_alone: int = 0  # skip strategy
    not_staged: int = 0  # records of the table no staged design has
    records_in_table: int = 0
    requests: int = 0  # Quickbase requests the comparison cost
    examples: dict[str, list[Any]] = field(default_factory=lambda: {"missing": [], "edited": []})

    def note(self, category: str, example: Any) -> None:
        if len(self.examples[category]) < EXAMPLES:
            self.examples[category].append(example)

    def as_metadata(self) -> dict[str, Any]:
        return asdict(self)


def differing_fields(mapping: ResolvedMapping, row: EncodedRow, held: dict[int, Any]) -> list[str]:
    """Labels of the mapped fields whose value in the record is not the one the export sends."""
    return [
        target.label
        for target in mapping.targets
        if target.field_id in row.record and not values_match(target, row.record[target.field_id], held.get(target.field_id))
    ]


def reconcile(plan: ExportPlan, quickbase: QuickbaseClient) -> tuple[DriftReport, dict[str, int]]:
    """Move the plan's unchanged rows that drifted in Quickbase to ``to_send`` (with the reason);
    returns the report and {merge key: record id} of every record the table holds."""
    mapping = plan.mapping
    before = quickbase.stats["requests"]
    held = quickbase.records_by_key(mapping.merge_field_id, [t.field_id for t in mapping.targets])
    report = DriftReport(checked=len(plan.unchanged), records_in_table=len(held))
    report.requests = int(quickbase.stats["requests"] - before)
    staged = {r.design_id for r in plan.unchanged} | {r.design_id for r in plan.to_send}
    report.not_staged = sum(1 for key in held if key not in staged)
    still_unchanged: list[EncodedRow] = []
    for row in plan.unchanged:
        record = held.get(row.design_id)
        if record is None:
            report.missing += 1
            report.note("missing", row.design_id)
            plan.reasons[row.design_id] = "reconcile: missing in Quickbase"
            plan.to_send.append(row)
            continue
        differing = differing_fields(mapping, row, record)
        if not differing:
            report.unchanged += 1
            still_unchanged.append(row)
            continue
        report.edited += 1
        report.note("edited", {"design_id": row.design_id, "fields": differing})
        if mapping.strategy is MatchingStrategy.SKIP:
            report.edited_left_alone += 1
            still_unchanged.append(row)
            continue
        plan.reasons[row.design_id] = f"reconcile: edited in Quickbase ({', '.join(differing)})"
        plan.to_send.append(row)
    plan.unchanged = still_unchanged
    plan.tally.unchanged_since_last_export = len(still_unchanged)
    return report, {key: int(record[QUICKBASE_RECORD_ID_FIELD]) for key, record in held.items()}


def table_signature(mapping: ResolvedMapping) -> str:
    """The mapped fields' ids and types and the merge field: when they change between runs, values
    Quickbase held may have been converted or cleared."""
    return json.dumps([mapping.merge_field_id, sorted((t.field_id, t.field_type) for t in mapping.targets)])


def request_reconcile(duckdb: DuckDBResource, reason: str) -> None:
    """Make the next export compare with what Quickbase holds (the table changed under it)."""
    write_meta(duckdb, {RECONCILE_REQUEST: reason})


def reconcile_reason(duckdb: DuckDBResource, mapping: ResolvedMapping) -> Optional[str]:
    """Why this export should compare with Quickbase although nobody asked: an earlier run found
    the table changed, or the mapped fields' ids or types differ from the last export's."""
    meta = read_meta(duckdb)
    if meta.get(RECONCILE_REQUEST):
        return meta[RECONCILE_REQUEST]
    stored = meta.get(TABLE_SIGNATURE)
    if stored is not None and stored != table_signature(mapping):
        return "the mapped fields' ids or types changed since the last export"
    return None


def export_finished(duckdb: DuckDBResource, mapping: ResolvedMapping, reconciled: bool) -> None:
    """Remember the table's signature; a reconcile that ran answers any request for one."""
    write_meta(duckdb, {TABLE_SIGNATURE: table_signature(mapping), **({RECONCILE_REQUEST: None} if reconciled else {})})
