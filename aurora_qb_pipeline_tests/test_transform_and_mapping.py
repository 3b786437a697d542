"""Pure parts: Aurora JSON -> rows, validation/quarantine, mapping checks and record encoding."""

from datetime import datetime, timezone

import pytest

from aurora_qb_pipeline.mapping import (
    MappingConfig,
    MappingError,
    MatchingStrategy,
    encode_row,
    load_mapping,
    resolve_mapping,
)
from aurora_qb_pipeline.schemas import DesignSummaries, ProjectAddresses
from aurora_qb_pipeline.transform import (
    array_rows,
    parse_aurora_time,
    project_address_row,
    resolve_region,
    summary_row,
)
from aurora_qb_pipeline.validation import summaries_and_arrays, validate_rows


def test_both_timestamp_formats():
    expected = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)
    assert parse_aurora_time("2024-05-01 12:30:00 UTC") == expected
    assert parse_aurora_time("2024-05-01T12:30:00Z") == expected
    assert parse_aurora_time(None) is None


@pytest.mark.parametrize(
    "country,region,code,name",
    [
        ("US", "CA", "CA", "California"),
        ("US", "Texas", "TX", "Texas"),
        ("CA", "ON", "ON", "Ontario"),
        ("AU", "NSW", "NSW", "New South Wales"),
        ("DE", None, None, None),
        ("US", "ZZ", "ZZ", None),
    ],
)
def test_regions_resolved_by_iso_3166_2(country, region, code, name):
    assert resolve_region(country, region) == (code, name)


def test_project_address_handles_foreign_and_missing_parts():
    project = {
        "name": "  Zoë   O'Brien ",
        "location": {
            "property_address": "1 Main St, Toronto, ON, Canada",
            "property_address_components": {
                "street_address": None,
                "city": "Toronto",
                "region": "ON",
                "postal_code": None,
                "country": "Canada",
            },
        },
    }
    row = project_address_row("p-1", project)
    assert row["project_name"] == "Zoë O'Brien"
    assert (row["state_code"], row["state_name"], row["country_code"]) == ("ON", "Ontario", "CA")
    assert row["street_address"] is None and row["postal_code"] is None
    assert project_address_row("p-2", {})["country"] is None


def _summary(arrays, annual=12345.6):
    summary = {"arrays": arrays}
    if annual is not None:
        summary["energy_production"] = {"annual": annual, "up_to_date": True}
    return summary


def test_summary_uses_every_array():
    arrays = [
        {"azimuth": 90, "module": {"name": "A 400", "count": 4}},
        {"azimuth": 180, "module": {"name": "B 410", "count": 10}},
        {"azimuth": 270, "module": {"name": "A 400", "count": 3}},
    ]
    summaries, staged_arrays = summaries_and_arrays([(("p-1", "d-1"), _summary(arrays))])
    assert len(staged_arrays.valid) == 3 and not summaries.rejected
    row = summaries.valid.iloc[0]
    assert row["module_count"] == 17
    assert row["module_model"] == "B 410"  # most modules
    assert row["azimuth"] == 180.0  # of the biggest array
    assert row["azimuths"] == "90; 180; 270"
    assert row["module_models"] == "A 400; B 410"


def test_summary_without_arrays_or_energy():
    row = summary_row("p", "d", _summary([], annual=None), [])
    assert row["module_count"] is None and row["module_model"] is None and row["annual_energy_kwh"] is None
    assert row["array_count"] == 0
    rows, container = array_rows("p", "d", _summary([], annual=None))
    assert rows == [] and not container.problems


def test_validation_quarantines_bad_rows_and_keeps_good_ones():
    good = summary_row("p-1", "d-1", _summary([{"azimuth": 180, "module": {"name": "X", "count": 2}}]), [])
    bad = dict(good, design_id="d-2", azimuth=400.0, annual_energy_kwh=-5.0)
    result = validate_rows(DesignSummaries, [good, bad])
    assert list(result.valid["design_id"]) == ["d-1"]
    assert [r["design_id"] for r in result.rejected] == ["d-2"]
    reason = result.rejected[0]["reason"]
    assert "azimuth" in reason and "annual_energy_kwh" in reason


