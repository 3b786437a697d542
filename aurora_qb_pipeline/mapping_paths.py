"""Custom field mappings: any Aurora field path, checked and converted for its Quickbase field.

A custom mapping names a path into Aurora's answers as staged in ``staging.aurora_raw``
(:mod:`.raw_payloads`), rooted at one of ``project``, ``design``, ``summary``, ``proposal``,
``pricing``: ``project.customer_email``, ``summary.system_size_ac``,
``summary.energy_production.annual_offset``, ``pricing.system_price``. Paths are JMESPath
expressions (the `jmespath` library evaluates them), so aggregations over arrays come with it:
``sum(summary.arrays[*].module.count)``, ``max(summary.arrays[*].pitch)``,
``length(summary.batteries)``, ``summary.bill_of_materials[?component_type=='inverters'].name | [0]``.

What Aurora says about a field (:data:`KNOWN_PATHS`, from its API reference and public
integrations): its kind (number, text, a percentage written as text like ``"87%"``, a time, a
URL, an email) and its unit (W, kWh, $). That gives the check done before anything is written:
* static (:func:`static_problems`): the path parses, names a known root, its kind fits the
  Quickbase field type, a ``unit`` asked for is one the Aurora unit converts to;
* over the staged data (:class:`PathTally`, in the export's plan): a path none of whose values
  fits the field (every value refused) is a mapping problem, reported with every other one at once;
  a single value that does not fit refuses that record only (logged, retried on the next run).

Units: Aurora reports sizes and ratings in watts and energy in kWh; ``unit: kW`` (or ``MW``,
``MWh``, ...) on a mapping converts. Quickbase percent fields hold fractions (0.87 shows as 87%),
so ``"87%"`` goes into a percent field as 0.87 and into a numeric field as 87. Aurora's
``units_of_measurement`` (imperial / metric) affects none of the summary numbers these paths reach
(sizes, energy, angles, percentages and prices are the same in both), so no conversion hangs on it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional

import jmespath
import pandas as pd
from jmespath.exceptions import JMESPathError

ROOTS = ("project", "design", "summary", "proposal", "pricing")

# kind of a value as Aurora sends it
NUMBER, TEXT, PERCENT_TEXT, TIME, URL, EMAIL, BOOLEAN, LIST = (
    "number", "text", "percent text", "time", "url", "email", "boolean", "list")

_W = ("W", NUMBER)
KNOWN_PATHS: dict[str, tuple[Optional[str], str]] = {
    # normalised path (indices and [*] dropped) -> (Aurora's unit, kind)
    "design.system_size_stc": _W, "design.system_size_ptc": _W, "design.system_size_ac": _W,
    "summary.system_size_stc": _W, "summary.system_size_ptc": _W, "summary.system_size_ac": _W,
    "summary.arrays.size": _W, "summary.arrays.module.rating_stc": _W,
    "summary.string_inverters.rated_power": _W, "summary.storage_inverters.rated_power": _W,
    "summary.arrays.module.count": (None, NUMBER), "summary.arrays.azimuth": ("deg", NUMBER),
    "summary.arrays.pitch": ("deg", NUMBER), "summary.bill_of_materials.quantity": (None, NUMBER),
    "summary.energy_production.annual": ("kWh", NUMBER), "summary.energy_production.monthly": ("kWh", NUMBER),
    "summary.energy_production.annual_offset": ("%", PERCENT_TEXT),
    "summary.energy_production.up_to_date": (None, BOOLEAN),
    "summary.energy_production.loss_summary.percentage": ("%", NUMBER),
    "summary.arrays.shading.solar_access.annual": ("%", NUMBER),
    "pricing.system_price": ("$", NUMBER), "pricing.price_per_watt": ("$/W", NUMBER),
    "pricing.adders.adder_value": ("$", NUMBER), "pricing.system_price_breakdown.item_price": ("$", NUMBER),
    "pricing.pricing_method": (None, TEXT),
    "project.customer_email": (None, EMAIL), "project.customer_phone": (None, TEXT),
    "project.customer_first_name": (None, TEXT), "project.customer_last_name": (None, TEXT),
    "project.customer_salutation": (None, TEXT), "project.mailing_address": (None, TEXT),
    "project.name": (None, TEXT), "project.status": (None, TEXT), "project.external_provider_id": (None, TEXT),
    "project.created_at": (None, TIME), "design.created_at": (None, TIME), "summary.created_at": (None, TIME),
    "proposal.created_at": (None, TIME), "proposal.updated_at": (None, TIME),
    "proposal.proposal_link": (None, URL), "design.name": (None, TEXT),
    "project.location.latitude": ("deg", NUMBER), "project.location.longitude": ("deg", NUMBER),
    "summary.units_of_measurement": (None, TEXT),
}

CONVERSIONS: dict[str, dict[str, float]] = {
    "W": {"W": 1.0, "kW": 1e-3, "MW": 1e-6},
    "kWh": {"kWh": 1.0, "Wh": 1e3, "MWh": 1e-3},
}
"""Aurora's unit -> {unit a mapping may ask for: factor}."""

