"""createTable, updateTable, getTableReports, relationships with lookup and summary fields,
checkbox and formula-URL fields (answers validated against the vendored spec)."""

from __future__ import annotations

from .support import DESIGN_ID, PROJECT_NAME, SYSTEM_SIZE, design


def _create_table(qb, name: str, **extra) -> dict:
    response = qb.call("POST", "/tables", params={"appId": qb.state.app_id}, json={"name": name, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def _field(qb, table_id: str, label: str, field_type: str, **extra) -> int:
    body = {"label": label, "fieldType": field_type, **extra}
    response = qb.call("POST", "/fields", params={"tableId": table_id}, json=body)
    assert response.status_code == 200, response.text
    return response.json()["id"]


def _upsert(qb, table_id: str, records: list[dict], **extra):
    data = [{str(k): {"value": v} for k, v in r.items()} for r in records]
    return qb.call("POST", "/records", json={"to": table_id, "data": data, **extra})


def _rows(qb, table_id: str, select: list[int], **body) -> list[dict]:
    answer = qb.call("POST", "/records/query", json={"from": table_id, "select": select, **body})
    assert answer.status_code == 200, answer.text
    return [{int(k): v["value"] for k, v in row.items()} for row in answer.json()["data"]]


def test_every_operation_added_for_the_coming_issues_answers_in_the_spec_shape(fresh):
    """One successful call of each, validated against the vendored spec by ``call``."""
    a, t = fresh.state.app_id, fresh.state.table_id
    file_field = _field(fresh, t, "Agreement", "file")
    fresh.upsert([design(1, {file_field: {"fileName": "a.pdf", "data": "JVBERi0="}})])
    parent = _create_table(fresh, "Opportunities")["id"]  # createTable
    token = fresh.admin("POST", "/quickbase/tokens", json={"appIds": [a]}).json()["token"]
    other = {"QB-Realm-Hostname": fresh.state.realm, "Authorization": f"QB-USER-TOKEN {token}"}
    spare = fresh.admin("POST", "/quickbase/tokens", json={"appIds": [a]}).json()["token"]
    calls = [
        ("POST", f"/tables/{parent}", {"params": {"appId": a}, "json": {"name": "Deals"}}),
        ("POST", f"/tables/{t}/relationship", {"json": {"parentTableId": parent, "lookupFieldIds": [3]}}),
        ("GET", f"/tables/{t}/relationships", {"params": {"skip": 0}}),
        ("GET", "/reports", {"params": {"tableId": t}}),
        ("GET", f"/files/{t}/1/{file_field}/1", {}),
        ("DELETE", f"/files/{t}/1/{file_field}/1", {}),
        ("POST", "/usertoken/deactivate", {"headers": other}),
        ("DELETE", "/usertoken", {"headers": {**other, "Authorization": f"QB-USER-TOKEN {spare}"}}),
    ]
    for method, path, kwargs in calls:
        response = fresh.call(method, path, **kwargs)
        assert response.status_code == 200, (path, response.text)


def test_create_and_update_table(fresh):
    created = _create_table(
        fresh, "Opportunities", singleRecordName="Opportunity", pluralRecordName="Opportunities"
    )
    assert created["keyFieldId"] == 3 and created["nextRecordId"] == 1 and created["nextFieldId"] == 6
    assert (created["singleRecordName"], created["alias"]) == ("Opportunity", "_DBID_OPPORTUNITIES")
    defaults = _create_table(fresh, "Line Items")
    assert (defaults["singleRecordName"], defaults["pluralRecordName"], defaults["description"]) == (
        "Record",
        "Records",
        "",
    )
    fields = fresh.call("GET", "/fields", params={"tableId": created["id"]}).json()
    assert [f["id"] for f in fields] == [1, 2, 3, 4, 5]
    listed = fresh.call("GET", "/tables", params={"appId": fresh.state.app_id}).json()
    assert [t["id"] for t in listed] == [fresh.state.table_id, created["id"], defaults["id"]]
    params = {"appId": fresh.state.app_id}
    updated = fresh.call(
        "POST", f"/tables/{created['id']}", params=params, json={"description": "From the CRM"}
    )
    assert updated.json()["description"] == "From the CRM" and updated.json()["name"] == "Opportunities"
    assert updated.json()["updated"] > created["updated"]
    refused = [
        fresh.call("POST", "/tables", params=params, json={"name": ""}),
        fresh.call("POST", "/tables", params=params, json={"description": "no name"}),
        fresh.call("POST", "/tables", json={"name": "No app"}),
        fresh.call("POST", "/tables", params={"appId": "bnosuchapp"}, json={"name": "X"}),
    ]
    assert [r.status_code for r in refused] == [400, 400, 400, 404]
    assert refused[0].json()["description"] == "'name' should NOT be shorter than 1 characters"
    assert refused[2].json()["description"] == "should have required property 'appId'"


def test_table_reports_list_the_default_report(qb):
    reports = qb.call("GET", "/reports", params={"tableId": qb.state.table_id})
    assert reports.status_code == 200
    (report,) = reports.json()
    assert (report["id"], report["type"], report["query"]["tableId"]) == ("1", "table", qb.state.table_id)
    assert qb.call("GET", "/reports").json()["description"] == "should have required property 'tableId'"
    assert qb.call("GET", "/reports", params={"tableId": "bnosuchtab"}).status_code == 404


def test_relationship_adds_reference_lookup_and_summary_fields(fresh):
    designs = fresh.state.table_id
    opportunities = _create_table(fresh, "Opportunities", singleRecordName="Opportunity")["id"]
    customer = _field(fresh, opportunities, "Customer Name", "text")
    body = {
        "parentTableId": opportunities,
        "foreignKeyField": {"label": "Opportunity"},
        "lookupFieldIds": [customer],
        "summaryFields": [
            {"accumulationType": "COUNT"},
            {"summaryFid": SYSTEM_SIZE, "label": "Total kW", "accumulationType": "SUM"},
            {"summaryFid": SYSTEM_SIZE, "label": "Large", "accumulationType": "COUNT", "where": "{7.GT.5}"},
        ],
    }
    body["summaryFields"][2]["summaryFid"] = 0
    created = fresh.call("POST", f"/tables/{designs}/relationship", json=body)
    assert created.status_code == 200, created.text
    relationship = created.json()
    reference = relationship["id"]
    assert relationship["foreignKeyField"] == {"id": reference, "label": "Opportunity", "type": "numeric"}
    assert relationship["lookupFields"] == [
        {"id": reference + 1, "label": "Opportunity - Customer Name", "type": "text"}
    ]
    assert [f["label"] for f in relationship["summaryFields"]] == ["# of Designs", "Total kW", "Large"]
    assert (relationship["parentTableId"], relationship["childTableId"], relationship["isCrossApp"]) == (
        opportunities,
        designs,
        False,
    )
    listed = fresh.call("GET", f"/tables/{designs}/relationships").json()
    assert listed["relationships"] == [relationship]
    assert listed["metadata"] == {"skip": 0, "totalRelationships": 1, "numRelationships": 1}
    assert fresh.call("GET", f"/tables/{opportunities}/relationships").json()["relationships"] == []
    fk = fresh.call("GET", f"/fields/{reference}", params={"tableId": designs}).json()
    lookup = fresh.call("GET", f"/fields/{reference + 1}", params={"tableId": designs}).json()
    assert fk["properties"]["foreignKey"] is True and fk["mode"] == ""
    assert lookup["mode"] == "lookup" and lookup["properties"]["lookupReferenceFieldId"] == reference

    _upsert(fresh, opportunities, [{customer: "Ada Lovelace"}, {customer: "Grace Hopper"}])
    fresh.upsert([design(1, {reference: 1}), design(8, {reference: 1}), design(3, {reference: 2}), design(4)])
    rows = _rows(fresh, designs, [DESIGN_ID, reference, reference + 1], sortBy=[{"fieldId": 3}])
    assert [(r[DESIGN_ID], r[reference], r[reference + 1]) for r in rows] == [
        ("des_1", 1, "Ada Lovelace"),
        ("des_8", 1, "Ada Lovelace"),
        ("des_3", 2, "Grace Hopper"),
        ("des_4", None, ""),
    ]
    by_lookup = _rows(fresh, designs, [DESIGN_ID], where=f"{{{reference + 1}.CT.'grace'}}")
    assert by_lookup == [{DESIGN_ID: "des_3"}]
    count, total, large = (f["id"] for f in relationship["summaryFields"])
    parents = _rows(fresh, opportunities, [customer, count, total, large], sortBy=[{"fieldId": 3}])
    assert parents == [
        {customer: "Ada Lovelace", count: 2, total: 9, large: 1},
        {customer: "Grace Hopper", count: 1, total: 3, large: 0},
    ]
    refused = _upsert(fresh, designs, [{DESIGN_ID: "des_1", reference + 1: "x"}], mergeFieldId=DESIGN_ID)
    assert refused.json()["metadata"]["lineErrors"]["1"] == [
        f'Field with ID "{reference + 1}" is read-only and cannot be written.'
    ]


def test_relationship_validation(fresh):
    designs, other_app = fresh.state.table_id, fresh.state.add_app("Elsewhere")
    foreign = fresh.state.add_table(other_app.id, "Foreign")
    fresh.state.users[fresh.state.token].app_ids.add(other_app.id)
    parent = _create_table(fresh, "Parents")["id"]
    cases = [
        ({"parentTableId": foreign.id}, 400),
        ({"parentTableId": parent, "lookupFieldIds": [99]}, 400),
        ({"parentTableId": parent, "summaryFields": [{"accumulationType": "STD-DEV", "summaryFid": 7}]}, 400),
        ({"parentTableId": parent, "summaryFields": [{"accumulationType": "SUM"}]}, 400),
        ({"parentTableId": parent, "summaryFields": [{"accumulationType": "MEDIAN"}]}, 400),
        ({"parentTableId": "bnosuchtab"}, 404),
        ({}, 400),
    ]
    for body, status in cases:
        response = fresh.call("POST", f"/tables/{designs}/relationship", json=body)
        assert response.status_code == status, (body, response.text)
    assert fresh.call("GET", f"/tables/{designs}/relationships").json()["relationships"] == []


def test_checkbox_fields_store_booleans_and_read_unset_as_false(fresh):
    ready = _field(fresh, fresh.state.table_id, "Ready for Aurora", "checkbox")
    fresh.upsert([design(1, {ready: True}), design(2, {ready: False}), design(3)])
    assert fresh.upsert([design(4, {ready: "maybe"})]).status_code == 207
    rows = _rows(fresh, fresh.state.table_id, [DESIGN_ID, ready], sortBy=[{"fieldId": 3}])
    assert [r[ready] for r in rows] == [True, False, False]
    assert _rows(fresh, fresh.state.table_id, [DESIGN_ID], where=f"{{{ready}.EX.true}}") == [
        {DESIGN_ID: "des_1"}
    ]
    unready = _rows(fresh, fresh.state.table_id, [DESIGN_ID], where=f"{{{ready}.EX.false}}")
    assert unready == [{DESIGN_ID: "des_2"}, {DESIGN_ID: "des_3"}]


def test_formula_url_fields_are_computed_and_read_only(fresh):
    table = fresh.state.table_id
    formula = '"https://hooks.example/create?rid=" & ToText([Record ID#]) & "&p=" & URLEncode([Project Name])'
    button = _field(fresh, table, "Create in Aurora", "url", properties={"formula": formula})
    root = _field(fresh, table, "Open", "url", properties={"formula": 'URLRoot() & "db/" & Dbid()'})
    described = fresh.call("GET", f"/fields/{button}", params={"tableId": table}).json()
    assert described["mode"] == "formula" and described["properties"]["formula"] == formula
    fresh.upsert([design(1, {PROJECT_NAME: "O'Brien & Sons"})])
    (row,) = _rows(fresh, table, [button, root])
    assert row[button] == "https://hooks.example/create?rid=1&p=O%27Brien%20%26%20Sons"
    assert row[root] == f"https://{fresh.state.realm}/db/{table}"
    assert _rows(fresh, table, [3], where=f"{{{button}.CT.'rid=1'}}") == [{3: 1}]
    refused = fresh.upsert([design(1, {button: "https://elsewhere"})])
    assert refused.status_code == 207
    bad = [
        {"label": "Bad", "fieldType": "url", "properties": {"formula": '"a" & [No Such Field]'}},
        {"label": "Bad", "fieldType": "url", "properties": {"formula": '"unterminated'}},
        {"label": "Bad", "fieldType": "text", "properties": {"formula": "If([7] > 1, 'a', 'b')"}},
        {"label": "Bad", "fieldType": "file", "properties": {"formula": '"x"'}},
    ]
    for body in bad:
        response = fresh.call("POST", "/fields", params={"tableId": table}, json=body)
        assert response.status_code == 400, body
    numeric = _field(
        fresh, table, "kW per module", "numeric", properties={"formula": "[System Size (kW)] / 2"}
    )
    assert _rows(fresh, table, [numeric]) == [{numeric: 0.5}]
    changed = fresh.call(
        "POST",
        f"/fields/{numeric}",
        params={"tableId": table},
        json={"properties": {"formula": "[System Size (kW)] * 2"}},
    )
    assert changed.status_code == 200 and _rows(fresh, table, [numeric]) == [{numeric: 2}]
    not_formula = fresh.call(
        "POST", f"/fields/{PROJECT_NAME}", params={"tableId": table}, json={"properties": {"formula": '"x"'}}
    )
    assert not_formula.status_code == 400
