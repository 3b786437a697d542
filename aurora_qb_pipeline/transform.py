"""Pure functions that turn Aurora's JSON into flat rows for staging, whatever the JSON holds.

Nothing here talks to a network or a database, and nothing raises on a value:

* an object where a list belongs (or the reverse, or a scalar for either) is a *problem* of the
  row, which is then quarantined with the reason; a missing key or a null is simply null;
* text is normalised (:func:`.coerce.normalise_text`); a repair is a *note*, reported;
* every other value (numbers, booleans, timestamps) goes on raw: the pandera pass of
  :mod:`.validation` applies the lossless coercions of :mod:`.coerce` or refuses the value.

A row is a dict of its columns plus ``_problems`` and ``_notes`` (lists of
``{"field", "rule", "value"}``), which :func:`.validation.validate_rows` takes off.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from functools import lru_cache
from typing import Any, Optional

import pycountry

from .coerce import (
    INVALID,
    NOTE_LIST_AS_TEXT,
    NOTE_SURROGATES,
    RULE_LIST,
    RULE_OBJECT,
    RULE_TEXT,
    as_number,
    as_text,
    normalise_text,
    parse_aurora_time,  # noqa: F401 - the sensors import it from here
    preview,
)

PROBLEMS = "_problems"
NOTES = "_notes"

__all__ = [
    "NOTES", "PROBLEMS", "Reader", "array_rows", "design_rows", "parse_aurora_time", "project_address_row",
    "proposal_row", "resolve_country", "resolve_region", "summary_row",
]


class Reader:
    """Reads one Aurora object tolerantly and collects what was wrong (problems) or repaired (notes)."""

    def __init__(self) -> None:
        self.problems: list[dict] = []
        self.notes: list[dict] = []

    def problem(self, field: str, rule: str, value: Any) -> None:
        self.problems.append({"field": field, "rule": rule, "value": preview(value)})

    def note(self, field: str, rule: str, value: Any) -> None:
        self.notes.append({"field": field, "rule": rule, "value": preview(value)})

    def obj(self, value: Any, field: str) -> dict:
        """``value`` if it is an object; ``{}`` for null (no data) or, as a problem, anything else."""
        if value is None:
            return {}
        if isinstance(value, dict):
            return value
        self.problem(field, RULE_OBJECT, value)
        return {}

    def items(self, value: Any, field: str) -> list:
        """``value`` if it is a list; ``[]`` for null; a list given as JSON text is read (noted);
        anything else is a problem."""
        if value is None:
            return []
        if isinstance(value, list):
            return value
        if isinstance(value, str):
            try:
                parsed = json.loads(value)
            except (ValueError, RecursionError):
                parsed = None
            if isinstance(parsed, list):
                self.note(field, NOTE_LIST_AS_TEXT, value)
                return parsed
        self.problem(field, RULE_LIST, value)
        return []

    def text(self, value: Any, field: str) -> Optional[str]:
        """Normalised text (a number becomes its text); a problem for anything else."""
        text = as_text(value)
        if text is INVALID:
            self.problem(field, RULE_TEXT, value)
            return None
        if text is None:
            return None
        fixed, repaired = normalise_text(text)
        if repaired:
            self.note(field, NOTE_SURROGATES, value)
        return fixed

    def row(self, **columns: Any) -> dict:
        return {**columns, PROBLEMS: self.problems, NOTES: self.notes}


@lru_cache(maxsize=512)
def resolve_country(name: Optional[str]) -> Optional[Any]:
    """pycountry country for a name, code or common alias ("United States", "USA", "US")."""
    if not name:
        return None
    try:
        return pycountry.countries.lookup(name)
    except LookupError:
        pass
    try:
        matches = pycountry.countries.search_fuzzy(name) if len(name) > 3 else []
    except LookupError:  # nothing like it
        matches = []
    return matches[0] if matches else None


@lru_cache(maxsize=2048)
def resolve_region(country_alpha2: Optional[str], region: Optional[str]) -> tuple[Optional[str], Optional[str]]:
    """(region code, region name) for a region given as code ("CA", "ON") or name ("Bavaria").

    Uses ISO 3166-2 via pycountry, so it works for any country, not only US states.
    Returns the input as code with no name when the region is not recognised."""
    if not region:
        return None, None
    if not country_alpha2:
        return region, None
    try:
        sub = pycountry.subdivisions.get(code=f"{country_alpha2}-{region.upper()}")
        if sub is None:
            wanted = region.casefold()
            subs = pycountry.subdivisions.get(country_code=country_alpha2) or []
            sub = next((s for s in subs if s.name.casefold() == wanted), None)
    except (LookupError, ValueError):
        sub = None
    if sub is None:
        return region, None
    return sub.code.split("-", 1)[1], sub.name


def project_address_row(project_id: str, project: Any) -> dict[str, Any]:
    read = Reader()
    project = read.obj(project, "project")
    location = read.obj(project.get("location"), "location")
    parts = read.obj(location.get("property_address_components"), "location.property_address_components")
    country_name = read.text(parts.get("country"), "location.property_address_components.country")
    country = resolve_country(country_name)
    alpha2 = country.alpha_2 if country else None
    region = read.text(parts.get("region"), "location.property_address_components.region")
    state_code, state_name = resolve_region(alpha2, region)
    names = (read.text(project.get(key), key) for key in ("customer_first_name", "customer_last_name"))
    customer = " ".join(name for name in names if name)
    return read.row(
        project_id=project_id,
        project_name=read.text(project.get("name"), "name"),
        customer_name=customer or None,
        street_address=read.text(parts.get("street_address"), "location.property_address_components.street_address"),
        street_address_2=None,  # Aurora has a single street line
        city=read.text(parts.get("city"), "location.property_address_components.city"),
        state_code=state_code,
        state_name=state_name,
        postal_code=read.text(parts.get("postal_code"), "location.property_address_components.postal_code"),
        country=country.name if country else country_name,
        country_code=alpha2,
        property_address=read.text(location.get("property_address"), "location.property_address"),
        latitude=location.get("latitude"),
        longitude=location.get("longitude"),
        project_created_at=project.get("created_at"),
        opportunity_record_id=opportunity_record_id(project.get("external_provider_id")),
    )


def opportunity_record_id(external_provider_id: Any) -> Optional[int]:
    """The Quickbase opportunity a project was made for: its ``external_provider_id`` when that is
    a record id (digits), as the opportunity sync sets it; other CRMs' ids give None."""
    text = str(external_provider_id).strip() if isinstance(external_provider_id, (str, int)) else ""
    return int(text) if text.isdigit() and 0 < len(text) < 19 and int(text) > 0 else None


