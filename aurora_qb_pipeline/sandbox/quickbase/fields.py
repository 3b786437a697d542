"""Fields as getFields describes them: type, flags, type-specific ``properties``, permissions."""

from __future__ import annotations

import copy
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from ...api_facts import (
    QUICKBASE_BUILT_IN_FIELD_IDS,
    QUICKBASE_DATE_MODIFIED_FIELD,
    QUICKBASE_NUMERIC_FIELD_TYPES,
    QUICKBASE_RECORD_ID_FIELD,
    QUICKBASE_TEXT_FIELD_TYPES,
)

RECORD_ID = QUICKBASE_RECORD_ID_FIELD
DATE_MODIFIED = QUICKBASE_DATE_MODIFIED_FIELD
DATE_CREATED, RECORD_OWNER, LAST_MODIFIED_BY = 1, 4, 5
FIRST_USER_FIELD_ID = max(QUICKBASE_BUILT_IN_FIELD_IDS) + 1

# (fid, label, type) of the fields every table has; Record ID# is the key, unique and required.
BUILTIN_FIELDS: list[tuple[int, str, str]] = [
    (DATE_CREATED, "Date Created", "timestamp"),
    (DATE_MODIFIED, "Date Modified", "timestamp"),
    (RECORD_ID, "Record ID#", "recordid"),
    (RECORD_OWNER, "Record Owner", "user"),
    (LAST_MODIFIED_BY, "Last Modified By", "user"),
]
DERIVED_MODES = frozenset({"formula", "lookup", "summary"})

_TEXT_PROPERTIES = {
    "numLines": 1,
    "maxLength": 0,
    "appendOnly": False,
    "allowHTML": False,
    "allowMentions": False,
}
_NUMBER_PROPERTIES = {
    "numberFormat": 0,
    "decimalPlaces": 0,
    "doesAverage": False,
    "doesTotal": False,
    "blankIsZero": False,
}
_TYPE_PROPERTIES: dict[str, dict[str, Any]] = {
    **dict.fromkeys(QUICKBASE_TEXT_FIELD_TYPES, _TEXT_PROPERTIES),
    **dict.fromkeys(QUICKBASE_NUMERIC_FIELD_TYPES, _NUMBER_PROPERTIES),
    "text-multiple-choice": {
        **_TEXT_PROPERTIES,
        "choices": [],
        "allowNewChoices": False,
        "sortAsGiven": False,
        "carryChoices": True,
    },
    "url": {**_TEXT_PROPERTIES, "linkText": "", "useNewWindow": True, "displayProtocol": True},
    "recordid": {**_NUMBER_PROPERTIES, "primaryKey": True},
    "timestamp": {"displayTime": True, "displayTimezone": False, "displayRelative": False},
    "date": {"displayMonth": "number", "displayDayOfWeek": False, "defaultToday": False},
    "user": {"displayUser": "fullNameOrUserName", "defaultKind": "none"},
    "checkbox": {"displayCheckboxAsText": False},
    # GUESS: the defaults of a new file attachment field (the keys are the spec's).
    "file": {"maxVersions": 3, "versionMode": "keepallversions", "seeVersions": True},
}
_DEFAULT_PERMISSIONS = [
    {"role": "Viewer", "permissionType": "View", "roleId": 10},
    {"role": "Participant", "permissionType": "Modify", "roleId": 11},
    {"role": "Administrator", "permissionType": "Modify", "roleId": 12},
]


def default_properties(field_type: str) -> dict[str, Any]:
    common = {"primaryKey": False, "foreignKey": False, "formula": "", "defaultValue": ""}
    return copy.deepcopy({**common, **_TYPE_PROPERTIES.get(field_type, {})})


class FieldPermission(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True)
    role: Optional[str] = None
    permission_type: Optional[str] = None
    role_id: Optional[int] = None


class QbField(BaseModel):
    """One field in getFields' shape (camelCase on the wire, snake_case in Python)."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True)

    id: int
    label: str
    field_type: str
    mode: str = ""  # "" for data fields; "formula", "lookup" or "summary" for derived ones
    no_wrap: bool = False
    bold: bool = False
    required: bool = False
    appears_by_default: bool = True
    find_enabled: bool = True
    unique: bool = False
    does_data_copy: bool = False
    field_help: str = ""
    audited: bool = False
    properties: dict[str, Any] = Field(default_factory=dict)
    permissions: list[FieldPermission] = Field(
        default_factory=lambda: [FieldPermission.model_validate(p) for p in _DEFAULT_PERMISSIONS]
    )

    @field_validator("field_type")
    @classmethod
    def _read_back_type(cls, value: str) -> str:
        return "timestamp" if value == "datetime" else value  # a datetime field reads back as timestamp

    @property
    def derived(self) -> bool:
        """A formula, lookup or summary field: computed, never stored."""
        return self.mode in DERIVED_MODES

    @property
    def writable(self) -> bool:
        return self.id not in QUICKBASE_BUILT_IN_FIELD_IDS and not self.derived

    @property
    def closed_choices(self) -> Optional[list[str]]:
        """The allowed values when users may not add new ones, else None."""
        if self.field_type != "text-multiple-choice" or self.properties.get("allowNewChoices", False):
            return None
        return list(self.properties.get("choices", []))

    def to_api(self, include_permissions: bool = False) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude=None if include_permissions else {"permissions"})

    def summary(self) -> dict[str, Any]:
        """The ``fields`` entry of a runQuery answer (and of a relationship)."""
        return {"id": self.id, "label": self.label, "type": self.field_type}


def make_field(fid: int, label: str, field_type: str, **attributes: Any) -> QbField:
    """A new field; ``properties`` are merged over the type's defaults, and a non-empty formula
    makes it a formula field."""
    properties = {**default_properties(field_type), **(attributes.pop("properties", None) or {})}
    if properties.get("formula") and not attributes.get("mode"):
        attributes["mode"] = "formula"
    return QbField(id=fid, label=label, field_type=field_type, properties=properties, **attributes)
