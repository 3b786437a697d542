"""The record engine: upsert, hand edits, runQuery, deleteRecords and file attachment versions.

Every write that changes a record stamps Date Modified (field 2) and Last Modified By (field 5);
a record written with values equal to the stored ones is "unchanged" and keeps both, so Date
Modified is a fingerprint of the record's content history. A file attachment write always adds
a version (and so always changes the record).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Optional

from .bodies import QueryBody, SortField
from .derived import has_derived, view
from .errors import QuickbaseError, not_found
from .fields import DATE_CREATED, DATE_MODIFIED, LAST_MODIFIED_BY, RECORD_ID, RECORD_OWNER, QbField
from .models import LineError, QbUser, QueryPage, UpsertResult
from .query import comparable, compile_where, plain
from .table import QbTable
from .values import FileUpload, FileVersion, coerce, empty_value, file_value


def merge_field(table: QbTable, merge_field_id: Optional[int]) -> QbField:
    merge = table.fields.get(RECORD_ID if merge_field_id is None else merge_field_id)
    if merge is None:
        raise QuickbaseError(400, f'Unknown merge field with ID "{merge_field_id}".')
    if not merge.unique:
        raise QuickbaseError(400, f'The merge field with ID "{merge.id}" must be a unique field.')
    return merge


def upsert(
    table: QbTable,
    rows: list[dict[str, Any]],
    merge_field_id: Optional[int],
    user: QbUser,
    fields_to_return: Optional[list[int]] = None,
) -> UpsertResult:
    """Insert or update each row on its own, as Quickbase does: good rows are kept even when
    others fail, and failures are reported per 1-based line."""
    merge = merge_field(table, merge_field_id)
    result = UpsertResult(total=len(rows))
    returned = [RECORD_ID] + [
        fid for fid in fields_to_return or () if fid in table.fields and fid != RECORD_ID
    ]
    for line, row in enumerate(rows, start=1):
        try:
            rid, outcome = _upsert_row(table, row, merge.id, user)
        except LineError as exc:
            result.line_errors[str(line)] = exc.messages
            continue
        result.record_ids[outcome].append(rid)
        if fields_to_return:
            result.data.append(encode(table, rid, returned))
    if result.record_ids["created"] or result.record_ids["updated"]:
        table.touch()
    return result


def _upsert_row(table: QbTable, row: dict[str, Any], merge_fid: int, user: QbUser) -> tuple[int, str]:
    values = _coerce_row(table, row, merge_fid)
    rid = None
    if values.get(merge_fid) is not None:
        rid = table.find(merge_fid, values[merge_fid])
        if rid is None and merge_fid == RECORD_ID:  # GUESS: an unknown record id is an error
            raise LineError([f'Record with ID "{values[merge_fid]}" does not exist.'])
    values.pop(RECORD_ID, None)
    _check_constraints(table, rid, values)
    return write(table, rid, values, user)


def write(table: QbTable, rid: Optional[int], values: dict[int, Any], user: QbUser) -> tuple[int, str]:
    """Store checked values into record ``rid`` (a new record if None), stamping the change."""
    if rid is not None:
        stored = table.rows[rid]
        if all(stored.get(fid) == value for fid, value in values.items()):
            return rid, "unchanged"
    now = table.clock.now()
    values = {fid: _attach(table, rid, fid, value, now, user) for fid, value in values.items()}
    if rid is None:
        rid = table.next_record_id
        table.next_record_id += 1
        stamps = {DATE_CREATED: now, RECORD_ID: rid, RECORD_OWNER: user.value()}
        table.store(rid, {**stamps, DATE_MODIFIED: now, LAST_MODIFIED_BY: user.value(), **values})
        return rid, "created"
    table.store(rid, {**values, DATE_MODIFIED: now, LAST_MODIFIED_BY: user.value()})
    return rid, "updated"


def _attach(table: QbTable, rid: Optional[int], fid: int, value: Any, now: str, user: QbUser) -> Any:
    """A file upload becomes the newest version of the field's attachment."""
    if not isinstance(value, FileUpload):
        return value
    versions = list(table.rows.get(rid, {}).get(fid) or []) if rid is not None else []
    number = versions[-1].version_number + 1 if versions else 1
    versions.append(FileVersion(number, value.file_name, now, user.value(), value.content))
    keep = table.fields[fid].properties.get("maxVersions") or len(versions)
    return versions[-keep:]


def _coerce_row(table: QbTable, row: dict[str, Any], merge_fid: int) -> dict[int, Any]:
    values: dict[int, Any] = {}
    errors: list[str] = []
    for key, cell in row.items():
        target = table.fields.get(int(key)) if key.isdigit() else None
        if target is None:
            errors.append(f'Unknown field with Id "{key}".')
        elif not (target.writable or target.id == merge_fid):
            errors.append(f'Field with ID "{target.id}" is read-only and cannot be written.')  # GUESS
        elif not isinstance(cell, dict) or "value" not in cell:
            errors.append(f'Incompatible value for field with ID "{target.id}".')
        else:
            try:
                values[target.id] = _choice(target, coerce(target.field_type, cell["value"]))
            except ValueError:
                errors.append(f'Incompatible value for field with ID "{target.id}".')
            except LineError as exc:
                errors.extend(exc.messages)
    if errors:
        raise LineError(errors)
    return values


