"""Deterministic synthetic Aurora tenants: projects, designs, summaries, proposals, design requests.

``generate_tenant(seed, ...)`` returns plain dicts shaped like the Aurora Sync API (2024.05)
answers, so the emulator can serve them as they are. The same seed and arguments give
byte-identical data: one ``random.Random(seed)`` drives every choice, ids are UUIDs drawn from
that RNG and every timestamp is an offset from :data:`BASE_TIME`, never the wall clock.

About ``messy_fraction`` of the projects and of the designs carry the oddities real tenants have
(see :data:`PROJECT_QUIRK_GROUPS` and :data:`DESIGN_QUIRKS`); with 20 projects or more every kind
occurs at least once. ``TenantData.quirks`` maps each kind to the ids of the projects or designs
that got it (``iso_timestamp`` applies to both), so a test can pick e.g. a design without a
default proposal.

:class:`TenantBuilder` makes single records; the emulator uses it at run time too (new projects,
designs created by accepted design requests), and :func:`revise_design` changes a design the way
a designer would (module count, azimuth) while keeping every derived number consistent.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import unicodedata
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Collection, NamedTuple, Optional, Sequence

BASE_TIME = datetime(2024, 1, 1, tzinfo=timezone.utc)
HISTORY = timedelta(days=540)  # generated projects are created within this span after BASE_TIME
APP_URL = "https://v2-sandbox.aurorasolar.com"

DESIGN_REQUEST_STATUSES = ("submitted", "designer_rejected", "designer_completed", "accepted")
IMAGE_SOURCES = ("Nearmap", "Google", "EagleView")
REJECTION_REASONS = (
    "Imagery is outdated or obscured by trees.",
    "Pin location is ambiguous: several buildings on the parcel.",
    "Commercial roof: out of scope for the design service.",
)

# --- Quirks: the messy cases a generated tenant contains ---------------------------------------
# A messy project gets at most one quirk from each group (None = nothing from that group).
PROJECT_QUIRK_GROUPS: tuple[tuple[Optional[str], ...], ...] = (
    ("null_address_parts", "address_canada", "address_australia", "address_germany", "address_mexico"),
    ("unicode_name", "quoted_name", "whitespace_name", None, None),
    ("iso_timestamp", None),
)
DUPLICATE_DESIGN_NAMES = "duplicate_design_names"  # project quirk; needs a project with 2+ designs
# A messy design gets exactly one of these.
DESIGN_QUIRKS: tuple[str, ...] = (
    "empty_arrays",
    "array_without_module",
    "multiple_arrays",
    "no_energy_production",
    "no_default_proposal",
    "milestone_string",
    "iso_timestamp",
)
ALL_QUIRKS_AT = 20  # with at least this many projects every quirk kind occurs at least once


# --- Catalogue ---------------------------------------------------------------------------------
class ModuleSpec(NamedTuple):
    manufacturer: str
    rating_stc: int  # W
    weight: float  # how often designers pick it


_MODULES: dict[str, ModuleSpec] = {
    "Q.PEAK DUO BLK ML-G10+ 400": ModuleSpec("Qcells", 400, 30),
    "REC Alpha Pure-R 410": ModuleSpec("REC Group", 410, 12),
    "Meyer Burger White 400": ModuleSpec("Meyer Burger", 400, 6),
    "Maxeon 6 AC 435": ModuleSpec("Maxeon Solar Technologies", 435, 8),
    "Panasonic EverVolt EVPV410H": ModuleSpec("Panasonic", 410, 6),
    "Canadian Solar HiKu6 CS6R-400MS": ModuleSpec("Canadian Solar", 400, 10),
    "Jinko Tiger Neo JKM425N-54HL4-B": ModuleSpec("JinkoSolar", 425, 10),
    "LONGi Hi-MO 6 LR5-54HTH-420M": ModuleSpec("LONGi", 420, 8),
    "Silfab Elite SIL-410 BG": ModuleSpec("Silfab Solar", 410, 6),
    "SNPM GxB 300": ModuleSpec("Sunpreme", 300, 1),  # discontinued model, rare on purpose
}
MODULE_CATALOGUE: list[str] = list(_MODULES)
_MODULE_WEIGHTS = [spec.weight for spec in _MODULES.values()]

_MICROINVERTER = ("IQ8PLUS-72-2-US", "Enphase Energy", 290)  # name, manufacturer, W AC per unit
_STRING_INVERTERS = (  # SolarEdge, W AC, smallest first
    ("SE3800H-US", 3800),
    ("SE5000H-US", 5000),
    ("SE6000H-US", 6000),
    ("SE7600H-US", 7600),
    ("SE10000H-US", 10000),
    ("SE11400H-US", 11400),
)
_BATTERY = ("Powerwall 3", "Tesla")
_PTC_RATIO = 0.915
_ROOF_PITCHES = (14.0, 18.4, 22.6, 26.6, 30.3, 33.7, 36.9)
_NORTH_SEASON = (0.052, 0.063, 0.083, 0.094, 0.105, 0.108, 0.110, 0.103, 0.090, 0.076, 0.063, 0.053)
_SHADING_SEASON = (-6, -4, -2, 0, 2, 3, 3, 2, 0, -2, -4, -6)
_COMPONENT_NAMESPACE = uuid.UUID("6f1c7e0a-6d1b-4c55-9f0e-8a3c2b1d4e5f")


# --- Places and people -------------------------------------------------------------------------
class Place(NamedTuple):
    country: str  # full name, as Aurora writes it
    city: str
    region: Optional[str]  # state / province code
    postal: str  # US: 3-digit ZIP prefix; elsewhere the full code
    latitude: float
    longitude: float
    streets: tuple[str, ...]
    number_first: bool = True  # "12 Main St" vs "Hauptstraße 12"


_US_STREETS = ("Brannan St", "Oak Ave", "Maple Dr", "Sunset Blvd", "Cedar Ln", "Elm St", "Lakeview Ct",
               "Mesa Verde Way", "Pine Ridge Rd", "Willow Creek Dr", "Hillcrest Ave", "Palm Canyon Dr")
_US_PLACES = tuple(
    Place("United States", city, region, zip3, lat, lon, _US_STREETS)
    for city, region, zip3, lat, lon in (
        ("San Francisco", "CA", "941", 37.7749, -122.4194),
        ("Los Angeles", "CA", "900", 34.0522, -118.2437),
        ("San Diego", "CA", "921", 32.7157, -117.1611),
        ("Sacramento", "CA", "958", 38.5816, -121.4944),
        ("Phoenix", "AZ", "850", 33.4484, -112.0740),
        ("Tucson", "AZ", "857", 32.2226, -110.9747),
        ("Las Vegas", "NV", "891", 36.1699, -115.1398),
        ("Denver", "CO", "802", 39.7392, -104.9903),
        ("Austin", "TX", "787", 30.2672, -97.7431),
        ("Houston", "TX", "770", 29.7604, -95.3698),
        ("Miami", "FL", "331", 25.7617, -80.1918),
        ("Tampa", "FL", "336", 27.9506, -82.4572),
        ("Salt Lake City", "UT", "841", 40.7608, -111.8910),
        ("Boston", "MA", "021", 42.3601, -71.0589),
        ("Newark", "NJ", "071", 40.7357, -74.1724),
        ("Brooklyn", "NY", "112", 40.6782, -73.9442),
        ("Raleigh", "NC", "276", 35.7796, -78.6382),
        ("Atlanta", "GA", "303", 33.7490, -84.3880),
        ("Portland", "OR", "972", 45.5152, -122.6784),
        ("Honolulu", "HI", "968", 21.3069, -157.8583),
        ("Albuquerque", "NM", "871", 35.0844, -106.6504),
    )
)
_FOREIGN_PLACES: dict[str, tuple[Place, ...]] = {
    "address_canada": (
        Place("Canada", "Toronto", "ON", "M4C 1B5", 43.6895, -79.3000, ("Queen St E", "Danforth Ave")),
        Place("Canada", "Vancouver", "BC", "V5K 0A1", 49.2827, -123.1207, ("Commercial Dr", "W 4th Ave")),
    ),
    "address_australia": (
        Place("Australia", "Sydney", "NSW", "2000", -33.8688, 151.2093, ("George St", "Pitt St")),
        Place("Australia", "Newcastle", "NSW", "2300", -32.9283, 151.7817, ("Hunter St", "Darby St")),
    ),
    "address_germany": (
        Place("Germany", "Berlin", None, "10115", 52.5200, 13.4050, ("Hauptstraße", "Invalidenstraße"), False),
        Place("Germany", "München", "BY", "80331", 48.1351, 11.5820, ("Sendlinger Straße", "Tal"), False),
    ),
    "address_mexico": (
        Place("Mexico", "Monterrey", "NLE", "64000", 25.6866, -100.3161, ("Av. Constitución", "Calle Zaragoza"),
              False),
        Place("Mexico", "Ciudad de México", "CMX", "06600", 19.4326, -99.1332, ("Av. Insurgentes Sur",), False),
    ),
}

_FIRST_NAMES = ("Joanna", "Michael", "Sarah", "David", "Emily", "James", "Maria", "Robert", "Linda", "Daniel",
                "Priya", "Kevin", "Aisha", "Thomas", "Grace", "Luis", "Hannah", "Wei", "Olivia", "Marcus")
_LAST_NAMES = ("Test", "Johnson", "Garcia", "Miller", "Davis", "Martinez", "Anderson", "Taylor", "Thomas",
               "Nguyen", "Patel", "Walker", "Kim", "Lopez", "Clark", "Lewis", "Young", "Hall", "Chen", "Wright")
_UNICODE_NAMES = (  # (first, last, project name)
    ("José", "Núñez", "José Núñez"),
    ("Zoë", "Brontë", "Zoë Brontë"),
    ("太郎", "山田", "山田太郎"),
    ("Lars", "Ørsted", "Lars Ørsted"),
)
_QUOTED_NAMES = (("Patrick", "O'Brien"), ('Robert "Bob"', "Smith"), ("Dana", "D'Angelo"))
_PROJECT_STATUSES = ("New Lead", "Site Survey Scheduled", "Design Ready", "Proposal Sent", "Project Sold", None)
_MILESTONES = ("proposal", "sold", "installed")
_DESIGN_LABELS = ("", "", "", " - Max Offset", " - Budget", " - With Battery", " (rev B)")


# --- Small pure helpers ------------------------------------------------------------------------
def format_timestamp(moment: datetime, iso: bool = False) -> str:
    """Aurora's usual "YYYY-MM-DD HH:MM:SS UTC", or ISO-8601 "YYYY-MM-DDTHH:MM:SSZ"."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ" if iso else "%Y-%m-%d %H:%M:%S UTC")


