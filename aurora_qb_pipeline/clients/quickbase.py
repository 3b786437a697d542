"""Quickbase JSON RESTful API client for one table (plain Python, no Dagster).

Owns Quickbase's protocol: the realm and user-token headers, the error body (``message`` /
``description``), upserts with ``mergeFieldId`` and their per-record answers (record ids in input
order, 207 line errors), request bodies kept under the size limit, the query language's where
clauses and their escaping, and ``runQuery``'s size-based paging.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional, Sequence

from ..api_facts import QUICKBASE_MAX_REQUEST_BYTES, QUICKBASE_RATE_LIMIT, QUICKBASE_RECORD_ID_FIELD
from .base import ApiClient, ClientOptions
from .http import ApiSession

QUICKBASE_CREDENTIALS = "QB_USER_TOKEN / QB_REALM_HOSTNAME / QB_TABLE_ID"
# What stays free of the 40 MB limit for the envelope and for estimates being off.
REQUEST_BYTES_HEADROOM = 512 * 1024
DEFAULT_MAX_REQUEST_BYTES = QUICKBASE_MAX_REQUEST_BYTES - REQUEST_BYTES_HEADROOM
# Values per where clause in existing_keys (one OR-chain per query request).
KEYS_PER_QUERY = 100


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
    ``line_errors[i]``: Quickbase's messages for a refused input (207)."""

    record_ids: list[Optional[int]] = field(default_factory=list)
    created: frozenset[int] = frozenset()
    updated: frozenset[int] = frozenset()
    line_errors: dict[int, list[str]] = field(default_factory=dict)

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

    def upsert(self, records: Sequence[dict[int, Any]], merge_field_id: int) -> UpsertResult:
        """One upsert request, merged on the unique field ``merge_field_id``. Retried on transient
        failures: merging makes a repeated request harmless (the second finds the records unchanged)."""
        body = {
            "to": self.table_id,
            "data": [encode_record(r) for r in records],
            "mergeFieldId": merge_field_id,
            "fieldsToReturn": [QUICKBASE_RECORD_ID_FIELD],
        }
        _, answer = self._session().request("POST", "/records", json_body=body, ok_statuses=(200, 207))
        meta = answer.get("metadata", {})
        # lineErrors are keyed by 1-based input position; data lists the records written, in input order
        line_errors = {int(k) - 1: list(v) for k, v in (meta.get("lineErrors") or {}).items()}
        written = iter(answer.get("data") or [])
        record_ids: list[Optional[int]] = []
        for position in range(len(records)):
            if position in line_errors:
                record_ids.append(None)
                continue
            value = (next(written, None) or {}).get(str(QUICKBASE_RECORD_ID_FIELD), {}).get("value")
            record_ids.append(None if value is None else int(value))
        return UpsertResult(
            record_ids=record_ids,
            created=frozenset(meta.get("createdRecordIds", [])),
            updated=frozenset(meta.get("updatedRecordIds", [])),
            line_errors=line_errors,
        )

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

    def existing_keys(self, merge_field_id: int, keys: Sequence[str]) -> dict[str, int]:
        """{key: record id} for those of ``keys`` that the table holds in field ``merge_field_id``."""
        found: dict[str, int] = {}
        record_id = str(QUICKBASE_RECORD_ID_FIELD)
        for start in range(0, len(keys), KEYS_PER_QUERY):
            where = where_equals_any(merge_field_id, keys[start : start + KEYS_PER_QUERY])
            for row in self.query([merge_field_id, QUICKBASE_RECORD_ID_FIELD], where=where):
                found[str(row[str(merge_field_id)])] = int(row[record_id])
        return found


def plan_batches(records: Sequence[dict[int, Any]], max_bytes: int, max_records: Optional[int] = None) -> list[list[int]]:
    """Indexes of ``records`` grouped into request bodies of at most ``max_bytes`` (and
    ``max_records`` records); a record too large on its own gets a batch of its own."""
    envelope = 200  # {"to": ..., "mergeFieldId": ..., "fieldsToReturn": [...], "data": []}
    batches: list[list[int]] = []
    current: list[int] = []
    size = envelope
    for i, record in enumerate(records):
        rec_bytes = len(json.dumps(encode_record(record), ensure_ascii=False).encode()) + 1
        full = current and (size + rec_bytes > max_bytes or (max_records and len(current) >= max_records))
        if full:
            batches.append(current)
            current, size = [], envelope
        current.append(i)
        size += rec_bytes
    if current:
        batches.append(current)
    return batches
