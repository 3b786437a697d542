"""What the asset catalog says about the data, beyond what each asset computes: column schemas,
column lineage, the source and sink edges, freshness policies.

* **Column schema** (``dagster/column_schema``, static definition metadata, shown in the UI's
  "Columns" before anything ran): each staged table's from its pandera schema (type, nullable,
  unique, the checks, and the Aurora field it comes from, ``metadata={"aurora": path}``); the
  export's and the Quickbase table's from the field mapping (one column per Quickbase field, with
  the staged column it is filled from).
* **Column lineage** (``dagster/column_lineage``, on each export materialization): Quickbase field
  <- staged table and column, through the mapping the export resolved
  (:func:`.quickbase.lineage.column_lineage`, a function of the resolved mapping alone, so a richer
  mapping carries over).
* **Source and sink**: the staging assets that call Aurora depend on ``aurora/tenant`` (the
  observable source asset), and ``quickbase/designs_table`` on the export, so the lineage runs
  from where data comes from to where it goes.
* **Freshness**: the staging assets and the export must materialize at least every
  :data:`FRESHNESS_FAIL_WINDOW` (warning after :data:`FRESHNESS_WARN_WINDOW`), so a missed
  nightly reconcile or a stuck sensor shows as overdue (the daemon's freshness evaluation).

:func:`annotate` applies all of it to the definitions in one place (``definitions.py``), as
Dagster's own ``map_resolved_asset_specs`` recipe does with global policies.
"""

from __future__ import annotations

import warnings
from datetime import timedelta
from typing import Optional

import dagster as dg

from ..mapping import MappingConfig, load_mapping
from ..schemas import EXPORT_CONTRACT, DesignArrays, Designs, DesignSummaries, LatestProposals, ProjectAddresses
from .aurora.source import AURORA_SOURCE_KEY
from .aurora.staging import STAGING_GROUP, staging_key
from .quickbase.assets import EXPORT_KEY
from .quickbase.lineage import source_of
from .quickbase.sink import QUICKBASE_SINK_KEY

STAGED_SCHEMAS = {"project_addresses": ProjectAddresses, "designs": Designs, "latest_proposals": LatestProposals,
                  "design_summaries": DesignSummaries, "design_arrays": DesignArrays}

FRESHNESS_WARN_WINDOW = timedelta(hours=26)
"""One nightly reconcile late (24 h between two) plus two hours of slack."""
FRESHNESS_FAIL_WINDOW = timedelta(hours=38)
"""A night missed: 24 h, plus the 12 h the largest reconcile may take at Aurora's rate limit (it
spends half the daily budget), plus two hours. Any materialization resets the clock: with the
event path working, projects change and sync all day; the reconcile runs even when nothing did."""
FRESHNESS_POLICY = dg.FreshnessPolicy.time_window(fail_window=FRESHNESS_FAIL_WINDOW, warn_window=FRESHNESS_WARN_WINDOW)

_TYPES = {"str": "string", "float64": "float", "int64": "integer", "Int64": "integer", "boolean": "boolean",
          "datetime64[us, UTC]": "timestamp (UTC)"}
_UNITS = (("_kwh", "kWh"), ("_kw", "kW"), ("_w", "W"), ("_at", "UTC"))


def _describe(name: str, column) -> str:
    if column.description:
        return column.description
    text = f"From Aurora: {column.metadata.get('aurora')}" if (column.metadata or {}).get("aurora") else ""
    unit = next((u for suffix, u in _UNITS if name.endswith(suffix)), None)
    return f"{text} ({unit})" if unit and text else text


def column_schema(schema_model) -> dg.TableSchema:
    """The Dagster table schema of a pandera model: types, descriptions, constraints."""
    return dg.TableSchema(columns=[
        dg.TableColumn(
            name=name, type=_TYPES.get(str(column.dtype), str(column.dtype)), description=_describe(name, column),
            constraints=dg.TableColumnConstraints(nullable=bool(column.nullable), unique=bool(column.unique),
                                                  other=[str(check.error) for check in column.checks if check.error]),
        )
        for name, column in schema_model.to_schema().columns.items()
    ])


def export_column_schema(mapping: Optional[MappingConfig] = None) -> dg.TableSchema:
    """The Quickbase fields the export writes (the mapping file's; the packaged one by default),
    each with the staged column it is filled from. Named as the file names them (labels, or ids)."""
    mapping = mapping or load_mapping()
    columns = []
    for source, target in mapping.fields.items():
        origin = source_of(source)
        kind = EXPORT_CONTRACT[source][1].value if source in EXPORT_CONTRACT else "text"
        merge = " The merge field: one record per design." if target == mapping.merge_field else ""
        columns.append(dg.TableColumn(
            name=str(target), type=kind,
            description=(f"Filled from {origin[0].to_user_string()}.{origin[1]}." if origin else f"From {source}.")
            + merge,
            constraints=dg.TableColumnConstraints(unique=target == mapping.merge_field)))
    return dg.TableSchema(columns=columns)


FETCHES_FROM_AURORA = {staging_key(name) for name in STAGED_SCHEMAS}


def _annotate_spec(spec: dg.AssetSpec, export_schema: dg.TableSchema) -> dg.AssetSpec:
    key = spec.key
    if key in FETCHES_FROM_AURORA:
        table = key.path[-1]
        spec = spec.replace_attributes(deps=[*spec.deps, dg.AssetDep(AURORA_SOURCE_KEY)],
                                       freshness_policy=FRESHNESS_POLICY)
        return spec.merge_attributes(metadata={"dagster/column_schema": column_schema(STAGED_SCHEMAS[table])})
    if key == EXPORT_KEY:
        spec = spec.replace_attributes(freshness_policy=FRESHNESS_POLICY)
    if key in (EXPORT_KEY, QUICKBASE_SINK_KEY):
        return spec.merge_attributes(metadata={"dagster/column_schema": export_schema})
    return spec


def annotate(defs: dg.Definitions) -> dg.Definitions:
    """``defs`` with column schemas, the source edges and freshness policies applied (see module doc)."""
    export_schema = export_column_schema()
    selection = dg.AssetSelection.groups(STAGING_GROUP) | dg.AssetSelection.assets(EXPORT_KEY, QUICKBASE_SINK_KEY)
    with warnings.catch_warnings():  # map_resolved_asset_specs is marked preview
        warnings.simplefilter("ignore")
        return defs.map_resolved_asset_specs(func=lambda spec: _annotate_spec(spec, export_schema),
                                             selection=selection)
