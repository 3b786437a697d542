"""File attachment fields: each write adds a version, queries show ``{url, versions}``,
downloadFile answers the content base64-encoded, deleteFile removes one version."""

from __future__ import annotations

import base64

import pytest

from .support import DESIGN_ID, design


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def attachments(fresh):
    response = fresh.call(
        "POST",
        "/fields",
        params={"tableId": fresh.state.table_id},
        json={"label": "Screenshot", "fieldType": "file"},
    )
    assert response.status_code == 200 and response.json()["properties"]["maxVersions"] == 3
    return fresh, response.json()["id"]


def _file_cell(qb, fid: int) -> dict:
    return qb.query(select=[fid], where="{3.EX.1}").json()["data"][0][str(fid)]["value"]


def test_each_write_adds_a_version_and_queries_show_url_and_versions(attachments):
    qb, fid = attachments
    assert qb.upsert([design(1)]).ok
    assert _file_cell(qb, fid) == {"url": "", "versions": []}
    first = qb.upsert([design(1, {fid: {"fileName": "roof.png", "data": b64(b"\x89PNG one")}})])
    assert first.json()["metadata"]["updatedRecordIds"] == [1]
    again = qb.upsert([design(1, {fid: {"fileName": "roof-2.png", "data": b64(b"\x89PNG two")}})])
    assert again.json()["metadata"]["updatedRecordIds"] == [1], "a file write always changes the record"
    cell = _file_cell(qb, fid)
    assert cell["url"] == f"/files/{qb.state.table_id}/1/{fid}/2"
    assert [(v["versionNumber"], v["fileName"]) for v in cell["versions"]] == [
        (1, "roof.png"),
        (2, "roof-2.png"),
    ]
    assert cell["versions"][0]["creator"]["email"] and cell["versions"][0]["uploaded"].endswith("Z")
    assert (
        qb.query(select=[DESIGN_ID], where=f"{{{fid}.CT.'roof-2'}}").json()["metadata"]["totalRecords"] == 1
    )
    assert qb.state.file_content(None, 1, fid, 1) == b"\x89PNG one"


def test_download_answers_base64_with_the_file_name(attachments):
    qb, fid = attachments
    content = bytes(range(256))
    qb.upsert([design(1, {fid: {"fileName": "site survey.pdf", "data": b64(content)}})])
    download = qb.call("GET", f"/files/{qb.state.table_id}/1/{fid}/1")
    assert download.status_code == 200
    assert base64.b64decode(download.text) == content
    assert download.headers["content-disposition"] == 'attachment; filename="site survey.pdf"'
    missing = [
        f"/files/{qb.state.table_id}/1/{fid}/2",
        f"/files/{qb.state.table_id}/9/{fid}/1",
        "/files/bnosuchtab/1/6/1",
    ]
    assert [qb.call("GET", path).status_code for path in missing] == [404, 404, 404]
    assert qb.call("GET", f"/files/{qb.state.table_id}/1/{DESIGN_ID}/1").status_code == 400
    qb.upsert([design(1, {fid: {"fileName": "Dach ☀.pdf", "data": b64(b"x")}})])
    unicode_name = qb.call("GET", f"/files/{qb.state.table_id}/1/{fid}/2")
    assert unicode_name.headers["content-disposition"] == "attachment; filename*=UTF-8''Dach%20%E2%98%80.pdf"


def test_delete_file_removes_one_version(attachments):
    qb, fid = attachments
    qb.upsert([design(1)])
    before = qb.query(select=[2]).json()["data"][0]["2"]["value"]
    for n in (1, 2):
        qb.upsert([design(1, {fid: {"fileName": f"v{n}.txt", "data": b64(b"v%d" % n)}})])
    deleted = qb.call("DELETE", f"/files/{qb.state.table_id}/1/{fid}/1")
    assert deleted.status_code == 200
    assert (deleted.json()["versionNumber"], deleted.json()["fileName"]) == (1, "v1.txt")
    cell = _file_cell(qb, fid)
    assert [v["versionNumber"] for v in cell["versions"]] == [2] and cell["url"].endswith("/2")
    assert qb.call("DELETE", f"/files/{qb.state.table_id}/1/{fid}/1").status_code == 404
    assert qb.query(select=[2]).json()["data"][0]["2"]["value"] > before


def test_versions_beyond_max_versions_drop_the_oldest_and_null_clears(attachments):
    qb, fid = attachments
    for n in range(1, 5):
        qb.upsert([design(1, {fid: {"fileName": f"v{n}.txt", "data": b64(b"x")}})])
    assert [v["versionNumber"] for v in _file_cell(qb, fid)["versions"]] == [2, 3, 4]
    qb.upsert([design(1, {fid: None})])
    assert _file_cell(qb, fid) == {"url": "", "versions": []}


@pytest.mark.parametrize(
    "value",
    [
        {"fileName": "x.txt", "data": "not base64!"},
        {"fileName": "", "data": "eA=="},
        {"data": "eA=="},
        {"fileName": "x.txt", "data": "eA==", "contentType": "text/plain"},
        "eA==",
    ],
)
def test_malformed_file_values_are_line_errors(attachments, value):
    qb, fid = attachments
    response = qb.upsert([design(1, {fid: value})])
    assert response.status_code == 207
    assert response.json()["metadata"]["lineErrors"] == {
        "1": [f'Incompatible value for field with ID "{fid}".']
    }
