"""Checking site-survey uploads (electrical data, subpanels, mounting planes) as Aurora's guide
describes them, and what "required at completion" means.

From Aurora's site-survey guide: the fields of each body, their kinds (``<string>``, ``<float>``,
``<integer>``), which are enums, amperes for ratings, rafter spacing in inches or metres by
``units_of_measurement``, mounting-plane fields marked *required* (checked on upload) and
electrical fields marked *required at completion* (``main_panel_location``, ``main_bus_rating``,
``main_breaker_rating``: checked when the status is set to ``completed``), and images as
``{"url", "filename"}`` objects Aurora downloads.

GUESS (Aurora lists enums without their values): every value of :data:`ENUMS`, the text and list
limits, the numeric ranges, that ``filename`` is required beside ``url``, and the same strictness
as Aurora's project endpoint: unknown keys and JSON ``null`` are refused (omit a key to leave it
empty), every problem is reported at once. A PUT replaces what was uploaded before.
"""

from __future__ import annotations

from typing import Any, Optional
from urllib.parse import urlsplit

from ...api_facts import AURORA_SITE_SURVEY_ENUMS, AURORA_SITE_SURVEY_REQUIRED_AT_COMPLETION
from .errors import AuroraError

ENUMS = AURORA_SITE_SURVEY_ENUMS  # GUESS: values Aurora does not publish (one home: api_facts)
TEXT, FLOAT, INTEGER, ENUM, IMAGES = "string", "number", "integer", "enum", "images"
ELECTRICAL = {
    "main_panel_location": ENUM, "main_bus_rating": FLOAT, "main_breaker_rating": FLOAT, "service_type": ENUM,
    "feeder_type": ENUM, "utility_meter_location": ENUM, "existing_grounding": ENUM,
    "existing_grounding_location": TEXT, "main_panel_manufacturer": TEXT, "notes": TEXT, "images": IMAGES,
}
REQUIRED_AT_COMPLETION = AURORA_SITE_SURVEY_REQUIRED_AT_COMPLETION
SUBPANEL = {"location": TEXT, "disconnect_location": TEXT, "bus_rating": INTEGER, "disconnect_size": INTEGER,
            "notes": TEXT, "images": IMAGES}
MOUNTING_PLANE = {"units_of_measurement": ENUM, "pitch": FLOAT, "azimuth": FLOAT, "roof_type": ENUM,
                  "framing_type": ENUM, "rafter_size": ENUM, "rafter_spacing": INTEGER, "notes": TEXT,
                  "images": IMAGES}
MOUNTING_PLANE_REQUIRED = ("pitch", "azimuth", "roof_type", "framing_type", "rafter_size", "rafter_spacing")
RANGES = {  # GUESS: inclusive bounds; None = open
    "main_bus_rating": (1, 4000), "main_breaker_rating": (1, 4000), "bus_rating": (1, 4000),
    "disconnect_size": (1, 4000), "pitch": (0, 90), "azimuth": (0, 360), "rafter_spacing": (1, None),
}
MAX_TEXT, MAX_NOTES, MAX_URL, MAX_IMAGES, MAX_ITEMS = 255, 5000, 2048, 50, 100


def _number(path: str, value: Any, kind: str, problems: list[str]) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(f"{path} must be {'an integer' if kind == INTEGER else 'a number'}.")
        return None
    if kind == INTEGER and not float(value).is_integer():
        problems.append(f"{path} must be an integer, got {value!r}.")
        return None
    low, high = RANGES.get(path.rpartition(".")[2], (None, None))
    if (low is not None and value < low) or (high is not None and value > high) or (
            path.endswith("azimuth") and value >= 360):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        problems.append(f"{path} must be {bounds}{' (exclusive)' if path.endswith('azimuth') else ''}, got {value}.")
    return int(value) if kind == INTEGER else value


