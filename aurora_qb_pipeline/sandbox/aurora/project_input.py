"""Checking a project body (create and update) and the emulator's stand-in geocoder.

What Aurora documents: the project object's fields; string fields of up to 255 characters;
``null`` for an optional string is refused ("must be a string": omit the key instead); a project
needs an address (``location.property_address``) or coordinates; address only -> coordinates are
geocoded, coordinates only -> the address is reverse-geocoded, both -> kept as sent; 422 with
``{"errors": [...]}`` for unusable input.

The emulator's own choices (Aurora publishes nothing here): unknown or read-only keys are refused
(so a misspelt field shows), every problem is reported at once, ``customer_email`` must look like
an address, ``owner_id`` must be one of the tenant's users, and the geocoder below decides what
"unusable" means: an address needs a house number and street, and a locality; a US address may
name only a real state code and a 5-digit ZIP.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from typing import Any, Optional

from .errors import AuroraError
from .settings import MAGIC_ADDRESS
from .synthetic.catalogue import FOREIGN_PLACES, US_PLACES, Place

MAX_TEXT = 255
TEXT_FIELDS = ("name", "external_provider_id", "status", "customer_salutation", "customer_first_name",
               "customer_last_name", "customer_email", "customer_phone", "mailing_address")
ID_FIELDS = ("owner_id", "team_id", "partner_id")
WRITABLE = {*TEXT_FIELDS, *ID_FIELDS, "project_type", "tags", "location", "preferred_solar_modules"}
READ_ONLY = {"id", "created_at", "created_from_lead_id", "order_id", "ahj_id"}
PROJECT_TYPES = ("residential", "commercial")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH "
    "OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR".split())
_COUNTRIES = {"USA": "United States", "US": "United States", "UNITED STATES": "United States",
              "CANADA": "Canada", "AUSTRALIA": "Australia", "GERMANY": "Germany", "DEUTSCHLAND": "Germany",
              "MEXICO": "Mexico", "MÉXICO": "Mexico"}
_STANFORD = (37.42412, -122.16610)  # where the magic sandbox address geocodes


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
        return isinstance(value, str)
    except ValueError:
        return False


def check_project(body: Any, user_ids: list[str], creating: bool) -> dict[str, Any]:
    """The writable fields of a ``{"project": {...}}`` body, checked; 422 lists every problem.

    ``location`` is returned geocoded (see :func:`geocode`)."""
    if not isinstance(body, dict):
        raise AuroraError(422, 'Request body must be {"project": {...}}.')
    problems: list[str] = []
    for key in sorted(set(body) - WRITABLE):
        problems.append(f"project.{key} is read-only." if key in READ_ONLY else f"project.{key} is not a field.")
    for key in TEXT_FIELDS:
        if key in body:
            value = body[key]
            if not isinstance(value, str):
                problems.append(f"project.{key} must be a string (omit it to leave it empty).")
            elif len(value) > MAX_TEXT:
                problems.append(f"project.{key} is too long (maximum is {MAX_TEXT} characters).")
    email = body.get("customer_email")
    if isinstance(email, str) and len(email) <= MAX_TEXT and not _EMAIL.match(email):
        problems.append(f"project.customer_email is not an email address: {email!r}.")
    for key in ID_FIELDS:
        if key in body and not _is_uuid(body[key]):
            problems.append(f"project.{key} must be a UUID string.")
    if "owner_id" in body and _is_uuid(body["owner_id"]) and body["owner_id"] not in user_ids:
        problems.append(f"project.owner_id: user {body['owner_id']} not found.")
    if "project_type" in body and body["project_type"] not in PROJECT_TYPES:
        problems.append(f"project.project_type must be one of {', '.join(PROJECT_TYPES)}.")
    for key, check in (("tags", lambda v: isinstance(v, str) and 0 < len(v) <= MAX_TEXT),
                       ("preferred_solar_modules", _is_uuid)):
        if key in body and (not isinstance(body[key], list) or not all(check(v) for v in body[key])):
            problems.append(f"project.{key} must be a list of {'strings' if key == 'tags' else 'UUIDs'}.")
    location = None
    if "location" in body or creating:
        try:
            location = geocode(body.get("location"))
        except AuroraError as exc:
            problems += exc.messages
    if problems:
        raise AuroraError(422, problems)
    checked = {key: body[key] for key in body if key != "location"}
    if location is not None:
        checked["location"] = location
    return checked


# --- the stand-in geocoder ---------------------------------------------------------------------
def _hash_unit(text: str, salt: str) -> float:
    """A number in [0, 1) fixed by ``text`` (so the same address always lands in the same spot)."""
    return int(hashlib.sha256(f"{salt}:{text}".encode()).hexdigest()[:12], 16) / 16 ** 12


def _known_place(city: str, country: str) -> Optional[Place]:
    places = US_PLACES if country == "United States" else [p for group in FOREIGN_PLACES.values() for p in group]
    return next((p for p in places if p.city.lower() == city.lower() and p.country == country), None)


def parse_address(text: str) -> Optional[dict[str, Any]]:
    """Address components of a one-line address, or None when it cannot be used."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) < 2 or not re.search(r"\d", parts[0]) or not re.search(r"[^\W\d_]{2,}", parts[0]):
        return None  # needs "<number> <street>" and a locality
    street, rest = parts[0], parts[1:]
    country = _COUNTRIES.get(rest[-1].upper(), None) if len(rest) > 1 else None
    if country is not None:
        rest = rest[:-1]
    country = country or "United States"
    city, tail = rest[0], " ".join(rest[1:]).split()
    region = postal = None
    if country == "United States":
        if any(ch.isdigit() for ch in city):
            return None
        if tail and tail[0].isalpha():
            region = tail.pop(0).upper()
            if region not in _US_STATES:
                return None
        if tail:
            postal = tail.pop(0)
            if not re.fullmatch(r"\d{5}(-\d{4})?", postal) or tail:
                return None
        if region is None and postal is None:
            return None  # "12 Main St, Springfield": which Springfield?
    else:  # "10115 Berlin" or "Toronto, ON M4C 1B5": digits go to the postal code
        words = city.split() + tail
        postal = " ".join(w for w in words if any(ch.isdigit() for ch in w)) or None
        names = [w for w in city.split() if not any(ch.isdigit() for ch in w)]
        region = next((w for w in tail if w.isalpha()), None)
        city = " ".join(names)
    if not re.search(r"[^\W\d_]{2,}", city):
        return None
    return {"street_address": street, "city": city, "region": region, "postal_code": postal, "country": country}


