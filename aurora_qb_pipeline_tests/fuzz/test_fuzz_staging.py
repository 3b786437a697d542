"""Property tests of the staging path without servers: Aurora payloads built from the documented
shapes, then mutated, go through the same transform and validation the staging assets use.

Properties: nothing raises; every input row ends valid or quarantined with a reason that names
a field, the value and the rule; valid rows are clean (finite numbers, valid UTF-8 text, the
schema holds); the quarantine and notes store in DuckDB whatever they hold; and clean payloads
stage without a single quarantine row. Example counts come from the Hypothesis profile
(``ci`` by default, ``fuzz`` for a long campaign: see README).
"""

import json
import math

import pandas as pd
import pytest
from dagster_duckdb import DuckDBResource
from hypothesis import given, settings
from hypothesis import strategies as st

from aurora_qb_pipeline.coerce import as_number, as_text
from aurora_qb_pipeline.schemas import Designs, LatestProposals, ProjectAddresses
from aurora_qb_pipeline.store import read_table, replace_quarantine
from aurora_qb_pipeline.transform import design_rows, project_address_row, proposal_row
from aurora_qb_pipeline.validation import Validated, summaries_and_arrays, validate_rows

from . import strategies as aurora


def examples(share: float) -> settings:
    """A share of the loaded Hypothesis profile's example count (at least 3)."""
    return settings(max_examples=max(3, int(settings().max_examples * share)))


@st.composite
def project_answers(draw, most: int):
    """(project, design list, {design id: summary}, {design id: proposal or None})."""
    base = draw(st.lists(aurora.design, max_size=4, unique_by=lambda d: d["id"]))
    summaries = {d["id"]: draw(aurora.mutated(aurora.summary, most)) for d in base}
    proposals = {d["id"]: draw(st.none() | aurora.mutated(aurora.proposal, most)) for d in base}
    designs = draw(aurora.mutated(st.just(base), most))
    return draw(aurora.mutated(aurora.project, most)), designs, summaries, proposals


def range_batches(most: int):
    """The answers for a range of 1-5 projects, as one staging run sees them: {project id: answers}."""
    return st.lists(project_answers(most), min_size=1, max_size=5).map(
        lambda answers: {f"p-fuzz-{i:04d}": a for i, a in enumerate(answers)})


def stage_batch(batch: dict) -> dict[str, Validated]:
    """What the staging assets do with these answers, without the fetching."""
    addresses = validate_rows(ProjectAddresses, [project_address_row(pid, a[0]) for pid, a in batch.items()],
                              "project_id")
    staged_designs = validate_rows(Designs, [row for pid, a in batch.items() for row in design_rows(pid, a[1])],
                                   "design_id")
    staged = list(zip(staged_designs.valid["project_id"], staged_designs.valid["design_id"]))
    found = [((pid, d), batch[pid][2][d]) for pid, d in staged if d in batch[pid][2]]
    design_summaries, design_arrays = summaries_and_arrays(found)
    latest = validate_rows(LatestProposals, [proposal_row(pid, d, batch[pid][3][d]) for pid, d in staged
                                             if batch[pid][3].get(d) is not None], "design_id")
    return {"project_addresses": addresses, "designs": staged_designs, "design_summaries": design_summaries,
            "design_arrays": design_arrays, "latest_proposals": latest, "_found": found}


def _assert_clean(frame: pd.DataFrame, schema) -> None:
    schema.validate(frame)  # what was staged passes the schema again
    for column in frame.columns:
        for value in frame[column]:
            if isinstance(value, float):
                assert math.isfinite(value) or math.isnan(value), f"{column}: {value}"
            elif isinstance(value, str):
                value.encode("utf-8")  # no unpaired surrogate left
            elif isinstance(value, pd.Timestamp):
                assert value.tzinfo is not None and value.utcoffset().total_seconds() == 0
    numbers = frame.select_dtypes("number")
    assert not numbers.isin([math.inf, -math.inf]).any().any()


