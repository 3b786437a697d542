"""Hypothesis strategies: Aurora payloads built from the documented shapes, and their mutations.

The shapes follow Aurora's documentation as README and the client docstrings describe it:
projects (``location.property_address_components``, ``"YYYY-MM-DD HH:MM:SS UTC"`` times), design
lists (sizes in watts, ``milestone`` an object, a string or null), design summaries (``arrays``
with ``module {name, count, rating_stc}``, ``energy_production`` only after a simulation) and
default proposals. Unmutated, every payload is valid and must stage without a quarantine row.

Mutations then break them the way real data breaks: a value replaced by junk of any JSON kind
(words, "2,550", units, booleans, NaN, Infinity, huge and tiny numbers, surrogates, long text,
deep nesting), a key removed, a value wrapped in a list or turned into JSON text; and, for whole
answers, a non-JSON body, a bare array, a missing or null envelope key, the wrong container.
"""

from __future__ import annotations

import copy
import json
import math
from datetime import datetime
from typing import Any, Iterator

from hypothesis import strategies as st

MODULES = ["Q.PEAK DUO BLK ML-G10+ 400", "REC Alpha Pure 405", "SunPower Maxeon 3 420", "Canadian Solar HiKu6 445"]

ids = st.uuids().map(str)
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
maybe_text = st.none() | text
aurora_time = st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2030, 12, 31))
timestamp = aurora_time.map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S UTC")) | aurora_time.map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ"))


def finite(low: float, high: float) -> st.SearchStrategy:
    return st.floats(low, high, allow_nan=False, allow_infinity=False) | st.integers(int(low), int(high))


project = st.fixed_dictionaries({
    "id": ids,
    "name": maybe_text,
    "customer_first_name": maybe_text,
    "customer_last_name": maybe_text,
    "status": maybe_text,
    "project_type": st.sampled_from(["residential", "commercial"]),
    "location": st.fixed_dictionaries({
        "property_address": text,
        "latitude": finite(-90, 90),
        "longitude": finite(-180, 180),
        "property_address_components": st.fixed_dictionaries({
            "street_address": maybe_text,
            "city": maybe_text,
            "region": st.sampled_from(["CA", "TX", "ON", "NSW", "Bavaria", None]),
            "postal_code": st.none() | st.from_regex(r"[0-9]{5}", fullmatch=True),
            "country": st.sampled_from(["United States", "Canada", "Australia", "Germany", "USA", None]),
        }),
    }),
    "created_at": timestamp,
})

milestone = st.none() | st.sampled_from(["sold", "proposal", "design"]) | st.fixed_dictionaries(
    {"id": ids, "milestone": st.sampled_from(["sold", "proposal"]), "notes": maybe_text, "recorded_at": timestamp})

design = st.fixed_dictionaries({
    "id": ids,
    "name": maybe_text,
    "created_at": timestamp,
    "system_size_stc": finite(0, 50_000_000),
    "milestone": milestone,
})

array = st.fixed_dictionaries({
    "size": finite(0, 1_000_000),
    "azimuth": st.floats(0, 359.9, allow_nan=False),
    "pitch": finite(0, 90),
    "face": st.integers(0, 60),
    "ground_mounted": st.booleans(),
    "module": st.fixed_dictionaries({
        "name": st.sampled_from(MODULES), "count": st.integers(0, 400), "rating_stc": finite(100, 700),
        "orientation": st.sampled_from(["portrait", "landscape"]),
    }),
})

summary = st.fixed_dictionaries(
    {"system_size_stc": finite(0, 50_000_000), "arrays": st.lists(array, max_size=4)},
    optional={"energy_production": st.fixed_dictionaries({
        "up_to_date": st.booleans(), "annual": finite(0, 10_000_000), "annual_offset": st.just("87%"),
        "monthly": st.lists(finite(0, 1_000_000), min_size=12, max_size=12)})},
)

proposal = st.fixed_dictionaries({
    "id": ids, "created_at": timestamp, "updated_at": timestamp, "proposal_template_id": ids,
    "proposal_link": st.from_regex(r"[A-Za-z0-9]{8,20}", fullmatch=True).map(
        lambda token: f"https://v2.aurorasolar.com/e-proposal/{token}"),
})


def nest(depth: int) -> Any:
    value: Any = 1
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


junk = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -0.0, 2**63, -(2**63) - 1, 10**40,
                     10**400, -(10**400)]),
    st.sampled_from(["abc", "2,550", "7200 W", "north", "twelve", "", "   ", "NaN", "Infinity", "-Infinity",
                     "1e999", "0x1F", "\u0661\u0662\u0663", "12.5.3", "true", "null", "[]", "[1, 2]", "{}",
                     "2024-13-45 99:99:99 UTC", "2024-05-01T12:30:00+14:00", "0001-01-01T00:00:00+05:00",
                     " 7200 ", "-3.5e2", "javascript:alert(1)", "=HYPERLINK(\"x\")", "\x00", "a\u202eb"]),
    text,
    text.map(lambda s: s + "\ud800"), st.just("\udcff lone"),
    st.integers(256, 5000).map(lambda n: "x" * n),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    st.integers(2, 200).map(nest),
)
"""Any value JSON (as Python's json module reads it) can hold, biased to what breaks pipelines."""


def paths(doc: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path to a value inside ``doc`` (keys and list indexes), the root excluded."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        yield prefix + (key,)
        yield from paths(value, prefix + (key,))


OPERATIONS = ("replace", "replace", "replace", "delete", "wrap", "as_text")


def mutate(doc: Any, path: tuple, operation: str, value: Any) -> Any:
    """A copy of ``doc`` with ``operation`` applied at ``path``."""
    doc = copy.deepcopy(doc)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if operation == "delete":
        del parent[key]
    elif operation == "wrap":
        parent[key] = [parent[key]]
    elif operation == "as_text":
        try:
            parent[key] = json.dumps(parent[key], allow_nan=True)
        except (TypeError, ValueError, RecursionError):
            parent[key] = str(parent[key])
    else:
        parent[key] = value
    return doc


@st.composite
def mutated(draw, base: st.SearchStrategy, most: int = 3) -> Any:
    """A document of ``base`` with up to ``most`` mutations inside it (the root keeps its kind)."""
    doc = draw(base)
    for _ in range(draw(st.integers(0, most))):
        inside = list(paths(doc))
        if not inside:
            break
        doc = mutate(doc, draw(st.sampled_from(inside)), draw(st.sampled_from(OPERATIONS)), draw(junk))
    return doc


ANSWER_FAULTS = ("not_json", "bare_array", "missing_key", "null", "wrong_container", "html")


def broken_answer(key: str, answer: dict, fault: str) -> Any:
    """A whole answer of the shape ``{key: value}`` broken by ``fault``; bytes for non-JSON bodies."""
    value = answer[key]
    if fault == "not_json":
        return b"Service temporarily unavailable"
    if fault == "html":
        return b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>"
    if fault == "bare_array":
        return value if isinstance(value, list) else [value]
    if fault == "missing_key":
        return {"data": value}
    if fault == "null":
        return {key: None}
    return {key: [value] if isinstance(value, dict) else {"0": value}}
