"""What a design is built from beyond its modules: inverters, optimizers, batteries, odd extras.

:class:`Equipment` is everything about a design's hardware (and two messy switches of its
simulation output) that the arrays alone do not say. It is drawn from an RNG of its own, seeded
from the design id (:func:`choose_equipment`), so adding it left every value the tenant RNG draws
unchanged. :func:`equipment_of` reads it back from a summary, so a revised or re-simulated design
keeps its hardware.

The summary fields this feeds follow Aurora's published summary example (``string_inverters``,
``storage_inverters``, ``batteries``, ``storage_selected_operating_mode``, per array
``configuration``, ``microinverter``, ``dc_optimizer``, ``string_inverter.index``,
``module.id``, ``shading.total_solar_resource_fraction``). GUESS: the ``configuration`` strings
(Aurora's example shows only ``"string inverter"``), the operating-mode names other than
``backup``, and that ids of inverters and batteries are the component's catalogue id (the
bill-of-materials id), shared by every unit of one model.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from typing import Any, Collection, Optional, Sequence

from .catalogue import (
    AC_COUPLED_BATTERY,
    BATTERY,
    COMPONENT_NAMESPACE,
    DC_OPTIMIZER,
    MICROINVERTER,
    STORAGE_INVERTER,
    STORAGE_MODES,
    UNFAMILIAR_COMPONENTS,
)

INTEGRATED, AC_COUPLED = "integrated", "ac_coupled"
CONFIGURATIONS = {  # GUESS: Aurora's example shows "string inverter" only
    ("micro", False): "microinverter",
    ("string", False): "string inverter",
    ("string", True): "string inverter with dc optimizers",
}
GENERATED_TYPES = frozenset({"modules", "microinverters", "inverters", "batteries", "dc_optimizers"})


def component_id(name: str) -> str:
    """The catalogue id of a component: the same for one model everywhere, stable across runs."""
    return str(uuid.uuid5(COMPONENT_NAMESPACE, name))


@dataclass(frozen=True)
class Equipment:
    """A design's hardware and the odd parts of its simulation output."""

    inverter: str  # "micro" | "string"
    optimizers: bool = False  # DC optimizers on a string design
    battery: Optional[str] = None  # None | INTEGRATED (hybrid battery) | AC_COUPLED (+ storage inverter)
    batteries: int = 0
    operating_mode: Optional[str] = None
    unfamiliar: tuple[dict, ...] = ()  # bill-of-materials lines of undocumented component types
    hourly: bool = False  # energy_production.hourly carries 8,760 values instead of null
    losses: bool = True  # energy_production.loss_summary is filled (False: [])


def choose_equipment(design_id: str, inverter: str, battery: bool, quirks: Collection[str] = ()) -> Equipment:
    """The hardware of a new design. ``inverter`` and ``battery`` come from the tenant RNG (as they
    always did); everything else from an RNG seeded by the design id."""
    rng = random.Random(f"equipment:{design_id}")
    optimizers = inverter == "string" and rng.random() < 0.7
    kind, count, mode = None, 0, None
    if battery:
        roll = rng.random()
        kind = AC_COUPLED if roll < 0.1 else INTEGRATED
        count = 2 if 0.1 <= roll < 0.2 else 1
        mode = rng.choice(STORAGE_MODES)
    unfamiliar: tuple[dict, ...] = ()
    if "unfamiliar_component" in quirks:
        component_type, name, manufacturer, _ = rng.choice(UNFAMILIAR_COMPONENTS)
        unfamiliar = ({"id": component_id(name), "name": name, "component_type": component_type, "quantity": 1,
                       "sku": None, "manufacturer_name": manufacturer},)
    return Equipment(inverter, optimizers, kind, count, mode, unfamiliar,
                     hourly="hourly_energy" in quirks, losses="empty_loss_summary" not in quirks)


def equipment_of(summary: dict) -> Equipment:
    """The :class:`Equipment` a summary was made with (inverse of what :func:`decorate` writes)."""
    bom = summary.get("bill_of_materials") or []
    kinds = {item["component_type"] for item in bom}
    batteries = summary.get("batteries") or []
    energy = summary.get("energy_production") or {}
    kind = None
    if batteries:
        kind = INTEGRATED if batteries[0]["has_integrated_inverter"] else AC_COUPLED
    return Equipment(
        inverter="micro" if "microinverters" in kinds else "string",
        optimizers="dc_optimizers" in kinds,
        battery=kind,
        batteries=len(batteries),
        operating_mode=summary.get("storage_selected_operating_mode"),
        unfamiliar=tuple(item for item in bom if item["component_type"] not in GENERATED_TYPES),
        hourly=isinstance(energy.get("hourly"), list),
        losses=energy.get("loss_summary") != [],
    )