def _assert_reported(checked: Validated) -> None:
    for row in checked.rejected:
        assert row["reason"] and row["problems"], row
        row["reason"].encode("utf-8")
        for problem in row["problems"]:
            assert problem["field"] and problem["rule"] and len(problem["value"]) <= 200
    for note in checked.notes:
        assert note["field"] and note["rule"]


def _check_batch(batch: dict, staged: dict[str, Validated]) -> None:
    schemas = {"project_addresses": ProjectAddresses, "designs": Designs, "latest_proposals": LatestProposals}
    for name, checked in staged.items():
        if name.startswith("_"):
            continue
        _assert_reported(checked)
        if name in schemas:
            _assert_clean(checked.valid, schemas[name])
    # every input row ends valid or quarantined
    assert len(staged["project_addresses"].valid) + len(staged["project_addresses"].rejected) == len(batch)
    listed = sum(len(answers[1]) for answers in batch.values())
    assert len(staged["designs"].valid) + len(staged["designs"].rejected) == listed
    found = {d for (_, d), _ in staged["_found"]}
    summarised = set(staged["design_summaries"].valid["design_id"]) | staged["design_summaries"].rejected_keys(
        "design_id")
    assert summarised == found and len(staged["design_summaries"].valid) + len(
        staged["design_summaries"].rejected) == len(found)
    # a staged summary is condensed from all its design's arrays, every one of them valid
    arrays = staged["design_arrays"]
    bad_array_designs = arrays.rejected_keys("design_id")
    per_design = arrays.valid.groupby("design_id").size().to_dict()
    for row in staged["design_summaries"].valid.itertuples():
        assert row.design_id not in bad_array_designs
        assert per_design.get(row.design_id, 0) == row.array_count


@pytest.fixture(scope="module")
def ops_db(tmp_path_factory):
    return DuckDBResource(database=str(tmp_path_factory.mktemp("fuzz") / "fuzz.duckdb"))


@examples(0.3)
@given(batch=range_batches(most=3))
def test_mutated_payloads_stage_without_raising_and_every_row_is_accounted_for(batch, ops_db):
    staged = stage_batch(batch)
    _check_batch(batch, staged)
    # whatever a reason or a rejected row holds, DuckDB stores it
    rejected = [row for k, v in staged.items() if not k.startswith("_") for row in v.rejected]
    notes = [note for k, v in staged.items() if not k.startswith("_") for note in v.notes]
    replace_quarantine(ops_db, "fuzz", list(batch), rejected, "design_id", "run-fuzz", notes)
    stored = read_table(ops_db, "select count(*) n from ops.quarantine where list_contains(?, project_id)",
                        [list(batch)])
    assert stored["n"][0] == len(rejected)


@examples(0.1)
@given(batch=range_batches(most=0))
def test_payloads_of_the_documented_shapes_stage_clean(batch):
    staged = stage_batch(batch)
    _check_batch(batch, staged)
    for name, checked in staged.items():
        if not name.startswith("_"):
            assert not checked.rejected, (name, checked.rejected[:1])
            assert not checked.notes, (name, checked.notes[:1])
    assert len(staged["designs"].valid) == sum(len(answers[1]) for answers in batch.values())


@examples(0.3)
@given(text=st.text(), number=st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**60), 2**60))
def test_coercions_are_lossless(text, number):
    """Numeric text in JSON syntax and numbers in text columns come out equal to what went in."""
    assert as_number(json.dumps(number)) == float(number)
    assert float(as_text(number)) == float(number)
    size = json.dumps(abs(number) % 1e7)
    staged = validate_rows(Designs, [{"design_id": "d-1234", "project_id": "p-1234", "design_name": text,
                                      "system_size_stc_w": size, "system_size_kw": 1.0, "milestone": None,
                                      "design_created_at": None}])
    assert not staged.rejected, staged.rejected[:1]
    assert staged.valid["system_size_stc_w"][0] == float(size)
