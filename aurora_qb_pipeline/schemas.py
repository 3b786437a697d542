"""pandera schemas of the staged tables, and the split of a frame into valid rows and quarantine.

Each staging asset calls :func:`validate_rows`: rows that break a rule are set aside with the
rule they broke, the rest are coerced by the schema and go on to DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

UUID_LIKE = r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$"
URL = r"^https?://\S+$"
TIMESTAMP = pd.DatetimeTZDtype(unit="us", tz="UTC")


class _Base(pa.DataFrameModel):
    class Config:
        coerce = True
        strict = True


class ProjectAddresses(_Base):
    project_id: Series[str] = pa.Field(str_matches=UUID_LIKE, unique=True)
    project_name: Series[str] = pa.Field(nullable=True, str_length={"max_value": 255})
    customer_name: Series[str] = pa.Field(nullable=True)
    street_address: Series[str] = pa.Field(nullable=True)
    street_address_2: Series[str] = pa.Field(nullable=True)
    city: Series[str] = pa.Field(nullable=True)
    state_code: Series[str] = pa.Field(nullable=True, str_length={"max_value": 8})
    state_name: Series[str] = pa.Field(nullable=True)
    postal_code: Series[str] = pa.Field(nullable=True, str_length={"max_value": 16})
    country: Series[str] = pa.Field(nullable=True)
    country_code: Series[str] = pa.Field(nullable=True, str_length={"min_value": 2, "max_value": 2})
    property_address: Series[str] = pa.Field(nullable=True)
    latitude: Series[float] = pa.Field(nullable=True, ge=-90, le=90)
    longitude: Series[float] = pa.Field(nullable=True, ge=-180, le=180)
    project_created_at: Series[TIMESTAMP] = pa.Field(nullable=True)


class Designs(_Base):
    design_id: Series[str] = pa.Field(str_matches=UUID_LIKE, unique=True)
    project_id: Series[str] = pa.Field(str_matches=UUID_LIKE)
    design_name: Series[str] = pa.Field(nullable=True)
    system_size_stc_w: Series[float] = pa.Field(ge=0, le=50_000_000)
    system_size_kw: Series[float] = pa.Field(ge=0, le=50_000)
    milestone: Series[str] = pa.Field(nullable=True)
    design_created_at: Series[TIMESTAMP] = pa.Field(nullable=True)


class LatestProposals(_Base):
    design_id: Series[str] = pa.Field(str_matches=UUID_LIKE, unique=True)
    project_id: Series[str] = pa.Field(str_matches=UUID_LIKE)
    proposal_id: Series[str] = pa.Field(nullable=True)
    proposal_link: Series[str] = pa.Field(str_matches=URL)
    proposal_updated_at: Series[TIMESTAMP] = pa.Field(nullable=True)


class DesignSummaries(_Base):
    design_id: Series[str] = pa.Field(str_matches=UUID_LIKE, unique=True)
    project_id: Series[str] = pa.Field(str_matches=UUID_LIKE)
    array_count: Series[int] = pa.Field(ge=0)
    module_count: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0)
    module_model: Series[str] = pa.Field(nullable=True)
    module_models: Series[str] = pa.Field(nullable=True)
    azimuth: Series[float] = pa.Field(nullable=True, ge=0, lt=360)
    azimuths: Series[str] = pa.Field(nullable=True)
    annual_energy_kwh: Series[float] = pa.Field(nullable=True, ge=0)
    energy_up_to_date: Series[pd.BooleanDtype] = pa.Field(nullable=True)
    summary_system_size_stc_w: Series[float] = pa.Field(nullable=True, ge=0)


class DesignArrays(_Base):
    design_id: Series[str] = pa.Field(str_matches=UUID_LIKE)
    project_id: Series[str] = pa.Field(str_matches=UUID_LIKE)
    array_index: Series[int] = pa.Field(ge=0)
    module_name: Series[str] = pa.Field(nullable=True)
    module_count: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0)
    module_rating_stc_w: Series[float] = pa.Field(nullable=True, ge=0)
    azimuth: Series[float] = pa.Field(nullable=True, ge=0, lt=360)
    pitch: Series[float] = pa.Field(nullable=True, ge=0, le=90)
    size_w: Series[float] = pa.Field(nullable=True, ge=0)
    face: Series[pd.Int64Dtype] = pa.Field(nullable=True)


@dataclass
class Validated:
    valid: pd.DataFrame
    rejected: pd.DataFrame  # the rejected rows, with a "reason" column


def empty_frame(schema: type[_Base]) -> pd.DataFrame:
    """A zero-row frame with the schema's columns and dtypes."""
    return schema.validate(pd.DataFrame({c: pd.Series(dtype="object") for c in columns_of(schema)}))