def parse_timestamp(text: str) -> datetime:
    """Inverse of :func:`format_timestamp`; accepts both formats (and any ISO-8601 offset)."""
    text = text.strip()
    if text.endswith(" UTC"):
        text = text[:-4]
    elif text.endswith("Z"):
        text = text[:-1]
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def token_for_tenant(tenant_id: str) -> str:
    """The sandbox API key of a generated tenant: ``sk_sand_`` + 32 hex characters from its id."""
    return "sk_sand_" + hashlib.sha256(f"aurora-sandbox-key:{tenant_id}".encode()).hexdigest()[:32]


def random_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def distribute(rng: random.Random, buckets: int, total: int, empty_share: float = 0.1) -> list[int]:
    """Spread ``total`` items unevenly over ``buckets``; about ``empty_share`` get none; sums exactly."""
    if buckets <= 0:
        return []
    weights = [0.0 if rng.random() < empty_share else rng.uniform(0.3, 1.7) for _ in range(buckets)]
    if not any(weights):
        weights = [1.0] * buckets
    counts = [0] * buckets
    for index in rng.choices(range(buckets), weights=weights, k=total):
        counts[index] += 1
    return counts


def _deal(rng: random.Random, items: Sequence[Any], kinds: Sequence[Optional[str]], out: dict) -> None:
    """Hand ``kinds`` out round-robin over the shuffled ``items`` (None means: nothing)."""
    order = list(items)
    rng.shuffle(order)
    for position, item in enumerate(order):
        kind = kinds[position % len(kinds)]
        if kind:
            out.setdefault(item, set()).add(kind)


