"""Deterministic synthetic Aurora tenants: projects, designs, summaries, proposals, design requests.

``generate_tenant(seed, ...)`` returns plain dicts shaped like the Aurora Sync API (2024.05)
answers, so the emulator can serve them as they are. The same seed and arguments give
byte-identical data: one ``random.Random(seed)`` drives every choice, ids are UUIDs drawn from
that RNG and every timestamp is an offset from :data:`BASE_TIME`, never the wall clock. Fields
added later (hardware beyond modules, pricing plans, :data:`FIELD_QUIRKS`) come from RNGs seeded
by the record's id or the seed, so they left every earlier value of a given seed as it was.

About ``messy_fraction`` of the projects and of the designs carry the oddities real tenants have
(see :data:`PROJECT_QUIRK_GROUPS` and :data:`DESIGN_QUIRKS`); with 20 projects or more every kind
occurs at least once. ``TenantData.quirks`` maps each kind to the ids of the projects or designs
that got it (``iso_timestamp`` applies to both), so a test can pick e.g. a design without a
default proposal.

:class:`TenantBuilder` makes single records; the emulator uses it at run time too (new projects,
designs created by accepted design requests), and :func:`revise_design` changes a design the way
a designer would (module count, azimuth) while keeping every derived number consistent.

Modules: ``catalogue`` (plain data), ``formats`` (timestamps, ids, keys), ``engineering``
(sizes, bill of materials, energy), ``equipment`` (inverters, optimizers, batteries),
``pricing`` (the pricing endpoint's answer), ``records`` (containers), ``builder`` (single
records), ``generator`` (whole tenants).
"""

from .builder import TenantBuilder
from .catalogue import (
    ALL_QUIRKS_AT,
    APP_URL,
    BASE_TIME,
    DESIGN_QUIRKS,
    DESIGN_REQUEST_STATUSES,
    DUPLICATE_DESIGN_NAMES,
    FIELD_QUIRKS,
    HISTORY,
    IMAGE_SOURCES,
    MODULE_CATALOGUE,
    PROJECT_QUIRK_GROUPS,
    REJECTION_REASONS,
    ModuleSpec,
    Place,
)
from .engineering import (
    bill_of_materials,
    energy_production,
    is_revisable,
    resimulated,
    revise_design,
    summarize,
    system_sizes,
)
from .equipment import Equipment, choose_equipment, component_id, equipment_of
from .formats import format_iso_ms, format_timestamp, parse_timestamp, random_uuid, token_for_tenant
from .generator import distribute, generate_tenant
from .pricing import pricing_for, pricing_plan
from .records import DesignBundle, TenantData

__all__ = [
    "ALL_QUIRKS_AT", "APP_URL", "BASE_TIME", "DESIGN_QUIRKS", "DESIGN_REQUEST_STATUSES", "DUPLICATE_DESIGN_NAMES",
    "FIELD_QUIRKS", "HISTORY", "IMAGE_SOURCES", "MODULE_CATALOGUE", "PROJECT_QUIRK_GROUPS", "REJECTION_REASONS",
    "DesignBundle", "Equipment", "ModuleSpec", "Place", "TenantBuilder", "TenantData", "bill_of_materials",
    "choose_equipment", "component_id", "distribute", "energy_production", "equipment_of", "format_iso_ms",
    "format_timestamp", "generate_tenant", "is_revisable", "parse_timestamp", "pricing_for", "pricing_plan",
    "random_uuid", "resimulated", "revise_design", "summarize", "system_sizes", "token_for_tenant",
]