AGGREGATES = {"sum": (None, NUMBER), "avg": (None, NUMBER), "min": (None, NUMBER), "max": (None, NUMBER),
              "length": (None, NUMBER), "join": (None, TEXT), "to_string": (None, TEXT),
              "to_number": (None, NUMBER)}
"""Functions at the top of a path whose result kind is known; sum/avg/min/max keep the unit."""

# Quickbase field type -> the Aurora kinds it accepts
NUMERIC_TYPES = {"numeric", "currency", "rating", "duration"}
TEXT_TYPES = {"text", "text-multi-line", "rich-text", "text-multiple-choice", "phone"}
ACCEPTS: dict[str, set[str]] = {
    **{t: {NUMBER, PERCENT_TEXT} for t in NUMERIC_TYPES},
    "percent": {NUMBER, PERCENT_TEXT},
    **{t: {TEXT, NUMBER, PERCENT_TEXT, TIME, URL, EMAIL, LIST} for t in TEXT_TYPES},
    "email": {EMAIL, TEXT}, "url": {URL, TEXT},
    "date": {TIME}, "datetime": {TIME}, "timestamp": {TIME},
    "checkbox": {BOOLEAN},
}


def _heads(node: dict) -> set[str]:
    """The root names an expression reads (the first field of each chain at the top level)."""
    kind, children = node.get("type"), node.get("children") or []
    if kind == "field":
        return {node["value"]}
    if kind in ("subexpression", "index_expression", "projection", "value_projection", "filter_projection",
                "flatten", "pipe"):
        return _heads(children[0]) if children else set()
    if kind in ("literal", "current", "expref", "index", "slice"):
        return set()
    return set().union(*(_heads(c) for c in children if isinstance(c, dict))) if children else set()


def _normalised(path: str) -> str:
    inner = re.sub(r"^\s*[a-z_]+\((.*)\)\s*$", r"\1", path)
    return re.sub(r"\[[^\]]*\]", "", inner).replace(" ", "")


@dataclass(frozen=True)
class CustomSource:
    """A custom mapping's Aurora side: the path, compiled, and what Aurora says about it."""

    path: str
    expression: Any = field(compare=False, repr=False)
    roots: frozenset[str] = frozenset()
    aurora_unit: Optional[str] = None
    kind: Optional[str] = None  # None: not known before the data is seen
    unit: Optional[str] = None  # the unit asked for in the mapping file

    def evaluate(self, documents: Optional[dict]) -> Any:
        try:
            return self.expression.search(documents or {})
        except JMESPathError:  # e.g. sum() over text: the value does not fit, like any other
            return _Unreadable(self.path)

    @property
    def factor(self) -> float:
        return CONVERSIONS.get(self.aurora_unit or "", {}).get(self.unit or "", 1.0)


@dataclass(frozen=True)
class _Unreadable:
    path: str


