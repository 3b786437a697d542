"""Validation of rows for staging, in two pandera passes, and the split into valid rows and quarantine.

1. **Value rules** (:mod:`.coerce`): a schema derived from each model, a column per model column
   with its dtype left open. Its parsers apply the lossless coercions (numeric text to numbers,
   integer-valued numbers to integers, numbers to text, Aurora's timestamps to UTC) and its
   element-wise checks refuse, naming the rule, what no coercion can save (``"abc"`` for a
   number, NaN, a boolean for text, an object for a number ...).
2. **The model itself** (``coerce=True``): types, ranges, patterns, uniqueness, on the values pass
   1 made canonical. Cells pass 1 refused are nulled first, so each problem is reported once.

Both passes are lazy: a row's quarantine reason lists *every* problem it has, each as
``<column> (<Aurora field>): <rule> (got <value, truncated>)``. Rows the transform found
structurally broken (``_problems``) are quarantined with the rest of their problems. No value
makes this raise; a frame-level error (a missing column) would be a bug and does raise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Optional, Sequence

import pandas as pd
import pandera.pandas as pa

from . import coerce
from .schemas import _KINDS, DesignArrays, DesignSummaries, ValueKind, _Base, columns_of
from .transform import NOTES, PROBLEMS, Reader, array_rows, summary_row

_VALUE_RULES: dict[ValueKind, tuple[Callable[[Any], Any], list[tuple[Callable[[Any], bool], str]]]] = {
    ValueKind.NUMBER: (coerce.as_number, [(coerce.is_number, coerce.RULE_NUMBER),
                                          (coerce.is_finite, coerce.RULE_FINITE)]),
    ValueKind.INTEGER: (coerce.as_integer, [(coerce.is_number, coerce.RULE_NUMBER),
                                            (coerce.is_finite, coerce.RULE_FINITE),
                                            (coerce.is_whole, coerce.RULE_INTEGER)]),
    ValueKind.BOOLEAN: (coerce.as_boolean, [(lambda v: coerce.as_boolean(v) is not coerce.INVALID,
                                             coerce.RULE_BOOLEAN)]),
    ValueKind.TEXT: (coerce.as_text, [(lambda v: coerce.as_text(v) is not coerce.INVALID, coerce.RULE_TEXT)]),
    ValueKind.TIMESTAMP: (coerce.as_timestamp, [(lambda v: coerce.as_timestamp(v) is not coerce.INVALID,
                                                 coerce.RULE_TIMESTAMP)]),
}
"""Per kind of column: the coercion (pass 1 parser) and the rules it checks, each with its name."""

_RULE_NAMES = {name for _, rules in _VALUE_RULES.values() for _, name in rules}


def _canonical(convert: Callable[[Any], Any]) -> Callable[[pd.Series], pd.Series]:
    """A parser: each value its rule accepts becomes canonical; refused values stay for the checks."""

    def parse(series: pd.Series) -> pd.Series:
        def one(value: Any) -> Any:
            converted = convert(value)
            return value if converted is coerce.INVALID else converted

        # not Series.map: it infers a dtype, and a float column would turn None into NaN
        return pd.Series([one(value) for value in series], index=series.index, dtype=object)

    return parse


@lru_cache(maxsize=None)
def value_rules_schema(schema: type[_Base]) -> pa.DataFrameSchema:
    """Pass 1 of ``schema``: the value rules of each column's kind, no dtype, no coercion."""
    columns = {}
    for name, column in schema.to_schema().columns.items():
        convert, rules = _VALUE_RULES[_KINDS[str(column.dtype)]]
        checks = [pa.Check(rule, element_wise=True, ignore_na=False, name=label) for rule, label in rules]
        columns[name] = pa.Column(None, nullable=True, parsers=pa.Parser(_canonical(convert)), checks=checks)
    return pa.DataFrameSchema(columns, strict=True)


_HUMAN = [
    (re.compile(r"greater_than_or_equal_to\((.*)\)"), "must be >= {0}"),
    (re.compile(r"less_than_or_equal_to\((.*)\)"), "must be <= {0}"),
    (re.compile(r"greater_than\((.*)\)"), "must be > {0}"),
    (re.compile(r"less_than\((.*)\)"), "must be < {0}"),
    (re.compile(r"str_matches\('?(.*?)'?\)"), "must match {0}"),
    (re.compile(r"str_length\((.*)\)"), "must have a length within ({0})"),
    (re.compile(r"field_uniqueness"), "must be unique in the batch"),
    (re.compile(r"not_nullable"), "must not be empty"),
]


def rule_text(check: str) -> str:
    """A pandera check name as a rule a person reads."""
    if check in _RULE_NAMES:
        return f"must be {check}"
    for pattern, template in _HUMAN:
        match = pattern.fullmatch(check)
        if match:
            return template.format(*match.groups())
    return f"fails {check}"


@lru_cache(maxsize=None)
def field_label(schema: type[_Base], column: str) -> str:
    """``column (Aurora field)`` when the model names another Aurora field for it."""
    source = (schema.to_schema().columns[column].metadata or {}).get("aurora") if column in columns_of(schema) else None
    return f"{column} ({source})" if source and source != column and not source.startswith("(") else column


def problem_text(problem: dict) -> str:
    rule = problem["rule"]
    rule = rule if rule.startswith(("must ", "fails ")) else f"must be {rule}"
    return f"{problem['field']}: {rule} (got {problem['value']})"


def note_text(note: dict) -> str:
    return f"{note['field']}: {note['rule']} (was {note['value']})"


@dataclass
class Validated:
    valid: pd.DataFrame
    rejected: list[dict] = field(default_factory=list)  # the raw row + "reason" + "problems"
    notes: list[dict] = field(default_factory=list)  # project_id, record_key, field, rule, value

    def rejected_keys(self, column: str) -> set:
        return {row.get(column) for row in self.rejected}


