"""Reading a JSON body: what does not parse is told apart as cut short (transient) or malformed."""

from __future__ import annotations

import json
import re
from typing import Any

class BodyNotJson(ValueError):
    """A body that does not parse as JSON; ``truncated``: it is a prefix of JSON (cut short)."""

    def __init__(self, detail: str, truncated: bool):
        super().__init__(detail)
        self.truncated = truncated


_NUMBER_PREFIX = re.compile(r"-?[0-9]*(\.[0-9]*)?([eE][+-]?[0-9]*)?")
_ESCAPE_PREFIX = re.compile(r"u[0-9a-fA-F]{0,4}")
_LITERALS = ("true", "false", "null", "NaN", "Infinity", "-Infinity")


def _cut_short(text: str, exc: json.JSONDecodeError) -> bool:
    """Whether the parse failed only because ``text`` ended: every prefix of a JSON document fails
    at its end, inside an unterminated string, or in a token or escape cut short."""
    rest = text[exc.pos:]
    if exc.msg.startswith("Unterminated string") or not rest.strip():
        return True
    if exc.msg.startswith("Invalid \\uXXXX escape") and _ESCAPE_PREFIX.fullmatch(rest):
        return True
    return any(literal.startswith(rest) for literal in _LITERALS) or bool(_NUMBER_PREFIX.fullmatch(rest))


def decode_json(raw: bytes) -> Any:
    """Parse a JSON body (UTF-8, as RFC 8259 requires; a byte-order mark is dropped).

    Bytes that are not UTF-8 become unpaired surrogates (``surrogateescape``), which the staging
    text rule replaces with U+FFFD and reports, rather than failing the whole answer. NaN and
    Infinity tokens parse (to float nan/inf): the staging value rules quarantine the field.
    Raises :class:`BodyNotJson` (``truncated`` when the body is a prefix of JSON)."""
    text = raw.decode("utf-8", "surrogateescape").removeprefix("\ufeff")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BodyNotJson(f"{exc.msg} at character {exc.pos}", _cut_short(text, exc)) from None
    except RecursionError:
        raise BodyNotJson("nested too deeply to parse", False) from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise BodyNotJson(str(exc)[:120], False) from None
