"""The engineering of a design: sizes, bill of materials and energy, all derived from the arrays.

Every number in a summary follows from its arrays and its :class:`~.equipment.Equipment`, so a
revised design (:func:`revise_design`) stays consistent: system sizes in watts, bill-of-materials
quantities, hardware lists, energy in kWh with its loss summary.

``units_of_measurement`` (GUESS of place and values: Aurora says API answers carry it and vary
with the customer's preference, but shows no example) is ``"metric"`` for projects outside the
United States and ``"imperial"`` there; the numbers of a summary (W, kWh, degrees, percent) do not
depend on it.
"""

from __future__ import annotations

import copy
import hashlib
import math
import random
import uuid
from typing import Optional, Sequence

from .catalogue import (
    COMPONENT_NAMESPACE,
    FIXED_LOSSES,
    MICROINVERTER,
    MODULES,
    NORTH_SEASON,
    PTC_RATIO,
    STRING_INVERTERS,
)
from .equipment import Equipment, decorate, equipment_lines, equipment_of, hardware_fields, scale_unfamiliar


def annual_consumption_kwh(project_id: str) -> int:
    """A household's yearly consumption, fixed per project so energy offsets can be recomputed."""
    return 6000 + int(hashlib.sha256(project_id.encode()).hexdigest()[:8], 16) % 9000


def component(name: str, component_type: str, quantity: int, manufacturer: str) -> dict:
    """A bill-of-materials line; the id is the catalogue id, the same for a component everywhere."""
    return {
        "id": str(uuid.uuid5(COMPONENT_NAMESPACE, name)),
        "name": name,
        "component_type": component_type,
        "quantity": quantity,
        "sku": "".join(ch if ch.isalnum() else "-" for ch in name).upper(),
        "manufacturer_name": manufacturer,
    }


def string_inverters(stc_w: int) -> tuple[str, int, int]:
    """(model, quantity, W AC each): the smallest inverter covering 80% of the DC size."""
    target = stc_w * 0.8
    for model, rating in STRING_INVERTERS:
        if rating >= target:
            return model, 1, rating
    model, rating = STRING_INVERTERS[-1]
    return model, math.ceil(target / rating), rating


