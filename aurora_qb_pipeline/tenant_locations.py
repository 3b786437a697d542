"""One code location per tenant for ``python_module`` workspace entries (``dagster dev``).

``aurora-qb tenants workspace`` writes one entry per tenant, each naming this module and the
tenant as its attribute::

    - python_module:
        module_name: aurora_qb_pipeline.tenant_locations
        attribute: acme
        location_name: aurora_qb_pipeline__acme

Dagster loads every location in its own process; ``getattr(module, "acme")`` hands it a lazy
``@dg.definitions`` function that builds the tenant's location from the settings (the environment
plus ``tenant="acme"``) when the location loads, never at import. A gRPC code server serves a
tenant with ``AURORA_QB_TENANT=acme`` and ``aurora_qb_pipeline.definitions`` instead.
"""

from __future__ import annotations

from typing import Any

from .tenants import NAME_PATTERN, TenantNames


def location_for(tenant: str) -> Any:
    """The lazy definitions of ``tenant``'s code location."""
    import dagster as dg

    from .definitions import build_definitions
    from .settings import Settings

    TenantNames(tenant)  # a valid name, or ValueError

    @dg.definitions
    def tenant_location() -> dg.Definitions:
        return build_definitions(Settings.from_env(tenant=tenant))

    return tenant_location


def __getattr__(name: str) -> Any:  # PEP 562: one attribute per tenant name
    import re

    if name.startswith("__") or not re.match(NAME_PATTERN, name):
        raise AttributeError(name)
    return location_for(name)
