"""What every ``/v1`` route needs: reading a body within the size limit, finding the table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from starlette.requests import Request

from ..common import read_json
from .bodies import TableParams, validated
from .errors import QuickbaseError
from .table import QbTable

if TYPE_CHECKING:
    from .state import QuickbaseState


class Handlers:
    """Base of the route groups. Each route does its work under the state lock, without
    awaiting inside it."""

    def __init__(self, state: "QuickbaseState") -> None:
        self.state = state

    async def read_body(self, request: Request, model: type[BaseModel]) -> Any:
        """The JSON body validated against ``model``: 413 past the size limit, 400 if malformed."""
        limit = self.state.max_body_bytes
        declared = request.headers.get("content-length", "")
        if (declared.isdigit() and int(declared) > limit) or len(await request.body()) > limit:
            raise QuickbaseError(413, f"The request body is larger than the {limit} bytes allowed.")
        try:
            payload = await read_json(request)
        except ValueError as exc:
            raise QuickbaseError(400, str(exc)) from None
        return validated(model, payload, self.state.refuse_unknown_body_keys)

    def params(self, request: Request, model: type[BaseModel]) -> Any:
        return validated(model, dict(request.query_params), refuse_unknown_keys=False)

    def table(self, request: Request, table_id: str) -> QbTable:
        return self.state.table_for(request.state.qb_user, table_id)

    def table_from_params(self, request: Request) -> tuple[QbTable, TableParams]:
        params: TableParams = self.params(request, TableParams)
        return self.table(request, params.table_id), params
