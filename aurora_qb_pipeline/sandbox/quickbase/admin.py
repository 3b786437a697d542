"""``/_sandbox/quickbase/...``: drive the Quickbase sandbox from another process (a test that
runs the pipeline under ``dagster dev``, the demo). Sandbox only: nothing here exists in
Quickbase; each route stands for something an admin does in the Quickbase UI, or a fault.

* ``GET /_sandbox/quickbase`` settings; ``PUT`` changes them: ``page_cap``, ``max_body_bytes``,
  ``refuse_unknown_body_keys``, ``truncate_upsert_answers``;
* ``GET /_sandbox/quickbase/state``: apps, tables (with record counts), users of active tokens;
* ``POST /_sandbox/quickbase/apps`` ``{"name", "description"?}`` -> ``{"id"}``;
* ``POST /_sandbox/quickbase/tokens`` ``{"appIds": [...], "email"?}`` ->
  ``{"token", "tokenId", "userId"}``;
* ``POST /_sandbox/quickbase/tokens/revoke`` ``{"token"}``: later requests with it get 401;
* ``GET /_sandbox/quickbase/tables/{tid}/records``: stored records ``[{"fid": value}]``;
* ``PATCH /_sandbox/quickbase/tables/{tid}/records/{rid}`` ``{"fid": value}``: a hand edit ->
  ``{"outcome": "updated" | "unchanged"}``;
* ``DELETE /_sandbox/quickbase/tables/{tid}/records`` ``{"where": query | [rid, ...]}`` ->
  ``{"numberDeleted"}``;
* ``POST /_sandbox/quickbase/tables/{tid}/fields/{fid}``
  ``{"fieldType"?, "unique"?, "required"?, "label"?}``: retype (values converted or cleared),
  make (non-)unique or (non-)required, rename;
* ``DELETE /_sandbox/quickbase/tables/{tid}/fields/{fid}``: delete the field.

Errors are answered as the API's are: ``{"message", "description"}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..common import ADMIN_PREFIX, read_json
from .errors import QuickbaseError
from .values import FileVersion

if TYPE_CHECKING:
    from .state import QuickbaseState

PREFIX = f"{ADMIN_PREFIX}/quickbase"


def _jsonable(value: Any) -> Any:
    if isinstance(value, list) and value and isinstance(value[0], FileVersion):
        return [version.to_api() for version in value]
    return value


async def _body(request: Request) -> Any:
    try:
        payload = await read_json(request)
    except ValueError as exc:
        raise QuickbaseError(400, str(exc)) from None
    if not isinstance(payload, dict):
        raise QuickbaseError(400, "The body should be a JSON object.")
    return payload


def admin_routes(state: "QuickbaseState") -> list[Route]:
    async def get_settings(request: Request) -> Response:
        return JSONResponse(state.settings())

    async def put_settings(request: Request) -> Response:
        try:
            return JSONResponse(state.update_settings(await _body(request)))
        except ValueError as exc:
            raise QuickbaseError(400, str(exc)) from None

    async def describe(request: Request) -> Response:
        return JSONResponse(state.describe())

    async def add_app(request: Request) -> Response:
        body = await _body(request)
        app = state.add_app(str(body.get("name") or "Sandbox app"), str(body.get("description") or ""))
        return JSONResponse({"id": app.id})

    async def add_token(request: Request) -> Response:
        body = await _body(request)
        app_ids = body.get("appIds")
        if not isinstance(app_ids, list) or any(a not in state.apps for a in app_ids):
            raise QuickbaseError(400, "'appIds' should list existing app ids.")
        token = state.add_token(app_ids, body.get("email"))
        user = state.users[token]
        return JSONResponse({"token": token, "tokenId": user.token_id, "userId": user.id})

    async def revoke_token(request: Request) -> Response:
        user = state.revoke_token(str((await _body(request)).get("token") or ""))
        return JSONResponse({"revoked": user.token_id})

    async def get_records(request: Request) -> Response:
        rows = state.records(request.path_params["tableId"])
        return JSONResponse([{str(fid): _jsonable(v) for fid, v in row.items()} for row in rows])

    async def edit_record(request: Request) -> Response:
        body = await _body(request)
        if not all(key.isdigit() for key in body):
            raise QuickbaseError(400, "Keys should be field ids.")
        values = {int(key): value for key, value in body.items()}
        outcome = state.edit_record(request.path_params["tableId"], request.path_params["recordId"], values)
        return JSONResponse({"outcome": outcome})

    async def delete_records(request: Request) -> Response:
        body = await _body(request)
        if "where" not in body:
            raise QuickbaseError(400, "should have required property 'where'")
        with state.lock:
            deleted = state.delete_records(request.path_params["tableId"], body["where"])
        return JSONResponse({"numberDeleted": deleted})

    async def change_field(request: Request) -> Response:
        body = await _body(request)
        unknown = set(body) - {"fieldType", "unique", "required", "label"}
        if unknown:
            raise QuickbaseError(400, f"Unknown key(s): {', '.join(sorted(unknown))}")
        table_id, fid = request.path_params["tableId"], request.path_params["fieldId"]
        with state.lock:
            if "fieldType" in body:
                state.change_field_type(table_id, fid, str(body["fieldType"]))
            changes = {key: body[key] for key in ("unique", "required", "label") if key in body}
            field = state.update_field(table_id, fid, **changes)
        return JSONResponse(field.to_api())

    async def delete_field(request: Request) -> Response:
        state.delete_field(request.path_params["tableId"], request.path_params["fieldId"])
        return JSONResponse({"deletedFieldIds": [request.path_params["fieldId"]]})

    table = f"{PREFIX}/tables/{{tableId}}"
    return [
        Route(PREFIX, get_settings, methods=["GET"]),
        Route(PREFIX, put_settings, methods=["PUT", "PATCH"]),
        Route(f"{PREFIX}/state", describe, methods=["GET"]),
        Route(f"{PREFIX}/apps", add_app, methods=["POST"]),
        Route(f"{PREFIX}/tokens", add_token, methods=["POST"]),
        Route(f"{PREFIX}/tokens/revoke", revoke_token, methods=["POST"]),
        Route(f"{table}/records", get_records, methods=["GET"]),
        Route(f"{table}/records", delete_records, methods=["DELETE"]),
        Route(f"{table}/records/{{recordId:int}}", edit_record, methods=["PATCH"]),
        Route(f"{table}/fields/{{fieldId:int}}", change_field, methods=["POST"]),
        Route(f"{table}/fields/{{fieldId:int}}", delete_field, methods=["DELETE"]),
    ]
