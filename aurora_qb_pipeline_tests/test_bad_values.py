"""Bad input, piece by piece: the value rules, validation reasons, malformed answers at the HTTP
layer and in the Aurora client, the quarantine store, the retry classification of staging steps,
and what the export does with values that do not fit Quickbase."""

import json
import math
import subprocess
import sys

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from aurora_qb_pipeline import coerce
from aurora_qb_pipeline.clients import MalformedAnswerError, TransientApiError
from aurora_qb_pipeline.clients.http import decode_json
from aurora_qb_pipeline.defs.storage import AtomicDuckDbClient
from aurora_qb_pipeline.defs.retries import staging_failures
from aurora_qb_pipeline.mapping import MappingError, MatchingStrategy, encode_row, resolve_mapping
from aurora_qb_pipeline.schemas import Designs, ProjectAddresses
from aurora_qb_pipeline.settings import Settings
from aurora_qb_pipeline.store import HoldPolicy, connect, read_table, replace_quarantine
from aurora_qb_pipeline.transform import design_rows, project_address_row
from aurora_qb_pipeline.validation import validate_rows

from .conftest import corruptible_pipeline
from .test_transform_and_mapping import TABLE_FIELDS, _config


@pytest.mark.parametrize("value,number", [
    (7200, 7200.0), (" 7200 ", 7200.0), ("-3.5e2", -350.0), (None, None), (10**400, math.inf),
    ("2,550", coerce.INVALID), ("7200 W", coerce.INVALID), ("abc", coerce.INVALID), (True, coerce.INVALID),
    ({"a": 1}, coerce.INVALID), ([1], coerce.INVALID), ("0x1F", coerce.INVALID), ("", coerce.INVALID),
])
def test_number_rule(value, number):
    assert coerce.as_number(value) == number or coerce.as_number(value) is number


@pytest.mark.parametrize("value,finite,whole", [
    (math.nan, False, True), (math.inf, False, True), ("1e999", False, True), (12.0, True, True),
    (12.5, True, False), (2**63, True, False), ("12", True, True), ("abc", True, True),
])
def test_finite_and_whole_rules(value, finite, whole):
    assert coerce.is_finite(value) is finite and coerce.is_whole(value) is whole


def test_text_rules_repair_surrogates_and_refuse_what_is_not_text():
    assert coerce.as_text(94107) == "94107" and coerce.as_text(1.5) == "1.5"
    assert coerce.as_text(True) is coerce.INVALID and coerce.as_text(math.nan) is coerce.INVALID
    assert coerce.as_text({"a": 1}) is coerce.INVALID
    assert coerce.normalise_text("  Roof \ud800  east ") == ("Roof \ufffd east", True)
    assert coerce.normalise_text("   ") == (None, False)
    assert coerce.as_timestamp("2024-05-01 12:30:00 UTC").isoformat() == "2024-05-01T12:30:00+00:00"
    assert coerce.as_timestamp("2024-05-01T12:30:00+02:00").isoformat() == "2024-05-01T10:30:00+00:00"
    assert coerce.as_timestamp("0001-01-01T00:00:00+05:00") is coerce.INVALID
    assert coerce.as_timestamp("yesterday") is coerce.INVALID and coerce.as_timestamp(17) is coerce.INVALID
    assert len(coerce.preview("x" * 1000)) <= coerce.PREVIEW_CHARS and coerce.preview("\ud800") == "'\\ud800'"


def test_reasons_name_the_field_its_aurora_source_the_rule_and_the_value():
    rows = design_rows("p-0001", [
        {"id": "d-0001", "system_size_stc": "abc"},
        {"id": "d-0002", "system_size_stc": 7200, "name": 12, "created_at": "soon"},
        {"id": "d-0003", "system_size_stc": " 7200 ", "milestone": {"milestone": ["sold"]}},
        "not a design",
    ])
    checked = validate_rows(Designs, rows, "design_id")
    reasons = {row["design_id"]: row["reason"] for row in checked.rejected}
    assert reasons["d-0001"].startswith("system_size_stc_w (system_size_stc): must be a number")
    assert "(got 'abc')" in reasons["d-0001"]
    assert "design_created_at (created_at): must be a timestamp" in reasons["d-0002"]
    assert "milestone: must be text" in reasons["d-0003"]
    assert "designs[3]: must be an object (got 'not a design')" in reasons[None]
    assert list(checked.valid["design_name"]) == [] and len(checked.rejected) == 4
    fine = validate_rows(Designs, design_rows("p-0001", [{"id": "d-0004", "system_size_stc": "7200", "name": 12}]))
    assert fine.valid["system_size_kw"][0] == 7.2 and fine.valid["design_name"][0] == "12"