def test_validation_of_no_rows_gives_typed_empty_frame():
    result = validate_rows(ProjectAddresses, [])
    assert len(result.valid) == 0 and list(result.valid.columns)[0] == "project_id"


TABLE_FIELDS = [
    {"id": 3, "label": "Record ID#", "fieldType": "recordid", "unique": True, "required": True, "mode": ""},
    {"id": 6, "label": "Project Name", "fieldType": "text", "mode": ""},
    {"id": 7, "label": "System Size (kW)", "fieldType": "numeric", "mode": ""},
    {
        "id": 9,
        "label": "Module Model",
        "fieldType": "text-multiple-choice",
        "mode": "",
        "properties": {"choices": ["A 400"], "allowNewChoices": False},
    },
    {"id": 20, "label": "Aurora Design ID", "fieldType": "text", "unique": True, "required": True, "mode": ""},
    {"id": 30, "label": "Total", "fieldType": "numeric", "mode": "formula"},
]


def _config(**fields):
    base = {"design_id": "Aurora Design ID", "project_name": "project name", "system_size_kw": 7, "module_model": 9}
    base.update(fields)
    return MappingConfig(fields=base, merge_field="Aurora Design ID")


def test_packaged_mapping_file_loads():
    config = load_mapping()
    assert config.fields["design_id"] == "Aurora Design ID"
    assert config.matching_strategy is MatchingStrategy.ENRICH


def test_mapping_resolves_labels_case_insensitively_and_reads_choices():
    mapping = resolve_mapping(_config(), TABLE_FIELDS)
    assert mapping.merge_field_id == 20
    assert {t.source: t.field_id for t in mapping.targets}["project_name"] == 6
    assert next(t for t in mapping.targets if t.field_id == 9).choices == frozenset({"A 400"})


def test_mapping_problems_are_all_reported_at_once():
    fields = [dict(f, unique=False) if f["id"] == 20 else f for f in TABLE_FIELDS]
    with pytest.raises(MappingError) as err:
        resolve_mapping(_config(design_name="Nope", module_count="Project Name", azimuth=30), fields)
    text = str(err.value)
    assert "no such field" in text and "not unique" in text and "formula" in text
    assert "both map to" in text
    assert len(err.value.problems) >= 4


def test_an_optional_mapping_line_whose_field_the_table_lacks_is_skipped(tmp_path):
    """The packaged file's Opportunity reference (issue 14) is optional: a designs table made
    before it keeps exporting, without the link; a field that is present is mapped as usual."""
    assert "opportunity_record_id" in load_mapping().optional
    path = tmp_path / "mapping.yaml"
    path.write_text("merge_field: Aurora Design ID\nfields:\n  design_id: Aurora Design ID\n"
                    "  project_name: {field: Opportunity Name, optional: true}\n"
                    "  system_size_kw: {field: System Size (kW), optional: true}\n")
    mapping = resolve_mapping(load_mapping(path), TABLE_FIELDS)
    assert {t.source for t in mapping.targets} == {"design_id", "system_size_kw"}
    path.write_text("merge_field: Aurora Design ID\nfields:\n  design_id: {field: Aurora Design ID, optional: 1}\n")
    with pytest.raises(MappingError, match="optional must be true or false"):
        load_mapping(path)


def test_mapping_type_mismatch():
    with pytest.raises(MappingError, match="needs one of"):
        resolve_mapping(_config(project_name=7), TABLE_FIELDS)


def test_encode_enrich_replace_and_choices():
    row = {"design_id": "d-1", "project_name": None, "system_size_kw": 7.25, "module_model": "B 410"}
    enrich = encode_row(resolve_mapping(_config(), TABLE_FIELDS), row)
    assert 6 not in enrich.record and enrich.record[7] == 7.25
    assert enrich.problems and "does not offer the choice 'B 410'" in enrich.problems[0]
    replace = encode_row(resolve_mapping(_config(), TABLE_FIELDS, MatchingStrategy.REPLACE), row)
    assert replace.record[6] is None
    assert replace.content_hash != enrich.content_hash
    same = encode_row(resolve_mapping(_config(), TABLE_FIELDS), dict(row))
    assert same.content_hash == enrich.content_hash