def _messy_count(population: int, fraction: float, at_least: int) -> int:
    return min(population, max(round(population * fraction), at_least))


def _annual_consumption_kwh(project_id: str) -> int:
    """A household's yearly consumption, fixed per project so energy offsets can be recomputed."""
    return 6000 + int(hashlib.sha256(project_id.encode()).hexdigest()[:8], 16) % 9000


def _ascii_slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum())


def _one_line_address(street: Optional[str], city: str, region: Optional[str], postal: Optional[str],
                      place: Place) -> str:
    """Geocoder-style one-line address; parts that are None are left out."""
    def join(*parts: Optional[str], sep: str) -> str:
        return sep.join(p for p in parts if p)

    country = "USA" if place.country == "United States" else place.country
    if place.number_first:
        locality = join(city, join(region, postal, sep=" "), sep=", ")
    else:
        locality = join(join(postal, city, sep=" "), region, sep=", ")
    return join(street, locality, country, sep=", ")


def _component(name: str, component_type: str, quantity: int, manufacturer: str) -> dict:
    """A bill-of-materials line; the id is the catalogue id, the same for a component everywhere."""
    return {
        "id": str(uuid.uuid5(_COMPONENT_NAMESPACE, name)),
        "name": name,
        "component_type": component_type,
        "quantity": quantity,
        "sku": "".join(ch if ch.isalnum() else "-" for ch in name).upper(),
        "manufacturer_name": manufacturer,
    }


