"""Behaviour of the Quickbase sandbox's runQuery, deleteRecords, fields, tables and apps (answers
validated against the vendored spec, see ``support``)."""

from __future__ import annotations

import pytest

from aurora_qb_pipeline.sandbox.quickbase.query import QueryError, compile_where

from .support import (
    CHOICES,
    DESIGN_ID,
    PROJECT_NAME,
    design,
)

# -- query ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where, expected",
    [
        ("{20.EX.'des_2'}", ["des_2"]),
        ("{'20'.EX.'des_2'}", ["des_2"]),
        ("{7.GT.3}", ["des_4", "des_5"]),
        ("{7.GTE.3}AND{7.LT.5}", ["des_3", "des_4"]),
        ("{7.EX.1}OR{7.EX.5}", ["des_1", "des_5"]),
        ("({7.EX.1}OR{7.EX.5})AND{6.CT.'5'}", ["des_5"]),
        ("{7.EX.1} OR ({7.GT.2} AND {7.LT.4})", ["des_1", "des_3"]),
        ("{6.SW.'project'}AND{20.XEX.'des_1'}", ["des_2", "des_3", "des_4", "des_5"]),
        ("{6.XCT.'project'}", []),
        ("{14.EX.''}", ["des_1", "des_2", "des_3", "des_4", "des_5"]),
        ("{14.EX.}", ["des_1", "des_2", "des_3", "des_4", "des_5"]),
        ("{20.ex.'des_2'}", []),
        ("{3.GT.0}", ["des_1", "des_2", "des_3", "des_4", "des_5"]),
        ([2, 4], ["des_2", "des_4"]),
    ],
)
def test_where_selects_records(qb, where, expected):
    qb.state.add_records(None, [design(n) for n in range(1, 6)])
    response = qb.query(select=[20], where=where)
    assert response.status_code == 200, response.text
    assert [row["20"]["value"] for row in response.json()["data"]] == expected


def test_query_language_quotes_and_escapes():
    types = {3: "recordid", 6: "text"}
    matches = lambda where, value: compile_where(where, types)({3: 1, 6: value})  # noqa: E731
    assert matches("{6.EX.'O''Brien'}", "O'Brien")
    assert matches(r"{6.EX.'O\'Brien'}", "O'Brien")
    assert matches("{6.EX.'a}b'}", "a}b")
    assert matches("{6.TV.Exact}", "Exact") and not matches("{6.TV.exact}", "Exact")


@pytest.mark.parametrize(
    "where", ["{20.EX.'x'", "{20.EX.'x'} and {7.GT.1}", "20.EX.x", "{99.EX.1}", "{7.GT.abc}"]
)
def test_invalid_where_is_a_bad_request(qb, where):
    response = qb.query(where=where)
    assert response.status_code == 400 and response.json()["message"] == "Bad Request"
    with pytest.raises(QueryError):
        compile_where(where, {fid: f.field_type for fid, f in qb.state.table().fields.items()})


def test_query_pages_are_capped_and_follow_skip(qb):
    qb.state.add_records(None, [design(n) for n in range(1, 24)])
    qb.state.page_cap = 10
    page = qb.query(select=[3, 20], options={"skip": 0, "top": 15}).json()
    assert page["metadata"] == {"totalRecords": 23, "numRecords": 10, "numFields": 2, "skip": 0, "top": 15}
    assert page["fields"] == [
        {"id": 3, "label": "Record ID#", "type": "recordid"},
        {"id": 20, "label": "Aurora Design ID", "type": "text"},
    ]
    seen, skip = [], 0
    while skip < 23:
        metadata = (answer := qb.query(select=[3], options={"skip": skip, "top": 0}).json())["metadata"]
        assert metadata["numRecords"] == len(answer["data"]) <= 10 and metadata["skip"] == skip
        seen += [row["3"]["value"] for row in answer["data"]]
        skip += metadata["numRecords"]
    assert seen == list(range(1, 24))
    assert "top" not in qb.query(select=[3], options={"skip": 20}).json()["metadata"]
    assert qb.query(select=[3], options={"skip": 0, "top": 4}).json()["metadata"]["numRecords"] == 4


def test_query_sorts_and_defaults_to_the_default_columns(qb):
    qb.state.add_records(None, [design(2), design(3), design(1)])
    rows = qb.query(select=[20], sortBy=[{"fieldId": 7, "order": "DESC"}]).json()["data"]
    assert [r["20"]["value"] for r in rows] == ["des_3", "des_2", "des_1"]
    answer = qb.query(sortBy=False).json()
    default_columns = [f["id"] for f in answer["fields"]]
    assert (
        3 in default_columns
        and 1 not in default_columns
        and answer["metadata"]["numFields"] == len(default_columns)
    )


# -- delete -----------------------------------------------------------------------------------


