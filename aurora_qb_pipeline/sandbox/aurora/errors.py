"""Aurora's error answers and the small lookups that raise them.

Aurora answers errors as ``{"errors": [{"message": "..."}]}``; a 422 for a payload can list
several problems at once, one object each.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Union

from starlette.responses import JSONResponse, Response

from ...api_facts import AURORA_MAX_PER_PAGE


class AuroraError(Exception):
    """An error the API answers as ``{"errors": [{"message": ...}, ...]}`` with ``status``."""

    def __init__(self, status: int, message: Union[str, Sequence[str]]) -> None:
        self.messages = [message] if isinstance(message, str) else list(message)
        super().__init__("; ".join(self.messages))
        self.status = status
        self.message = self.messages[0]


def aurora_error(status: int, message: Union[str, Sequence[str]],
                 headers: Optional[Mapping[str, str]] = None) -> Response:
    messages = [message] if isinstance(message, str) else list(message)
    return JSONResponse({"errors": [{"message": m} for m in messages]}, status_code=status, headers=headers)


def lookup(records: Mapping[str, Any], key: str, what: str) -> Any:
    """``records[key]``, or a 404 naming ``what``."""
    record = records.get(key)
    if record is None:
        raise AuroraError(404, f"{what} {key} not found.")
    return record


def page_slice(items: Sequence[Any], page: int, per_page: int) -> list[Any]:
    """One page of ``items`` as Aurora pages lists: 1-based ``page``, ``per_page`` up to the maximum."""
    if page < 1:
        raise AuroraError(422, "page must be 1 or greater.")
    if not 1 <= per_page <= AURORA_MAX_PER_PAGE:
        raise AuroraError(422, f"per_page must be between 1 and {AURORA_MAX_PER_PAGE}, got {per_page}.")
    start = (page - 1) * per_page
    return list(items[start:start + per_page])
