"""Quickbase JSON API client as a Dagster resource."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence

from pydantic import Field

from .aurora import RateLimitedResource
from .http import ApiSession

# Quickbase accepts at most 40 MB per upsert request; stay a little under it.
QB_MAX_REQUEST_BYTES = 40 * 1024 * 1024


def _qb_error_detail(body: Any) -> str:
    """Quickbase answers errors as {"message": ..., "description": ...}."""
    if isinstance(body, dict) and ("message" in body or "description" in body):
        return ": ".join(str(body[k]) for k in ("message", "description") if body.get(k))
    return str(body)[:200]


@dataclass
class UpsertResult:
    """What Quickbase reported for one upsert request."""

    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    processed: int = 0
    # 0-based position in the submitted batch -> messages
    line_errors: dict[int, list[str]] = field(default_factory=dict)
    # per successfully written record, in input order: the fields asked for with fieldsToReturn
    data: list[dict[str, Any]] = field(default_factory=list)


def encode_record(record: dict[int, Any]) -> dict[str, dict[str, Any]]:
    return {str(fid): {"value": value} for fid, value in record.items()}


def plan_batches(records: Sequence[dict[int, Any]], max_bytes: int, max_records: Optional[int] = None) -> list[list[int]]:
    """Split records into batches whose JSON body stays under ``max_bytes``.

    Returns lists of indexes into ``records``. A record too large on its own gets a batch of
    its own (Quickbase will then refuse it and the caller logs the error)."""
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


class QuickbaseClient(RateLimitedResource):
    """Reads table schema and upserts/queries records in one Quickbase table.

    Realm, user token and table id come from the environment (``dg.EnvVar``) and are
    redacted from every error and log line.
    """

    base_url: str = Field(default="https://api.quickbase.com", description="Quickbase API root (without /v1).")
    realm_hostname: str = Field(description="QB-Realm-Hostname, e.g. mycompany.quickbase.com (secret).")
    user_token: str = Field(description="Quickbase user token (secret).")
    table_id: str = Field(description="Target table dbid (secret).")
    app_id: Optional[str] = Field(default=None, description="App dbid, used to read the table's properties.")
    rate_limit_per_window: int = Field(default=100, description="Quickbase allows 100 requests per 10 s per token.")
    rate_window_s: float = Field(default=10.0, description="Length of the rate-limit window, seconds.")
    max_request_bytes: int = Field(default=QB_MAX_REQUEST_BYTES - 512 * 1024, description="Upsert body budget.")
    max_records_per_request: Optional[int] = Field(default=None, description="Optional cap on records per upsert.")

    def _new_session(self) -> ApiSession:
        return ApiSession(
            "Quickbase",
            self.base_url.rstrip("/") + "/v1",
            {"QB-Realm-Hostname": self.realm_hostname, "Authorization": f"QB-USER-TOKEN {self.user_token}"},
            timeout_s=self.timeout_s,
            retry=self._retry_settings(),
            rate_limit=self._rate_settings(self.rate_limit_per_window, f"quickbase:{self.realm_hostname}"),
            secrets=[self.user_token, self.realm_hostname, self.table_id, self.app_id],
            error_detail=_qb_error_detail,
            pool_size=2,
        )

    def redact(self, text: str) -> str:
        return self._session().redact(text)

    def get_fields(self) -> list[dict]:
        return self._session().request("GET", "/fields", params={"tableId": self.table_id})[1]

    def get_table(self) -> Optional[dict]:
        if not self.app_id:
            return None
        return self._session().request("GET", f"/tables/{self.table_id}", params={"appId": self.app_id})[1]

    def upsert(
        self,
        records: Sequence[dict[int, Any]],
        merge_field_id: int,
        fields_to_return: Sequence[int] = (),
    ) -> UpsertResult:
        """One upsert request. Retried on transient failures: merging on a unique field makes
        a repeated request harmless (the second pass finds the records unchanged)."""
        body: dict[str, Any] = {
            "to": self.table_id,
            "data": [encode_record(r) for r in records],
            "mergeFieldId": merge_field_id,
        }
        if fields_to_return:
            body["fieldsToReturn"] = list(fields_to_return)
        _, answer = self._session().request("POST", "/records", json_body=body, ok_statuses=(200, 207))
        meta = answer.get("metadata", {})
        return UpsertResult(
            created=list(meta.get("createdRecordIds", [])),
            updated=list(meta.get("updatedRecordIds", [])),
            unchanged=list(meta.get("unchangedRecordIds", [])),
            processed=int(meta.get("totalNumberOfRecordsProcessed", 0)),
            line_errors={int(k) - 1: list(v) for k, v in (meta.get("lineErrors") or {}).items()},
            data=list(answer.get("data") or []),
        )

    def batches(self, records: Sequence[dict[int, Any]]) -> list[list[int]]:
        return plan_batches(records, self.max_request_bytes, self.max_records_per_request)

    def query(self, select: Sequence[int], where: Optional[str] = None, page_size: int = 0) -> Iterator[dict[str, Any]]:
        """All matching records ({fid-string: value}), following Quickbase's size-based paging."""
        skip = 0
        while True:
            body: dict[str, Any] = {"from": self.table_id, "select": list(select), "options": {"skip": skip}}
            if page_size:
                body["options"]["top"] = page_size
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

    def delete(self, where: str) -> int:
        body = {"from": self.table_id, "where": where}
        return int(self._session().request("DELETE", "/records", json_body=body)[1].get("numberDeleted", 0))
