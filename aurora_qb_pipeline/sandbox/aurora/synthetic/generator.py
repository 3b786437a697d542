"""Whole synthetic tenants from a seed, with their messy cases dealt out."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any, Optional, Sequence

from .builder import TenantBuilder
from .catalogue import (
    ALL_QUIRKS_AT,
    BASE_TIME,
    DESIGN_QUIRKS,
    DUPLICATE_DESIGN_NAMES,
    FIELD_QUIRKS,
    HISTORY,
    PROJECT_QUIRK_GROUPS,
)
from .formats import random_uuid, token_for_tenant
from .records import TenantData


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


def _field_quirks(rng: random.Random, design_quirks: dict[int, set[str]]) -> None:
    """Give :data:`FIELD_QUIRKS` to designs that already have a design quirk, each kind to the
    designs it can apply to (simulation oddities need simulation results), round-robin; with
    :data:`ALL_QUIRKS_AT` projects or more every kind lands somewhere."""
    messy = sorted(design_quirks)
    rng.shuffle(messy)
    unsimulated = {"no_energy_production", "empty_arrays"}
    for position, kind in enumerate(FIELD_QUIRKS):
        needs_energy = kind in ("hourly_energy", "empty_loss_summary")
        fits = [d for d in messy if not (needs_energy and design_quirks[d] & unsimulated)]
        for index in fits[position % len(FIELD_QUIRKS)::len(FIELD_QUIRKS)] or fits[:1]:
            design_quirks[index].add(kind)


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
    _field_quirks(random.Random(f"field-quirks:{seed}"), design_quirks)

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
            if request["design_id"] is not None:  # the accepted request made this design
                tenant.summaries[request["design_id"]]["design_request_id"] = request["id"]
    return tenant
