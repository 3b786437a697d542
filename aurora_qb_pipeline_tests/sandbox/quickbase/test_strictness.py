"""Request bodies are held to Quickbase's spec: camelCase keys only, closed bodies refuse unknown
keys, and (sandbox strictness, switchable) so do the bodies the spec leaves open."""

from __future__ import annotations

import pytest

from .support import DESIGN_ID, PROJECT_NAME, design

ADDITIONAL = "should NOT have additional properties"


@pytest.mark.parametrize(
    "extra, description",
    [
        ({"merge_field_id": DESIGN_ID}, ADDITIONAL),
        ({"fields_to_return": [6]}, ADDITIONAL),
        ({"mergeFieldId": DESIGN_ID, "fieldsToReturn": [6], "merge": True}, ADDITIONAL),
    ],
)
def test_snake_case_and_unknown_upsert_keys_are_refused(qb, extra, description):
    body = {"to": qb.state.table_id, "data": [{str(DESIGN_ID): {"value": "des_1"}}], **extra}
    response = qb.call("POST", "/records", json=body)
    assert response.status_code == 400
    assert response.json() == {"message": "Bad Request", "description": description}
    assert qb.state.records() == [], "nothing is written by a refused request"


@pytest.mark.parametrize(
    "body, description",
    [
        ({"sortBy": [{"field_id": 7}]}, "'sortBy[0]' should have required property 'fieldId'"),
        ({"sortBy": [{"fieldId": 7, "order": "ASC", "field_id": 7}]}, f"'sortBy[0]' {ADDITIONAL}"),
        ({"options": {"skip": 0, "top_n": 5}}, f"'options' {ADDITIONAL}"),
        ({"fields_to_return": [3]}, ADDITIONAL),
        (
            {"groupBy": [{"fieldId": 6, "grouping": "equal-values", "order": "ASC"}]},
            f"'groupBy[0]' {ADDITIONAL}",
        ),
    ],
)
def test_snake_case_and_unknown_query_keys_are_refused(qb, body, description):
    response = qb.query(**body)
    assert response.status_code == 400
    assert response.json()["description"] == description


def test_delete_records_refuses_unknown_keys(qb):
    qb.state.add_records(None, [design(1)])
    body = {"from": qb.state.table_id, "where": "{3.GT.0}", "dry_run": True}
    assert qb.call("DELETE", "/records", json=body).json()["description"] == ADDITIONAL
    assert len(qb.state.records()) == 1


@pytest.mark.parametrize(
    "body, description",
    [
        ({"label": "X", "fieldType": "text", "field_help": "x"}, ADDITIONAL),
        (
            {"label": "X", "fieldType": "text", "properties": {"primaryKey": True}},
            f"'properties' {ADDITIONAL}",
        ),
        (
            {"label": "X", "fieldType": "text", "properties": {"maxLength": "10"}},
            "'properties.maxLength' should be integer",
        ),
        (
            {
                "label": "X",
                "fieldType": "text",
                "permissions": [{"role": "Viewer", "permission_type": "View"}],
            },
            f"'permissions[0]' {ADDITIONAL}",
        ),
        ({"label": "X", "fieldType": "lookup"}, "'fieldType' should be equal to one of the allowed values"),
    ],
)
def test_closed_field_bodies_refuse_unknown_keys(qb, body, description):
    response = qb.call("POST", "/fields", params={"tableId": qb.state.table_id}, json=body)
    assert response.status_code == 400 and response.json()["description"] == description


def test_relationship_body_is_closed(fresh):
    parent = fresh.call("POST", "/tables", params={"appId": fresh.state.app_id}, json={"name": "Parents"})
    body = {"parentTableId": parent.json()["id"], "lookup_field_ids": [3]}
    response = fresh.call("POST", f"/tables/{fresh.state.table_id}/relationship", json=body)
    assert response.status_code == 400 and response.json()["description"] == ADDITIONAL


def test_the_spec_reading_of_open_bodies_can_be_switched_on(fresh):
    """With ``refuse_unknown_body_keys`` off, open bodies pass unknown keys as the spec allows and
    they have no effect: ``merge_field_id`` is not the merge field, so the upsert merges on
    Record ID# and the second copy of des_1 collides with the unique design id."""
    assert fresh.admin("PUT", "/quickbase", json={"refuse_unknown_body_keys": False}).ok
    body = {"to": fresh.state.table_id, "merge_field_id": DESIGN_ID}
    first = fresh.call("POST", "/records", json={**body, "data": [{str(DESIGN_ID): {"value": "des_1"}}]})
    assert first.status_code == 200 and first.json()["metadata"]["createdRecordIds"] == [1]
    again = fresh.call("POST", "/records", json={**body, "data": [{str(DESIGN_ID): {"value": "des_1"}}]})
    assert again.status_code == 207
    assert again.json()["metadata"]["lineErrors"] == {
        "1": [f'Duplicate value for unique field with ID "{DESIGN_ID}".']
    }
    closed = fresh.call(
        "POST",
        "/fields",
        params={"tableId": fresh.state.table_id},
        json={"label": "X", "fieldType": "text", "x": 1},
    )
    assert closed.json()["description"] == ADDITIONAL, "closed bodies stay closed"
    renamed = fresh.call("POST", "/records/query", json={"from": fresh.state.table_id, "sort_by": [{"x": 1}]})
    assert renamed.status_code == 200, "unknown query keys are ignored"


def test_sandbox_settings_route_checks_names_and_types(qb):
    settings = qb.admin("GET", "/quickbase").json()
    assert settings == {
        "page_cap": 1000,
        "max_body_bytes": 40 * 1024 * 1024,
        "refuse_unknown_body_keys": True,
        "truncate_upsert_answers": 0,
    }
    assert qb.admin("PUT", "/quickbase", json={"page_size": 5}).status_code == 400
    assert qb.admin("PUT", "/quickbase", json={"page_cap": "5"}).status_code == 400
    assert qb.admin("GET", "/quickbase").json() == settings


def test_python_helpers_take_snake_case(qb):
    """Python-side helpers are the sandbox admin's, not the API: they take snake_case."""
    field = qb.state.field_by_label(None, "Project Name")
    assert qb.state.update_field(None, field.id, field_help="The project's name").field_help
    assert qb.call("GET", f"/fields/{PROJECT_NAME}", params={"tableId": qb.state.table_id}).json()[
        "fieldHelp"
    ]
    qb.state.update_field(None, field.id, field_help="")
