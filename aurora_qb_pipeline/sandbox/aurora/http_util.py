"""Reading requests the way Aurora does: JSON bodies in envelopes, integer query parameters."""

from __future__ import annotations

from typing import Any, Optional

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ...api_facts import AURORA_DEFAULT_PER_PAGE
from ..common import read_json
from .errors import AuroraError


def envelope(key: str, value: Any, status: int = 200) -> Response:
    """Aurora's envelope: a single object under its singular name, a list under its plural."""
    return JSONResponse({key: value}, status_code=status)


def int_query(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise AuroraError(422, f"{name} must be an integer, got {raw!r}.") from None


def paging(request: Request) -> dict[str, int]:
    return {"page": int_query(request, "page", 1), "per_page": int_query(request, "per_page", AURORA_DEFAULT_PER_PAGE)}


async def json_object(request: Request, wrapper: Optional[str] = None) -> dict:
    """The JSON object body (``{}`` when empty), or its ``wrapper`` member; 400 / 422 otherwise."""
    try:
        body = await read_json(request)
    except ValueError as exc:
        raise AuroraError(400, str(exc)) from None
    if body is None:
        body = {}
    if wrapper is not None:
        body = body.get(wrapper) if isinstance(body, dict) else None
    if not isinstance(body, dict):
        shape = f'{{"{wrapper}": {{...}}}}' if wrapper else "a JSON object"
        raise AuroraError(422, f"Request body must be {shape}.")
    return body


def number(body: dict, key: str, default: Any, kind: type) -> Any:
    """``body[key]`` (or ``default``) checked to be a ``kind`` number; bools are not numbers."""
    value = body.get(key, default)
    numeric = (int, float) if kind is float else (int,)
    if isinstance(value, bool) or not isinstance(value, numeric):
        raise AuroraError(422, f"{key} must be {'a number' if kind is float else 'an integer'}.")
    return value


def text(body: dict, key: str, default: Optional[str] = None, required: bool = False) -> Optional[str]:
    """``body[key]`` checked to be a string (``default`` when absent, 422 when required)."""
    if key not in body:
        if required:
            raise AuroraError(422, f"{key} is required.")
        return default
    if not isinstance(body[key], str):
        raise AuroraError(422, f"{key} must be a string.")
    return body[key]