def scale_unfamiliar(lines: Sequence[dict], stc_w: int) -> list[dict]:
    """Undocumented lines, with quantities that scale with the system (rails: per kW, fractional)."""
    per_kw = {name: rate for _, name, _, rate in UNFAMILIAR_COMPONENTS}
    scaled = []
    for line in lines:
        rate = per_kw.get(line["name"], 0.0)
        scaled.append({**line, "quantity": round(rate * stc_w / 1000, 1) if rate and stc_w else line["quantity"]})
    return scaled


def equipment_lines(equipment: Equipment, modules: int, component) -> list[dict]:
    """Bill-of-materials lines for optimizers, batteries and a storage inverter (``component``
    builds one line: name, type, quantity, manufacturer)."""
    lines = []
    if equipment.optimizers and modules:
        lines.append(component(DC_OPTIMIZER[0], "dc_optimizers", modules, DC_OPTIMIZER[1]))
    if equipment.battery == INTEGRATED:
        lines.append(component(BATTERY[0], "batteries", equipment.batteries, BATTERY[1]))
    elif equipment.battery == AC_COUPLED:
        lines.append(component(AC_COUPLED_BATTERY[0], "batteries", equipment.batteries, AC_COUPLED_BATTERY[1]))
        lines.append(component(STORAGE_INVERTER[0], "inverters", 1, STORAGE_INVERTER[1]))
    return lines


def hardware_fields(equipment: Equipment, string_model: Optional[tuple[str, int, int]]) -> dict[str, Any]:
    """The summary's ``string_inverters``, ``storage_inverters``, ``batteries`` and operating mode.

    ``string_model`` is (model, quantity, W AC) of a string design's inverters, None otherwise."""
    strings = []
    if string_model is not None:
        model, quantity, rating = string_model
        strings = [{"id": component_id(model), "name": model, "rated_power": rating} for _ in range(quantity)]
    storage, batteries = [], []
    if equipment.battery == AC_COUPLED:
        name, _, rating = STORAGE_INVERTER
        storage = [{"id": component_id(name), "name": name, "rated_power": rating}]
    if equipment.battery is not None:
        name = BATTERY[0] if equipment.battery == INTEGRATED else AC_COUPLED_BATTERY[0]
        integrated = equipment.battery == INTEGRATED
        batteries = [{"id": component_id(name), "name": name, "has_integrated_inverter": integrated}
                     for _ in range(equipment.batteries)]
    return {"string_inverters": strings, "storage_inverters": storage, "batteries": batteries,
            "storage_selected_operating_mode": equipment.operating_mode}


def decorate(arrays: list[dict], equipment: Equipment, strings: int, latitude: float) -> list[dict]:
    """Arrays with the per-array hardware fields set from ``equipment`` (new dicts; idempotent).

    ``strings`` is how many string inverters the design has: arrays are wired to them in turn."""
    facing = 0.0 if latitude < 0 else 180.0
    configuration = CONFIGURATIONS[(equipment.inverter, equipment.optimizers and equipment.inverter == "string")]
    decorated = []
    for index, array in enumerate(arrays):
        array = {key: value for key, value in array.items()
                 if key not in ("microinverter", "dc_optimizer", "string_inverter")}
        count = array["module"]["count"] if array.get("module") else 0
        if array.get("module"):
            array["module"] = {**array["module"], "id": component_id(array["module"]["name"])}
        array["configuration"] = configuration
        if equipment.inverter == "micro":
            name, _, rating = MICROINVERTER
            array["microinverter"] = {"id": component_id(name), "name": name, "count": count, "rated_power": rating}
        else:
            array["string_inverter"] = {"index": index % max(strings, 1) + 1}
            if equipment.optimizers:
                array["dc_optimizer"] = {"id": component_id(DC_OPTIMIZER[0]), "name": DC_OPTIMIZER[0], "count": count}
        shading = array["shading"]
        access = shading["solar_access"]["annual"]
        factor = 0.8 + 0.2 * math.cos(math.radians(array["azimuth"] - facing))
        array["shading"] = {**shading, "total_solar_resource_fraction": {"annual": round(access * factor, 1)}}
        decorated.append(array)
    return decorated
