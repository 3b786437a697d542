"""Quickbase at the level of an app: its tables, their fields and relationships, file downloads,
and a :class:`QuickbaseClient` for any table of it on the same session (plain Python, no Dagster).

Endpoints (Quickbase JSON API): ``GET /v1/tables?appId=`` (getAppTables), ``POST
/v1/tables?appId=`` ``{name, description, singleRecordName, pluralRecordName}`` (createTable),
``GET /v1/fields?tableId=`` and ``POST /v1/fields?tableId=`` ``{label, fieldType, fieldHelp,
properties: {choices, ...}}`` (createField; ``unique`` and ``required`` are set with updateField,
``POST /v1/fields/{fieldId}?tableId=``), ``POST /v1/tables/{childTableId}/relationship``
``{parentTableId, foreignKeyField: {label}}`` (createRelationship: the child gets a numeric
reference field holding the parent's Record ID#), ``GET /v1/relationships`` of a child table, and
``GET /v1/files/{tableId}/{recordId}/{fieldId}/{versionNumber}`` (downloadFile: the content,
base64-encoded, as the body). A file attachment is written as ``{"fileName", "data": <base64>}``
and read back as ``{"url", "versions": [{"versionNumber", "fileName", ...}]}``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Optional

from .base import ClientOptions
from .errors import MalformedAnswerError
from .quickbase import QuickbaseClient


class _TableClient(QuickbaseClient):
    """A table's client on its app client's session (one rate budget, one pool); closing it
    leaves the session to the app client."""

    def __init__(self, app: "QuickbaseAppClient", table_id: str):
        super().__init__(base_url=app.base_url, realm_hostname=app.realm_hostname, user_token="", table_id=table_id,
                         app_id=app.app_id, options=app.options)
        self._app = app

    def _session(self):
        return self._app._session()

    def close(self) -> None:
        pass


class QuickbaseAppClient(QuickbaseClient):
    """One Quickbase app (``app_id``): schema calls, file downloads and :meth:`table` clients.
    Its own ``table_id`` is the app's main table (the designs table) for the inherited calls."""

    def __init__(self, *, base_url: str, realm_hostname: str, user_token: str, app_id: str,
                 table_id: str = "", options: ClientOptions = ClientOptions()):
        super().__init__(base_url=base_url, realm_hostname=realm_hostname, user_token=user_token,
                         table_id=table_id, app_id=app_id, options=options)

    def table(self, table_id: str) -> QuickbaseClient:
        """A client of ``table_id`` sharing this client's session."""
        return _TableClient(self, table_id)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._session().request(method, path, **kwargs)[1]

    # --- schema ---------------------------------------------------------------------------------

    def tables(self) -> list[dict]:
        return self._request("GET", "/tables", params={"appId": self.app_id})

    def create_table(self, name: str, description: str = "", single: Optional[str] = None,
                     plural: Optional[str] = None) -> dict:
        body = {"name": name, "description": description}
        if single:
            body["singleRecordName"] = single
        if plural:
            body["pluralRecordName"] = plural
        return self._request("POST", "/tables", params={"appId": self.app_id}, json_body=body)

    def fields_of(self, table_id: str) -> list[dict]:
        return self._request("GET", "/fields", params={"tableId": table_id})

    def create_field(self, table_id: str, label: str, field_type: str, description: str = "",
                     properties: Optional[dict] = None) -> dict:
        body: dict[str, Any] = {"label": label, "fieldType": field_type}
        if description:
            body["fieldHelp"] = description
        if properties:
            body["properties"] = properties
        return self._request("POST", "/fields", params={"tableId": table_id}, json_body=body)

    def update_field(self, table_id: str, field_id: int, **changes: Any) -> dict:
        return self._request("POST", f"/fields/{field_id}", params={"tableId": table_id}, json_body=changes)

    def relationships(self, child_table_id: str) -> list[dict]:
        return self._request("GET", f"/tables/{child_table_id}/relationships").get("relationships", [])

    def create_relationship(self, child_table_id: str, parent_table_id: str, reference_label: str) -> dict:
        body = {"parentTableId": parent_table_id, "foreignKeyField": {"label": reference_label}}
        return self._request("POST", f"/tables/{child_table_id}/relationship", json_body=body)

    # --- files ----------------------------------------------------------------------------------

    def download_file(self, table_id: str, record_id: int, field_id: int, version: int) -> bytes:
        """The content of one version of a file attachment (downloadFile answers it base64-encoded)."""
        path = f"/files/{table_id}/{record_id}/{field_id}/{version}"
        _, raw = self._session().request("GET", path, raw=True)
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedAnswerError("Quickbase", "GET", self.redact(path), 200, "file content is not base64") from None