def _choice(target: QbField, value: Any) -> Any:
    """A multiple-choice value matched (case-insensitively) to one of the field's choices."""
    allowed = target.closed_choices
    if allowed is None or value is None:
        return value
    match = next((choice for choice in allowed if choice.casefold() == value.casefold()), None)
    if match is None:
        raise LineError([f"The field with ID '{target.id}' has an invalid choice."])
    return match


def _check_constraints(table: QbTable, rid: Optional[int], values: dict[int, Any]) -> None:
    """Required fields (all of them on insert, the written ones on update) and unique fields."""
    errors = []
    for f in table.fields.values():
        if f.required and f.writable and (f.id in values or rid is None) and values.get(f.id) is None:
            errors.append(f'Missing value for required field with ID "{f.id}".')
    for fid, value in values.items():
        if table.is_unique(fid) and value is not None and table.find(fid, value) not in (None, rid):
            errors.append(f'Duplicate value for unique field with ID "{fid}".')  # GUESS: text unknown
    if errors:
        raise LineError(errors)


def edit(table: QbTable, rid: int, cells: dict[int, Any], user: QbUser) -> str:
    """A hand edit of one record (``{fid: value}``), checked like an upsert line; raises
    :class:`LineError` if refused. Returns "updated" or "unchanged"."""
    if rid not in table.rows:
        raise not_found(f"Record {rid} does not exist in table {table.id}.")
    values = _coerce_row(table, {str(fid): {"value": value} for fid, value in cells.items()}, merge_fid=0)
    _check_constraints(table, rid, values)
    outcome = write(table, rid, values, user)[1]
    if outcome == "updated":
        table.touch()
    return outcome


# -- reading -------------------------------------------------------------------------------------


def encode(
    table: QbTable, rid: int, fids: list[int], row: Optional[dict[int, Any]] = None
) -> dict[str, dict]:
    """A record as the API shows it: ``{"fid": {"value": ...}}`` for the given fields."""
    row = row if row is not None else view(table, table.rows[rid])
    cells = {}
    for fid in fids:
        field_type, value = table.fields[fid].field_type, row.get(fid)
        if field_type == "file":
            value = file_value(value, table.id, rid, fid)
        cells[str(fid)] = {"value": empty_value(field_type) if value is None else value}
    return cells


def _sort_key(field_type: str, fid: int, row: dict[int, Any]) -> tuple[bool, Any]:
    value = comparable(field_type, plain(field_type, row.get(fid)))
    return (value is not None, value)  # empty values first


def matching(table: QbTable, where: Any, sort_by: Optional[list[SortField]] = None) -> list[dict[int, Any]]:
    """The records ``where`` selects (derived fields filled in), sorted by ``sort_by``."""
    predicate = compile_where(where, table.field_types())
    rows = table.rows.values()
    if has_derived(table):
        rows = [view(table, row) for row in rows]
    selected = [row for row in rows if predicate(row)]
    for sort in reversed(sort_by or []):  # stable sorts, least significant key first
        key = partial(_sort_key, table.get_field(sort.field_id).field_type, sort.field_id)
        selected.sort(key=key, reverse=sort.order == "DESC")
    return selected


def query(table: QbTable, body: QueryBody, page_cap: int) -> QueryPage:
    select = body.select or table.default_columns()
    unknown = [fid for fid in select if fid not in table.fields]
    if unknown:
        raise QuickbaseError(400, f'Unknown field with Id "{unknown[0]}".')
    rows = matching(table, body.where, body.sort_by)
    skip, top = body.options.skip, body.options.top
    page_size = min(top, page_cap) if top else page_cap
    data = [encode(table, row[RECORD_ID], select, row) for row in rows[skip : skip + page_size]]
    return QueryPage([table.fields[fid] for fid in select], data, len(rows), skip, top)


def delete(table: QbTable, where: Any) -> int:
    doomed = [row[RECORD_ID] for row in matching(table, where)]
    for rid in doomed:
        table.remove(rid)
    if doomed:
        table.touch()
    return len(doomed)


# -- file attachments ----------------------------------------------------------------------------


def file_version(table: QbTable, rid: int, fid: int, version: int) -> FileVersion:
    """One stored version of a file attachment; 404 when any part does not exist."""
    if rid not in table.rows:
        raise not_found(f"Record {rid} does not exist in table {table.id}.")
    target = table.get_field(fid)
    if target.field_type != "file":
        raise QuickbaseError(400, f"Field {fid} is not a file attachment field.")
    found = next((v for v in table.rows[rid].get(fid) or [] if v.version_number == version), None)
    if found is None:
        raise not_found(f"Version {version} of the file in field {fid} of record {rid} does not exist.")
    return found


def delete_file_version(table: QbTable, rid: int, fid: int, version: int, user: QbUser) -> FileVersion:
    """deleteFile: remove one version. GUESS: that is a change of the record (Date Modified)."""
    doomed = file_version(table, rid, fid, version)
    remaining = [v for v in table.rows[rid][fid] if v is not doomed] or None
    table.store(rid, {fid: remaining, DATE_MODIFIED: table.clock.now(), LAST_MODIFIED_BY: user.value()})
    table.touch()
    return doomed
