"""The value rules of the staging path: what a raw Aurora JSON value may become in a staged column.

One rule per kind of staged column (text, number, integer, boolean, timestamp). For a raw value a
rule gives its canonical Python value, by a documented *lossless* coercion, or refuses it with
:data:`INVALID`; a refused value quarantines its row with a reason naming the field, the value
(truncated) and the rule. Nothing here raises on a value, whatever JSON can hold.

Lossless coercions (listed in README, "Bad input from Aurora"):

* number: a JSON number; numeric text in JSON-number syntax (``"7200"``, ``" -3.5e2 "``);
* integer: an integer-valued number (``12.0`` -> 12) or integer text;
* text: a JSON number in a text column -> its shortest round-trip text (``94107`` -> ``"94107"``);
  runs of whitespace collapsed, ends trimmed, empty -> null; unpaired UTF-16 surrogates (and
  bytes of the answer that were not UTF-8) -> U+FFFD, *reported* as a note;
* timestamp: ``"YYYY-MM-DD HH:MM:SS UTC"`` or ISO-8601 text -> a UTC timestamp (no zone: UTC);
  empty text -> null.

Refused (quarantined): a boolean where a number or text belongs and anything but a boolean where
one belongs; NaN and ±Infinity; numbers beyond float range (or int64 for integers); numeric text
with thousands separators, units or words (``"2,550"`` is 2550 or 2.55 depending on the
locale, so it is not guessed); objects or lists where a single value belongs; unparseable
timestamps.
"""

from __future__ import annotations

import math
import re
import reprlib
from datetime import datetime, timezone
from typing import Any, Optional

JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
INTEGER_TEXT = re.compile(r"-?[0-9]+")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
SURROGATES = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"
PREVIEW_CHARS = 80


class _Invalid:
    """A value its rule refuses."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()

# Rule names as they appear in quarantine reasons ("<field>: must be <rule> (got <value>)").
RULE_NUMBER = "a number (a JSON number or plain numeric text, no separators, units or words)"
RULE_FINITE = "a finite number (NaN and Infinity are refused)"
RULE_INTEGER = "a whole number within 64 bits"
RULE_BOOLEAN = "true or false"
RULE_TEXT = "text (a number is taken as its text)"
RULE_TIMESTAMP = "a timestamp ('YYYY-MM-DD HH:MM:SS UTC' or ISO-8601)"
RULE_OBJECT = "an object"
RULE_LIST = "a list"
NOTE_SURROGATES = "text repaired: unpaired UTF-16 surrogates or bytes that were not UTF-8 replaced with U+FFFD"
NOTE_LIST_AS_TEXT = "a list given as JSON text (as legacy Aurora versions send arrays) was read as the list"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def as_number(value: Any) -> Any:
    """A float (possibly NaN or ±inf: :func:`finite` judges those), None, or :data:`INVALID`."""
    if value is None:
        return None
    if _is_number(value):
        try:
            return float(value)
        except OverflowError:  # an integer beyond float range
            return math.inf if value > 0 else -math.inf
    if isinstance(value, str) and JSON_NUMBER.fullmatch(value.strip()):
        return float(value.strip())  # "1e999" gives inf, refused as not finite
    return INVALID


def is_number(value: Any) -> bool:
    return as_number(value) is not INVALID


def is_finite(value: Any) -> bool:
    """True unless ``value`` is a number that is NaN or infinite (other refusals are not its business)."""
    number = as_number(value)
    return number is None or number is INVALID or math.isfinite(number)


def as_integer(value: Any) -> Any:
    """An int, None, or :data:`INVALID` (fractional, non-finite or beyond int64)."""
    if isinstance(value, str) and INTEGER_TEXT.fullmatch(value.strip()):
        if len(value.strip()) > 24:  # far beyond int64 (and int() refuses over 4,300 digits)
            return INVALID
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        return value if INT64_MIN <= value <= INT64_MAX else INVALID
    number = as_number(value)
    if number is None or number is INVALID:
        return number
    if not math.isfinite(number) or not number.is_integer() or not INT64_MIN <= number <= INT64_MAX:
        return INVALID
    return int(number)


def is_whole(value: Any) -> bool:
    """True unless ``value`` is a finite number that is not a whole number within int64."""
    number = as_number(value)
    if number is None or number is INVALID or not math.isfinite(number):
        return True
    return as_integer(value) is not INVALID


def as_boolean(value: Any) -> Any:
    return value if value is None or isinstance(value, bool) else INVALID


def as_text(value: Any) -> Any:
    """Text for a text column: a string as given, a finite number as its shortest round-trip
    text, None; anything else :data:`INVALID`. (Normalising the string is :func:`normalise_text`.)"""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # more digits than Python converts (4,300)
            return INVALID
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return INVALID


def normalise_text(value: str) -> tuple[Optional[str], bool]:
    """(text with whitespace runs collapsed, ends trimmed, empty -> None, surrogates replaced;
    whether surrogates were replaced)."""
    repaired, count = SURROGATES.subn(REPLACEMENT, value)
    return (" ".join(repaired.split()) or None), bool(count)


def parse_aurora_time(value: Any) -> Optional[datetime]:
    """Aurora writes "YYYY-MM-DD HH:MM:SS UTC" in most places and ISO-8601 in some; accept both.

    Strict: raises ValueError on anything else (the sensors use it on their own cursors)."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    text = str(value).strip()
    if text.endswith(" UTC"):
        return datetime.strptime(text[:-4], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def as_timestamp(value: Any) -> Any:
    """A UTC datetime from Aurora's "YYYY-MM-DD HH:MM:SS UTC" or ISO-8601 text, None for null or
    blank text, :data:`INVALID` for anything else (a number, an object, unparseable text)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, (str, datetime)):
        return INVALID
    try:
        stamp = parse_aurora_time(value)
        return stamp.astimezone(timezone.utc) if stamp is not None else None
    except (ValueError, OverflowError):  # not a time, or a zone pushing it out of range
        return INVALID


def is_timestamp(value: Any) -> bool:
    return value is None or isinstance(value, datetime)


_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlevel, _REPR.maxlist, _REPR.maxdict = 60, 60, 3, 4, 4
_REPR.maxlong = 40


def preview(value: Any, limit: int = PREVIEW_CHARS) -> str:
    """A short, printable, valid-UTF-8 rendering of any JSON value for a quarantine reason."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # np.float64(400.0) -> 400.0
    try:
        text = _REPR.repr(value)
    except Exception:  # noqa: BLE001 - a preview must never fail
        text = f"<{type(value).__name__}>"
    text = SURROGATES.sub(REPLACEMENT, text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def kind_of(value: Any) -> str:
    """The JSON kind of a value, for messages ("an object", "a list", "text", "a number" ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if _is_number(value):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def safe_text(value: Any) -> Any:
    """``value`` with unpaired surrogates replaced when it is a string (for anything stored)."""
    return SURROGATES.sub(REPLACEMENT, value) if isinstance(value, str) else value
