"""A design's pricing, as ``GET /designs/{id}/pricing`` answers it.

Shape (likely: Aurora's reference page is not readable, public integrations read these keys):
``{"pricing": {system_price, price_per_watt, pricing_method, system_price_breakdown[{item_type:
base_price|adders|discounts, item_price, subcomponents[{adder_name, quantity, item_price}]}],
adders[{adder_name, adder_value, is_discount}], pricing_by_component[{component_type, name,
quantity, manufacturer_name}]}}``. GUESS: that per-watt adders carry the system size in watts as
``quantity`` and flat ones 1, that discounts are negative in the breakdown and positive with
``is_discount`` in ``adders``, the method names ``"price per watt"`` / ``"fixed price"``, and every
price in the tenant's currency with cents.

A *plan* (method, $/W, chosen adders) is drawn once per design from an RNG seeded by the design
id (:func:`pricing_plan`); the answer is computed from the plan and the current summary on every
read (:func:`pricing_for`), so a revised design is priced by its new size.
"""

from __future__ import annotations

import random
from typing import Collection, Optional

from .catalogue import BASE_PRICE_PER_WATT, BATTERY_PRICE, DISCOUNTS, FLAT_ADDERS, PER_WATT_ADDERS

PER_WATT, FIXED = "price per watt", "fixed price"


def pricing_plan(design_id: str, project: dict, stc_w: int, quirks: Collection[str] = ()) -> dict:
    """How a salesperson priced the design (``stc_w`` big): method, base $/W, adders, discounts.

    A ``fixed_price`` design keeps its base price when the design changes later."""
    rng = random.Random(f"pricing:{design_id}")
    low, high = BASE_PRICE_PER_WATT[project["project_type"]]
    per_watt = round(rng.uniform(low, high), 2)
    adders = [(name, value) for name, value in PER_WATT_ADDERS if rng.random() < 0.3]
    flat = [(name, value) for name, value in FLAT_ADDERS if rng.random() < 0.2]
    discounts = [DISCOUNTS[0]] if "referral" in project.get("tags", []) else []
    if rng.random() < 0.1:
        discounts.append(DISCOUNTS[1])
    fixed = "fixed_price" in quirks
    return {"method": FIXED if fixed else PER_WATT, "price_per_watt": per_watt,
            "fixed_base": round(per_watt * stc_w, -2) if fixed else None,
            "per_watt_adders": adders, "flat_adders": flat, "discounts": discounts}


def _sub(name: str, quantity: float, price: float) -> dict:
    return {"adder_name": name, "quantity": quantity, "item_price": round(price, 2)}


def pricing_for(plan: dict, summary: dict) -> dict:
    """The pricing object of a design with this ``plan`` and current ``summary``."""
    stc = summary.get("system_size_stc") or 0
    fixed = plan["method"] == FIXED
    base = plan["fixed_base"] if fixed else plan["price_per_watt"] * stc
    adders = [_sub(name, stc, value * stc) for name, value in plan["per_watt_adders"]]
    adders += [_sub(name, 1, value) for name, value in plan["flat_adders"]]
    batteries = len(summary.get("batteries") or [])
    if batteries:
        adders.append(_sub("Battery Storage", batteries, BATTERY_PRICE * batteries))
    discounts = [_sub(name, 1, -value) for name, value in plan["discounts"]]
    added = round(sum(a["item_price"] for a in adders), 2)
    discounted = round(sum(d["item_price"] for d in discounts), 2)
    total = max(0.0, round(base + added + discounted, 2))
    per_watt: Optional[float] = plan["price_per_watt"]
    if fixed:  # a negotiated base; the per-watt figure is derived from it
        per_watt = round(base / stc, 4) if stc else None
    return {
        "system_price": total,
        "price_per_watt": per_watt,
        "pricing_method": plan["method"],
        "system_price_breakdown": [
            {"item_type": "base_price", "item_price": round(base, 2), "subcomponents": []},
            {"item_type": "adders", "item_price": added, "subcomponents": adders},
            {"item_type": "discounts", "item_price": discounted, "subcomponents": discounts},
        ],
        "adders": [{"adder_name": name, "adder_value": value, "is_discount": False}
                   for name, value in [*plan["per_watt_adders"], *plan["flat_adders"]]]
        + ([{"adder_name": "Battery Storage", "adder_value": BATTERY_PRICE, "is_discount": False}] if batteries else [])
        + [{"adder_name": name, "adder_value": value, "is_discount": True} for name, value in plan["discounts"]],
        "pricing_by_component": [
            {"component_type": item["component_type"], "name": item["name"], "quantity": item["quantity"],
             "manufacturer_name": item["manufacturer_name"]}
            for item in summary.get("bill_of_materials") or []
        ],
    }
