"""Error answers: ``{"message", "description"}`` with the status Quickbase uses.

Quickbase validates request bodies with AJV (a JSON-Schema validator) and passes its wording on in
``description``, e.g. ``'data' should NOT have fewer than 1 items``; :func:`ajv_description`
words pydantic's validation errors the same way.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Optional, Sequence

from pydantic import ValidationError
from starlette.responses import JSONResponse, Response

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


def respond(payload: Any, status: int = 200) -> Response:
    return QuickbaseJSONResponse(payload, status_code=status)


def error_response(status: int, description: str, message: Optional[str] = None) -> Response:
    body = {"message": message or status_message(status), "description": description}
    return QuickbaseJSONResponse(body, status_code=status)


def not_found(description: str) -> QuickbaseError:
    return QuickbaseError(404, description)


# AJV words its messages after the JSON-Schema keyword that failed.
_AJV_MESSAGES = {
    "missing": "should have required property '{name}'",
    "extra_forbidden": "should NOT have additional properties",
    "string_type": "should be string",
    "int_type": "should be integer",
    "int_parsing": "should be integer",
    "int_from_float": "should be integer",
    "float_type": "should be number",
    "bool_type": "should be boolean",
    "bool_parsing": "should be boolean",
    "list_type": "should be array",
    "dict_type": "should be object",
    "model_type": "should be object",
    "model_attributes_type": "should be object",
    "too_short": "should NOT have fewer than {min_length} items",
    "string_too_short": "should NOT be shorter than {min_length} characters",
    "literal_error": "should be equal to one of the allowed values",
    "enum": "should be equal to one of the allowed values",
    "greater_than_equal": "should be >= {ge}",
}


def ajv_path(loc: Sequence[Any]) -> str:
    """A pydantic location as AJV's dataPath: ``sortBy[0].fieldId``."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def ajv_message(loc: Sequence[Any], message: str) -> str:
    path = ajv_path(loc)
    return f"'{path}' {message}" if path else message


def ajv_description(exc: ValidationError) -> str:
    """The first validation error as AJV words it, e.g. ``'data' should be array``."""
    error = exc.errors()[0]
    loc = list(error["loc"])
    name = loc[-1] if loc else ""
    if error["type"] in ("missing", "extra_forbidden"):
        loc = loc[:-1]  # AJV reports these on the enclosing object
    template = _AJV_MESSAGES.get(error["type"])
    message = template.format(name=name, **error.get("ctx", {})) if template else error["msg"]
    return ajv_message(loc, message)
