"""What a reliability test changes under a running pipeline, through ``/_sandbox/quickbase``
(usable from another process): revoked tokens, deleted and retyped fields, a merge field made
non-unique, hand edits and deletions; Date Modified / Last Modified By as a fingerprint; truncated
answers to applied upserts; a configurable body limit; several apps and tokens."""

from __future__ import annotations

import json

import pytest
import requests

from .support import DESIGN_ID, PROJECT_NAME, SYSTEM_SIZE, design

AZIMUTH = 18
ACCESS_DENIED = {"message": "Access denied", "description": "User token is invalid"}


def _token_headers(qb, token: str) -> dict[str, str]:
    return {"QB-Realm-Hostname": qb.state.realm, "Authorization": f"QB-USER-TOKEN {token}"}


def _new_token(qb, app_ids: list[str]) -> str:
    answer = qb.admin("POST", "/quickbase/tokens", json={"appIds": app_ids})
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def _modified(qb) -> dict[str, tuple[str, str]]:
    """design id -> (Date Modified, Last Modified By email), read through runQuery."""
    rows = qb.query(select=[DESIGN_ID, 2, 5]).json()["data"]
    return {r[str(DESIGN_ID)]["value"]: (r["2"]["value"], r["5"]["value"]["email"]) for r in rows}


def test_revoked_token_gets_401_from_the_next_request(qb):
    token = _new_token(qb, [qb.state.app_id])
    headers = _token_headers(qb, token)
    assert qb.call("GET", f"/apps/{qb.state.app_id}", headers=headers).status_code == 200
    assert qb.admin("POST", "/quickbase/tokens/revoke", json={"token": token}).json()["revoked"] > 0
    refused = qb.call("POST", "/records/query", headers=headers, json={"from": qb.state.table_id})
    assert (refused.status_code, refused.json()) == (401, ACCESS_DENIED)
    assert qb.admin("POST", "/quickbase/tokens/revoke", json={"token": token}).status_code == 404
    assert qb.call("GET", f"/apps/{qb.state.app_id}").status_code == 200, "other tokens keep working"


@pytest.mark.parametrize("method, path", [("POST", "/usertoken/deactivate"), ("DELETE", "/usertoken")])
def test_a_token_deactivated_through_the_api_stops_working(qb, method, path):
    answer = qb.admin("POST", "/quickbase/tokens", json={"appIds": [qb.state.app_id]}).json()
    headers = _token_headers(qb, answer["token"])
    deactivated = qb.call(method, path, headers=headers)  # validated against the spec
    assert deactivated.status_code == 200 and deactivated.json() == {"id": answer["tokenId"]}
    assert qb.call("GET", f"/apps/{qb.state.app_id}", headers=headers).status_code == 401


def test_deleted_field_makes_writes_and_queries_that_name_it_fail(fresh):
    fresh.upsert([design(1)])
    table = fresh.state.table_id
    assert fresh.admin("DELETE", f"/quickbase/tables/{table}/fields/{SYSTEM_SIZE}").status_code == 200
    written = fresh.upsert([design(2)])
    assert written.json()["metadata"]["lineErrors"] == {"1": [f'Unknown field with Id "{SYSTEM_SIZE}".']}
    assert fresh.query(select=[SYSTEM_SIZE]).status_code == 400
    assert fresh.call("GET", f"/fields/{SYSTEM_SIZE}", params={"tableId": table}).status_code == 404
    assert fresh.admin("DELETE", f"/quickbase/tables/{table}/fields/3").status_code == 400
    assert fresh.admin("DELETE", f"/quickbase/tables/{table}/fields/{SYSTEM_SIZE}").status_code == 404


