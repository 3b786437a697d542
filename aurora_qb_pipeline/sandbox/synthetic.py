"""Compatibility home of the synthetic Aurora tenant generator, which now lives in
:mod:`aurora_qb_pipeline.sandbox.aurora.synthetic` (split by concern); these names stay
importable from here."""

from .aurora.synthetic import (
    DESIGN_QUIRKS,
    DESIGN_REQUEST_STATUSES,
    DUPLICATE_DESIGN_NAMES,
    MODULE_CATALOGUE,
    PROJECT_QUIRK_GROUPS,
    DesignBundle,
    TenantBuilder,
    TenantData,
    format_timestamp,
    generate_tenant,
    parse_timestamp,
)

__all__ = ["DESIGN_QUIRKS", "DESIGN_REQUEST_STATUSES", "DUPLICATE_DESIGN_NAMES", "MODULE_CATALOGUE",
           "PROJECT_QUIRK_GROUPS", "DesignBundle", "TenantBuilder", "TenantData", "format_timestamp",
           "generate_tenant", "parse_timestamp"]
