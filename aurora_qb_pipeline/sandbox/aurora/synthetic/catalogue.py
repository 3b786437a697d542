"""What synthetic tenants are made of: statuses, quirks, the component catalogue, places and names.

Plain data, no logic. Everything a generated record can contain comes from here, so a test can
check e.g. that every module name is in :data:`MODULE_CATALOGUE`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import NamedTuple, Optional

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
# Messy cases of the summary and pricing fields added later. They go to designs that already have
# one of DESIGN_QUIRKS (a second oddity), dealt by an RNG of their own, so the records, the quirks
# and the messy share of a tenant made from a given seed stay as they were before these existed.
FIELD_QUIRKS: tuple[str, ...] = (
    "unfamiliar_component",  # a bill-of-materials line of an undocumented component_type, sku null
    "hourly_energy",  # energy_production.hourly is the 8,760-value list instead of null
    "empty_loss_summary",  # energy_production.loss_summary is []
    "fixed_price",  # pricing_method "fixed price": price_per_watt derived, no per-watt base
)


# --- Catalogue ---------------------------------------------------------------------------------
class ModuleSpec(NamedTuple):
    manufacturer: str
    rating_stc: int  # W
    weight: float  # how often designers pick it


MODULES: dict[str, ModuleSpec] = {
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
MODULE_CATALOGUE: list[str] = list(MODULES)
MODULE_WEIGHTS = [spec.weight for spec in MODULES.values()]

MICROINVERTER = ("IQ8PLUS-72-2-US", "Enphase Energy", 290)  # name, manufacturer, W AC per unit
STRING_INVERTERS = (  # SolarEdge, W AC, smallest first
    ("SE3800H-US", 3800),
    ("SE5000H-US", 5000),
    ("SE6000H-US", 6000),
    ("SE7600H-US", 7600),
    ("SE10000H-US", 10000),
    ("SE11400H-US", 11400),
)
BATTERY = ("Powerwall 3", "Tesla")
BATTERY_KW = 11.5  # continuous output of BATTERY (integrated inverter)
AC_COUPLED_BATTERY = ("LG RESU Prime 16H", "LG Energy Solution")  # needs a storage inverter
STORAGE_INVERTER = ("Sol-Ark 12K-2P", "Sol-Ark", 9000)  # name, manufacturer, W AC
DC_OPTIMIZER = ("S440", "SolarEdge")  # one per module on optimised string designs
STORAGE_MODES = ("self_consumption", "backup", "time_based_control")  # GUESS: Aurora shows "backup"
# Bill-of-materials lines of component types Aurora's enum does not list (it says new values may
# appear at any time): (component_type, name, manufacturer or None, quantity per kW DC)
UNFAMILIAR_COMPONENTS = (
    ("racking", "IronRidge XR100 Rail 14 ft", "IronRidge", 1.75),
    ("monitoring", "Home Network Gateway", None, 0.0),
    ("electrical_balance_of_system", "Main Panel Upgrade 200A", None, 0.0),
)
# energy_production.loss_summary: GUESS of names and shape (Aurora lists the field, not its items)
FIXED_LOSSES = (("Soiling", 2.0), ("Mismatch", 2.0), ("Wiring", 2.0), ("Connections", 0.5),
                ("Light-induced degradation", 1.5), ("Nameplate rating", 1.0), ("Availability", 3.0))
# pricing (GUESS values; shape from public integrations): $/W by project type, adders per design
BASE_PRICE_PER_WATT = {"residential": (2.60, 3.40), "commercial": (1.70, 2.30)}
PER_WATT_ADDERS = (("Consultant Comp", 0.15), ("Tile Roof", 0.35), ("Critter Guard", 0.05))
FLAT_ADDERS = (("Main Panel Upgrade", 2500.0), ("Trenching", 1200.0), ("Permit Fees", 450.0))
DISCOUNTS = (("Referral Discount", 500.0), ("Seasonal Promotion", 750.0))
BATTERY_PRICE = 14000.0
PTC_RATIO = 0.915
ROOF_PITCHES = (14.0, 18.4, 22.6, 26.6, 30.3, 33.7, 36.9)
NORTH_SEASON = (0.052, 0.063, 0.083, 0.094, 0.105, 0.108, 0.110, 0.103, 0.090, 0.076, 0.063, 0.053)
SHADING_SEASON = (-6, -4, -2, 0, 2, 3, 3, 2, 0, -2, -4, -6)
COMPONENT_NAMESPACE = uuid.UUID("6f1c7e0a-6d1b-4c55-9f0e-8a3c2b1d4e5f")


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


US_STREETS = ("Brannan St", "Oak Ave", "Maple Dr", "Sunset Blvd", "Cedar Ln", "Elm St", "Lakeview Ct",
               "Mesa Verde Way", "Pine Ridge Rd", "Willow Creek Dr", "Hillcrest Ave", "Palm Canyon Dr")
US_PLACES = tuple(
    Place("United States", city, region, zip3, lat, lon, US_STREETS)
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
FOREIGN_PLACES: dict[str, tuple[Place, ...]] = {
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

FIRST_NAMES = ("Joanna", "Michael", "Sarah", "David", "Emily", "James", "Maria", "Robert", "Linda", "Daniel",
                "Priya", "Kevin", "Aisha", "Thomas", "Grace", "Luis", "Hannah", "Wei", "Olivia", "Marcus")
LAST_NAMES = ("Test", "Johnson", "Garcia", "Miller", "Davis", "Martinez", "Anderson", "Taylor", "Thomas",
               "Nguyen", "Patel", "Walker", "Kim", "Lopez", "Clark", "Lewis", "Young", "Hall", "Chen", "Wright")
UNICODE_NAMES = (  # (first, last, project name)
    ("José", "Núñez", "José Núñez"),
    ("Zoë", "Brontë", "Zoë Brontë"),
    ("太郎", "山田", "山田太郎"),
    ("Lars", "Ørsted", "Lars Ørsted"),
)
QUOTED_NAMES = (("Patrick", "O'Brien"), ('Robert "Bob"', "Smith"), ("Dana", "D'Angelo"))
PROJECT_STATUSES = ("New Lead", "Site Survey Scheduled", "Design Ready", "Proposal Sent", "Project Sold", None)
MILESTONES = ("proposal", "sold", "installed")
DESIGN_LABELS = ("", "", "", " - Max Offset", " - Budget", " - With Battery", " (rev B)")

