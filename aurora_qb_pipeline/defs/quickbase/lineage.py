"""Column lineage of the export: Quickbase field <- the staged column it is filled from.

A function of the resolved mapping alone (:func:`column_lineage`), so when the mapping learns
to take values from elsewhere (any Aurora path), passing a ``source`` that says where those come
from is all it takes. Recorded as ``dagster/column_lineage`` on every export materialization.
"""

from __future__ import annotations

from typing import Callable, Optional

import dagster as dg

from ...mapping import ResolvedMapping, field_lineage
from ...schemas import EXPORT_CONTRACT
from ...tenants import TenantNames
from ..aurora.staging import staging_key


def source_of(column: str) -> Optional[tuple[dg.AssetKey, str]]:
    """(staged asset, column) an export column is filled from; None when it is not a staged column."""
    found = EXPORT_CONTRACT.get(column)
    return (staging_key(found[0]), column) if found else None


def column_lineage(
    mapping: ResolvedMapping, source: Optional[Callable[[str], Optional[tuple[dg.AssetKey, str]]]] = None,
    names: Optional[TenantNames] = None,
) -> dg.TableColumnLineage:
    """Quickbase field (its label) <- the staged column(s) it is filled from, for a resolved
    mapping. By default from :func:`...mapping.field_lineage`: a staged column, or for a custom
    mapping the staging asset that keeps the raw answer and the Aurora path in it. ``source`` says
    where a mapping source comes from instead (fields it gives None for are left out). ``names``: the
    tenant's location (its keys), many tenants."""
    deps: dict[str, list[dg.TableColumnDep]] = {}
    if source is None:
        for label, sources in field_lineage(mapping).items():
            deps[label] = [dg.TableColumnDep(asset_key=staging_key(s.asset, names), column_name=s.column)
                           for s in sources]
        return dg.TableColumnLineage(deps_by_column=deps)
    for target in mapping.targets:
        origin = source(target.source)
        if origin is not None:
            deps.setdefault(target.label, []).append(dg.TableColumnDep(asset_key=origin[0], column_name=origin[1]))
    return dg.TableColumnLineage(deps_by_column=deps)