def test_a_project_with_a_list_for_a_location_and_a_surrogate_name():
    row = project_address_row("p-0001", {"name": "Zo\ud800", "location": [], "created_at": "2024-05-01 12:30:00 UTC"})
    checked = validate_rows(ProjectAddresses, [row], "project_id")
    [rejected] = checked.rejected
    assert rejected["reason"] == "location: must be an object (got [])"
    assert checked.notes == [{"project_id": "p-0001", "record_key": "p-0001", "field": "name",
                              "rule": coerce.NOTE_SURROGATES, "value": "'Zo\\ud800'"}]


def test_every_prefix_of_a_json_body_is_truncated_and_other_junk_is_malformed():
    body = json.dumps({"design": {"name": "Zoë \U0001F600 \"q\"", "arrays": [1, -2.5e10, True, None, {}],
                                  "x": "\\ud800"}}, ensure_ascii=False).encode() + b'{"n": NaN}'[:0]
    assert decode_json(body)["design"]["arrays"][1] == -2.5e10
    for cut in range(1, len(body)):
        with pytest.raises(ValueError) as err:
            decode_json(body[:cut])
        assert err.value.truncated, body[:cut]
    for junk in [b"<html>502</html>", b"Internal error", b'{"a": 1} trailing', b"[1, 2,]", b"[" * 50_000]:
        with pytest.raises(ValueError) as err:
            decode_json(junk)
        assert not err.value.truncated, junk
    assert decode_json(b'{"a": NaN, "b": "\xff"}') == {"a": pytest.approx(math.nan, nan_ok=True), "b": "\udcff"}


def test_the_aurora_client_sets_malformed_answers_aside_and_retries_cut_ones(tmp_path):
    with dg.DagsterInstance.ephemeral() as instance, corruptible_pipeline(tmp_path, instance, projects=4) as pipeline:
        tenant, overrides = pipeline.sandbox.aurora.primary, pipeline.overrides
        a, b, c, d = list(tenant.projects)[:4]
        design = tenant.project_design_ids[a][0]
        overrides.replace(f"/projects/{a}", b"<html>Bad gateway</html>", "text/html")
        overrides.rewrite(f"/projects/{b}", lambda answer: [answer["project"]])
        overrides.rewrite(f"/projects/{c}/designs", lambda answer: {"design_list": answer["designs"]})
        overrides.rewrite(f"/designs/{design}/summary", lambda answer: {"design": None})
        overrides.replace(f"/projects/{d}", b'{"project": {"id": "' + d.encode())
        client = pipeline.aurora(max_attempts=3).client
        try:
            expected = [
                (lambda: client.get_project(a), "answer is not JSON"),
                (lambda: client.get_project(b), "the answer is a list, not an object holding 'project'"),
                (lambda: client.list_designs(c), "the answer has no 'designs' (keys: 'design_list')"),
                (lambda: client.get_design_summary(design), "'design' is null, not an object"),
            ]
            for call, message in expected:
                pipeline.sandbox.aurora.log.clear()
                with pytest.raises(MalformedAnswerError, match=message.replace("(", r"\(").replace(")", r"\)")):
                    call()
                assert len(pipeline.sandbox.aurora.log.entries()) == 1  # asked once: never retried
            pipeline.sandbox.aurora.log.clear()
            with pytest.raises(TransientApiError, match="not complete JSON"):
                client.get_project(d)
            assert len(pipeline.sandbox.aurora.log.entries()) == 3  # a cut answer is retried
        finally:
            client.close()