def test_delete_records_by_query_and_by_ids(qb):
    qb.state.add_records(None, [design(n) for n in range(1, 6)])
    t = qb.state.table_id
    assert qb.call("DELETE", "/records", json={"from": t, "where": "{7.LTE.2}"}).json() == {
        "numberDeleted": 2
    }
    assert qb.call("DELETE", "/records", json={"from": t, "where": [3, 99]}).json() == {"numberDeleted": 1}
    assert qb.call("DELETE", "/records", json={"from": t, "where": "{3.GT.100}"}).json() == {
        "numberDeleted": 0
    }
    assert [r[DESIGN_ID] for r in qb.state.records()] == ["des_4", "des_5"]
    assert qb.upsert([design(1)]).json()["metadata"]["createdRecordIds"] == [6], "ids are never reused"
    missing_where = qb.call("DELETE", "/records", json={"from": t})
    assert missing_where.json()["description"] == "should have required property 'where'"


# -- fields -----------------------------------------------------------------------------------


def test_get_fields_describes_builtins_and_user_fields(qb):
    params = {"tableId": qb.state.table_id}
    fields = {f["id"]: f for f in qb.call("GET", "/fields", params=params).json()}
    assert fields[3]["fieldType"] == "recordid" and fields[3]["unique"] and fields[3]["required"]
    assert [fields[fid]["fieldType"] for fid in (1, 2, 4, 5)] == ["timestamp", "timestamp", "user", "user"]
    assert 11 not in fields and fields[24]["label"] == "Array Count"
    assert all(f["mode"] == "" and f["properties"]["formula"] == "" for f in fields.values())
    assert all("permissions" not in f for f in fields.values())
    assert (
        fields[9]["properties"]["choices"] == CHOICES and fields[9]["properties"]["allowNewChoices"] is False
    )
    assert fields[20]["unique"] and fields[20]["required"]
    with_perms = qb.call("GET", "/fields/20", params={**params, "includeFieldPerms": "true"}).json()
    assert with_perms["permissions"] and with_perms["label"] == "Aurora Design ID"
    assert qb.state.field_by_label(None, "Aurora Design ID").id == 20
    assert qb.call("GET", "/fields/11", params=params).status_code == 404
    assert qb.call("GET", "/fields").json()["description"] == "should have required property 'tableId'"


def test_create_and_update_field_constraints(qb):
    params = {"tableId": qb.state.table_id}
    refused = qb.call(
        "POST", "/fields", params=params, json={"label": "Ext", "fieldType": "text", "unique": True}
    )
    assert (
        refused.status_code == 400
        and refused.json()["description"] == "should NOT have additional properties"
    )
    assert qb.call("POST", "/fields", params=params, json={"label": "Ext"}).json()["description"] == (
        "should have required property 'fieldType'"
    )
    created = qb.call(
        "POST", "/fields", params=params, json={"label": "External Ref", "fieldType": "text"}
    ).json()
    fid = created["id"]
    assert fid > 24 and not created["unique"] and created["properties"]["formula"] == ""
    qb.upsert([design(1, {fid: "dup"}), design(2, {fid: "dup"}), design(3)])
    duplicates = qb.call("POST", f"/fields/{fid}", params=params, json={"unique": True})
    assert duplicates.status_code == 400 and "duplicate" in duplicates.json()["description"]
    empty = qb.call("POST", f"/fields/{fid}", params=params, json={"required": True})
    assert empty.status_code == 400 and "no value" in empty.json()["description"]
    qb.upsert([design(2, {fid: "other"}), design(3, {fid: "third"})])
    made_unique = qb.call("POST", f"/fields/{fid}", params=params, json={"unique": True, "required": True})
    assert made_unique.status_code == 200 and made_unique.json()["unique"] and made_unique.json()["required"]
    merged = qb.upsert([{fid: "other", PROJECT_NAME: "via new key"}], merge=fid)
    assert merged.json()["metadata"]["updatedRecordIds"] == [2]
    deleted = qb.call("DELETE", "/fields", params=params, json={"fieldIds": [fid, 3, 404]}).json()
    assert deleted == {
        "deletedFieldIds": [fid],
        "errors": ["Error found with fid: 3", "Error found with fid: 404"],
    }
    assert all(fid not in record for record in qb.state.records())


# -- tables and apps ---------------------------------------------------------------------------


def test_tables_and_apps(qb):
    t, a = qb.state.table_id, qb.state.app_id
    qb.upsert([design(1), design(2)])
    table = qb.call("GET", f"/tables/{t}", params={"appId": a}).json()
    assert (table["id"], table["name"], table["keyFieldId"], table["nextRecordId"]) == (
        t,
        "Aurora Designs",
        3,
        3,
    )
    assert table["nextFieldId"] > 24 and table["alias"] == "_DBID_AURORA_DESIGNS"
    assert qb.call("GET", f"/tables/{t}").json()["description"] == "should have required property 'appId'"
    assert [x["id"] for x in qb.call("GET", "/tables", params={"appId": a}).json()] == [t]
    app = qb.call("GET", f"/apps/{a}").json()
    assert app["id"] == a and app["name"]
    assert qb.call("GET", "/apps/bnotanapp").status_code == 404


