"""A loopback emulator of the Quickbase JSON RESTful API (the part the pipeline and its tests use).

It follows Quickbase's published Swagger spec and what has been observed on the wire
(shared/reference/quickbase_api.md): the header checks and their order, the AJV-style 400 texts,
upsert with ``mergeFieldId``, 207 answers with 1-based ``lineErrors``, runQuery with the Quickbase
query language and size-capped pages, deleteRecords, and the field/table/app schema endpoints.
Where the real behaviour is unknown the choice is marked GUESS.

``QuickbaseState`` holds realm, user tokens, apps, tables, fields and records; ``create_app``
serves it. Latency, rate limits (100 requests per 10 s per token by default), fault injection and
the request log come from :mod:`aurora_qb_pipeline.sandbox.common`.

    state = QuickbaseState.with_design_table(["REC Alpha 400", "Qcells Q.PEAK 405"])
    with ServerThread(create_app(state)) as server:
        ...  # base URL server.url + "/v1", headers QB-Realm-Hostname: state.realm,
             # Authorization: QB-USER-TOKEN <state.token>, table state.table_id
"""

from __future__ import annotations

import copy
import json
import math
import random
import secrets
import string
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from functools import partial
from http import HTTPStatus
from typing import Any, Callable, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from .common import SandboxConfig, SandboxMiddleware, SandboxState, admin_routes, read_json
from .qb_query import QueryError, comparable, compile_where

DEFAULT_REALM = "sandbox.quickbase.com"
MAX_BODY_BYTES = 40 * 1024 * 1024  # "maximum payload size of 40MB" (upsert, spec)
DEFAULT_PAGE_CAP = 1000  # records per runQuery page ("intelligent pagination" stand-in)
RECORD_ID = 3
BUILTIN_FIELD_IDS = frozenset({1, 2, 3, 4, 5})
FIRST_USER_FIELD_ID = 6

# ---------------------------------------------------------------------------------------------
# Errors: {"message", "description"} with the status Quickbase uses
# ---------------------------------------------------------------------------------------------

_MESSAGES = {401: "Access denied", 413: "Payload Too Large"}


def status_message(status: int) -> str:
    return _MESSAGES.get(status) or HTTPStatus(status).phrase


class QuickbaseError(Exception):
    """An error answer; raised anywhere below a route and rendered by the app."""

    def __init__(self, status: int, description: str, message: Optional[str] = None) -> None:
        super().__init__(description)
        self.status = status
        self.message = message or status_message(status)
        self.description = description


class QuickbaseJSONResponse(JSONResponse):
    media_type = "application/json; charset=utf-8"


def error_response(status: int, description: str, message: Optional[str] = None) -> Response:
    body = {"message": message or status_message(status), "description": description}
    return QuickbaseJSONResponse(body, status_code=status)


# AJV (the validator behind Quickbase's 400s) words its messages after the JSON-Schema keyword.
_AJV_MESSAGES = {
    "missing": "should have required property '{name}'",
    "extra_forbidden": "should NOT have additional properties",
    "string_type": "should be string",
    "int_type": "should be integer",
    "int_parsing": "should be integer",
    "bool_type": "should be boolean",
    "bool_parsing": "should be boolean",
    "list_type": "should be array",
    "dict_type": "should be object",
    "model_type": "should be object",
    "too_short": "should NOT have fewer than {min_length} items",
    "string_too_short": "should NOT be shorter than {min_length} characters",
    "literal_error": "should be equal to one of the allowed values",
    "greater_than_equal": "should be >= {ge}",
}


def ajv_description(exc: ValidationError) -> str:
    """The first validation error as AJV words it, e.g. ``'data' should be array``."""
    error = exc.errors()[0]
    loc = list(error["loc"])
    name = loc[-1] if loc else ""
    if error["type"] in ("missing", "extra_forbidden"):
        loc = loc[:-1]  # AJV reports these on the enclosing object
    template = _AJV_MESSAGES.get(error["type"])
    message = template.format(name=name, **error.get("ctx", {})) if template else error["msg"]
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    return f"'{path}' {message}" if path else message


# ---------------------------------------------------------------------------------------------
# Request bodies and query parameters (validated with pydantic, answered in AJV's words)
# ---------------------------------------------------------------------------------------------


class _Body(BaseModel):
    """A JSON body: camelCase on the wire, no type coercion (AJV does none either)."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, strict=True, extra="allow")


class _Params(BaseModel):
    """Query-string parameters: strings on the wire, so coerced ('true' -> True)."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, extra="allow")


class UpsertBody(_Body):
    to: str = Field(min_length=1)
    data: list[dict[str, Any]] = Field(min_length=1)
    merge_field_id: Optional[int] = None
    fields_to_return: Optional[list[int]] = None


class SortField(_Body):
    field_id: int
    order: Literal["ASC", "DESC", "equal-values"] = "ASC"


class QueryOptions(_Body):
    skip: int = Field(default=0, ge=0)
    top: Optional[int] = Field(default=None, ge=0)
    compare_with_app_local_time: bool = False