def test_retyped_field_converts_what_it_can(fresh):
    table = fresh.state.table_id
    fresh.upsert([design(1, {AZIMUTH: 180}), design(2, {PROJECT_NAME: "12"})])
    retyped = fresh.admin(
        "POST", f"/quickbase/tables/{table}/fields/{PROJECT_NAME}", json={"fieldType": "numeric"}
    )
    assert retyped.status_code == 200 and retyped.json()["fieldType"] == "numeric"
    described = fresh.call("GET", f"/fields/{PROJECT_NAME}", params={"tableId": table}).json()
    assert described["fieldType"] == "numeric" and "numberFormat" in described["properties"]
    names = [r[str(PROJECT_NAME)]["value"] for r in fresh.query(select=[PROJECT_NAME]).json()["data"]]
    assert names == [None, 12], "'Project 1' cannot be a number and is cleared; '12' converts"
    refused = fresh.upsert([design(3)])
    assert refused.json()["metadata"]["lineErrors"] == {
        "1": [f'Incompatible value for field with ID "{PROJECT_NAME}".']
    }
    back = fresh.admin("POST", f"/quickbase/tables/{table}/fields/{AZIMUTH}", json={"fieldType": "text"})
    assert (
        back.ok and fresh.query(select=[AZIMUTH], where="{3.EX.1}").json()["data"][0]["18"]["value"] == "180"
    )
    bad = fresh.admin("POST", f"/quickbase/tables/{table}/fields/{AZIMUTH}", json={"field_type": "text"})
    assert bad.status_code == 400


def test_merge_field_made_non_unique_and_back(fresh):
    table = fresh.state.table_id
    fresh.upsert([design(1), design(2)])
    path = f"/quickbase/tables/{table}/fields/{DESIGN_ID}"
    assert fresh.admin("POST", path, json={"unique": False}).json()["unique"] is False
    refused = fresh.upsert([design(3)])
    assert refused.status_code == 400
    assert refused.json()["description"] == f'The merge field with ID "{DESIGN_ID}" must be a unique field.'
    assert fresh.admin("POST", path, json={"unique": True}).json()["unique"] is True
    assert fresh.upsert([design(3)]).json()["metadata"]["createdRecordIds"] == [3]
    fresh.admin("POST", path, json={"unique": False})
    fresh.upsert([{DESIGN_ID: "des_1"}], merge=None)  # a duplicate, now allowed
    duplicate = fresh.admin("POST", path, json={"unique": True})
    assert duplicate.status_code == 400 and "duplicate" in duplicate.json()["description"]


def test_hand_edits_and_deletes_move_the_fingerprint(fresh):
    table = fresh.state.table_id
    fresh.upsert([design(1), design(2), design(3)])
    before = _modified(fresh)
    assert {email for _, email in before.values()} == {fresh.state.users[fresh.state.token].email}
    unchanged = fresh.upsert([design(1), design(2), design(3)])
    assert unchanged.json()["metadata"]["unchangedRecordIds"] == [1, 2, 3]
    assert _modified(fresh) == before, "an unchanged upsert keeps Date Modified and Last Modified By"

    edit = fresh.admin(
        "PATCH", f"/quickbase/tables/{table}/records/2", json={str(PROJECT_NAME): "Edited by hand"}
    )
    assert edit.json() == {"outcome": "updated"}
    after = _modified(fresh)
    assert after["des_2"][0] > before["des_2"][0] and after["des_2"][1] == "admin@sandbox.invalid"
    assert after["des_1"] == before["des_1"]
    same = fresh.admin(
        "PATCH", f"/quickbase/tables/{table}/records/2", json={str(PROJECT_NAME): "Edited by hand"}
    )
    assert same.json() == {"outcome": "unchanged"} and _modified(fresh) == after
    changed_since = fresh.query(select=[DESIGN_ID], where=f"{{2.AF.'{before['des_3'][0]}'}}").json()["data"]
    assert [r[str(DESIGN_ID)]["value"] for r in changed_since] == ["des_2"]

    bad = fresh.admin("PATCH", f"/quickbase/tables/{table}/records/2", json={str(SYSTEM_SIZE): "big"})
    assert bad.status_code == 400 and "Incompatible value" in bad.json()["description"]
    assert fresh.admin("PATCH", f"/quickbase/tables/{table}/records/99", json={"6": "x"}).status_code == 404
    deleted = fresh.admin("DELETE", f"/quickbase/tables/{table}/records", json={"where": [1, 3]})
    assert deleted.json() == {"numberDeleted": 2}
    listed = fresh.admin("GET", f"/quickbase/tables/{table}/records").json()
    assert [(r["3"], r[str(PROJECT_NAME)], r["5"]["email"]) for r in listed] == [
        (2, "Edited by hand", "admin@sandbox.invalid")
    ]


