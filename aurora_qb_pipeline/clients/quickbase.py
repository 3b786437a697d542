"""Quickbase JSON RESTful API client for one table (plain Python, no Dagster).

Owns Quickbase's protocol: the realm and user-token headers, the error body (``message`` /
``description``), upserts with ``mergeFieldId`` and their per-record answers (record ids and Date
Modified in input order, 207 line errors), request bodies kept under the size limit (a refused
oversized body is :class:`PayloadTooLargeError`), the query language's where clauses and their
escaping, and ``runQuery``'s size-based paging.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional, Sequence

from ..api_facts import (
    QUICKBASE_DATE_MODIFIED_FIELD,
    QUICKBASE_MAX_REQUEST_BYTES,
    QUICKBASE_RATE_LIMIT,
    QUICKBASE_RECORD_ID_FIELD,
)
from .base import ApiClient, ClientOptions
from .http import ApiSession, PayloadTooLargeError, PermanentApiError, TransientApiError

QUICKBASE_CREDENTIALS = "QB_USER_TOKEN / QB_REALM_HOSTNAME / QB_TABLE_ID"
# What stays free of the 40 MB limit for the envelope and for estimates being off.
REQUEST_BYTES_HEADROOM = 512 * 1024
DEFAULT_MAX_REQUEST_BYTES = QUICKBASE_MAX_REQUEST_BYTES - REQUEST_BYTES_HEADROOM
# Values per where clause in existing_keys (one OR-chain per query request).
KEYS_PER_QUERY = 100
ENVELOPE_BYTES = 200  # {"to": ..., "mergeFieldId": ..., "fieldsToReturn": [...], "data": []}
# Quickbase documents a 40 MB limit but not the answer above it: a 413, or (GUESS) a 400 whose
# text speaks of the size. Both mean "send less per request".
_OVERSIZE_TEXT = re.compile(r"too large|payload size|request size|body size|maximum (payload|size)|exceeds", re.I)


def _qb_error_detail(body: Any) -> str:
    """Quickbase answers errors as {"message": ..., "description": ...}."""
    if isinstance(body, dict) and ("message" in body or "description" in body):
        return ": ".join(str(body[k]) for k in ("message", "description") if body.get(k))
    return str(body)[:200]


def quote(value: Any) -> str:
    """A value as a quoted literal of Quickbase's query language (quote and backslash escaped)."""
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def where_equals_any(field_id: int, values: Iterable[Any]) -> str:
    """A where clause matching records whose field ``field_id`` equals one of ``values``."""
    return "OR".join("{%d.EX.%s}" % (field_id, quote(v)) for v in values)


def encode_record(record: dict[int, Any]) -> dict[str, dict[str, Any]]:
    """{field id: value} as Quickbase's record shape {"6": {"value": ...}}."""
    return {str(fid): {"value": value} for fid, value in record.items()}


@dataclass
class UpsertResult:
    """Quickbase's answer to one upsert, per input position.

    ``record_ids[i]``: the record id of input ``i`` (None when Quickbase refused it);
    ``date_modified[i]``: its Date Modified after the write (field 2; None if not answered);
    ``line_errors[i]``: Quickbase's messages for a refused input (207);
    ``answer_lost``: an earlier attempt of this request may have been carried out although its
    answer never arrived (cut off, timed out, 5xx), so "unchanged" here may be what that attempt
    did; the caller reads the outcome back from the record id and Date Modified."""

    record_ids: list[Optional[int]] = field(default_factory=list)
    created: frozenset[int] = frozenset()
    updated: frozenset[int] = frozenset()
    line_errors: dict[int, list[str]] = field(default_factory=dict)
    date_modified: list[Optional[str]] = field(default_factory=list)
    answer_lost: bool = False

    def outcome(self, position: int) -> str:
        """created / updated / unchanged, or failed for a refused input."""
        record_id = self.record_ids[position]
        if position in self.line_errors or record_id is None:
            return "failed"
        return "created" if record_id in self.created else "updated" if record_id in self.updated else "unchanged"