def empty_frame(schema: type[_Base]) -> pd.DataFrame:
    """A zero-row frame with the schema's columns and dtypes."""
    return _empty(schema).copy()


@lru_cache(maxsize=None)
def _empty(schema: type[_Base]) -> pd.DataFrame:
    return schema.validate(pd.DataFrame({c: pd.Series(dtype="object") for c in columns_of(schema)}))


def _row_failures(err: pa.errors.SchemaErrors) -> list[tuple[int, str, str, Any]]:
    """(row index, column, check, failing value) of each failure that concerns a row."""
    cases = err.failure_cases
    cases = cases[cases["index"].notna()]
    return [(int(c.index), c.column if isinstance(c.column, str) else "row", str(c.check), c.failure_case)
            for c in cases.itertuples()]


def validate_rows(schema: type[_Base], rows: Sequence[dict], key_column: Optional[str] = None) -> Validated:
    """Validate ``rows`` (dicts from :mod:`.transform`) against ``schema``; split off the rows that
    break a rule, each with a readable reason, and collect the notes of the repairs made."""
    columns = columns_of(schema)
    if not rows:
        return Validated(empty_frame(schema))
    problems = [list(row.get(PROBLEMS) or ()) for row in rows]
    raw = [{k: v for k, v in row.items() if k not in (PROBLEMS, NOTES)} for row in rows]
    frame = pd.DataFrame({c: pd.Series([r.get(c) for r in raw], dtype=object) for c in columns})

    try:  # pass 1: value rules
        parsed = value_rules_schema(schema).validate(frame, lazy=True)
        refused: set[tuple[int, str]] = set()
    except pa.errors.SchemaErrors as err:
        parsed, refused = err.data, set()
        for index, column, check, value in _row_failures(err):
            problems[index].append({"field": field_label(schema, column), "rule": check,
                                    "value": coerce.preview(value)})
            refused.add((index, column))
            parsed.at[index, column] = None
    typed: Optional[pd.DataFrame] = None
    try:  # pass 2: the model, on every row, to report all of each row's problems
        typed = schema.validate(parsed, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
        whole = cases["index"].isna().any() or cases["check"].astype(str).str.contains("dtype").any()
        typed = None if whole else err.data  # coerced; row failures only, so the other rows are clean
        for index, column, check, value in _row_failures(err):
            if (index, column) not in refused:
                problems[index].append({"field": field_label(schema, column), "rule": rule_text(check),
                                        "value": coerce.preview(value)})

    bad = [i for i, found in enumerate(problems) if found]
    if typed is None:  # something beyond single rows failed: validate the rest again (raises if it persists)
        typed = schema.validate(parsed.drop(index=bad)) if len(bad) < len(parsed) else empty_frame(schema)
    else:
        typed = typed.drop(index=bad)
    valid = typed[columns].reset_index(drop=True) if len(typed) else empty_frame(schema)
    rejected = []
    for i in bad:
        unique = list({problem_text(p): p for p in problems[i]}.items())
        rejected.append({**raw[i], "reason": "; ".join(text for text, _ in unique),
                         "problems": [p for _, p in unique]})
    notes = [
        {"project_id": raw[i].get("project_id"), "record_key": raw[i].get(key_column) if key_column else None, **note}
        for i, row in enumerate(rows) for note in (row.get(NOTES) or ())
    ]
    return Validated(valid, rejected, notes)


def summaries_and_arrays(found: Sequence[tuple[tuple[str, str], Any]]) -> tuple[Validated, Validated]:
    """(design_summaries, design_arrays) of the fetched summaries ``[((project, design), summary)]``.

    Arrays are validated first; each summary is condensed from its design's *valid* arrays, and a
    design with a quarantined array, or an ``arrays`` that is not a list, has its summary
    quarantined too (a summary of some of the arrays would be wrong, not partial)."""
    array_input, containers = [], []
    for (project_id, design_id), summary in found:
        try:
            rows, container = array_rows(project_id, design_id, summary)
        except Exception as exc:  # noqa: BLE001 - a bug must not stop the batch: this design is quarantined
            rows, container = [], _unreadable(exc)
        array_input.extend(rows)
        containers.append(container)
    arrays = validate_rows(DesignArrays, array_input, "design_id")
    bad_arrays: dict[str, list[str]] = {}
    for row in arrays.rejected:
        bad_arrays.setdefault(row.get("design_id"), []).append(f"arrays[{row.get('array_index')}]: {row['reason']}")
    typed = arrays.valid.astype(object).where(arrays.valid.notna(), None)
    by_design: dict[str, list[dict]] = {}
    for record in typed.to_dict("records"):
        by_design.setdefault(record["design_id"], []).append(record)

    summary_input = []
    for ((project_id, design_id), summary), container in zip(found, containers):
        for reason in bad_arrays.get(design_id, [])[:3]:
            container.problems.append({"field": "arrays", "rule": "must have no quarantined array",
                                       "value": coerce.preview(reason, 200)})
        try:
            row = summary_row(project_id, design_id, summary, by_design.get(design_id, []), container)
        except Exception as exc:  # noqa: BLE001 - as above
            row = _unreadable(exc).row(design_id=design_id, project_id=project_id)
        summary_input.append(row)
    return validate_rows(DesignSummaries, summary_input, "design_id"), arrays


def _unreadable(exc: Exception) -> Reader:
    read = Reader()
    read.problems.append({"field": "design", "rule": "readable (the transform failed: a bug)",
                          "value": coerce.preview(f"{type(exc).__name__}: {exc}", 200)})
    return read
