"""pandera schemas of the staged tables, and the export contract derived from them.

Each staging asset validates its rows with :func:`.validation.validate_rows`: the value rules
of :mod:`.coerce` first (a pass derived from these models), then these models themselves. Rows
that break a rule are set aside with the rule they broke; the rest go on to DuckDB.

Length rules: free text (names, addresses, module models, links) has no length rule here; it
is staged whole and cut to the Quickbase field's own limit at export, with a note
(:mod:`.mapping`). Identifiers and codes have format rules (pattern, length) and a row breaking
one is quarantined. ``metadata={"aurora": path}`` names the Aurora field a column comes from, for
quarantine reasons and the UI.
"""

from __future__ import annotations

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


def _from(path: str) -> dict:
    """Column metadata naming the Aurora field (path in its JSON answer) the column comes from."""
    return {"aurora": path}


_PARTS = "location.property_address_components."


class ProjectAddresses(_Base):
    project_id: Series[str] = pa.Field(str_matches=UUID_LIKE, unique=True, metadata=_from("id"))
    project_name: Series[str] = pa.Field(nullable=True, metadata=_from("name"))
    customer_name: Series[str] = pa.Field(nullable=True, metadata=_from("customer_first_name + customer_last_name"))
    street_address: Series[str] = pa.Field(nullable=True, metadata=_from(_PARTS + "street_address"))
    street_address_2: Series[str] = pa.Field(nullable=True, metadata=_from("(none: Aurora has one street line)"))
    city: Series[str] = pa.Field(nullable=True, metadata=_from(_PARTS + "city"))
    state_code: Series[str] = pa.Field(nullable=True, str_length={"max_value": 8}, metadata=_from(_PARTS + "region"))
    state_name: Series[str] = pa.Field(nullable=True, metadata=_from(_PARTS + "region"))
    postal_code: Series[str] = pa.Field(nullable=True, str_length={"max_value": 16},
                                        metadata=_from(_PARTS + "postal_code"))
    country: Series[str] = pa.Field(nullable=True, metadata=_from(_PARTS + "country"))
    country_code: Series[str] = pa.Field(nullable=True, str_length={"min_value": 2, "max_value": 2},
                                         metadata=_from(_PARTS + "country"))
    property_address: Series[str] = pa.Field(nullable=True, metadata=_from("location.property_address"))
    latitude: Series[float] = pa.Field(nullable=True, ge=-90, le=90, metadata=_from("location.latitude"))
    longitude: Series[float] = pa.Field(nullable=True, ge=-180, le=180, metadata=_from("location.longitude"))
    project_created_at: Series[TIMESTAMP] = pa.Field(nullable=True, metadata=_from("created_at"))
    opportunity_record_id: Series[pd.Int64Dtype] = pa.Field(
        nullable=True, ge=1, metadata=_from("external_provider_id (when it is a Quickbase record id: issue 14)"))


class Designs(_Base):
    design_id: Series[str] = pa.Field(str_matches=UUID_LIKE, unique=True, metadata=_from("id"))
    project_id: Series[str] = pa.Field(str_matches=UUID_LIKE, metadata=_from("(the project listed)"))
    design_name: Series[str] = pa.Field(nullable=True, metadata=_from("name"))
    system_size_stc_w: Series[float] = pa.Field(ge=0, le=50_000_000, metadata=_from("system_size_stc"))
    system_size_kw: Series[float] = pa.Field(ge=0, le=50_000, metadata=_from("system_size_stc"))
    milestone: Series[str] = pa.Field(nullable=True, metadata=_from("milestone.milestone"))
    design_created_at: Series[TIMESTAMP] = pa.Field(nullable=True, metadata=_from("created_at"))


class LatestProposals(_Base):
    design_id: Series[str] = pa.Field(str_matches=UUID_LIKE, unique=True, metadata=_from("(the design asked)"))
    project_id: Series[str] = pa.Field(str_matches=UUID_LIKE, metadata=_from("(the design's project)"))
    proposal_id: Series[str] = pa.Field(nullable=True, metadata=_from("id"))
    proposal_link: Series[str] = pa.Field(str_matches=URL, metadata=_from("proposal_link"))
    proposal_updated_at: Series[TIMESTAMP] = pa.Field(nullable=True, metadata=_from("updated_at or created_at"))


class DesignSummaries(_Base):
    design_id: Series[str] = pa.Field(str_matches=UUID_LIKE, unique=True, metadata=_from("(the design asked)"))
    project_id: Series[str] = pa.Field(str_matches=UUID_LIKE, metadata=_from("(the design's project)"))
    array_count: Series[int] = pa.Field(ge=0, metadata=_from("arrays"))
    module_count: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0, metadata=_from("arrays[*].module.count"))
    module_model: Series[str] = pa.Field(nullable=True, metadata=_from("arrays[*].module.name"))
    module_models: Series[str] = pa.Field(nullable=True, metadata=_from("arrays[*].module.name"))
    azimuth: Series[float] = pa.Field(nullable=True, ge=0, lt=360, metadata=_from("arrays[*].azimuth"))
    azimuths: Series[str] = pa.Field(nullable=True, metadata=_from("arrays[*].azimuth"))
    annual_energy_kwh: Series[float] = pa.Field(nullable=True, ge=0, metadata=_from("energy_production.annual"))
    energy_up_to_date: Series[pd.BooleanDtype] = pa.Field(nullable=True,
                                                          metadata=_from("energy_production.up_to_date"))
    summary_system_size_stc_w: Series[float] = pa.Field(nullable=True, ge=0, metadata=_from("system_size_stc"))


class DesignArrays(_Base):
    design_id: Series[str] = pa.Field(str_matches=UUID_LIKE, metadata=_from("(the design asked)"))
    project_id: Series[str] = pa.Field(str_matches=UUID_LIKE, metadata=_from("(the design's project)"))
    array_index: Series[int] = pa.Field(ge=0, metadata=_from("(position in arrays)"))
    module_name: Series[str] = pa.Field(nullable=True, metadata=_from("module.name"))
    module_count: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0, metadata=_from("module.count"))
    module_rating_stc_w: Series[float] = pa.Field(nullable=True, ge=0, metadata=_from("module.rating_stc"))
    azimuth: Series[float] = pa.Field(nullable=True, ge=0, lt=360, metadata=_from("azimuth"))
    pitch: Series[float] = pa.Field(nullable=True, ge=0, le=90, metadata=_from("pitch"))
    size_w: Series[float] = pa.Field(nullable=True, ge=0, metadata=_from("size"))
    face: Series[pd.Int64Dtype] = pa.Field(nullable=True, metadata=_from("face"))


def columns_of(schema: type[_Base]) -> list[str]:
    return list(schema.to_schema().columns)


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