def _string_inverters(stc_w: int) -> tuple[str, int, int]:
    """(model, quantity, W AC each): the smallest inverter covering 80% of the DC size."""
    target = stc_w * 0.8
    for model, rating in _STRING_INVERTERS:
        if rating >= target:
            return model, 1, rating
    model, rating = _STRING_INVERTERS[-1]
    return model, math.ceil(target / rating), rating


def _module_counts(arrays: Sequence[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for array in arrays:
        module = array.get("module")
        if module:
            counts[module["name"]] = counts.get(module["name"], 0) + module["count"]
    return counts


def system_sizes(arrays: Sequence[dict], inverter: str) -> dict[str, int]:
    """system_size_stc/ptc/ac in watts, derived from the arrays and the inverter kind."""
    stc = sum(a["module"]["count"] * a["module"]["rating_stc"] for a in arrays if a.get("module"))
    modules = sum(_module_counts(arrays).values())
    if not modules:
        ac = 0
    elif inverter == "micro":
        ac = modules * _MICROINVERTER[2]
    else:
        _, quantity, rating = _string_inverters(stc)
        ac = min(quantity * rating, round(stc * 0.96))
    return {"system_size_stc": stc, "system_size_ptc": round(stc * _PTC_RATIO), "system_size_ac": ac}


def bill_of_materials(arrays: Sequence[dict], inverter: str, battery: bool) -> list[dict]:
    counts = _module_counts(arrays)
    items = [_component(name, "modules", count, _MODULES[name].manufacturer) for name, count in counts.items()]
    if not items:
        return items
    if inverter == "micro":
        name, manufacturer, _ = _MICROINVERTER
        items.append(_component(name, "microinverters", sum(counts.values()), manufacturer))
    else:
        model, quantity, _ = _string_inverters(sum(a["size"] for a in arrays if a.get("module")))
        items.append(_component(model, "inverters", quantity, "SolarEdge"))
    if battery:
        name, manufacturer = _BATTERY
        items.append(_component(name, "batteries", 1, manufacturer))
    return items


def energy_production(arrays: Sequence[dict], project: dict) -> dict:
    """A plausible simulation result (kWh) from array sizes, azimuths, shading and latitude."""
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
    season = _NORTH_SEASON if latitude >= 0 else _NORTH_SEASON[6:] + _NORTH_SEASON[:6]
    monthly = [round(annual * share, 1) for share in season]
    total = round(sum(monthly), 1)
    offset = round(100 * total / _annual_consumption_kwh(project["id"]))
    return {"up_to_date": True, "annual": total, "annual_offset": f"{offset}%", "monthly": monthly}


def summarize(design: dict, project: dict, arrays: list[dict], inverter: str, battery: bool,
              simulated: bool) -> tuple[dict, dict]:
    """(design with fresh system sizes, its design summary); every number derives from ``arrays``."""
    sizes = system_sizes(arrays, inverter)
    design = {**design, **sizes}
    summary = {
        "design_id": design["id"],
        "project_id": design["project_id"],
        "external_provider_id": design["external_provider_id"],
        "created_at": design["created_at"],
        **sizes,
        "bill_of_materials": bill_of_materials(arrays, inverter, battery),
        "arrays": arrays,
    }
    if simulated and arrays:
        summary["energy_production"] = energy_production(arrays, project)
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
    kinds = {item["component_type"] for item in summary["bill_of_materials"]}
    inverter = "micro" if "microinverters" in kinds else "string"
    return summarize(design, project, arrays, inverter, "batteries" in kinds, "energy_production" in summary)


# --- Data containers ---------------------------------------------------------------------------
@dataclass
class DesignBundle:
    """One design as the API serves it: list/retrieve item, summary and default proposal."""

    design: dict
    summary: dict
    proposal: Optional[dict]


@dataclass
class TenantData:
    """Everything one Aurora tenant holds, keyed by id, in API shape."""

    tenant_id: str
    token: str
    proposal_template_ids: list[str]
    user_ids: list[str]
    projects: dict[str, dict] = field(default_factory=dict)
    designs: dict[str, dict] = field(default_factory=dict)  # design id -> design (with project_id)
    summaries: dict[str, dict] = field(default_factory=dict)  # design id -> summary
    proposals: dict[str, dict] = field(default_factory=dict)  # design id -> default proposal
    design_requests: dict[str, dict] = field(default_factory=dict)
    project_design_ids: dict[str, list[str]] = field(default_factory=dict)  # in creation order
    quirks: dict[str, list[str]] = field(default_factory=dict)  # quirk kind -> project/design ids

    def add_project(self, project: dict) -> None:
        self.projects[project["id"]] = project
        self.project_design_ids[project["id"]] = []

    def add_design(self, bundle: DesignBundle) -> None:
        design_id = bundle.design["id"]
        self.designs[design_id] = bundle.design
        self.summaries[design_id] = bundle.summary
        if bundle.proposal is not None:
            self.proposals[design_id] = bundle.proposal
        self.project_design_ids[bundle.design["project_id"]].append(design_id)

    def add_design_request(self, request: dict) -> None:
        self.design_requests[request["id"]] = request

    def designs_of(self, project_id: str) -> list[dict]:
        return [self.designs[d] for d in self.project_design_ids[project_id]]

    def note(self, kinds: Collection[str], record_id: str) -> None:
        for kind in sorted(kinds):
            self.quirks.setdefault(kind, []).append(record_id)

    def to_json(self) -> str:
        """Canonical JSON of the whole tenant (what "byte-identical" is measured on)."""
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)


# --- Builder -----------------------------------------------------------------------------------
class TenantBuilder:
    """Makes realistic records for one tenant from one RNG (all randomness goes through it)."""

    def __init__(self, rng: random.Random, tenant: TenantData) -> None:
        self.rng = rng
        self.tenant = tenant

    def uuid(self) -> str:
        return random_uuid(self.rng)

    def _hex(self, length: int) -> str:
        return f"{self.rng.getrandbits(4 * length):0{length}x}"

    # projects
    def _place(self, quirks: Collection[str]) -> Place:
        for kind, places in _FOREIGN_PLACES.items():
            if kind in quirks:
                return self.rng.choice(places)
        return self.rng.choice(_US_PLACES)

    def _location(self, quirks: Collection[str]) -> dict:
        rng = self.rng
        place = self._place(quirks)
        number = str(rng.randint(1, 9999) if place.number_first else rng.randint(1, 200))
        street_name = rng.choice(place.streets)
        street = f"{number} {street_name}" if place.number_first else f"{street_name} {number}"
        postal = f"{place.postal}{rng.randint(0, 99):02d}" if place.country == "United States" else place.postal
        if "null_address_parts" in quirks:
            street, postal = rng.choice(((None, postal), (street, None), (None, None)))
        return {
            "property_address": _one_line_address(street, place.city, place.region, postal, place),
            "latitude": round(place.latitude + rng.uniform(-0.05, 0.05), 8),
            "longitude": round(place.longitude + rng.uniform(-0.05, 0.05), 8),
            "property_address_components": {
                "street_address": street,
                "city": place.city,
                "region": place.region,
                "postal_code": postal,
                "country": place.country,
            },
        }

    def _customer(self, quirks: Collection[str]) -> tuple[str, str, str]:
        """(first name, last name, project name)."""
        rng = self.rng
        if "unicode_name" in quirks:
            return rng.choice(_UNICODE_NAMES)
        if "quoted_name" in quirks:
            first, last = rng.choice(_QUOTED_NAMES)
        else:
            first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        if "whitespace_name" in quirks:
            return f"  {first} ", f"{last}  ", f" {first}   {last}  "
        return first, last, f"{last} Residence" if rng.random() < 0.15 else f"{first} {last}"

    def project(self, created: datetime, quirks: Collection[str] = ()) -> dict:
        rng = self.rng
        project_id = self.uuid()
        first, last, name = self._customer(quirks)
        location = self._location(quirks)
        email_name = ".".join(filter(None, (_ascii_slug(first), _ascii_slug(last))))
        email_name = email_name or f"customer{rng.randint(1, 99999)}"
        self.tenant.note(quirks, project_id)
        return {
            "id": project_id,
            "name": name,
            "external_provider_id": f"CRM-{rng.randrange(10**6):06d}" if rng.random() < 0.8 else None,
            "status": rng.choice(_PROJECT_STATUSES),
            "project_type": "commercial" if rng.random() < 0.08 else "residential",
            "tags": rng.choice(([], [], ["referral"], ["battery"], ["referral", "battery"])),
            "customer_salutation": rng.choice((None, None, "Mr.", "Ms.", "Dr.")),
            "customer_first_name": first,
            "customer_last_name": last,
            "customer_email": f"{email_name}@example.com" if rng.random() < 0.9 else None,
            "customer_phone": (f"+1 {rng.randint(201, 989)}-555-{rng.randint(0, 9999):04d}"
                               if rng.random() < 0.85 else None),
            "mailing_address": location["property_address"] if rng.random() < 0.7 else None,
            "owner_id": rng.choice(self.tenant.user_ids),
            "team_id": None,
            "partner_id": None,
            "location": location,
            "created_at": format_timestamp(created, iso="iso_timestamp" in quirks),
            "created_from_lead_id": None,
            "order_id": None,
            "ahj_id": self.uuid() if rng.random() < 0.5 else None,
            "preferred_solar_modules": [],
        }

    # designs
    def design_name(self, index: int) -> str:
        return f"Design {index + 1}{self.rng.choice(_DESIGN_LABELS)}"

    def _array(self, module_name: str, count: int, azimuth: float, face: int, ground: bool) -> dict:
        rng = self.rng
        rating = _MODULES[module_name].rating_stc
        orientation = rng.choice(("portrait", "portrait", "landscape"))
        access = rng.randint(72, 99)
        return {
            "size": count * rating,
            "azimuth": round(azimuth % 360, 1),
            "pitch": 25.0 if ground else rng.choice(_ROOF_PITCHES),
            "orientation": orientation,
            "face": face,
            "ground_mounted": ground,
            "module": {"name": module_name, "count": count, "rating_stc": rating, "orientation": orientation},
            "shading": {"solar_access": {
                "annual": access,
                "monthly": [max(0, min(100, access + delta)) for delta in _SHADING_SEASON],
            }},
        }

    def _arrays(self, project: dict, multiple_models: bool) -> list[dict]:
        rng = self.rng
        commercial = project["project_type"] == "commercial"
        total = rng.randint(80, 240) if commercial else rng.randint(12, 40)
        facing = 0.0 if project["location"]["latitude"] < 0 else 180.0
        base = facing + rng.uniform(-60, 60)
        if multiple_models:
            models = rng.sample(MODULE_CATALOGUE, rng.randint(2, 3))
            azimuths = [base, base + 90, base - 90]
        else:
            model = rng.choices(MODULE_CATALOGUE, weights=_MODULE_WEIGHTS)[0]
            models = [model] * (1 if rng.random() < 0.65 else 2)
            azimuths = [base, base + rng.choice((90, -90, 180))]
        cuts = sorted(rng.sample(range(1, total), len(models) - 1))
        counts = [b - a for a, b in zip([0, *cuts], [*cuts, total])]
        ground = not commercial and rng.random() < 0.04
        return [self._array(model, count, azimuth, face, ground)
                for face, (model, count, azimuth) in enumerate(zip(models, counts, azimuths), start=1)]

    def _milestone(self, created: datetime, as_string: bool) -> Any:
        rng = self.rng
        if as_string:
            return rng.choice(_MILESTONES)
        if rng.random() < 0.5:
            return None
        return {
            "id": self.uuid(),
            "milestone": rng.choice(_MILESTONES),
            "notes": rng.choice((None, "", "Customer signed at kitchen table.")),
            "recorded_at": format_timestamp(created + timedelta(days=rng.randint(0, 30)), iso=True),
        }

    def proposal(self, design_created: datetime) -> dict:
        rng = self.rng
        created = design_created + timedelta(minutes=rng.randint(5, 600))
        return {
            "id": self.uuid(),
            "created_at": format_timestamp(created, iso=True),
            "updated_at": format_timestamp(created + timedelta(minutes=rng.randint(0, 14 * 24 * 60)), iso=True),
            "proposal_template_id": rng.choice(self.tenant.proposal_template_ids),
            "proposal_link": f"{APP_URL}/e-proposal/{self._hex(24)}",
        }

    def design(self, project: dict, created: datetime, index: int, quirks: Collection[str] = (),
               name: Optional[str] = None) -> DesignBundle:
        """A design of ``project`` created at ``created``; ``index`` is its position in the project."""
        rng = self.rng
        design_id = self.uuid()
        arrays = [] if "empty_arrays" in quirks else self._arrays(project, "multiple_arrays" in quirks)
        inverter = "string" if project["project_type"] == "commercial" or rng.random() < 0.35 else "micro"
        battery = rng.random() < 0.2
        design = {
            "id": design_id,
            "project_id": project["id"],
            "name": name if name is not None else self.design_name(index),
            "external_provider_id": project["external_provider_id"],
            "created_at": format_timestamp(created, iso="iso_timestamp" in quirks),
            "milestone": self._milestone(created, "milestone_string" in quirks),
        }
        design, summary = summarize(design, project, arrays, inverter, battery,
                                    simulated="no_energy_production" not in quirks)
        if "array_without_module" in quirks:
            del summary["arrays"][0]["module"]  # sizes and bill of materials still count it
        proposal = None if "no_default_proposal" in quirks else self.proposal(created)
        self.tenant.note(quirks, design_id)
        return DesignBundle(design, summary, proposal)

    # design requests
    def design_request(self, project_id: str, status: str, submitted: datetime, *,
                       finished: Optional[datetime] = None, reviewed: Optional[datetime] = None,
                       design_id: Optional[str] = None, image_src: Optional[str] = None,
                       reason: Optional[str] = None) -> dict:
        """A design request whose timestamps match ``status``.

        ``finished`` is when the designer completed or rejected it, ``reviewed`` when it was accepted."""
        completed = status in ("designer_completed", "accepted")
        rejected = status == "designer_rejected"

        def stamp(moment: Optional[datetime], applies: bool) -> Optional[str]:
            return format_timestamp(moment) if applies and moment else None

        return {
            "id": self.uuid(),
            "project_id": project_id,
            "design_id": design_id if status == "accepted" else None,
            "status": status,
            "image_src": image_src or self.rng.choice(IMAGE_SOURCES),
            "submission_time": format_timestamp(submitted),
            "completed_at": stamp(finished, completed),
            "reviewed_at": stamp(reviewed, status == "accepted"),
            "designer_rejected_at": stamp(finished, rejected),
            "rejection_reason": (reason or self.rng.choice(REJECTION_REASONS)) if rejected else None,
        }

    def initial_design_requests(self, project: dict, designs: Sequence[dict]) -> list[dict]:
        """The history of a generated project: none (40%), or one or two requests; when the project
        has designs, the first request often was accepted and created its first design."""
        rng = self.rng
        if rng.random() < 0.4:
            return []
        project_created = parse_timestamp(project["created_at"])
        requests = []
        for position in range(1 if rng.random() < 0.8 else 2):
            if position == 0 and designs and rng.random() < 0.6:
                reviewed = parse_timestamp(designs[0]["created_at"])
                span = reviewed - project_created
                submitted = project_created + span * rng.uniform(0.0, 0.3)
                finished = submitted + (reviewed - submitted) * rng.uniform(0.2, 0.9)
                requests.append(self.design_request(project["id"], "accepted", submitted, finished=finished,
                                                    reviewed=reviewed, design_id=designs[0]["id"]))
                continue
            status = rng.choice(("submitted", "designer_completed", "designer_rejected"))
            submitted = project_created + timedelta(minutes=rng.randint(5, 3 * 24 * 60))
            finished = submitted + timedelta(minutes=rng.randint(60, 8 * 60))
            requests.append(self.design_request(project["id"], status, submitted, finished=finished))
        return requests


# --- Generation --------------------------------------------------------------------------------
def _project_quirks(rng: random.Random, design_counts: list[int], fraction: float,
                    enforce: bool) -> dict[int, set[str]]:
    """Project index -> quirk kinds, for about ``fraction`` of the projects."""
    projects = len(design_counts)
    at_least = max(len(group) for group in PROJECT_QUIRK_GROUPS) if enforce else 0
    chosen = rng.sample(range(projects), _messy_count(projects, fraction, at_least))
    with_two = [i for i, n in enumerate(design_counts) if n >= 2]
    if enforce and chosen and with_two and not any(design_counts[i] >= 2 for i in chosen):
        chosen[0] = rng.choice(with_two)  # so duplicate design names can occur
    quirks: dict[int, set[str]] = {i: set() for i in chosen}
    for group in PROJECT_QUIRK_GROUPS:
        _deal(rng, chosen, group, quirks)
    _deal(rng, [i for i in chosen if design_counts[i] >= 2], (DUPLICATE_DESIGN_NAMES, None), quirks)
    return quirks


def generate_tenant(seed: int = 0, projects: int = 20, designs_per_project: float = 2.5,
                    messy_fraction: float = 0.15, tenant_id: Optional[str] = None) -> TenantData:
    """A whole synthetic tenant; same arguments => byte-identical :meth:`TenantData.to_json`.

    The tenant holds exactly ``round(projects * designs_per_project)`` designs, spread unevenly
    (some projects have none). Its API key is :func:`token_for_tenant` of its id."""
    if projects < 0 or designs_per_project < 0 or not 0 <= messy_fraction <= 1:
        raise ValueError("projects and designs_per_project must be >= 0, messy_fraction within [0, 1]")
    rng = random.Random(seed)
    tenant_id = tenant_id or random_uuid(rng)
    tenant = TenantData(
        tenant_id=tenant_id,
        token=token_for_tenant(tenant_id),
        proposal_template_ids=[random_uuid(rng) for _ in range(3)],
        user_ids=[random_uuid(rng) for _ in range(5)],
    )
    builder = TenantBuilder(rng, tenant)
    design_counts = distribute(rng, projects, round(projects * designs_per_project))
    enforce = projects >= ALL_QUIRKS_AT
    project_quirks = _project_quirks(rng, design_counts, messy_fraction, enforce)
    total_designs = sum(design_counts)
    design_quirks: dict[int, set[str]] = {}
    messy_designs = _messy_count(total_designs, messy_fraction, len(DESIGN_QUIRKS) if enforce else 0)
    _deal(rng, rng.sample(range(total_designs), messy_designs), DESIGN_QUIRKS, design_quirks)

    design_number = 0
    for index, count in enumerate(design_counts):
        quirks = project_quirks.get(index, set())
        created = BASE_TIME + timedelta(seconds=rng.randrange(int(HISTORY.total_seconds())))
        project = builder.project(created, quirks)
        tenant.add_project(project)
        when = created
        for position in range(count):
            when += timedelta(minutes=rng.randint(30, 14 * 24 * 60))
            duplicate = DUPLICATE_DESIGN_NAMES in quirks and position == 1
            name = tenant.designs_of(project["id"])[0]["name"] if duplicate else None
            quirks_of_design = design_quirks.get(design_number, ())
            tenant.add_design(builder.design(project, when, position, quirks_of_design, name))
            design_number += 1
        for request in builder.initial_design_requests(project, tenant.designs_of(project["id"])):
            tenant.add_design_request(request)
    return tenant
