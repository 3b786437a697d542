"""Contract and behaviour tests of the Quickbase API emulator.

Every 200/207 answer is validated against the vendored spec (see ``support``). The behaviour
tests pin what the spec does not say but the real service does, as observed on the wire: header
checks, AJV texts, line errors, paging.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from aurora_qb_pipeline.sandbox.common import credential_id
from aurora_qb_pipeline.sandbox.quickbase import QuickbaseState

from ..extract_qb_spec import OPERATIONS
from .support import (
    CHOICES,
    DESIGN_ID,
    MODULE_MODEL,
    OPERATION_TABLE,
    PROJECT_NAME,
    SYSTEM_SIZE,
    design,
)

# -- contract ---------------------------------------------------------------------------------


def test_vendored_spec_holds_exactly_the_implemented_operations():
    assert {op["operationId"] for _, _, op in OPERATION_TABLE} == OPERATIONS


def test_every_implemented_operation_answers_in_the_spec_shape(qb):
    t, a = qb.state.table_id, qb.state.app_id
    qb.upsert([design(1), design(2)], fieldsToReturn=[6, 7])
    created = qb.call(
        "POST", "/fields", params={"tableId": t}, json={"label": "Contract", "fieldType": "text"}
    )
    fid = created.json()["id"]
    calls = [
        ("POST", "/records/query", {"json": {"from": t, "select": [3, 6, 7], "options": {"top": 1}}}),
        ("GET", "/fields", {"params": {"tableId": t, "includeFieldPerms": "true"}}),
        ("GET", f"/fields/{fid}", {"params": {"tableId": t}}),
        (
            "POST",
            f"/fields/{fid}",
            {"params": {"tableId": t}, "json": {"label": "Contract 2", "unique": True}},
        ),
        ("DELETE", "/fields", {"params": {"tableId": t}, "json": {"fieldIds": [fid, 1]}}),
        ("GET", "/tables", {"params": {"appId": a}}),
        ("GET", f"/tables/{t}", {"params": {"appId": a}}),
        ("GET", f"/apps/{a}", {}),
        ("DELETE", "/records", {"json": {"from": t, "where": "{3.GT.0}"}}),
    ]
    for method, path, kwargs in calls:
        response = qb.call(method, path, **kwargs)  # validated against the spec by call()
        assert response.status_code == 200, (path, response.text)
    partial = qb.upsert([design(3), {DESIGN_ID: "des_4", SYSTEM_SIZE: "big"}])
    assert partial.status_code == 207


# -- headers ----------------------------------------------------------------------------------


def test_header_checks_come_in_quickbases_order(qb):
    realm, token = qb.state.realm, f"QB-USER-TOKEN {qb.state.token}"
    other_app = qb.state.add_app("Someone else's app")
    outsider = f"QB-USER-TOKEN {qb.state.add_token([other_app.id])}"
    cases = [
        (
            {"QB-Realm-Hostname": "nowhere.example"},
            400,
            "Bad Request",
            "Required header 'authorization' not found",
        ),
        (
            {"Authorization": "QB-USER-TOKEN b7k2xq_ab1c_0_d3fg4hij5klm6nopq7rs8tuv9w"},
            401,
            "Access denied",
            "User token is invalid",
        ),
        (
            {"Authorization": f"Bearer {qb.state.token}", "QB-Realm-Hostname": realm},
            401,
            "Access denied",
            "User token is invalid",
        ),
        ({"Authorization": token}, 403, None, None),
        ({"Authorization": token, "QB-Realm-Hostname": "other.quickbase.com"}, 403, None, None),
        ({"Authorization": outsider, "QB-Realm-Hostname": realm}, 403, None, None),
    ]
    for headers, status, message, description in cases:
        response = qb.call("POST", "/records/query", headers=headers, json={"from": qb.state.table_id})
        assert response.status_code == status, headers
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert set(body) == {"message", "description"}
        if message:
            assert body == {"message": message, "description": description}


def test_token_format_and_ids_derive_from_the_seed():
    first, again = (
        QuickbaseState.with_design_table(CHOICES, seed=3),
        QuickbaseState.with_design_table(CHOICES, seed=3),
    )
    assert re.fullmatch(r"[a-z0-9]{6}_[a-z0-9]{4}_0_[a-z0-9]{26}", first.token)
    assert (first.token, first.app_id, first.table_id) == (again.token, again.app_id, again.table_id)
    assert first.token != QuickbaseState.with_design_table(CHOICES, seed=4).token
    assert first.realm == "sandbox.quickbase.com"
    assert (first.config.rate_limit, first.config.rate_window_s) == (100, 10)


# -- upsert -----------------------------------------------------------------------------------


def test_upsert_creates_updates_and_reports_unchanged_on_the_merge_field(qb):
    first = qb.upsert([design(1), design(2)])
    assert first.status_code == 200
    assert first.json() == {
        "data": [],
        "metadata": {
            "createdRecordIds": [1, 2],
            "updatedRecordIds": [],
            "unchangedRecordIds": [],
            "totalNumberOfRecordsProcessed": 2,
        },
    }
    before = {r[3]: r[2] for r in qb.state.records()}
    time.sleep(0.002)
    second = qb.upsert([design(1), design(2, {SYSTEM_SIZE: 9.5}), design(3)])
    meta = second.json()["metadata"]
    assert (meta["createdRecordIds"], meta["updatedRecordIds"], meta["unchangedRecordIds"]) == ([3], [2], [1])
    after = {r[3]: r for r in qb.state.records()}
    assert after[2][SYSTEM_SIZE] == 9.5 and after[2][2] > before[2], "Date Modified moves on update"
    assert after[1][2] == before[1], "an unchanged record keeps its Date Modified"
    assert after[1][4]["email"] and after[1][1] == before[1]


def test_upsert_without_merge_field_matches_on_record_id(qb):
    qb.upsert([design(1)])
    response = qb.upsert([{3: "1", PROJECT_NAME: "Renamed"}, design(2)], merge=None)
    assert response.status_code == 200
    assert response.json()["metadata"]["updatedRecordIds"] == [1]
    assert response.json()["metadata"]["createdRecordIds"] == [2]
    assert qb.state.records()[0][PROJECT_NAME] == "Renamed"


def test_line_errors_are_reported_per_record_and_good_records_are_kept(qb):
    qb.upsert([design(1)])
    records = [
        design(10, {MODULE_MODEL: "qcells q.peak duo 405"}),
        {DESIGN_ID: "des_11", 99: "x"},
        {DESIGN_ID: "des_12", SYSTEM_SIZE: "twelve"},
        {DESIGN_ID: "des_13", SYSTEM_SIZE: ""},
        {DESIGN_ID: "des_14", MODULE_MODEL: "Unknown Panel 1"},
        {PROJECT_NAME: "no design id"},
        {DESIGN_ID: "des_15", 1: "2024-01-01T00:00:00Z"},
        design(16, {SYSTEM_SIZE: "16.5"}),
    ]
    response = qb.upsert(records, fieldsToReturn=[MODULE_MODEL])
    assert response.status_code == 207
    body = response.json()
    assert body["metadata"]["totalNumberOfRecordsProcessed"] == len(records)
    assert body["metadata"]["createdRecordIds"] == [2, 3]
    assert body["metadata"]["lineErrors"] == {
        "2": ['Unknown field with Id "99".'],
        "3": ['Incompatible value for field with ID "7".'],
        "4": ['Incompatible value for field with ID "7".'],
        "5": ["The field with ID '9' has an invalid choice."],
        "6": ['Missing value for required field with ID "20".'],
        "7": ['Field with ID "1" is read-only and cannot be written.'],
    }
    assert body["data"] == [
        {"3": {"value": 2}, "9": {"value": "Qcells Q.PEAK DUO 405"}},
        {"3": {"value": 3}, "9": {"value": ""}},
    ]
    stored = {r[DESIGN_ID]: r for r in qb.state.records()}
    assert set(stored) == {"des_1", "des_10", "des_16"}
    assert stored["des_16"][SYSTEM_SIZE] == 16.5, "numeric strings are accepted for numeric fields"


def test_a_duplicate_in_a_unique_field_is_a_line_error(qb):
    qb.upsert([design(1), design(2)])
    response = qb.upsert([{3: 2, DESIGN_ID: "des_1"}], merge=None)
    assert response.status_code == 207
    assert response.json()["metadata"]["lineErrors"] == {
        "1": ['Duplicate value for unique field with ID "20".']
    }


def test_text_is_cleared_with_null_or_empty_string(qb):
    qb.upsert([design(1, {14: "Denver", 15: "CO"})])
    qb.upsert([{DESIGN_ID: "des_1", 14: None, 15: ""}])
    record = qb.state.records()[0]
    assert record[14] is None and record[15] is None
    row = qb.query(select=[14, 15]).json()["data"][0]
    assert row == {"14": {"value": ""}, "15": {"value": ""}}


def test_fields_to_return_follow_input_order_with_the_record_id(qb):
    response = qb.upsert([design(2), design(1)], fieldsToReturn=[7, 20])
    assert response.json()["data"] == [
        {"3": {"value": 1}, "7": {"value": 2}, "20": {"value": "des_2"}},
        {"3": {"value": 2}, "7": {"value": 1}, "20": {"value": "des_1"}},
    ]
    assert [list(row) for row in response.json()["data"]] == [["3", "7", "20"]] * 2


@pytest.mark.parametrize(
    "body, description",
    [
        ({"to": None, "data": [{}]}, "'to' should be string"),
        ({"data": [{}]}, "should have required property 'to'"),
        ({"to": "TABLE", "data": None}, "'data' should be array"),
        ({"to": "TABLE", "data": []}, "'data' should NOT have fewer than 1 items"),
        ({"to": "TABLE", "data": ["x"]}, "'data[0]' should be object"),
        ({"to": "TABLE", "data": [{}], "mergeFieldId": "20"}, "'mergeFieldId' should be integer"),
        (
            {"to": "TABLE", "data": [{}], "mergeFieldId": 6},
            'The merge field with ID "6" must be a unique field.',
        ),
    ],
)
def test_bad_upsert_bodies_are_refused_whole(qb, body, description):
    if body.get("to") == "TABLE":
        body = {**body, "to": qb.state.table_id}
    response = qb.call("POST", "/records", json=body)
    assert response.status_code == 400
    assert response.json() == {"message": "Bad Request", "description": description}


def test_malformed_json_is_a_bad_request(qb):
    response = qb.call(
        "POST", "/records", data=b"{not json", headers={**qb.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400 and "Malformed JSON" in response.json()["description"]


def test_upsert_over_40_mb_is_payload_too_large(qb):
    payload = b'{"to": "x", "data": [' + b" " * (40 * 1024 * 1024) + b"]}"
    response = qb.call(
        "POST", "/records", data=payload, headers={**qb.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["message"] == "Payload Too Large"
    assert qb.state.records() == []


def test_unknown_table_is_not_found(qb):
    response = qb.call("POST", "/records", json={"to": "bzzzzzzzz", "data": [{}]})
    assert response.status_code == 404 and set(response.json()) == {"message", "description"}


def test_formula_fields_are_read_only():
    state = QuickbaseState.with_design_table(CHOICES)
    formula = state.add_field(state.table_id, "kW per Module", "numeric", properties={"formula": "[7]/[8]"})
    assert formula.mode == "formula" and not formula.writable
    result = state.add_records(None, [design(1, {formula.id: 1.5})], merge_field_id=DESIGN_ID)
    assert result.line_errors == {"1": [f'Field with ID "{formula.id}" is read-only and cannot be written.']}
    assert state.records() == []


# -- sandbox machinery ------------------------------------------------------------------------


def test_rate_limit_is_100_per_10_s_per_token_and_answers_retry_after(qb):
    qb.admin("PUT", "/config", json={"rate_limit": 100, "rate_window_s": 10, "time_scale": 0.01})
    other = f"QB-USER-TOKEN {qb.state.add_token([qb.state.app_id])}"
    try:
        key = credential_id(qb.headers["Authorization"])
        assert all(qb.state.limiter.check(key) is None for _ in range(99)), "the first 99 of the window pass"
        assert qb.call("GET", f"/apps/{qb.state.app_id}").status_code == 200, "the 100th passes"
        limited = qb.call("GET", f"/apps/{qb.state.app_id}")
        assert limited.status_code == 429
        assert set(limited.json()) == {"message", "description"}
        retry_after = float(limited.headers["Retry-After"])
        assert 0 < retry_after <= 0.1, "Retry-After is scaled with the 10 s window"
        assert qb.call("GET", f"/apps/{qb.state.app_id}", headers={**qb.headers, "Authorization": other}).ok
        time.sleep(retry_after + 0.02)
        assert qb.call("GET", f"/apps/{qb.state.app_id}").status_code == 200
    finally:
        qb.admin("PUT", "/config", json={"rate_limit": None, "time_scale": 1.0})


def test_request_log_records_calls_without_secrets(qb):
    assert qb.admin("DELETE", "/requests").status_code == 204
    qb.query(select=[3])
    qb.call("GET", "/fields", headers={"Authorization": "QB-USER-TOKEN wrong"})
    entries = qb.admin("GET", "/requests").json()
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("POST", "/v1/records/query", 200),
        ("GET", "/v1/fields", 401),
    ]
    assert entries[0]["credential"] == credential_id(qb.headers["Authorization"])
    assert qb.state.token not in json.dumps(entries)
    assert qb.admin("GET", "/requests", params={"summary": 1}).json()["by_status"] == {"200": 1, "401": 1}


def test_concurrent_upserts_are_all_applied(qb):
    def upsert_one(n: int) -> int:
        with requests.Session() as session:
            body = {
                "to": qb.state.table_id,
                "mergeFieldId": DESIGN_ID,
                "data": [{str(k): {"value": v} for k, v in design(n).items()}],
            }
            answer = session.post(f"{qb.url}/v1/records", json=body, headers=qb.headers)
            return answer.json()["metadata"]["createdRecordIds"][0]

    with ThreadPoolExecutor(8) as pool:
        record_ids = list(pool.map(upsert_one, range(40)))
    assert sorted(record_ids) == list(range(1, 41))
    assert len({r[DESIGN_ID] for r in qb.state.records()}) == 40