class QuickbaseClient(ApiClient):
    """Reads the fields of one table and upserts / queries its records.

    Realm, user token, table and app ids are redacted from every error and log line."""

    def __init__(
        self,
        *,
        base_url: str,
        realm_hostname: str,
        user_token: str,
        table_id: str,
        app_id: Optional[str] = None,
        options: ClientOptions = ClientOptions(),
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        max_records_per_request: Optional[int] = None,
    ):
        super().__init__(options)
        self.base_url, self.realm_hostname, self.table_id = base_url, realm_hostname, table_id
        self.app_id = app_id  # the app holding the table; only redacted so far
        self._user_token = user_token
        self.max_request_bytes = max_request_bytes
        self.max_records_per_request = max_records_per_request

    def _new_session(self) -> ApiSession:
        return ApiSession(
            "Quickbase",
            self.base_url.rstrip("/") + "/v1",
            {"QB-Realm-Hostname": self.realm_hostname, "Authorization": f"QB-USER-TOKEN {self._user_token}"},
            timeout_s=self.options.timeout_s,
            retry=self.options.retry,
            rate_limit=self.options.rate_limit(QUICKBASE_RATE_LIMIT, f"quickbase:{self.realm_hostname}"),
            secrets=[self._user_token, self.realm_hostname, self.table_id, self.app_id],
            error_detail=_qb_error_detail,
            credential=QUICKBASE_CREDENTIALS,
            pool_size=2,
        )

    def get_fields(self) -> list[dict]:
        """The table's fields as ``GET /v1/fields`` reports them (id, label, fieldType, ...)."""
        return self._session().request("GET", "/fields", params={"tableId": self.table_id})[1]

    def for_table(self, table_id: str) -> "QuickbaseClient":
        """A client of another table of the same realm (same token, options and rate budget)."""
        return QuickbaseClient(base_url=self.base_url, realm_hostname=self.realm_hostname,
                               user_token=self._user_token, table_id=table_id, app_id=self.app_id,
                               options=self.options, max_request_bytes=self.max_request_bytes,
                               max_records_per_request=self.max_records_per_request)

    # --- schema (onboarding: ``aurora-qb quickbase init``) --------------------------------------
    # Documented: GET/POST /v1/tables?appId= (createTable: name, description, singleRecordName,
    # pluralRecordName), GET/POST /v1/fields?tableId= (createField: label, fieldType, properties
    # such as choices and formula; unique/required only through updateField, POST
    # /v1/fields/{id}), GET /v1/tables/{id}/relationships and POST /v1/tables/{child}/relationship
    # (parentTableId, foreignKeyField.label).

    def _call(self, method: str, path: str, params: Optional[dict] = None, body: Any = None) -> Any:
        return self._session().request(method, path, params=params, json_body=body)[1]

    def app_tables(self, app_id: str) -> list[dict]:
        return self._call("GET", "/tables", {"appId": app_id})

    def create_table(self, app_id: str, spec: dict) -> dict:
        return self._call("POST", "/tables", {"appId": app_id}, spec)

    def table_fields(self, table_id: str) -> list[dict]:
        return self._call("GET", "/fields", {"tableId": table_id})

    def create_field(self, table_id: str, spec: dict) -> dict:
        return self._call("POST", "/fields", {"tableId": table_id}, spec)

    def update_field(self, table_id: str, field_id: int, changes: dict) -> dict:
        return self._call("POST", f"/fields/{field_id}", {"tableId": table_id}, changes)

    def relationships(self, table_id: str) -> list[dict]:
        return self._call("GET", f"/tables/{table_id}/relationships").get("relationships", [])

    def create_relationship(self, child_table_id: str, parent_table_id: str, reference_label: str) -> dict:
        body = {"parentTableId": parent_table_id, "foreignKeyField": {"label": reference_label}}
        return self._call("POST", f"/tables/{child_table_id}/relationship", None, body)

    # --- writing -----------------------------------------------------------------------------

    def batches(
        self,
        records: Sequence[dict[int, Any]],
        max_records: Optional[int] = None,
        max_bytes: Optional[int] = None,
    ) -> list[list[int]]:
        """Split records into upsert requests under the body limit (and the record cap, if any);
        indexes into ``records``. A record too large on its own gets a request of its own
        (Quickbase then refuses it, and the caller logs why)."""
        return plan_batches(
            records, max_bytes or self.max_request_bytes, max_records or self.max_records_per_request
        )

    def request_bytes(self, records: Sequence[dict[int, Any]]) -> int:
        """About how many bytes an upsert of ``records`` sends (what the body limit is checked on)."""
        return ENVELOPE_BYTES + sum(_record_bytes(r) for r in records)

    def upsert(self, records: Sequence[dict[int, Any]], merge_field_id: int) -> UpsertResult:
        """One upsert request, merged on the unique field ``merge_field_id``. Retried on transient
        failures: merging makes a repeated request harmless (the second finds the records unchanged,
        and ``answer_lost`` says so). Raises :class:`PayloadTooLargeError` for a body Quickbase
        refuses as too large, other :class:`PermanentApiError`s for a request refused as a whole."""
        body = {
            "to": self.table_id,
            "data": [encode_record(r) for r in records],
            "mergeFieldId": merge_field_id,
            "fieldsToReturn": [QUICKBASE_RECORD_ID_FIELD, QUICKBASE_DATE_MODIFIED_FIELD],
        }
        lost: list[TransientApiError] = []

        def note(error: TransientApiError) -> None:
            if error.maybe_applied:
                lost.append(error)

        try:
            _, answer = self._session().request(
                "POST", "/records", json_body=body, ok_statuses=(200, 207), on_retry=note
            )
        except PermanentApiError as exc:
            if exc.status == 400 and _OVERSIZE_TEXT.search(exc.detail or ""):
                raise PayloadTooLargeError(exc.service, exc.method, exc.path, exc.status, exc.detail) from None
            raise
        meta = answer.get("metadata", {})
        # lineErrors are keyed by 1-based input position; data lists the records written, in input order
        line_errors = {int(k) - 1: list(v) for k, v in (meta.get("lineErrors") or {}).items()}
        written = iter(answer.get("data") or [])
        record_ids: list[Optional[int]] = []
        modified: list[Optional[str]] = []
        for position in range(len(records)):
            row = {} if position in line_errors else (next(written, None) or {})
            value = row.get(str(QUICKBASE_RECORD_ID_FIELD), {}).get("value")
            record_ids.append(None if value is None else int(value))
            modified.append(row.get(str(QUICKBASE_DATE_MODIFIED_FIELD), {}).get("value") or None)
        return UpsertResult(
            record_ids=record_ids,
            created=frozenset(meta.get("createdRecordIds", [])),
            updated=frozenset(meta.get("updatedRecordIds", [])),
            line_errors=line_errors,
            date_modified=modified,
            answer_lost=bool(lost),
        )

    def delete_where(self, where: str) -> int:
        """``DELETE /v1/records`` of the records matching ``where``; returns how many were deleted."""
        _, answer = self._session().request("DELETE", "/records", json_body={"from": self.table_id, "where": where})
        return int((answer or {}).get("numberDeleted", 0))

    def delete_keys(self, key_field_id: int, keys: Sequence[str]) -> int:
        """Delete the records holding one of ``keys`` in field ``key_field_id`` (a request per
        :data:`KEYS_PER_QUERY` keys, so a where clause stays short)."""
        return sum(self.delete_where(where_equals_any(key_field_id, keys[start:start + KEYS_PER_QUERY]))
                   for start in range(0, len(keys), KEYS_PER_QUERY))

    # --- reading -----------------------------------------------------------------------------

    def query(self, select: Sequence[int], where: Optional[str] = None) -> Iterator[dict[str, Any]]:
        """All matching records ({field id as text: value}), following Quickbase's paging (a page
        ends where the answer's size cap falls; ``skip`` moves on by ``numRecords``)."""
        skip = 0
        while True:
            body: dict[str, Any] = {"from": self.table_id, "select": list(select), "options": {"skip": skip}}
            if where:
                body["where"] = where
            _, answer = self._session().request("POST", "/records/query", json_body=body)
            rows = answer.get("data", [])
            for row in rows:
                yield {fid: cell.get("value") for fid, cell in row.items()}
            meta = answer.get("metadata", {})
            skip += int(meta.get("numRecords", len(rows)))
            if not rows or skip >= int(meta.get("totalRecords", 0)):
                return

    def table_summary(self) -> tuple[int, Optional[str]]:
        """(how many records the table holds, the newest Date Modified) in one query: the newest
        record by Date Modified (field 2), ``top`` 1; the count is the answer's ``totalRecords``."""
        body = {"from": self.table_id, "select": [QUICKBASE_RECORD_ID_FIELD, QUICKBASE_DATE_MODIFIED_FIELD],
                "sortBy": [{"fieldId": QUICKBASE_DATE_MODIFIED_FIELD, "order": "DESC"}], "options": {"top": 1}}
        _, answer = self._session().request("POST", "/records/query", json_body=body)
        rows = answer.get("data") or []
        newest = rows[0].get(str(QUICKBASE_DATE_MODIFIED_FIELD), {}).get("value") if rows else None
        return int((answer.get("metadata") or {}).get("totalRecords", len(rows))), newest

    def existing_keys(self, merge_field_id: int, keys: Sequence[str]) -> dict[str, int]:
        """{key: record id} for those of ``keys`` that the table holds in field ``merge_field_id``."""
        found = self.records_by_key(merge_field_id, [], keys)
        return {key: row[QUICKBASE_RECORD_ID_FIELD] for key, row in found.items()}

    def records_by_key(
        self, merge_field_id: int, field_ids: Sequence[int], keys: Optional[Sequence[str]] = None
    ) -> dict[str, dict[int, Any]]:
        """{merge key: {field id: value}} with the record id (field 3) and ``field_ids``, for the
        records holding one of ``keys`` in field ``merge_field_id``, or for every record with a key
        when ``keys`` is None (one paged query of the whole table)."""
        select = list(dict.fromkeys([merge_field_id, QUICKBASE_RECORD_ID_FIELD, *field_ids]))
        wheres: list[Optional[str]] = [None] if keys is None else [
            where_equals_any(merge_field_id, keys[start : start + KEYS_PER_QUERY])
            for start in range(0, len(keys), KEYS_PER_QUERY)
        ]
        found: dict[str, dict[int, Any]] = {}
        for where in wheres:
            for row in self.query(select, where=where):
                key = row.get(str(merge_field_id))
                if key in (None, ""):
                    continue
                values = {int(fid): value for fid, value in row.items()}
                values[QUICKBASE_RECORD_ID_FIELD] = int(values[QUICKBASE_RECORD_ID_FIELD])
                found[str(key)] = values
        return found


def _record_bytes(record: dict[int, Any]) -> int:
    return len(json.dumps(encode_record(record), ensure_ascii=False).encode()) + 1


def plan_batches(records: Sequence[dict[int, Any]], max_bytes: int, max_records: Optional[int] = None) -> list[list[int]]:
    """Indexes of ``records`` grouped into request bodies of at most ``max_bytes`` (and
    ``max_records`` records); a record too large on its own gets a batch of its own."""
    batches: list[list[int]] = []
    current: list[int] = []
    size = ENVELOPE_BYTES
    for i, record in enumerate(records):
        rec_bytes = _record_bytes(record)
        full = current and (size + rec_bytes > max_bytes or (max_records and len(current) >= max_records))
        if full:
            batches.append(current)
            current, size = [], ENVELOPE_BYTES
        current.append(i)
        size += rec_bytes
    if current:
        batches.append(current)
    return batches