class QueryBody(_Body):
    from_: str = Field(alias="from", min_length=1)
    select: Optional[list[int]] = None
    where: Any = None  # a query string or a list of record ids: checked by qb_query
    sort_by: Optional[list[SortField]] = None
    group_by: Optional[list[dict[str, Any]]] = None
    options: QueryOptions = Field(default_factory=QueryOptions)

    @field_validator("sort_by", mode="before")
    @classmethod
    def _unsorted(cls, value: Any) -> Any:
        return None if value is False else value  # sortBy: false means "unsorted"


class DeleteRecordsBody(_Body):
    from_: str = Field(alias="from", min_length=1)
    where: Any


class Permission(_Body):
    model_config = ConfigDict(extra="forbid")
    role: Optional[str] = None
    permission_type: Optional[str] = None
    role_id: Optional[int] = None


FieldType = Literal[
    "text",
    "text-multiple-choice",
    "text-multi-line",
    "rich-text",
    "numeric",
    "currency",
    "rating",
    "percent",
    "multitext",
    "email",
    "url",
    "duration",
    "date",
    "datetime",
    "timestamp",
    "timeofday",
    "checkbox",
    "user",
    "multiuser",
    "address",
    "phone",
    "file",
]


class _FieldChanges(_Body):
    """What createField and updateField both accept (additionalProperties: false)."""

    model_config = ConfigDict(extra="forbid")
    field_help: Optional[str] = None
    bold: Optional[bool] = None
    no_wrap: Optional[bool] = None
    appears_by_default: Optional[bool] = None
    find_enabled: Optional[bool] = None
    audited: Optional[bool] = None
    add_to_forms: Optional[bool] = None
    permissions: Optional[list[Permission]] = None
    properties: Optional[dict[str, Any]] = None


class CreateFieldBody(_FieldChanges):
    label: str
    field_type: FieldType  # unique/required are not accepted here: set them with updateField


class UpdateFieldBody(_FieldChanges):
    label: Optional[str] = None
    unique: Optional[bool] = None
    required: Optional[bool] = None


class DeleteFieldsBody(_Body):
    field_ids: list[int] = Field(min_length=1)


class TableParams(_Params):
    table_id: str
    include_field_perms: bool = False


class AppParams(_Params):
    app_id: str


def validated(model: type[BaseModel], payload: Any) -> Any:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise QuickbaseError(400, ajv_description(exc)) from None


# ---------------------------------------------------------------------------------------------
# Fields and values
# ---------------------------------------------------------------------------------------------

NUMBER_TYPES = frozenset({"numeric", "currency", "percent", "rating", "duration"})
TEXT_TYPES = frozenset(
    {"text", "text-multiple-choice", "text-multi-line", "rich-text", "email", "url", "phone"}
)

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
    **dict.fromkeys(TEXT_TYPES, _TEXT_PROPERTIES),
    **dict.fromkeys(NUMBER_TYPES, _NUMBER_PROPERTIES),
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
}
_DEFAULT_PERMISSIONS = [
    {"role": "Viewer", "permission_type": "View", "role_id": 10},
    {"role": "Participant", "permission_type": "Modify", "role_id": 11},
    {"role": "Administrator", "permission_type": "Modify", "role_id": 12},
]


def default_properties(field_type: str) -> dict[str, Any]:
    common = {"primaryKey": False, "foreignKey": False, "formula": "", "defaultValue": ""}
    return copy.deepcopy({**common, **_TYPE_PROPERTIES.get(field_type, {})})