def parse_source(path: str, unit: Optional[str] = None) -> tuple[Optional[CustomSource], list[str]]:
    """(the compiled path, problems with it as written)."""
    try:
        expression = jmespath.compile(path)
    except JMESPathError as exc:
        return None, [f"'{path}' is not a valid Aurora field path: {str(exc).splitlines()[0]}"]
    roots = frozenset(_heads(expression.parsed))
    problems = []
    unknown = sorted(roots - set(ROOTS))
    if unknown or not roots:
        problems.append(f"'{path}' must start with one of {', '.join(ROOTS)} (found {', '.join(unknown) or 'none'})")
    top = expression.parsed
    aurora_unit, kind = KNOWN_PATHS.get(_normalised(path), (None, None))
    if top.get("type") == "function_expression":
        fn_unit, fn_kind = AGGREGATES.get(top["value"], (None, None))
        kind = fn_kind
        aurora_unit = aurora_unit if top["value"] in ("sum", "avg", "min", "max") else fn_unit
    if unit is not None:
        allowed = CONVERSIONS.get(aurora_unit or "", {})
        if unit not in allowed:
            what = f"Aurora reports it in {aurora_unit}" if aurora_unit else "Aurora reports no unit for it"
            options = f" (choose one of {', '.join(allowed)})" if allowed else ""
            problems.append(f"'{path}': cannot convert to {unit}: {what}{options}")
    return CustomSource(path, expression, roots, aurora_unit, kind, unit), problems


def static_problems(source: CustomSource, field_type: str, label: str, fid: int) -> list[str]:
    """Problems visible before any data: the path's known kind does not fit the field type."""
    accepted = ACCEPTS.get(field_type)
    if accepted is None:
        return [f"'{source.path}' -> '{label}' ({fid}): fields of type {field_type} cannot take a custom mapping "
                f"(types that can: {', '.join(sorted(ACCEPTS))})"]
    if source.kind is not None and source.kind not in accepted:
        return [f"'{source.path}' ({source.kind}) -> '{label}' ({fid}) is of type {field_type}; "
                f"Aurora's {source.kind} fits {', '.join(sorted(t for t, k in ACCEPTS.items() if source.kind in k))}"]
    return []


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip().rstrip("%").replace(",", "").strip()
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _tidy(number: float) -> Any:
    return int(number) if number.is_integer() and abs(number) < 2**53 else round(number, 6)


def _time(value: Any) -> Optional[datetime]:
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    text = text[:-4] if text.endswith(" UTC") else text  # "YYYY-MM-DD HH:MM:SS UTC"
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError):
        return None
    if pd.isna(stamp):
        return None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime().astimezone(timezone.utc)


def convert(source: CustomSource, field_type: str, value: Any) -> tuple[Any, Optional[str]]:
    """(value as the Quickbase field takes it, or None; the reason it cannot, or None).
    A missing value (null, absent path, empty list) is None without a problem."""
    if isinstance(value, _Unreadable):
        return None, "the path cannot be evaluated on this answer (e.g. sum over text)"
    if value is None or value == [] or value == "":
        return None, None
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    if field_type in NUMERIC_TYPES or field_type == "percent":
        number = _number(value)
        if number is None:
            return None, f"{shown} is not a number"
        percent_text = isinstance(value, str) and value.strip().endswith("%")
        if field_type == "percent" and (percent_text or source.aurora_unit == "%"):
            number /= 100.0
        return _tidy(number * source.factor), None
    if field_type in ("date", "datetime", "timestamp"):
        stamp = _time(value)
        if stamp is None:
            return None, f"{shown} is not a date or time"
        return (stamp.date().isoformat() if field_type == "date" else stamp.isoformat().replace("+00:00", "Z")), None
    if field_type == "checkbox":
        return (value, None) if isinstance(value, bool) else (None, f"{shown} is not true or false")
    if isinstance(value, dict):
        return None, f"{shown} is an object, not a single value (name one of its fields, or aggregate)"
    if isinstance(value, list):
        if any(isinstance(v, (dict, list)) for v in value):
            return None, f"{shown} is a list of objects (name a field of them, or aggregate)"
        value = ", ".join(str(v) for v in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = _number(value)
        if number is None:
            return None, f"{shown} is not a finite number"
        value = _tidy(number * source.factor)
    text = str(value)
    if field_type == "url" and not re.match(r"^https?://\S+$", text):
        return None, f"{shown} is not an http(s) URL"
    if field_type == "email" and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", text):
        return None, f"{shown} is not an email address"
    return text, None


@dataclass
class PathTally:
    """How a custom path's values fared over one export's rows: a path none of whose values fit
    its field is a mapping problem, not a record's."""

    present: int = 0
    refused: int = 0
    example: str = ""

    def add(self, problem: Optional[str], had_value: bool) -> None:
        self.present += had_value
        if problem:
            self.refused += 1
            self.example = self.example or problem

    @property
    def never_fits(self) -> bool:
        return self.present > 0 and self.refused == self.present