def design_row(project_id: str, design: Any, index: int = 0) -> dict[str, Any]:
    read = Reader()
    design = read.obj(design, f"designs[{index}]")
    size_w = design.get("system_size_stc")
    number = as_number(size_w)
    # kW is derived from the same value; a value the number rules refuse is passed on as it came,
    # so that the same rule reports it for both columns.
    size_kw = round(number / 1000.0, 3) if isinstance(number, float) and math.isfinite(number) else size_w
    milestone = design.get("milestone")  # an object, a string or null depending on the integration
    if isinstance(milestone, dict):
        milestone = milestone.get("milestone")
    return read.row(
        design_id=read.text(design.get("id"), "id"),
        project_id=project_id,
        design_name=read.text(design.get("name"), "name"),
        system_size_stc_w=size_w,
        system_size_kw=size_kw,
        milestone=read.text(milestone, "milestone"),
        design_created_at=design.get("created_at"),
    )


def design_rows(project_id: str, designs: Any) -> list[dict[str, Any]]:
    """One row per item of a project's design list (the client has checked it is a list)."""
    return [design_row(project_id, design, index) for index, design in enumerate(designs or [])]


def proposal_row(project_id: str, design_id: str, proposal: Any) -> dict[str, Any]:
    read = Reader()
    proposal = read.obj(proposal, "proposal")
    updated = proposal.get("updated_at")
    if updated is None or updated == "":
        updated = proposal.get("created_at")
    return read.row(
        design_id=design_id,
        project_id=project_id,
        proposal_id=read.text(proposal.get("id"), "id"),
        proposal_link=read.text(proposal.get("proposal_link"), "proposal_link"),
        proposal_updated_at=updated,
    )


def array_rows(project_id: str, design_id: str, summary: Any) -> tuple[list[dict[str, Any]], Reader]:
    """(one row per array of a design summary, the reader of the summary's ``arrays`` container:
    its problems and notes belong to the summary row)."""
    container = Reader()
    summary = container.obj(summary, "design")
    rows = []
    for index, array in enumerate(container.items(summary.get("arrays"), "arrays")):
        read = Reader()
        array = read.obj(array, f"arrays[{index}]")
        module = read.obj(array.get("module"), f"arrays[{index}].module")
        rows.append(read.row(
            design_id=design_id,
            project_id=project_id,
            array_index=index,
            module_name=read.text(module.get("name"), f"arrays[{index}].module.name"),
            module_count=module.get("count"),
            module_rating_stc_w=module.get("rating_stc"),
            azimuth=array.get("azimuth"),
            pitch=array.get("pitch"),
            size_w=array.get("size"),
            face=array.get("face"),
        ))
    return rows, container


def summary_row(
    project_id: str, design_id: str, summary: Any, arrays: list[dict[str, Any]], read: Optional[Reader] = None
) -> dict:
    """One row per design that condenses every array (not only the first, as the old script did).

    ``arrays`` are the design's *validated* array rows (typed values), so nothing here computes
    on a raw value. module_model is the model with the most modules; azimuth is that of the array
    with the most modules (the one a PM would call "the" azimuth); all models and azimuths are
    kept as lists. ``read`` carries the problems and notes found so far (the arrays container)."""
    read = read or Reader()
    summary = summary if isinstance(summary, dict) else {}
    counts: Counter[str] = Counter()
    for a in arrays:
        if a["module_name"] and a["module_count"]:
            counts[a["module_name"]] += int(a["module_count"])
    main_array = max(arrays, key=lambda a: (a["module_count"] or 0, -a["array_index"]), default=None)
    energy = read.obj(summary.get("energy_production"), "energy_production")
    return read.row(
        design_id=design_id,
        project_id=project_id,
        array_count=len(arrays),
        module_count=sum(int(a["module_count"] or 0) for a in arrays) if arrays else None,
        module_model=counts.most_common(1)[0][0] if counts else None,
        module_models="; ".join(sorted(counts)) or None,
        azimuth=main_array["azimuth"] if main_array else None,
        azimuths="; ".join(f"{a['azimuth']:g}" for a in arrays if a["azimuth"] is not None) or None,
        annual_energy_kwh=energy.get("annual"),
        energy_up_to_date=energy.get("up_to_date"),
        summary_system_size_stc_w=summary.get("system_size_stc"),
    )