class QbField(BaseModel):
    """One field in getFields' shape (camelCase on the wire, snake_case in Python)."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True)

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
    permissions: list[Permission] = Field(
        default_factory=lambda: [Permission(**p) for p in _DEFAULT_PERMISSIONS]
    )

    @field_validator("field_type")
    @classmethod
    def _read_back_type(cls, value: str) -> str:
        return "timestamp" if value == "datetime" else value  # a datetime field reads back as timestamp

    @property
    def writable(self) -> bool:
        return self.id not in BUILTIN_FIELD_IDS and not self.mode

    @property
    def closed_choices(self) -> Optional[list[str]]:
        """The allowed values when users may not add new ones, else None."""
        if self.field_type != "text-multiple-choice" or self.properties.get("allowNewChoices", False):
            return None
        return list(self.properties.get("choices", []))

    def to_api(self, include_permissions: bool = False) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude=None if include_permissions else {"permissions"})

    def summary(self) -> dict[str, Any]:
        """The ``fields`` entry of a runQuery answer."""
        return {"id": self.id, "label": self.label, "type": self.field_type}


def utc_now() -> str:
    return format_timestamp(datetime.now(timezone.utc))


def format_timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _as_text(value: Any) -> Optional[str]:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(value)
    return str(value) or None  # "" clears the field


def _as_number(value: Any) -> float | int:
    if isinstance(value, bool):
        raise ValueError(value)
    number = float(value.strip()) if isinstance(value, str) else value  # "" -> ValueError
    if not isinstance(number, (int, float)) or not math.isfinite(number):
        raise ValueError(value)
    return int(number) if float(number).is_integer() else number


def _as_record_id(value: Any) -> int:
    number = _as_number(value)
    if not isinstance(number, int) or number < 1:
        raise ValueError(value)
    return number


def _as_checkbox(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    flags = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    return flags[str(value).strip().lower()]  # KeyError -> incompatible


def _as_date(value: Any) -> str:
    return date.fromisoformat(value).isoformat()


def _as_timestamp(value: Any) -> str:
    return format_timestamp(datetime.fromisoformat(value.replace("Z", "+00:00")))


def _as_time_of_day(value: Any) -> str:
    return time.fromisoformat(value).isoformat()


def _as_user(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        return {"email": value, "id": "", "name": "", "userName": ""}
    return {"email": "", "name": "", "userName": "", **value, "id": str(value["id"])}


def _as_text_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(value)
    return value


_COERCE: dict[str, Callable[[Any], Any]] = {
    **dict.fromkeys(TEXT_TYPES, _as_text),
    **dict.fromkeys(NUMBER_TYPES, _as_number),
    "recordid": _as_record_id,
    "checkbox": _as_checkbox,
    "date": _as_date,
    "timestamp": _as_timestamp,
    "timeofday": _as_time_of_day,
    "user": _as_user,
    "multitext": _as_text_list,
}


def coerce(field_type: str, value: Any) -> Any:
    """A written value in its stored form; None clears. Raises ValueError if incompatible."""
    if value is None:
        return None
    try:
        return _COERCE.get(field_type, lambda v: v)(value)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"incompatible {field_type} value {value!r}") from exc


def empty_value(field_type: str) -> Any:
    """What a field with no value reads back as."""
    if field_type in TEXT_TYPES:
        return ""
    return {"checkbox": False, "multitext": []}.get(field_type)


def _index_key(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value


def _sort_key(field_type: str, fid: int, row: dict[int, Any]) -> tuple[bool, Any]:
    value = comparable(field_type, row.get(fid))
    return (value is not None, value)  # empty values first


# ---------------------------------------------------------------------------------------------
# Apps, users, tables, records
# ---------------------------------------------------------------------------------------------


@dataclass
class QbUser:
    """The user behind a user token, and the apps the token is assigned to."""

    id: str
    email: str
    name: str
    app_ids: set[str] = field(default_factory=set)

    def value(self) -> dict[str, str]:
        """How the user reads back in a user field (Record Owner, Last Modified By)."""
        return {"email": self.email, "id": self.id, "name": self.name, "userName": self.email.split("@")[0]}


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


SANDBOX_ADMIN = QbUser("10000001.sbx0", "admin@sandbox.invalid", "Sandbox Admin")


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
    rows: list[dict[int, Any]]
    total: int


# (fid, label, type) of the fields every table has; Record ID# is the key, unique and required.
BUILTIN_FIELDS: list[tuple[int, str, str]] = [
    (1, "Date Created", "timestamp"),
    (2, "Date Modified", "timestamp"),
    (3, "Record ID#", "recordid"),
    (4, "Record Owner", "user"),
    (5, "Last Modified By", "user"),
]


@dataclass
class QbTable:
    """A table: its fields, its records (``{fid: value}``, keyed by record id) and unique indexes."""

    id: str
    app_id: str
    name: str
    created: str
    description: str = ""
    single_record_name: str = "Record"
    plural_record_name: str = "Records"
    fields: dict[int, QbField] = field(default_factory=dict)
    rows: dict[int, dict[int, Any]] = field(default_factory=dict)
    next_record_id: int = 1
    next_field_id: int = FIRST_USER_FIELD_ID
    _unique: dict[int, dict[Any, int]] = field(default_factory=dict)  # fid -> value -> record id

    def __post_init__(self) -> None:
        for fid, label, field_type in BUILTIN_FIELDS:
            self.add_field(
                label,
                field_type,
                fid=fid,
                appears_by_default=fid == RECORD_ID,
                unique=fid == RECORD_ID,
                required=fid == RECORD_ID,
            )

    # -- schema ------------------------------------------------------------------------------

    @property
    def alias(self) -> str:
        return "_DBID_" + "".join(c if c.isalnum() else "_" for c in self.name.upper())

    def to_api(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id": self.id,
            "alias": self.alias,
            "description": self.description,
            "created": self.created,
            "updated": self.created,
            "nextRecordId": self.next_record_id,
            "nextFieldId": self.next_field_id,
            "defaultSortFieldId": 2,
            "defaultSortOrder": "DESC",
            "keyFieldId": RECORD_ID,
            "singleRecordName": self.single_record_name,
            "pluralRecordName": self.plural_record_name,
            "sizeLimit": "500 MB",
            "spaceUsed": f"{math.ceil(len(self.rows) / 1024)} MB",  # about 1 KB a record
            "spaceRemaining": "500 MB",
        }

    def get_field(self, fid: int) -> QbField:
        try:
            return self.fields[fid]
        except KeyError:
            raise QuickbaseError(404, f"Field {fid} does not exist in table {self.id}.") from None

    def field_types(self) -> dict[int, str]:
        return {fid: f.field_type for fid, f in self.fields.items()}

    def add_field(
        self, label: str, field_type: str, *, fid: Optional[int] = None, **attributes: Any
    ) -> QbField:
        """Add a field; ``attributes`` are QbField attributes, ``properties`` merged over the defaults."""
        fid = self.next_field_id if fid is None else fid
        properties = {**default_properties(field_type), **(attributes.pop("properties", None) or {})}
        if properties["formula"]:
            attributes["mode"] = "formula"
        self.fields[fid] = QbField(
            id=fid, label=label, field_type=field_type, properties=properties, **attributes
        )
        self.next_field_id = max(self.next_field_id, fid + 1)
        if self.fields[fid].unique and fid != RECORD_ID:  # record ids are looked up in rows directly
            self._unique[fid] = self._build_index(fid)
        return self.fields[fid]

    def update_field(self, fid: int, changes: UpdateFieldBody) -> QbField:
        current = self.get_field(fid)
        values = changes.model_dump(exclude_unset=True, exclude={"add_to_forms"})
        unique, required = values.pop("unique", None), values.pop("required", None)
        if values.get("properties") is not None:
            values["properties"] = {**current.properties, **values["properties"]}
        if fid in BUILTIN_FIELD_IDS and (unique is not None or required is not None):
            raise QuickbaseError(
                400, f'The unique and required settings of built-in field "{fid}" cannot change.'
            )
        if unique:
            index = self._build_index(fid)  # refuses existing duplicates
        if required and any(row.get(fid) is None for row in self.rows.values()):
            raise QuickbaseError(
                400, f'Field "{fid}" cannot be made required: some records have no value in it.'
            )
        updated = QbField.model_validate({**current.model_dump(), **values})
        updated.unique = current.unique if unique is None else unique
        updated.required = current.required if required is None else required
        self.fields[fid] = updated
        if unique:
            self._unique[fid] = index
        elif unique is False:
            self._unique.pop(fid, None)
        return updated

    def delete_fields(self, fids: list[int]) -> dict[str, list]:
        deleted, errors = [], []
        for fid in fids:
            if fid in BUILTIN_FIELD_IDS or fid not in self.fields:
                errors.append(f"Error found with fid: {fid}")
                continue
            del self.fields[fid]
            self._unique.pop(fid, None)
            for row in self.rows.values():
                row.pop(fid, None)
            deleted.append(fid)
        return {"deletedFieldIds": deleted, "errors": errors}

    # -- unique indexes ----------------------------------------------------------------------

    def _build_index(self, fid: int) -> dict[Any, int]:
        index: dict[Any, int] = {}
        for rid, row in self.rows.items():
            value = row.get(fid)
            if value is None:
                continue
            if _index_key(value) in index:
                raise QuickbaseError(
                    400, f'Field "{fid}" cannot be made unique: the table has duplicate values in it.'
                )
            index[_index_key(value)] = rid
        return index

    def find(self, fid: int, value: Any) -> Optional[int]:
        """The record whose unique field ``fid`` holds ``value``."""
        if fid == RECORD_ID:
            return value if value in self.rows else None
        return self._unique[fid].get(_index_key(value))

    def _store(self, rid: int, values: dict[int, Any]) -> None:
        row = self.rows.setdefault(rid, {})
        for fid, index in self._unique.items():
            if fid in values:
                index.pop(_index_key(row.get(fid)), None)
                if values[fid] is not None:
                    index[_index_key(values[fid])] = rid
        row.update(values)

    # -- upsert ------------------------------------------------------------------------------

    def merge_field(self, merge_field_id: Optional[int]) -> QbField:
        merge = self.fields.get(RECORD_ID if merge_field_id is None else merge_field_id)
        if merge is None:
            raise QuickbaseError(400, f'Unknown merge field with ID "{merge_field_id}".')
        if not merge.unique:
            raise QuickbaseError(400, f'The merge field with ID "{merge.id}" must be a unique field.')
        return merge

    def upsert(
        self,
        rows: list[dict[str, Any]],
        merge_field_id: Optional[int],
        user: QbUser,
        fields_to_return: Optional[list[int]] = None,
    ) -> UpsertResult:
        """Insert or update each row on its own, as Quickbase does: good rows are kept even when
        others fail, and failures are reported per 1-based line."""
        merge = self.merge_field(merge_field_id)
        result = UpsertResult(total=len(rows))
        returned = [RECORD_ID] + [
            fid for fid in fields_to_return or () if fid in self.fields and fid != RECORD_ID
        ]
        for line, row in enumerate(rows, start=1):
            try:
                rid, outcome = self._upsert_row(row, merge.id, user)
            except LineError as exc:
                result.line_errors[str(line)] = exc.messages
                continue
            result.record_ids[outcome].append(rid)
            if fields_to_return:
                result.data.append(self.encode(self.rows[rid], returned))
        return result

    def _upsert_row(self, row: dict[str, Any], merge_fid: int, user: QbUser) -> tuple[int, str]:
        values = self._coerce_row(row, merge_fid)
        rid = None
        if values.get(merge_fid) is not None:
            rid = self.find(merge_fid, values[merge_fid])
            if rid is None and merge_fid == RECORD_ID:  # GUESS: an unknown record id is an error
                raise LineError([f'Record with ID "{values[merge_fid]}" does not exist.'])
        values.pop(RECORD_ID, None)
        self._check_constraints(rid, values)
        now = utc_now()
        if rid is None:
            rid = self.next_record_id
            self.next_record_id += 1
            self._store(rid, {1: now, 2: now, RECORD_ID: rid, 4: user.value(), 5: user.value(), **values})
            return rid, "created"
        stored = self.rows[rid]
        if all(stored.get(fid) == value for fid, value in values.items()):
            return rid, "unchanged"
        self._store(rid, {**values, 2: now, 5: user.value()})
        return rid, "updated"

    def _coerce_row(self, row: dict[str, Any], merge_fid: int) -> dict[int, Any]:
        values: dict[int, Any] = {}
        errors: list[str] = []
        for key, cell in row.items():
            target = self.fields.get(int(key)) if key.isdigit() else None
            if target is None:
                errors.append(f'Unknown field with Id "{key}".')
            elif not (target.writable or target.id == merge_fid):
                errors.append(f'Field with ID "{target.id}" is read-only and cannot be written.')  # GUESS
            elif not isinstance(cell, dict) or "value" not in cell:
                errors.append(f'Incompatible value for field with ID "{target.id}".')
            else:
                try:
                    values[target.id] = self._choice(target, coerce(target.field_type, cell["value"]))
                except ValueError:
                    errors.append(f'Incompatible value for field with ID "{target.id}".')
                except LineError as exc:
                    errors.extend(exc.messages)
        if errors:
            raise LineError(errors)
        return values

    @staticmethod
    def _choice(target: QbField, value: Any) -> Any:
        """A multiple-choice value matched (case-insensitively) to one of the field's choices."""
        allowed = target.closed_choices
        if allowed is None or value is None:
            return value
        match = next((choice for choice in allowed if choice.casefold() == value.casefold()), None)
        if match is None:
            raise LineError([f"The field with ID '{target.id}' has an invalid choice."])
        return match

    def _check_constraints(self, rid: Optional[int], values: dict[int, Any]) -> None:
        """Required fields (all of them on insert, the written ones on update) and unique fields."""
        errors = []
        for f in self.fields.values():
            if f.required and f.writable and (f.id in values or rid is None) and values.get(f.id) is None:
                errors.append(f'Missing value for required field with ID "{f.id}".')
        for fid, value in values.items():
            if fid in self._unique and value is not None and self.find(fid, value) not in (None, rid):
                errors.append(f'Duplicate value for unique field with ID "{fid}".')  # GUESS: text unknown
        if errors:
            raise LineError(errors)

    # -- reading and deleting ----------------------------------------------------------------

    def encode(self, row: dict[int, Any], fids: list[int]) -> dict[str, dict[str, Any]]:
        """A record as the API shows it: ``{"fid": {"value": ...}}`` for the given fields."""
        cells = {}
        for fid in fids:
            value = row.get(fid)
            cells[str(fid)] = {"value": empty_value(self.fields[fid].field_type) if value is None else value}
        return cells

    def matching(self, where: Any, sort_by: Optional[list[SortField]] = None) -> list[dict[int, Any]]:
        predicate = compile_where(where, self.field_types())
        rows = [row for row in self.rows.values() if predicate(row)]
        for sort in reversed(sort_by or []):  # stable sorts, least significant key first
            key = partial(_sort_key, self.get_field(sort.field_id).field_type, sort.field_id)
            rows.sort(key=key, reverse=sort.order == "DESC")
        return rows

    def query(self, body: QueryBody, page_cap: int) -> QueryPage:
        select = body.select or [fid for fid, f in sorted(self.fields.items()) if f.appears_by_default]
        unknown = [fid for fid in select if fid not in self.fields]
        if unknown:
            raise QuickbaseError(400, f'Unknown field with Id "{unknown[0]}".')
        rows = self.matching(body.where, body.sort_by)
        skip, top = body.options.skip, body.options.top
        page_size = min(top, page_cap) if top else page_cap
        return QueryPage([self.fields[fid] for fid in select], rows[skip : skip + page_size], len(rows))

    def delete(self, where: Any) -> int:
        doomed = [row[RECORD_ID] for row in self.matching(where)]
        for rid in doomed:
            row = self.rows.pop(rid)
            for fid, index in self._unique.items():
                index.pop(_index_key(row.get(fid)), None)
        return len(doomed)


# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------

DESIGN_TABLE_NAME = "Aurora Designs"
# (fid, label, type) of the user fields of the Aurora design table; fid 11 is not used.
DESIGN_FIELDS: list[tuple[int, str, str]] = [
    (6, "Project Name", "text"),
    (7, "System Size (kW)", "numeric"),
    (8, "Number of Modules", "numeric"),
    (9, "Module Model", "text-multiple-choice"),
    (10, "Annual Energy (kWh)", "numeric"),
    (12, "Street Address", "text"),
    (13, "Street Address 2", "text"),
    (14, "City", "text"),
    (15, "State", "text"),
    (16, "Postal Code", "text"),
    (17, "Country", "text"),
    (18, "Azimuth", "numeric"),
    (19, "Proposal Link", "url"),
    (20, "Aurora Design ID", "text"),
    (21, "Aurora Project ID", "text"),
    (22, "Design Name", "text"),
    (23, "State Name", "text"),
    (24, "Array Count", "numeric"),
]
DESIGN_ID_FIELD = 20
MODULE_MODEL_FIELD = 9

_DBID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
_TOKEN_ALPHABET = string.ascii_lowercase + string.digits


class QuickbaseState(SandboxState):
    """Everything the Quickbase emulator knows: realm, tokens, apps, tables, fields and records.

    All ids (apps, tables, tokens) are derived from ``seed``. ``app_id``, ``table_id`` and ``token``
    name the ones provisioned first (set by :meth:`with_design_table`). ``page_cap`` is the most
    records one runQuery page returns; ``max_body_bytes`` the largest request body accepted.
    Every method is safe to call while the server runs: they hold :attr:`lock`.
    """

    def __init__(
        self,
        config: Optional[SandboxConfig] = None,
        *,
        realm: str = DEFAULT_REALM,
        seed: int = 0,
        page_cap: int = DEFAULT_PAGE_CAP,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        super().__init__(config or SandboxConfig(rate_limit=100, rate_window_s=10))
        self.realm = realm
        self.page_cap = page_cap
        self.max_body_bytes = max_body_bytes
        self.lock = threading.RLock()
        self.apps: dict[str, QbApp] = {}
        self.tables: dict[str, QbTable] = {}
        self.users: dict[str, QbUser] = {}  # user token -> user
        self.app_id: Optional[str] = None
        self.table_id: Optional[str] = None
        self.token: Optional[str] = None
        self._ids = random.Random(f"quickbase-sandbox:{seed}")

    @classmethod
    def with_design_table(
        cls, module_choices: list[str], seed: int = 0, config: Optional[SandboxConfig] = None
    ) -> "QuickbaseState":
        """A realm with one app, the "Aurora Designs" table and a token allowed on the app."""
        state = cls(config, seed=seed)
        app = state.add_app("Aurora Solar Sync", "Designs synced from Aurora Solar.")
        table = state.add_table(
            app.id, DESIGN_TABLE_NAME, single_record_name="Design", plural_record_name="Designs"
        )
        for fid, label, field_type in DESIGN_FIELDS:
            state.add_field(table.id, label, field_type, fid=fid)
        state.update_field(
            table.id,
            MODULE_MODEL_FIELD,
            properties={"choices": list(module_choices), "allowNewChoices": False},
        )
        state.update_field(table.id, DESIGN_ID_FIELD, unique=True, required=True)
        state.app_id, state.table_id = app.id, table.id
        state.token = state.add_token([app.id])
        return state

    # -- provisioning --------------------------------------------------------------------------

    def _random_text(self, length: int, alphabet: str = _TOKEN_ALPHABET) -> str:
        return "".join(self._ids.choice(alphabet) for _ in range(length))

    def _dbid(self) -> str:
        return "b" + self._random_text(8, _DBID_ALPHABET)

    def add_app(self, name: str, description: str = "") -> QbApp:
        with self.lock:
            app = QbApp(id=self._dbid(), name=name, created=utc_now(), description=description)
            self.apps[app.id] = app
            return app

    def add_table(self, app_id: str, name: str, **attributes: Any) -> QbTable:
        with self.lock:
            table = QbTable(id=self._dbid(), app_id=app_id, name=name, created=utc_now(), **attributes)
            self.tables[table.id] = table
            self.apps[app_id].table_ids.append(table.id)
            return table

    def add_field(self, table_id: str, label: str, field_type: str, **attributes: Any) -> QbField:
        """Add a field (``fid=`` to choose its id); attributes as in getFields, snake_case."""
        with self.lock:
            return self.table(table_id).add_field(label, field_type, **attributes)

    def update_field(self, table_id: str, fid: int, **changes: Any) -> QbField:
        """Change a field as updateField would (e.g. ``unique=True``, ``properties={...}``)."""
        with self.lock:
            return self.table(table_id).update_field(fid, UpdateFieldBody.model_validate(changes))

    def add_token(self, app_ids: list[str], email: Optional[str] = None) -> str:
        """A new user token (``b7k2xq_ab1c_0_d3fg...``) for a new user, allowed on ``app_ids``."""
        with self.lock:
            user_id = f"{self._ids.randrange(10**7, 10**8)}.{self._random_text(4)}"
            token = f"{self._random_text(6)}_{self._random_text(4)}_0_{self._random_text(26)}"
            email = email or f"sync.user{len(self.users) + 1}@example.com"
            self.users[token] = QbUser(user_id, email, f"Sync User {len(self.users) + 1}", set(app_ids))
            return token

    # -- access checks -------------------------------------------------------------------------

    def authenticate(self, authorization: Optional[str], realm: Optional[str]) -> QbUser:
        """Quickbase's header checks, in its order: 400 no Authorization, 401 unknown token,
        403 missing or foreign QB-Realm-Hostname."""
        if authorization is None:
            raise QuickbaseError(400, "Required header 'authorization' not found")
        scheme, _, token = authorization.strip().partition(" ")
        user = self.users.get(token.strip()) if scheme.upper() == "QB-USER-TOKEN" else None
        if user is None:
            raise QuickbaseError(401, "User token is invalid")
        if realm is None or realm.strip().lower() != self.realm.lower():
            raise QuickbaseError(
                403, "Required header 'QB-Realm-Hostname' is missing or names another realm."
            )
        return user

    def app_for(self, user: QbUser, app_id: str) -> QbApp:
        app = self.apps.get(app_id)
        if app is None:
            raise QuickbaseError(404, f"Application {app_id} does not exist.", message="Invalid DBID")
        if app.id not in user.app_ids:
            raise QuickbaseError(
                403, "Your user token is not assigned to this application.", message="Access denied"
            )
        return app

    def table_for(self, user: QbUser, table_id: str) -> QbTable:
        table = self.tables.get(table_id)
        if table is None:
            raise QuickbaseError(404, f"Table {table_id} does not exist.", message="Invalid DBID")
        self.app_for(user, table.app_id)
        return table

    # -- Python accessors (tests, launchers) -----------------------------------------------------

    def table(self, table_id: Optional[str] = None) -> QbTable:
        return self.tables[table_id or self.table_id]

    def records(self, table_id: Optional[str] = None) -> list[dict[int, Any]]:
        """Copies of the stored records (``{fid: value}``, empty fields as None), by record id."""
        with self.lock:
            return [dict(row) for _, row in sorted(self.table(table_id).rows.items())]

    def field_by_label(self, table_id: Optional[str], label: str) -> QbField:
        with self.lock:
            return next(f for f in self.table(table_id).fields.values() if f.label == label)

    def add_records(
        self, table_id: Optional[str], records: list[dict[int, Any]], merge_field_id: Optional[int] = None
    ) -> UpsertResult:
        """Upsert ``{fid: value}`` records directly (no HTTP, no rate limit), as the sandbox admin."""
        rows = [{str(fid): {"value": value} for fid, value in record.items()} for record in records]
        with self.lock:
            return self.table(table_id).upsert(rows, merge_field_id, SANDBOX_ADMIN)

    def clear_records(self, table_id: Optional[str] = None, *, reset_record_ids: bool = False) -> int:
        """Delete every record; with ``reset_record_ids`` the next record gets id 1 again
        (something only a sandbox can do: Quickbase never reuses record ids)."""
        with self.lock:
            table = self.table(table_id)
            deleted = table.delete(None)
            if reset_record_ids:
                table.next_record_id = 1
            return deleted


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


class QuickbaseAuth:
    """ASGI middleware of ``/v1``: the header checks run before anything else; the caller's
    user is left in ``request.state.qb_user``."""

    def __init__(self, app: Any, state: QuickbaseState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            user = self.state.authenticate(headers.get("authorization"), headers.get("qb-realm-hostname"))
            scope.setdefault("state", {})["qb_user"] = user
        await self.app(scope, receive, send)


class RayHeader:
    """ASGI middleware: every answer carries a ``qb-api-ray`` correlation id, as Quickbase's do."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ray = f"{secrets.token_hex(8)}-SBX"

        async def send_with_ray(message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("qb-api-ray", ray)
            await send(message)

        await self.app(scope, receive, send_with_ray)


def respond(payload: Any, status: int = 200) -> Response:
    return QuickbaseJSONResponse(payload, status_code=status)


class QuickbaseApi:
    """The ``/v1`` endpoints. Each does its work under the state lock, without awaiting in it."""

    def __init__(self, state: QuickbaseState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        return [
            Route("/records", self.upsert, methods=["POST"]),
            Route("/records", self.delete_records, methods=["DELETE"]),
            Route("/records/query", self.run_query, methods=["POST"]),
            Route("/fields", self.get_fields, methods=["GET"]),
            Route("/fields", self.create_field, methods=["POST"]),
            Route("/fields", self.delete_fields, methods=["DELETE"]),
            Route("/fields/{fieldId:int}", self.get_field, methods=["GET"]),
            Route("/fields/{fieldId:int}", self.update_field, methods=["POST"]),
            Route("/tables", self.get_app_tables, methods=["GET"]),
            Route("/tables/{tableId}", self.get_table, methods=["GET"]),
            Route("/apps/{appId}", self.get_app, methods=["GET"]),
        ]

    async def _read_body(self, request: Request, model: type[BaseModel]) -> Any:
        """The JSON body validated against ``model``: 413 past the size limit, 400 if malformed."""
        limit = self.state.max_body_bytes
        declared = request.headers.get("content-length", "")
        if (declared.isdigit() and int(declared) > limit) or len(await request.body()) > limit:
            raise QuickbaseError(413, f"The request body is larger than the {limit} bytes allowed.")
        try:
            payload = await read_json(request)
        except ValueError as exc:
            raise QuickbaseError(400, str(exc)) from None
        return validated(model, payload)

    def _table(self, request: Request, table_id: str) -> QbTable:
        return self.state.table_for(request.state.qb_user, table_id)

    def _table_from_params(self, request: Request) -> tuple[QbTable, TableParams]:
        params = validated(TableParams, dict(request.query_params))
        return self._table(request, params.table_id), params

    # -- records -------------------------------------------------------------------------------

    async def upsert(self, request: Request) -> Response:
        body: UpsertBody = await self._read_body(request, UpsertBody)
        with self.state.lock:
            table = self._table(request, body.to)
            result = table.upsert(
                body.data, body.merge_field_id, request.state.qb_user, body.fields_to_return
            )
        return respond(result.to_api(), result.status)

    async def run_query(self, request: Request) -> Response:
        body: QueryBody = await self._read_body(request, QueryBody)
        with self.state.lock:
            table = self._table(request, body.from_)
            page = table.query(body, self.state.page_cap)
            fids = [f.id for f in page.fields]
            data = [table.encode(row, fids) for row in page.rows]
        metadata = {
            "totalRecords": page.total,
            "numRecords": len(data),
            "numFields": len(fids),
            "skip": body.options.skip,
        }
        if body.options.top is not None:
            metadata["top"] = body.options.top
        return respond({"data": data, "fields": [f.summary() for f in page.fields], "metadata": metadata})

    async def delete_records(self, request: Request) -> Response:
        body: DeleteRecordsBody = await self._read_body(request, DeleteRecordsBody)
        with self.state.lock:
            return respond({"numberDeleted": self._table(request, body.from_).delete(body.where)})

    # -- fields --------------------------------------------------------------------------------

    async def get_fields(self, request: Request) -> Response:
        with self.state.lock:
            table, params = self._table_from_params(request)
            return respond([f.to_api(params.include_field_perms) for _, f in sorted(table.fields.items())])

    async def get_field(self, request: Request) -> Response:
        with self.state.lock:
            table, params = self._table_from_params(request)
            return respond(table.get_field(request.path_params["fieldId"]).to_api(params.include_field_perms))

    async def create_field(self, request: Request) -> Response:
        body: CreateFieldBody = await self._read_body(request, CreateFieldBody)
        attributes = body.model_dump(exclude_unset=True, exclude={"label", "field_type", "add_to_forms"})
        with self.state.lock:
            table, _ = self._table_from_params(request)
            return respond(table.add_field(body.label, body.field_type, **attributes).to_api(True))

    async def update_field(self, request: Request) -> Response:
        body: UpdateFieldBody = await self._read_body(request, UpdateFieldBody)
        with self.state.lock:
            table, _ = self._table_from_params(request)
            return respond(table.update_field(request.path_params["fieldId"], body).to_api(True))

    async def delete_fields(self, request: Request) -> Response:
        body: DeleteFieldsBody = await self._read_body(request, DeleteFieldsBody)
        with self.state.lock:
            table, _ = self._table_from_params(request)
            return respond(table.delete_fields(body.field_ids))

    # -- tables and apps -------------------------------------------------------------------------

    async def get_app_tables(self, request: Request) -> Response:
        params = validated(AppParams, dict(request.query_params))
        with self.state.lock:
            app = self.state.app_for(request.state.qb_user, params.app_id)
            return respond([self.state.tables[tid].to_api() for tid in app.table_ids])

    async def get_table(self, request: Request) -> Response:
        params = validated(AppParams, dict(request.query_params))
        with self.state.lock:
            table = self._table(request, request.path_params["tableId"])
            if table.app_id != params.app_id:
                raise QuickbaseError(404, f"Table {table.id} is not in application {params.app_id}.")
            return respond(table.to_api())

    async def get_app(self, request: Request) -> Response:
        with self.state.lock:
            return respond(self.state.app_for(request.state.qb_user, request.path_params["appId"]).to_api())


def _authorization(headers: dict[str, str]) -> Optional[str]:
    """The rate-limit key: Quickbase limits per user token."""
    return headers.get("authorization")


def create_app(state: QuickbaseState) -> Any:
    """The ASGI app of the emulator: ``/v1`` (Quickbase) and ``/_sandbox`` (settings, request log)."""

    def quickbase_error(request: Request, exc: QuickbaseError) -> Response:
        return error_response(exc.status, exc.description, exc.message)

    def query_error(request: Request, exc: QueryError) -> Response:
        return error_response(400, str(exc))

    def http_error(request: Request, exc: HTTPException) -> Response:
        descriptions = {
            404: f"No such resource: {request.method} {request.url.path}",
            405: f"Method {request.method} is not allowed on {request.url.path}",
        }
        return error_response(exc.status_code, descriptions.get(exc.status_code, str(exc.detail)))

    v1 = Mount(
        "/v1",
        routes=QuickbaseApi(state).routes(),
        middleware=[Middleware(QuickbaseAuth, state=state)],
    )
    app = Starlette(
        routes=[*admin_routes(state), v1],
        exception_handlers={
            QuickbaseError: quickbase_error,
            QueryError: query_error,
            HTTPException: http_error,
        },
    )
    return RayHeader(SandboxMiddleware(app, state, credential=_authorization, render_error=error_response))