def one_line(parts: dict[str, Any]) -> str:
    """Geocoder-style one-line address, e.g. ``434 Brannan St, San Francisco, CA 94107, USA``."""
    country = "USA" if parts["country"] == "United States" else parts["country"]
    locality = ", ".join(filter(None, (parts["city"], " ".join(filter(None, (parts["region"],
                                                                            parts["postal_code"]))))))
    return ", ".join(filter(None, (parts["street_address"], locality, country)))


def _coordinates(parts: dict[str, Any], address: str) -> tuple[float, float]:
    if address.lower() == MAGIC_ADDRESS.lower():
        return _STANFORD
    place = _known_place(parts["city"], parts["country"])
    if place is not None:
        lat, lon = place.latitude, place.longitude
    elif parts["country"] == "United States":  # somewhere in the contiguous US
        lat, lon = 30.0 + 17.0 * _hash_unit(address, "lat"), -120.0 + 45.0 * _hash_unit(address, "lon")
    else:  # near the country's first catalogue place
        first = next(p for group in FOREIGN_PLACES.values() for p in group if p.country == parts["country"])
        lat, lon = first.latitude, first.longitude
    return (round(lat + 0.1 * (_hash_unit(address, "dlat") - 0.5), 8),
            round(lon + 0.1 * (_hash_unit(address, "dlon") - 0.5), 8))


def _reverse(latitude: float, longitude: float) -> dict[str, Any]:
    places = [*US_PLACES, *(p for group in FOREIGN_PLACES.values() for p in group)]
    place = min(places, key=lambda p: math.hypot(p.latitude - latitude, p.longitude - longitude))
    key = f"{latitude:.6f},{longitude:.6f}"
    number = 1 + int(_hash_unit(key, "number") * 9998)
    street_name = place.streets[int(_hash_unit(key, "street") * len(place.streets))]
    street = f"{number} {street_name}" if place.number_first else f"{street_name} {number}"
    return {"street_address": street, "city": place.city, "region": place.region,
            "postal_code": place.postal if place.country != "United States" else f"{place.postal}00",
            "country": place.country}


def geocode(location: Any) -> dict[str, Any]:
    """The stored ``location`` for a request's ``location``; 422 when it cannot be used."""
    needs = ("project.location needs an address (location.property_address) or coordinates "
             "(location.latitude and location.longitude).")
    if location is None:
        raise AuroraError(422, needs)
    if not isinstance(location, dict):
        raise AuroraError(422, "project.location must be an object.")
    problems = [f"project.location.{key} is not a field." for key in
                sorted(set(location) - {"property_address", "latitude", "longitude"})]
    address = location.get("property_address")
    lat, lon = location.get("latitude"), location.get("longitude")
    if "property_address" in location and (not isinstance(address, str) or not address.strip()):
        problems.append("project.location.property_address must be a non-empty string.")
        address = None
    elif isinstance(address, str) and len(address) > MAX_TEXT:
        problems.append(f"project.location.property_address is too long (maximum is {MAX_TEXT} characters).")
    for key, value, bound in (("latitude", lat, 90), ("longitude", lon, 180)):
        if key in location and (isinstance(value, bool) or not isinstance(value, (int, float))
                                or not -bound <= value <= bound):
            problems.append(f"project.location.{key} must be a number between -{bound} and {bound}.")
    if ("latitude" in location) != ("longitude" in location):
        problems.append("project.location: latitude and longitude go together.")
    has_coordinates = "latitude" in location and "longitude" in location
    if not problems and address is None and not has_coordinates:
        problems.append(needs)
    parts = parse_address(address) if not problems and address else None
    if not problems and address and parts is None and not has_coordinates:
        problems.append(f"project.location.property_address: Aurora could not locate {address!r}.")
    if problems:
        raise AuroraError(422, problems)
    if address is None:  # coordinates only: reverse-geocode
        parts = _reverse(lat, lon)
        address = one_line(parts)
    elif not has_coordinates:  # address only: geocode
        address = address.strip() if address.strip().lower() == MAGIC_ADDRESS.lower() else one_line(parts)
        lat, lon = _coordinates(parts, address)
    else:  # both: kept as sent
        parts = parts or _reverse(lat, lon)
    return {"property_address": address, "latitude": lat, "longitude": lon, "property_address_components": parts}