def _images(path: str, value: Any, problems: list[str]) -> list[dict]:
    if not isinstance(value, list) or len(value) > MAX_IMAGES:
        problems.append(f"{path} must be a list of at most {MAX_IMAGES} {{\"url\", \"filename\"}} objects.")
        return []
    images = []
    for index, image in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(image, dict):
            problems.append(f"{where} must be an object with url and filename.")
            continue
        problems += [f"{where}.{key} is not a field." for key in sorted(set(image) - {"url", "filename"})]
        url, filename = image.get("url"), image.get("filename")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or len(url) > MAX_URL:
            problems.append(f"{where}.url must be an absolute http(s) URL Aurora can download.")
        if not isinstance(filename, str) or not filename.strip() or len(filename) > MAX_TEXT:
            problems.append(f"{where}.filename must be a non-empty string of at most {MAX_TEXT} characters.")
        images.append({"url": url, "filename": filename})
    return images


def _check_object(path: str, body: Any, spec: dict[str, str], problems: list[str],
                  required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The object ``body`` checked against ``spec``; every field present (None where not sent)."""
    if not isinstance(body, dict):
        problems.append(f"{path} must be an object.")
        return {}
    problems += [f"{path}.{key} is not a field." for key in sorted(set(body) - set(spec))]
    problems += [f"{path}.{key} is required." for key in required if key not in body]
    checked: dict[str, Any] = {}
    for key, kind in spec.items():
        where = f"{path}.{key}"
        if key not in body:
            checked[key] = [] if kind == IMAGES else None
            continue
        value = body[key]
        if value is None:
            problems.append(f"{where} must not be null (omit it to leave it empty).")
        elif kind in (FLOAT, INTEGER):
            value = _number(where, value, kind, problems)
        elif kind == IMAGES:
            value = _images(where, value, problems)
        elif not isinstance(value, str):
            problems.append(f"{where} must be a string.")
        elif kind == ENUM and value not in ENUMS[key]:
            problems.append(f"{where} must be one of {', '.join(ENUMS[key])}, got {value!r}.")
        elif len(value) > (MAX_NOTES if key == "notes" else MAX_TEXT):
            problems.append(f"{where} is too long (maximum is {MAX_NOTES if key == 'notes' else MAX_TEXT} "
                            "characters).")
        checked[key] = value
    return checked


def _check_list(path: str, body: Any, spec: dict[str, str], problems: list[str],
                required: tuple[str, ...] = ()) -> list[dict]:
    if not isinstance(body, list) or len(body) > MAX_ITEMS:
        problems.append(f"{path} must be a list of at most {MAX_ITEMS} objects.")
        return []
    return [_check_object(f"{path}[{i}]", item, spec, problems, required) for i, item in enumerate(body)]


def _raise(problems: list[str]) -> None:
    if problems:
        raise AuroraError(422, problems)


def check_electrical(body: Any) -> dict[str, Any]:
    """The inner ``electrical`` object of ``PUT .../electrical``; 422 lists every problem."""
    problems: list[str] = []
    checked = _check_object("electrical", body, ELECTRICAL, problems)
    _raise(problems)
    return checked


def check_subpanels(body: Any) -> list[dict]:
    """The ``subpanels`` list of ``PUT .../electrical/subpanels``."""
    problems: list[str] = []
    checked = _check_list("subpanels", body, SUBPANEL, problems)
    _raise(problems)
    return checked


def check_mounting_planes(body: Any) -> list[dict]:
    """The ``mounting_planes`` list of ``PUT .../roofs/mounting_planes`` (required fields checked)."""
    problems: list[str] = []
    checked = _check_list("mounting_planes", body, MOUNTING_PLANE, problems, MOUNTING_PLANE_REQUIRED)
    _raise(problems)
    return checked


def completion_problems(electrical: Optional[dict]) -> list[str]:
    """What keeps a survey from being completed: each "required at completion" field missing."""
    electrical = electrical or {}
    return [f"electrical.{key} is required at completion." for key in REQUIRED_AT_COMPLETION
            if electrical.get(key) is None]


def image_refs(electrical: Optional[dict], subpanels: Optional[list], planes: Optional[list]) -> list[dict]:
    """Every image an upload names, with where it sits (``electrical``, ``subpanels[0]``, ...)."""
    refs = [{"where": "electrical", **image} for image in (electrical or {}).get("images") or []]
    for name, items in (("subpanels", subpanels), ("mounting_planes", planes)):
        for index, item in enumerate(items or []):
            refs += [{"where": f"{name}[{index}]", **image} for image in item.get("images") or []]
    return refs