def columns_of(schema: type[_Base]) -> list[str]:
    return list(schema.to_schema().columns)


def validate_rows(schema: type[_Base], rows: list[dict]) -> Validated:
    """Validate ``rows`` against ``schema``; split failures off with a readable reason per row.

    Frame-level problems (a missing column: a bug, not bad data) still raise."""
    if not rows:
        return Validated(empty_frame(schema), pd.DataFrame(columns=["reason"]))
    frame = pd.DataFrame(rows)
    try:
        valid = schema.validate(frame, lazy=True)[columns_of(schema)]
        return Validated(valid, frame.iloc[0:0].assign(reason=[]))
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
        row_cases = cases[cases["index"].notna()]
        if len(row_cases) < len(cases):
            raise
        reasons: dict[int, list[str]] = {}
        for case in row_cases.itertuples():
            column = case.column if isinstance(case.column, str) else "row"
            reasons.setdefault(int(case.index), []).append(f"{column}: {case.check} (got {case.failure_case!r})")
    bad = sorted(reasons)
    rejected = frame.loc[bad].copy()
    rejected["reason"] = ["; ".join(dict.fromkeys(reasons[i])) for i in bad]
    valid = schema.validate(frame.drop(index=bad).reset_index(drop=True))[columns_of(schema)]
    return Validated(valid, rejected.reset_index(drop=True))


# --- the export contract ----------------------------------------------------------------------
# One export row per staged design: the design, its summary, its default proposal and its
# project's address. Its columns and what kind of value each holds follow from the schemas above;
# nothing lists them again (the export's SQL, the mapping check and the benchmark all use this).


class ValueKind(str, Enum):
    TEXT = "text"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    TIMESTAMP = "timestamp"


EXPORT_SOURCES: tuple[tuple[str, type[_Base]], ...] = (
    ("designs", Designs),
    ("design_summaries", DesignSummaries),
    ("latest_proposals", LatestProposals),
    ("project_addresses", ProjectAddresses),
)
"""The staged tables an export row joins, in order; a column is taken from the first that has it."""

_KINDS = {
    "str": ValueKind.TEXT,
    "float64": ValueKind.NUMBER,
    "int64": ValueKind.INTEGER,
    "Int64": ValueKind.INTEGER,
    "boolean": ValueKind.BOOLEAN,
    "datetime64[us, UTC]": ValueKind.TIMESTAMP,
}


def _export_contract() -> dict[str, tuple[str, ValueKind]]:
    contract: dict[str, tuple[str, ValueKind]] = {}
    for table, schema in EXPORT_SOURCES:
        for name, column in schema.to_schema().columns.items():
            contract.setdefault(name, (table, _KINDS[str(column.dtype)]))
    return contract


EXPORT_CONTRACT: dict[str, tuple[str, ValueKind]] = _export_contract()
"""export column -> (staged table it comes from, kind of value)."""

EXPORT_COLUMNS: dict[str, ValueKind] = {name: kind for name, (_, kind) in EXPORT_CONTRACT.items()}


def export_row(rows_by_table: dict[str, dict]) -> dict:
    """One export row from one design's staged rows ({table: row}; a missing table gives nulls)."""
    return {name: (rows_by_table.get(table) or {}).get(name) for name, (table, _) in EXPORT_CONTRACT.items()}