def test_the_quarantine_stores_keys_as_null_and_whatever_the_row_holds(tmp_path):
    resource = DuckDBResource(database=str(tmp_path / "q.duckdb"))
    rejected = [
        {"project_id": "p-0001", "reason": "fetch failed: Aurora GET ... 'designs' is null"},  # no design id
        {"project_id": "p-0001", "design_id": "d-\ud800", "design_name": "\udcff" * 3, "size": math.nan,
         "deep": json.loads("[" * 500 + "]" * 500), "big": 10**50, "reason": "x: must be text (got '\\ud800')",
         "problems": [{"field": "x", "rule": "text", "value": "'\\ud800'"}]},
    ]
    notes = [{"project_id": "p-0001", "record_key": None, "field": "name", "rule": "repaired", "value": "'a'"}]
    replace_quarantine(resource, "designs", ["p-0001"], rejected, "design_id", "run-1", notes)
    stored = read_table(resource, "select record_key, problems, record_json from ops.quarantine order by reason")
    assert stored["record_key"].isna()[0] and stored["record_key"][1] == "d-\ufffd"  # NULL, never 'nan'
    assert json.loads(stored["problems"][1])[0]["field"] == "x"
    assert json.loads(stored["record_json"][1])["size"] == "nan"
    assert read_table(resource, "select count(*) n from ops.staging_notes")["n"][0] == 1
    replace_quarantine(resource, "designs", ["p-0001"], [], "design_id", "run-2")  # a clean rerun empties both
    assert read_table(resource, "select count(*) n from ops.staging_notes")["n"][0] == 0


def test_a_failing_block_releases_the_duckdb_file_at_once(tmp_path):
    """Another process can take the file while the error (and its traceback) is still alive."""
    path = str(tmp_path / "lock.duckdb")
    other_process = [sys.executable, "-c", f"import duckdb; duckdb.connect({path!r}).close()"]
    with pytest.raises((UnicodeEncodeError, duckdb.Error)) as caught:  # the "cannot encode str as UTF-8"
        with connect(DuckDBResource(database=path)) as conn:
            conn.execute("create table t (x varchar)")
            conn.execute("insert into t values (?)", ["\ud800"])
    assert caught.value and subprocess.run(other_process, capture_output=True).returncode == 0

    class Context:
        resource_config = {"database": path, "connection_config": {}}

    with pytest.raises(RuntimeError) as caught:
        with AtomicDuckDbClient.connect(Context(), None) as conn:
            raise RuntimeError("the IO manager failed mid-write")
    assert caught.value and subprocess.run(other_process, capture_output=True).returncode == 0


def test_staging_retries_only_transient_errors():
    def fail_with(error):
        with staging_failures():
            raise error

    for transient in (TransientApiError("Aurora", "GET", "/p", 503, "down"), duckdb.IOException("lock"), OSError()):
        with pytest.raises(type(transient)):
            fail_with(transient)
    for deterministic, text in ((KeyError("design"), "KeyError: 'design' (not retried"),
                                (MappingError(["no such field"]), "Field mapping does not fit")):
        with pytest.raises(dg.Failure) as failure:
            fail_with(deterministic)
        assert not failure.value.allow_retries and text in failure.value.description


def test_export_refuses_non_finite_numbers_and_cuts_text_to_the_field_limit():
    fields = [dict(f, properties={"maxLength": 10}) if f["id"] in (6, 20) else f for f in TABLE_FIELDS]
    mapping = resolve_mapping(_config(), fields)
    row = {"design_id": "d-0001-long-id", "project_name": "A very long project name", "system_size_kw": math.inf,
           "module_model": "A 400"}
    encoded = encode_row(mapping, row)
    assert encoded.record[6] == "A very lon" and encoded.record[20] == "d-0001-long-id"  # the merge key is never cut
    assert encoded.notes == ["'Project Name' cut from 24 to 10 characters (the field's limit)"]
    assert encoded.problems == ["'System Size (kW)' would get inf from system_size_kw: not a finite number"]
    assert 7 not in encoded.record
    replace = encode_row(resolve_mapping(_config(), fields, MatchingStrategy.REPLACE), dict(row, system_size_kw=7.5))
    assert replace.record[7] == 7.5 and not replace.problems


def test_hold_policy_setting():
    assert Settings().hold_policy is HoldPolicy.DESIGN
    assert Settings.from_env({"AURORA_QB_HOLD_POLICY": "project"}).hold_policy is HoldPolicy.PROJECT
    with pytest.raises(ValueError, match="hold_policy|AURORA_QB_HOLD_POLICY"):
        Settings.from_env({"AURORA_QB_HOLD_POLICY": "everything"})