def module_counts(arrays: Sequence[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for array in arrays:
        module = array.get("module")
        if module:
            counts[module["name"]] = counts.get(module["name"], 0) + module["count"]
    return counts


def system_sizes(arrays: Sequence[dict], inverter: str) -> dict[str, int]:
    """system_size_stc/ptc/ac in watts, derived from the arrays and the inverter kind."""
    stc = sum(a["module"]["count"] * a["module"]["rating_stc"] for a in arrays if a.get("module"))
    modules = sum(module_counts(arrays).values())
    if not modules:
        ac = 0
    elif inverter == "micro":
        ac = modules * MICROINVERTER[2]
    else:
        _, quantity, rating = string_inverters(stc)
        ac = min(quantity * rating, round(stc * 0.96))
    return {"system_size_stc": stc, "system_size_ptc": round(stc * PTC_RATIO), "system_size_ac": ac}


def bill_of_materials(arrays: Sequence[dict], equipment: Equipment) -> list[dict]:
    """One line per component model; lines of undocumented types come last, kept as they are."""
    counts = module_counts(arrays)
    items = [component(name, "modules", count, MODULES[name].manufacturer) for name, count in counts.items()]
    stc = sum(a["size"] for a in arrays if a.get("module"))
    extra = scale_unfamiliar(equipment.unfamiliar, stc)
    if not items:
        return extra
    if equipment.inverter == "micro":
        name, manufacturer, _ = MICROINVERTER
        items.append(component(name, "microinverters", sum(counts.values()), manufacturer))
    else:
        model, quantity, _ = string_inverters(stc)
        items.append(component(model, "inverters", quantity, "SolarEdge"))
    return items + equipment_lines(equipment, sum(counts.values()), component) + extra


def loss_summary(arrays: Sequence[dict], project: dict) -> list[dict]:
    """GUESS of shape: ``[{"name", "percentage"}]``; shading from the arrays' solar access, snow
    from latitude, the rest fixed (Aurora lists ``loss_summary`` without its items)."""
    sized = [(a["size"], a["shading"]["solar_access"]["annual"]) for a in arrays if a.get("module")]
    total = sum(size for size, _ in sized)
    access = sum(size * value for size, value in sized) / total if total else 100.0
    snow = max(0.0, (abs(project["location"]["latitude"]) - 38.0) * 0.4)
    losses = [("Shading", 100.0 - access), ("Snow", snow), *FIXED_LOSSES]
    return [{"name": name, "percentage": round(value, 1)} for name, value in losses]


def hourly_profile(monthly: Sequence[float]) -> list[float]:
    """8,760 hourly values (kWh) spreading each month's energy over daylight hours."""
    days = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    shape = [max(0.0, math.sin(math.pi * (hour - 6) / 12)) for hour in range(24)]
    weight = sum(shape)
    hourly = []
    for month, energy in enumerate(monthly):
        day = [round(energy / days[month] * s / weight, 3) for s in shape]
        hourly += day * days[month]
    return hourly


def energy_production(arrays: Sequence[dict], project: dict, hourly: bool = False, losses: bool = True) -> dict:
    """A plausible simulation result (kWh) from array sizes, azimuths, shading and latitude.

    ``hourly``: the 8,760 hourly values instead of null; ``losses`` False: an empty loss summary."""
    latitude = project["location"]["latitude"]
    specific_yield = max(900.0, 1750.0 - 12.0 * max(0.0, abs(latitude) - 20.0))  # kWh per kWp
    facing = 0.0 if latitude < 0 else 180.0
    annual = 0.0
    for array in arrays:
        if not array.get("module"):
            continue
        deviation = math.radians(array["azimuth"] - facing)
        access = array["shading"]["solar_access"]["annual"] / 100.0
        annual += array["size"] / 1000.0 * specific_yield * (0.8 + 0.2 * math.cos(deviation)) * access
    season = NORTH_SEASON if latitude >= 0 else NORTH_SEASON[6:] + NORTH_SEASON[:6]
    monthly = [round(annual * share, 1) for share in season]
    total = round(sum(monthly), 1)
    offset = round(100 * total / annual_consumption_kwh(project["id"]))
    return {"up_to_date": True, "annual": total, "annual_offset": f"{offset}%", "monthly": monthly,
            "hourly": hourly_profile(monthly) if hourly else None,
            "loss_summary": loss_summary(arrays, project) if losses else []}


def resimulated(summary: dict, project: dict) -> dict:
    """A fresh ``energy_production`` for ``summary``, keeping its odd parts (hourly, empty losses)."""
    equipment = equipment_of(summary)
    return energy_production(summary["arrays"], project, equipment.hourly, equipment.losses)


def units_of_measurement(project: dict) -> str:
    country = (project["location"].get("property_address_components") or {}).get("country")
    return "imperial" if country in (None, "United States") else "metric"


def summarize(design: dict, project: dict, arrays: list[dict], equipment: Equipment,
              simulated: bool, design_request_id: Optional[str] = None) -> tuple[dict, dict]:
    """(design with fresh system sizes, its design summary); every number derives from ``arrays``
    and ``equipment``."""
    sizes = system_sizes(arrays, equipment.inverter)
    stc = sum(a["size"] for a in arrays if a.get("module"))
    strings = string_inverters(stc) if equipment.inverter == "string" and module_counts(arrays) else None
    arrays = decorate(arrays, equipment, strings[1] if strings else 1, project["location"]["latitude"])
    design = {**design, **sizes}
    summary = {
        "design_id": design["id"],
        "design_request_id": design_request_id,
        "project_id": design["project_id"],
        "external_provider_id": design["external_provider_id"],
        "created_at": design["created_at"],
        **sizes,
        "units_of_measurement": units_of_measurement(project),
        "bill_of_materials": bill_of_materials(arrays, equipment),
        "arrays": arrays,
        **hardware_fields(equipment, strings),
    }
    if simulated and arrays:
        summary["energy_production"] = energy_production(arrays, project, equipment.hourly, equipment.losses)
    return design, summary


def is_revisable(summary: dict) -> bool:
    """True when every array has a module, so a revision keeps the summary consistent."""
    arrays = summary.get("arrays") or []
    return bool(arrays) and all(a.get("module") for a in arrays)


def revise_design(rng: random.Random, design: dict, summary: dict, project: dict) -> tuple[dict, dict]:
    """A designer's edit: change one array's module count and/or azimuth; returns new dicts.

    System sizes, bill of materials and (if simulated) energy production are recomputed."""
    arrays = copy.deepcopy(summary["arrays"])
    array = rng.choice(arrays)
    change = rng.choice(("modules", "azimuth", "both"))
    if change != "azimuth":
        module = array["module"]
        module["count"] = max(1, module["count"] + rng.choice((-4, -2, -1, 1, 2, 3, 5)))
        array["size"] = module["count"] * module["rating_stc"]
    if change != "modules":
        array["azimuth"] = round((array["azimuth"] + rng.choice((-25, -15, 15, 25))) % 360, 1)
    return summarize(design, project, arrays, equipment_of(summary), "energy_production" in summary,
                     summary.get("design_request_id"))

