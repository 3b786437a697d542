"""The export's send step: batches -> upserts -> per-record outcomes, booked after every request.

* a request refused as too large (413, or a 400 that says so) is split in halves until its records
  land, and the rest of the run keeps under half the refused size; a single record too large on
  its own is logged as failed;
* a refused credential (401/403) stops the export at once (:class:`AuthenticationError`);
* a request refused as a whole, or line errors explained by a change of the table (a mapped
  field deleted or retyped, the merge field no longer unique), stop it with a message naming the
  change (:class:`TableChanged` / :class:`RequestRefused`); what landed before is booked, and the
  next export also compares with what Quickbase holds, since the change may have cleared values;
* an upsert whose answer was lost after Quickbase may have applied it is booked from the record
  id and Date Modified its retry answers by merge key (created / updated), never as "unchanged";
* :func:`check_landed` fails an export that sent records and landed none.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional

from dagster_duckdb import DuckDBResource

from .clients import AuthenticationError, NotFoundError, PayloadTooLargeError, PermanentApiError, QuickbaseClient
from .clients.quickbase import UpsertResult, plan_batches
from .drift import request_reconcile
from .export import ExportPlan, ExportStopped, NothingLanded, RequestRefused, TableChanged
from .mapping import EncodedRow, table_changes
from .store import write_export_results
from .sync_status import status_rows, write_statuses


@dataclass
class BatchLimits:
    """Largest body and record count per upsert; a 413 lowers ``max_bytes`` for the rest of the run."""

    max_bytes: int
    max_records: Optional[int] = None


def _outcome(plan: ExportPlan, result: UpsertResult, position: int, row: EncodedRow) -> str:
    """created / updated / unchanged / failed. When an earlier attempt's answer was lost, an
    "unchanged" may be that attempt's doing: read back by merge key (the record id and Date
    Modified this answer gives) against what the export last knew of the record."""
    outcome = result.outcome(position)
    if outcome != "unchanged" or not result.answer_lost:
        return outcome
    prior = plan.last.get(row.design_id)
    if prior is None or prior.record_id != result.record_ids[position]:
        return "created"
    if prior.qb_modified is None or prior.qb_modified != result.date_modified[position]:
        return "updated"
    return "unchanged"


def book_batch(plan: ExportPlan, batch: list[EncodedRow], result: UpsertResult) -> tuple[list[tuple], list[tuple]]:
    """(export-log rows, export-state rows) of one answered upsert."""
    tally = plan.tally
    log_rows: list[tuple] = []
    state_rows: list[tuple] = []
    tally.requests += 1
    tally.sent += len(batch)
    tally.answers_lost += int(result.answer_lost)
    for position, row in enumerate(batch):
        outcome = _outcome(plan, result, position, row)
        if row.status_only:  # a record given its sync status only: not an export of Aurora's values
            tally.sent -= 1
            tally.status_updates += int(outcome != "failed")
            continue
        if outcome == "failed":
            messages = result.line_errors.get(position) or ["no record id returned"]
            log_rows.append(tally.count_failure("failed", row.design_id, "; ".join(messages)))
            continue
        record_id, modified = result.record_ids[position], result.date_modified[position]
        setattr(tally, outcome, getattr(tally, outcome) + 1)
        log_rows.append((row.design_id, outcome, plan.reasons.get(row.design_id), record_id, row.content_hash))
        state_rows.append((row.design_id, row.content_hash, record_id, outcome, modified))
    return log_rows, state_rows


def changes_to_table(plan: ExportPlan, quickbase: QuickbaseClient) -> list[str]:
    """What changed in the table since the export checked the mapping (one GET /v1/fields)."""
    try:
        return table_changes(plan.mapping, quickbase.get_fields())
    except AuthenticationError:
        raise
    except NotFoundError as exc:
        return [f"the table cannot be found any more ({quickbase.redact(str(exc))})"]
    except PermanentApiError as exc:
        return [f"the table's fields cannot be read ({quickbase.redact(str(exc))})"]


def _stop(plan: ExportPlan, what: str, error: type[ExportStopped]) -> ExportStopped:
    landed = plan.tally.landed
    return error(
        f"{what} The export stopped at once: {landed} of the {len(plan.to_send)} records to send had landed "
        f"(booked); the next run sends the other {len(plan.to_send) - landed}."
    )


def send(
    plan: ExportPlan,
    quickbase: QuickbaseClient,
    duckdb: DuckDBResource,
    run_id: str,
    batches: list[list[int]],
    limits: BatchLimits,
    warn: Callable[[str], None] = lambda _: None,
) -> None:
    """Write the plan's log rows, then send every batch, persisting after each one: a crash later
    loses nothing and resends nothing. A batch refused as too large is split (and later batches
    kept under the size that was refused); other whole-request problems stop the export."""
    write_export_results(duckdb, run_id, plan.log_rows, plan.state_rows)
    plan.log_rows, plan.state_rows = [], []
    pending = deque(batches)
    while pending:
        indexes = pending.popleft()
        batch = [plan.to_send[i] for i in indexes]
        try:
            result = quickbase.upsert([r.record for r in batch], plan.mapping.merge_field_id)
        except PayloadTooLargeError as exc:
            pending = _split(plan, quickbase, duckdb, run_id, indexes, pending, limits, exc, warn)
            continue
        except AuthenticationError:
            raise
        except PermanentApiError as exc:
            refused = f"Quickbase refused a whole request of {len(batch)} records ({quickbase.redact(str(exc))})."
            _stop_if_table_changed(plan, quickbase, duckdb, refused)
            raise _stop(plan, refused, RequestRefused) from None
        write_export_results(duckdb, run_id, *book_batch(plan, batch, result))
        failed = {i for i in range(len(batch)) if result.outcome(i) == "failed"}
        write_statuses(duckdb, status_rows(batch, result.record_ids, failed))
        if result.line_errors:
            _stop_if_table_changed(plan, quickbase, duckdb, f"Quickbase refused {len(result.line_errors)} of the "
                                   f"{len(batch)} records of the last request (logged).")


def _stop_if_table_changed(plan: ExportPlan, quickbase: QuickbaseClient, duckdb: DuckDBResource, what: str) -> None:
    """Raise :class:`TableChanged` naming the changes if the table no longer fits the mapping; the
    next export then also compares with what Quickbase holds (values may have been cleared)."""
    changes = changes_to_table(plan, quickbase)
    if changes:
        request_reconcile(duckdb, "the table changed during an export: " + "; ".join(changes))
        raise _stop(plan, f"The Quickbase table changed during the export: {'; '.join(changes)}. {what} "
                    "Change the table back or fix the mapping file, then run again.", TableChanged) from None


def _split(
    plan: ExportPlan,
    quickbase: QuickbaseClient,
    duckdb: DuckDBResource,
    run_id: str,
    indexes: list[int],
    pending: deque,
    limits: BatchLimits,
    exc: PayloadTooLargeError,
    warn: Callable[[str], None],
) -> deque:
    """A request refused as too large: one record alone is logged as failed; more are split in
    halves, and the rest of the run keeps under half the refused size."""
    size = quickbase.request_bytes([plan.to_send[i].record for i in indexes])
    if len(indexes) == 1:
        row = plan.to_send[indexes[0]]
        message = (f"too large for one request: Quickbase refused this record alone (about {size:,} bytes) "
                   f"({quickbase.redact(exc.detail)})")
        write_export_results(duckdb, run_id, [plan.tally.count_failure("failed", row.design_id, message)], [])
        return pending
    plan.tally.split_requests += 1
    limits.max_bytes = max(1024, min(limits.max_bytes, size // 2))
    warn(f"Quickbase refused a request of {len(indexes)} records ({size:,} bytes) as too large; sending at most "
         f"{limits.max_bytes:,} bytes a request from now on. Set AURORA_QB_EXPORT_MAX_BYTES (or run config "
         "max_request_bytes) lower to avoid the refused request.")
    halves = [indexes[: len(indexes) // 2], indexes[len(indexes) // 2:]]
    others = [i for batch in pending for i in batch]
    later = plan_batches([plan.to_send[i].record for i in others], limits.max_bytes, limits.max_records)
    return deque(halves + [[others[j] for j in batch] for batch in later])


def check_landed(plan: ExportPlan) -> None:
    """Fail an export that sent records and landed none: that run did nothing it was asked to."""
    tally = plan.tally
    if plan.to_send and tally.failed and not tally.landed:
        reasons = sorted({f["message"] for f in tally.failures})[:3]
        raise NothingLanded(
            f"Quickbase refused all {tally.failed} records this export sent, e.g.: {' | '.join(reasons)}. "
            "See ops.export_log; the next run sends them again."
        )
