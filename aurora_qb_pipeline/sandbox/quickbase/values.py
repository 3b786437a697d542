"""Field values: how a written value is checked and stored, and how it reads back.

Written values follow the field type (Quickbase's field-type table): text as strings (``""``
clears), numbers as JSON numbers or numeric strings, dates ``YYYY-MM-DD``, timestamps ISO 8601
(read back in UTC with milliseconds), checkboxes as booleans, users as an email or ``{"id"}``,
multi-select text as a list of strings, file attachments as ``{"fileName", "data": <base64>}``
(each write adds a version). ``None`` clears a field. A value that does not fit raises
``ValueError``; the upsert reports it as ``Incompatible value for field with ID "N".``
"""

from __future__ import annotations

import base64
import binascii
import math
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable, Optional

from ...api_facts import QUICKBASE_NUMERIC_FIELD_TYPES, QUICKBASE_TEXT_FIELD_TYPES


def format_timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Clock:
    """Timestamps for Date Created/Modified and table ``updated``, in milliseconds like
    Quickbase's, and strictly increasing within one sandbox (two writes in the same millisecond
    get consecutive milliseconds), so a date-modified fingerprint always sees a change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: Optional[datetime] = None

    def now(self) -> str:
        with self._lock:
            moment = datetime.now(timezone.utc)
            moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
            if self._last is not None and moment <= self._last:
                moment = self._last + timedelta(milliseconds=1)
            self._last = moment
            return format_timestamp(moment)


# -- file attachments ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FileUpload:
    """A written file attachment value, before it becomes a version."""

    file_name: str
    content: bytes


@dataclass(frozen=True)
class FileVersion:
    version_number: int
    file_name: str
    uploaded: str
    creator: dict[str, str]
    content: bytes = field(repr=False)

    def to_api(self) -> dict[str, Any]:
        return {
            "versionNumber": self.version_number,
            "fileName": self.file_name,
            "uploaded": self.uploaded,
            "creator": dict(self.creator),
        }


def file_path(table_id: str, record_id: int, field_id: int, version: int) -> str:
    """The downloadFile path (below ``/v1``) of one version."""
    return f"/files/{table_id}/{record_id}/{field_id}/{version}"


def file_value(versions: Optional[list[FileVersion]], table_id: str, record_id: int, field_id: int) -> dict:
    """A file attachment as runQuery shows it: ``{"url", "versions"}``. GUESS: ``url`` is the
    download path of the newest version; an empty field reads ``{"url": "", "versions": []}``."""
    if not versions:
        return {"url": "", "versions": []}
    latest = versions[-1].version_number
    return {
        "url": file_path(table_id, record_id, field_id, latest),
        "versions": [version.to_api() for version in versions],
    }


def _as_file(value: Any) -> FileUpload:
    if not isinstance(value, dict) or set(value) - {"fileName", "data"}:
        raise ValueError(value)
    name, data = value.get("fileName"), value.get("data")
    if not isinstance(name, str) or not name.strip() or not isinstance(data, str):
        raise ValueError(value)
    try:
        return FileUpload(name, base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(value) from exc


# -- coercion ------------------------------------------------------------------------------------


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
    **dict.fromkeys(QUICKBASE_TEXT_FIELD_TYPES, _as_text),
    **dict.fromkeys(QUICKBASE_NUMERIC_FIELD_TYPES, _as_number),
    "recordid": _as_record_id,
    "checkbox": _as_checkbox,
    "date": _as_date,
    "timestamp": _as_timestamp,
    "timeofday": _as_time_of_day,
    "user": _as_user,
    "multitext": _as_text_list,
    "file": _as_file,
}


def coerce(field_type: str, value: Any) -> Any:
    """A written value in its stored form; None clears. Raises ValueError if incompatible."""
    if value is None:
        return None
    try:
        return _COERCE.get(field_type, lambda v: v)(value)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"incompatible {field_type} value {value!r}") from exc


def convert(old_type: str, new_type: str, value: Any) -> Any:
    """A stored value after its field changed type. GUESS: kept when it can be read as the new
    type (``"12"`` -> 12, 12 -> ``"12"``), otherwise cleared; attachments never convert."""
    if value is None or old_type == new_type:
        return value
    if "file" in (old_type, new_type):
        return None
    if isinstance(value, dict):  # a user
        value = value.get("email") or value.get("id")
    try:
        return coerce(new_type, value)
    except ValueError:
        return None


def empty_value(field_type: str) -> Any:
    """What a field with no value reads back as (file fields: see :func:`file_value`)."""
    if field_type in QUICKBASE_TEXT_FIELD_TYPES:
        return ""
    return {"checkbox": False, "multitext": []}.get(field_type)
