"""Small parts of the Quickbase side: a 400 that says the body is too large, what changed in a table,
and when a value a record holds is the value the export sends."""

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aurora_qb_pipeline.clients import PayloadTooLargeError, PermanentApiError, QuickbaseClient
from aurora_qb_pipeline.mapping import TargetField, load_mapping, resolve_mapping, table_changes, values_match
from aurora_qb_pipeline.sandbox.common import ServerThread
from aurora_qb_pipeline.sandbox.quickbase import QuickbaseState


async def _records(request: Request):
    body = await request.body()
    if len(body) > 400:  # as a gateway might word it: a 400, not a 413
        return JSONResponse({"message": "Bad Request", "description": "Request payload size exceeds the limit"}, 400)
    if b'"bad"' in body:
        return JSONResponse({"message": "Bad Request", "description": "Invalid input"}, 400)
    return JSONResponse({"data": [{"3": {"value": 1}, "2": {"value": "2026-01-01T00:00:00.000Z"}}],
                         "metadata": {"createdRecordIds": [1], "updatedRecordIds": [], "unchangedRecordIds": [],
                                      "totalNumberOfRecordsProcessed": 1}})


def test_a_400_that_says_the_body_is_too_large_is_a_payload_too_large_error():
    with ServerThread(Starlette(routes=[Route("/v1/records", _records, methods=["POST"])])) as server:
        client = QuickbaseClient(base_url=server.url, realm_hostname="r.example.com", user_token="t0ken_secret",
                                 table_id="btable")
        try:
            result = client.upsert([{20: "d1"}], 20)
            assert result.record_ids == [1] and result.date_modified == ["2026-01-01T00:00:00.000Z"]
            assert result.outcome(0) == "created" and not result.answer_lost
            with pytest.raises(PayloadTooLargeError):
                client.upsert([{20: "x" * 500}], 20)
            with pytest.raises(PermanentApiError) as refused:
                client.upsert([{20: "bad"}], 20)
            assert not isinstance(refused.value, PayloadTooLargeError)
        finally:
            client.close()


@pytest.fixture
def table():
    # with the Opportunities table: the default mapping names the designs' reference field to it
    return QuickbaseState.with_design_table(["Module A", "Module B"], opportunities=True)


def _fields(state):
    return [f.to_api() for f in state.table().fields.values()]


def test_table_changes_name_the_field_and_the_change(table):
    mapping = resolve_mapping(load_mapping(), _fields(table))
    assert table_changes(mapping, _fields(table)) == []
    table.change_field_type(table.table_id, 7, "text")  # still fits: not a change that stops an export
    assert table_changes(mapping, _fields(table)) == []
    table.change_field_type(table.table_id, 18, "date")
    table.delete_field(table.table_id, 8)
    table.update_field(table.table_id, 20, unique=False)
    changes = table_changes(mapping, _fields(table))
    assert "field 'Number of Modules' (8) was deleted from the table" in changes
    assert "field 'Azimuth' (18) changed type from numeric to date" in changes
    assert "merge field 'Aurora Design ID' (20) is no longer unique" in changes
    assert any("no such field" in c for c in changes)  # the mapping check's own words follow


@pytest.mark.parametrize(
    "field_type,sent,held,same",
    [
        ("numeric", 7.2, 7.2, True),
        ("numeric", 7.2, 7.2000001, True),
        ("numeric", 7.2, 7.3, False),
        ("numeric", 12, None, False),
        ("numeric", None, None, True),
        ("text", None, "", True),
        ("text", "a", "", False),
        ("text", 7.5, "7.5", True),  # a number in a text field
        ("text", "Main St", "main st", False),
        ("text-multiple-choice", "Module A", "module a", True),
        ("timestamp", "2024-01-02T03:04:05Z", "2024-01-02T03:04:05.000Z", True),
        ("timestamp", "2024-01-02T03:04:05Z", "2024-01-02T03:04:06.000Z", False),
        ("checkbox", False, False, True),
        ("url", "https://x.example/p", "https://x.example/p", True),
    ],
)
def test_values_match(field_type, sent, held, same):
    assert values_match(TargetField("column", 6, "Field", field_type), sent, held) is same
