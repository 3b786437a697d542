"""``/v1`` schema routes: fields, tables, relationships, reports, apps, user tokens."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .bodies import (
    AppParams,
    CreateFieldBody,
    CreateRelationshipBody,
    CreateTableBody,
    DeleteFieldsBody,
    TableParams,
    UpdateFieldBody,
    UpdateTableBody,
)
from .errors import QuickbaseError, respond
from .formula import FormulaError, compile_formula
from .handlers import Handlers
from .models import default_report
from .relationships import create_relationship, relationships_of
from .table import QbTable

# Per qbvisor's observations the JSON API refuses formula mode for these types.
NO_FORMULA_TYPES = frozenset({"text-multiple-choice", "text-multi-line", "multiuser", "address", "file"})


def check_formula(table: QbTable, field_type: str, formula: str) -> None:
    """A formula given to createField/updateField must be one the sandbox can evaluate."""
    if field_type in NO_FORMULA_TYPES:
        raise QuickbaseError(400, f"A {field_type} field cannot be a formula field.")
    try:
        compile_formula(formula, table.field_ids_by_label())
    except FormulaError as exc:
        raise QuickbaseError(400, str(exc)) from None


def declared(body: BaseModel, exclude: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    """The body's documented keys that were given (snake_case), unknown keys left out."""
    names = set(type(body).model_fields) - set(exclude)
    return body.model_dump(include=names, exclude_none=True)


class SchemaRoutes(Handlers):
    def routes(self) -> list[Route]:
        return [
            Route("/fields", self.get_fields, methods=["GET"]),
            Route("/fields", self.create_field, methods=["POST"]),
            Route("/fields", self.delete_fields, methods=["DELETE"]),
            Route("/fields/{fieldId:int}", self.get_field, methods=["GET"]),
            Route("/fields/{fieldId:int}", self.update_field, methods=["POST"]),
            Route("/tables", self.get_app_tables, methods=["GET"]),
            Route("/tables", self.create_table, methods=["POST"]),
            Route("/tables/{tableId}", self.get_table, methods=["GET"]),
            Route("/tables/{tableId}", self.update_table, methods=["POST"]),
            Route("/tables/{tableId}/relationships", self.get_relationships, methods=["GET"]),
            Route("/tables/{tableId}/relationship", self.create_relationship, methods=["POST"]),
            Route("/reports", self.get_table_reports, methods=["GET"]),
            Route("/apps/{appId}", self.get_app, methods=["GET"]),
            Route("/usertoken/deactivate", self.deactivate_token, methods=["POST"]),
            Route("/usertoken", self.deactivate_token, methods=["DELETE"]),
        ]

    # -- fields --------------------------------------------------------------------------------

    async def get_fields(self, request: Request) -> Response:
        with self.state.lock:
            table, params = self.table_from_params(request)
            return respond([f.to_api(params.include_field_perms) for _, f in sorted(table.fields.items())])

    async def get_field(self, request: Request) -> Response:
        with self.state.lock:
            table, params = self.table_from_params(request)
            return respond(table.get_field(request.path_params["fieldId"]).to_api(params.include_field_perms))

    async def create_field(self, request: Request) -> Response:
        body: CreateFieldBody = await self.read_body(request, CreateFieldBody)
        attributes = {k: v for k, v in body.changes().items() if k not in ("label", "field_type")}
        with self.state.lock:
            table, _ = self.table_from_params(request)
            formula = attributes.get("properties", {}).get("formula")
            if formula:
                check_formula(table, body.field_type, formula)
            return respond(table.add_field(body.label, body.field_type, **attributes).to_api(True))

    async def update_field(self, request: Request) -> Response:
        body: UpdateFieldBody = await self.read_body(request, UpdateFieldBody)
        changes = body.changes()
        with self.state.lock:
            table, _ = self.table_from_params(request)
            current = table.get_field(request.path_params["fieldId"])
            formula = changes.get("properties", {}).get("formula")
            if formula is not None and current.mode != "formula":
                raise QuickbaseError(400, f"Field {current.id} is not a formula field.")  # GUESS
            if formula:
                check_formula(table, current.field_type, formula)
            return respond(table.update_field(current.id, **changes).to_api(True))

    async def delete_fields(self, request: Request) -> Response:
        body: DeleteFieldsBody = await self.read_body(request, DeleteFieldsBody)
        with self.state.lock:
            table, _ = self.table_from_params(request)
            return respond(table.delete_fields(body.field_ids))

    # -- tables --------------------------------------------------------------------------------

    async def get_app_tables(self, request: Request) -> Response:
        params: AppParams = self.params(request, AppParams)
        with self.state.lock:
            app = self.state.app_for(request.state.qb_user, params.app_id)
            return respond([self.state.tables[tid].to_api() for tid in app.table_ids])

    async def create_table(self, request: Request) -> Response:
        body: CreateTableBody = await self.read_body(request, CreateTableBody)
        params: AppParams = self.params(request, AppParams)
        with self.state.lock:
            app = self.state.app_for(request.state.qb_user, params.app_id)
            attributes = declared(body, exclude={"name"})
            return respond(self.state.add_table(app.id, body.name, **attributes).to_api())

    def _table_in_app(self, request: Request) -> QbTable:
        params: AppParams = self.params(request, AppParams)
        table = self.table(request, request.path_params["tableId"])
        if table.app_id != params.app_id:
            raise QuickbaseError(404, f"Table {table.id} is not in application {params.app_id}.")
        return table

    async def get_table(self, request: Request) -> Response:
        with self.state.lock:
            return respond(self._table_in_app(request).to_api())

    async def update_table(self, request: Request) -> Response:
        body: UpdateTableBody = await self.read_body(request, UpdateTableBody)
        with self.state.lock:
            table = self._table_in_app(request)
            table.update(**declared(body))
            return respond(table.to_api())

    async def get_relationships(self, request: Request) -> Response:
        skip = request.query_params.get("skip", "0")
        if not skip.isdigit():
            raise QuickbaseError(400, "'skip' should be integer")
        with self.state.lock:
            table = self.table(request, request.path_params["tableId"])
            return respond(relationships_of(table, self.state.tables, int(skip)))

    async def create_relationship(self, request: Request) -> Response:
        body: CreateRelationshipBody = await self.read_body(request, CreateRelationshipBody)
        with self.state.lock:
            child = self.table(request, request.path_params["tableId"])
            self.table(request, body.parent_table_id)  # the token must reach the parent too
            relationship = create_relationship(child, self.state.tables, body)
            parent = self.state.tables[relationship.parent_table_id]
            return respond(relationship.to_api(child.fields, parent.fields))

    async def get_table_reports(self, request: Request) -> Response:
        params: TableParams = self.params(request, TableParams)
        with self.state.lock:
            table = self.table(request, params.table_id)
            return respond([default_report(table.id, table.default_columns())])

    # -- apps and tokens -----------------------------------------------------------------------

    async def get_app(self, request: Request) -> Response:
        with self.state.lock:
            return respond(self.state.app_for(request.state.qb_user, request.path_params["appId"]).to_api())

    async def deactivate_token(self, request: Request) -> Response:
        """deactivateUserToken / deleteUserToken: the calling token stops working (both are the
        same to the sandbox)."""
        user = self.state.revoke_token(request.state.qb_token)
        return respond({"id": user.token_id})
