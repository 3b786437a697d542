"""``/v1`` record routes: upsert, runQuery, deleteRecords, downloadFile, deleteFile."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import records as engine
from .bodies import DeleteRecordsBody, QueryBody, UpsertBody
from .errors import QuickbaseJSONResponse, respond
from .handlers import Handlers


class RecordRoutes(Handlers):
    def routes(self) -> list[Route]:
        files = "/files/{tableId}/{recordId:int}/{fieldId:int}/{versionNumber:int}"
        return [
            Route("/records", self.upsert, methods=["POST"]),
            Route("/records", self.delete_records, methods=["DELETE"]),
            Route("/records/query", self.run_query, methods=["POST"]),
            Route(files, self.download_file, methods=["GET"]),
            Route(files, self.delete_file, methods=["DELETE"]),
        ]

    async def upsert(self, request: Request) -> Response:
        body: UpsertBody = await self.read_body(request, UpsertBody)
        with self.state.lock:
            table = self.table(request, body.to)
            result = engine.upsert(
                table, body.data, body.merge_field_id, request.state.qb_user, body.fields_to_return
            )
        if self.state.take_truncated_upsert():
            # Sandbox fault: the records are written, but the answer is cut off mid-body (as when
            # a connection drops after Quickbase applied the request).
            raw = json.dumps(result.to_api()).encode()
            cut = raw[: max(1, len(raw) // 2)]
            return Response(cut, status_code=result.status, media_type=QuickbaseJSONResponse.media_type)
        return respond(result.to_api(), result.status)

    async def run_query(self, request: Request) -> Response:
        body: QueryBody = await self.read_body(request, QueryBody)
        with self.state.lock:
            page = engine.query(self.table(request, body.from_), body, self.state.page_cap)
        return respond(page.to_api())

    async def delete_records(self, request: Request) -> Response:
        body: DeleteRecordsBody = await self.read_body(request, DeleteRecordsBody)
        with self.state.lock:
            return respond({"numberDeleted": engine.delete(self.table(request, body.from_), body.where)})

    def _version(self, request: Request):
        p = request.path_params
        table = self.table(request, p["tableId"])
        return table, p["recordId"], p["fieldId"], p["versionNumber"]

    async def download_file(self, request: Request) -> Response:
        """downloadFile: the content base64-encoded in the body, the file name in
        Content-Disposition (the spec's words). GUESS: served as text/plain."""
        with self.state.lock:
            table, rid, fid, version = self._version(request)
            found = engine.file_version(table, rid, fid, version)
        plain = found.file_name.replace('"', "")
        if plain.isascii():
            disposition = f'attachment; filename="{plain}"'
        else:  # RFC 5987, as HTTP headers carry Latin-1 only
            disposition = f"attachment; filename*=UTF-8''{quote(found.file_name, safe='')}"
        return Response(
            base64.b64encode(found.content),
            media_type="text/plain; charset=utf-8",
            headers={"Content-Disposition": disposition},
        )

    async def delete_file(self, request: Request) -> Response:
        with self.state.lock:
            table, rid, fid, version = self._version(request)
            deleted = engine.delete_file_version(table, rid, fid, version, request.state.qb_user)
        return respond(deleted.to_api())
