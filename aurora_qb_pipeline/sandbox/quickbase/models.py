"""Users, apps, reports, relationships and the results the record engine hands to routes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from .fields import DATE_MODIFIED, QbField


@dataclass
class QbUser:
    """The user behind a user token, and the apps the token is assigned to."""

    id: str
    email: str
    name: str
    app_ids: set[str] = field(default_factory=set)
    token_id: int = 0  # what deactivateUserToken / deleteUserToken answer with

    def value(self) -> dict[str, str]:
        """How the user reads back in a user field (Record Owner, Last Modified By)."""
        return {"email": self.email, "id": self.id, "name": self.name, "userName": self.email.split("@")[0]}


SANDBOX_ADMIN = QbUser("10000001.sbx0", "admin@sandbox.invalid", "Sandbox Admin")
"""Who Python-side and ``/_sandbox`` writes are made by (a person editing in the Quickbase UI)."""


@dataclass
class QbApp:
    id: str
    name: str
    created: str
    description: str = ""
    table_ids: list[str] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "created": self.created,
            "updated": self.created,
            "dateFormat": "MM-DD-YYYY",
            "timeZone": "(UTC) Coordinated Universal Time",
            "hasEveryoneOnTheInternet": False,
            "variables": [],
            "dataClassification": "None",
            "securityProperties": {
                "allowClone": False,
                "allowExport": False,
                "enableAppTokens": False,
                "hideFromPublic": False,
                "mustBeRealmApproved": True,
                "useIPFilter": True,
            },
        }


def default_report(table_id: str, fields: list[int]) -> dict[str, Any]:
    """GUESS: every table lists one report, the table report "List All" (id "1") showing the
    default columns; the sandbox has no report designer and no other reports."""
    return {
        "id": "1",
        "name": "List All",
        "type": "table",
        "description": "",
        "query": {
            "tableId": table_id,
            "filter": "",
            "formulaFields": [],
            "fields": fields,
            "sortBy": [{"fieldId": DATE_MODIFIED, "order": "DESC"}],
            "groupBy": [],
        },
        "properties": {"displayOnlyNewOrChangedRecords": False, "columnProperties": []},
        "usedLast": "",
        "usedCount": 0,
    }


@dataclass
class Relationship:
    """A parent-child relationship, kept by the child table. Its id is the id of the reference
    (foreign key) field in the child."""

    id: int
    parent_table_id: str
    child_table_id: str
    lookup_field_ids: list[int] = field(default_factory=list)  # in the child
    summary_field_ids: list[int] = field(default_factory=list)  # in the parent

    def to_api(self, child_fields: dict[int, QbField], parent_fields: dict[int, QbField]) -> dict[str, Any]:
        return {
            "id": self.id,
            "parentTableId": self.parent_table_id,
            "childTableId": self.child_table_id,
            "foreignKeyField": child_fields[self.id].summary(),
            "isCrossApp": False,
            "lookupFields": [child_fields[f].summary() for f in self.lookup_field_ids if f in child_fields],
            "summaryFields": [
                parent_fields[f].summary() for f in self.summary_field_ids if f in parent_fields
            ],
        }


class LineError(Exception):
    """One upsert record that was refused, with every reason found."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


@dataclass
class UpsertResult:
    total: int
    record_ids: dict[str, list[int]] = field(
        default_factory=lambda: {"created": [], "updated": [], "unchanged": []}
    )
    line_errors: dict[str, list[str]] = field(default_factory=dict)
    data: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> int:
        return 207 if self.line_errors else 200

    def to_api(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {f"{outcome}RecordIds": ids for outcome, ids in self.record_ids.items()}
        metadata["totalNumberOfRecordsProcessed"] = self.total
        if self.line_errors:
            metadata["lineErrors"] = self.line_errors
        return {"data": self.data, "metadata": metadata}


@dataclass
class QueryPage:
    fields: list[QbField]
    data: list[dict[str, Any]]
    total: int
    skip: int
    top: Optional[int]

    def to_api(self) -> dict[str, Any]:
        metadata = {
            "totalRecords": self.total,
            "numRecords": len(self.data),
            "numFields": len(self.fields),
            "skip": self.skip,
        }
        if self.top is not None:
            metadata["top"] = self.top
        return {"data": self.data, "fields": [f.summary() for f in self.fields], "metadata": metadata}