def test_record_count_and_last_modified_for_an_operator_check(qb):
    t, a = qb.state.table_id, qb.state.app_id
    empty = qb.call("GET", f"/tables/{t}", params={"appId": a}).json()
    qb.upsert([design(n) for n in range(1, 6)])
    qb.upsert([design(3, {SYSTEM_SIZE: 30})])
    newest = qb.query(select=[3, 2], sortBy=[{"fieldId": 2, "order": "DESC"}], options={"top": 1}).json()
    assert newest["metadata"]["totalRecords"] == 5 and newest["data"][0]["3"]["value"] == 3
    table = qb.call("GET", f"/tables/{t}", params={"appId": a}).json()
    assert table["updated"] >= newest["data"][0]["2"]["value"] > empty["updated"]
    qb.upsert([design(1)])  # unchanged: the table's data did not change
    qb.query(select=[3])
    assert qb.call("GET", f"/tables/{t}", params={"appId": a}).json()["updated"] == table["updated"]


def test_queries_on_empty_values(qb):
    qb.upsert([design(1, {AZIMUTH: 0}), design(2, {AZIMUTH: 180}), design(3)])
    ids = lambda where: [r["3"]["value"] for r in qb.query(select=[3], where=where).json()["data"]]  # noqa: E731
    assert ids(f"{{{AZIMUTH}.EX.''}}") == [3]
    assert ids(f"{{{AZIMUTH}.XEX.''}}") == [1, 2]
    assert ids("{21.EX.''}AND{7.GT.1}") == [2, 3]


def test_truncated_answer_to_an_applied_upsert(qb):
    assert qb.admin("PUT", "/quickbase", json={"truncate_upsert_answers": 1}).ok
    body = {"to": qb.state.table_id, "mergeFieldId": DESIGN_ID, "data": [{"20": {"value": "des_1"}}]}
    cut = qb.session.post(f"{qb.url}/v1/records", json=body, headers=qb.headers)
    assert cut.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)
    assert [r[DESIGN_ID] for r in qb.state.records()] == ["des_1"], "applied although the answer broke"
    again = qb.session.post(f"{qb.url}/v1/records", json=body, headers=qb.headers)
    assert again.json()["metadata"]["unchangedRecordIds"] == [1], "only the next N answers are cut"


def test_the_random_truncation_fault_also_applies_the_upsert(qb):
    qb.admin("PUT", "/config", json={"fault_truncate_rate": 1.0})
    try:
        body = {"to": qb.state.table_id, "mergeFieldId": DESIGN_ID, "data": [{"20": {"value": "des_9"}}]}
        cut = qb.session.post(f"{qb.url}/v1/records", json=body, headers=qb.headers)
    finally:
        qb.admin("PUT", "/config", json={"fault_truncate_rate": 0.0})
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)
    assert [r[DESIGN_ID] for r in qb.state.records()] == ["des_9"]


def test_body_limit_is_configurable_for_413_tests(fresh):
    assert fresh.admin("PUT", "/quickbase", json={"max_body_bytes": 2_000}).ok
    small = fresh.upsert([design(n) for n in range(5)])
    large = fresh.upsert([design(n, {PROJECT_NAME: "x" * 100}) for n in range(40)])
    assert small.status_code == 200
    assert large.status_code == 413 and large.json()["message"] == "Payload Too Large"
    assert len(fresh.state.records()) == 5


def test_several_apps_and_tokens(fresh):
    other_app = fresh.admin("POST", "/quickbase/apps", json={"name": "Second installer"}).json()["id"]
    other_token = _new_token(fresh, [other_app])
    other = _token_headers(fresh, other_token)
    created = fresh.call(
        "POST", "/tables", params={"appId": other_app}, headers=other, json={"name": "Designs"}
    )
    assert created.status_code == 200
    assert fresh.call("POST", "/tables", params={"appId": other_app}, json={"name": "X"}).status_code == 403
    foreign = fresh.call("POST", "/records/query", headers=other, json={"from": fresh.state.table_id})
    assert foreign.status_code == 403
    assert fresh.admin("POST", "/quickbase/tokens", json={"appIds": ["bnosuchapp"]}).status_code == 400
    state = fresh.admin("GET", "/quickbase/state").json()
    assert [len(app["tables"]) for app in state["apps"]] == [1, 1] and len(state["users"]) == 2
    assert other_token not in json.dumps(state), "the state route shows no tokens"
    with requests.Session() as session:
        assert (
            session.get(f"{fresh.url}/v1/apps/{other_app}", headers=other).json()["name"]
            == "Second installer"
        )
