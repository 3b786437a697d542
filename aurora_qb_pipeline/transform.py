"""Pure functions that turn Aurora's JSON into flat rows for staging.

Nothing here talks to a network or a database, so every messy case (missing arrays, null
address parts, foreign addresses, two timestamp formats) is unit-testable on its own.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Optional

import pycountry


def parse_aurora_time(value: Any) -> Optional[datetime]:
    """Aurora writes "YYYY-MM-DD HH:MM:SS UTC" in most places and ISO-8601 in some; accept both."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    text = str(value).strip()
    if text.endswith(" UTC"):
        return datetime.strptime(text[:-4], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def clean_text(value: Any) -> Optional[str]:
    """Trim and collapse whitespace; empty becomes None."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


@lru_cache(maxsize=512)
def resolve_country(name: Optional[str]) -> Optional[Any]:
    """pycountry country for a name, code or common alias ("United States", "USA", "US")."""
    if not name:
        return None
    try:
        return pycountry.countries.lookup(name)
    except LookupError:
        matches = pycountry.countries.search_fuzzy(name) if len(name) > 3 else []
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
    sub = pycountry.subdivisions.get(code=f"{country_alpha2}-{region.upper()}")
    if sub is None:
        wanted = region.casefold()
        sub = next(
            (s for s in pycountry.subdivisions.get(country_code=country_alpha2) or [] if s.name.casefold() == wanted),
            None,
        )
    if sub is None:
        return region, None
    return sub.code.split("-", 1)[1], sub.name


def project_address_row(project_id: str, project: dict[str, Any]) -> dict[str, Any]:
    location = project.get("location") or {}
    parts = location.get("property_address_components") or {}
    country_name = clean_text(parts.get("country"))
    country = resolve_country(country_name)
    alpha2 = country.alpha_2 if country else None
    state_code, state_name = resolve_region(alpha2, clean_text(parts.get("region")))
    customer = " ".join(
        p for p in (clean_text(project.get("customer_first_name")), clean_text(project.get("customer_last_name"))) if p
    )
    return {
        "project_id": project_id,
        "project_name": clean_text(project.get("name")),
        "customer_name": customer or None,
        "street_address": clean_text(parts.get("street_address")),
        "street_address_2": None,  # Aurora has a single street line
        "city": clean_text(parts.get("city")),
        "state_code": state_code,
        "state_name": state_name,
        "postal_code": clean_text(parts.get("postal_code")),
        "country": country.name if country else country_name,
        "country_code": alpha2,
        "property_address": clean_text(location.get("property_address")),
        "latitude": location.get("latitude"),
        "longitude": location.get("longitude"),
        "project_created_at": parse_aurora_time(project.get("created_at")),
    }


def milestone_text(milestone: Any) -> Optional[str]:
    """Designs carry milestone as an object, a string or null depending on the integration seen."""
    if isinstance(milestone, dict):
        return clean_text(milestone.get("milestone"))
    return clean_text(milestone)


def design_row(project_id: str, design: dict[str, Any]) -> dict[str, Any]:
    size_w = design.get("system_size_stc")
    return {
        "design_id": design.get("id"),
        "project_id": project_id,
        "design_name": clean_text(design.get("name")),
        "system_size_stc_w": float(size_w) if size_w is not None else None,
        "system_size_kw": round(float(size_w) / 1000.0, 3) if size_w is not None else None,
        "milestone": milestone_text(design.get("milestone")),
        "design_created_at": parse_aurora_time(design.get("created_at")),
    }


def proposal_row(project_id: str, design_id: str, proposal: dict[str, Any]) -> dict[str, Any]:
    return {
        "design_id": design_id,
        "project_id": project_id,
        "proposal_id": proposal.get("id"),
        "proposal_link": clean_text(proposal.get("proposal_link")),
        "proposal_updated_at": parse_aurora_time(proposal.get("updated_at") or proposal.get("created_at")),
    }


def array_rows(project_id: str, design_id: str, summary: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for index, array in enumerate(summary.get("arrays") or []):
        module = array.get("module") or {}
        rows.append(
            {
                "design_id": design_id,
                "project_id": project_id,
                "array_index": index,
                "module_name": clean_text(module.get("name")),
                "module_count": module.get("count"),
                "module_rating_stc_w": module.get("rating_stc"),
                "azimuth": array.get("azimuth"),
                "pitch": array.get("pitch"),
                "size_w": array.get("size"),
                "face": array.get("face"),
            }
        )
    return rows


def summary_row(project_id: str, design_id: str, summary: dict[str, Any], arrays: list[dict[str, Any]]) -> dict:
    """One row per design that condenses every array (not only the first, as the old script did).

    module_model is the model with the most modules; azimuth is that of the array with the most
    modules (the one a PM would call "the" azimuth); all models and azimuths are kept as lists."""
    counts: Counter[str] = Counter()
    for a in arrays:
        if a["module_name"] and a["module_count"]:
            counts[a["module_name"]] += int(a["module_count"])
    main_array = max(arrays, key=lambda a: (a["module_count"] or 0, -a["array_index"]), default=None)
    total_modules = sum(int(a["module_count"] or 0) for a in arrays) if arrays else None
    energy = summary.get("energy_production") or {}
    annual = energy.get("annual")
    return {
        "design_id": design_id,
        "project_id": project_id,
        "array_count": len(arrays),
        "module_count": total_modules,
        "module_model": counts.most_common(1)[0][0] if counts else None,
        "module_models": "; ".join(sorted(counts)) or None,
        "azimuth": float(main_array["azimuth"]) if main_array and main_array["azimuth"] is not None else None,
        "azimuths": "; ".join(f"{float(a['azimuth']):g}" for a in arrays if a["azimuth"] is not None) or None,
        "annual_energy_kwh": float(annual) if annual is not None else None,
        "energy_up_to_date": energy.get("up_to_date"),
        "summary_system_size_stc_w": summary.get("system_size_stc"),
    }
