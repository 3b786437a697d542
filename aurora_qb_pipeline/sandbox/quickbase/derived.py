"""Derived fields, computed when a record is read: lookups, summaries, formulas.

* A lookup field (child table) shows a field of the parent record its reference field points at.
* A summary field (parent table) accumulates a field of the child records that point at it:
  COUNT, SUM, AVG, MIN, MAX (the sandbox subset), optionally filtered by a query.
* A formula field evaluates its formula (see :mod:`.formula`) over the record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from .fields import RECORD_ID, QbField
from .formula import FormulaContext, evaluate
from .query import compile_where
from .values import coerce

if TYPE_CHECKING:
    from .table import QbTable

SUMMARY_FUNCTIONS = frozenset({"COUNT", "SUM", "AVG", "MIN", "MAX"})


def _summary(table: "QbTable", target: QbField, rid: int) -> Any:
    props = target.properties
    child = table.tables.get(props.get("summaryTableId", ""))
    if child is None:
        return None
    reference = props.get("summaryReferenceFieldId")
    rows = [row for row in child.rows.values() if row.get(reference) == rid]
    if props.get("summaryQuery"):
        predicate = compile_where(props["summaryQuery"], child.field_types())
        rows = [row for row in rows if predicate(row)]
    function = props.get("summaryFunction")
    if function == "COUNT":
        return len(rows)
    values = [
        float(v) for row in rows if isinstance(v := row.get(props.get("summaryTargetFieldId")), (int, float))
    ]
    if not values:
        return 0 if function == "SUM" else None
    result = {"SUM": sum, "MIN": min, "MAX": max, "AVG": lambda xs: sum(xs) / len(xs)}[function](values)
    return int(result) if float(result).is_integer() else result


def _lookup(table: "QbTable", target: QbField, row: dict[int, Any], depth: int) -> Any:
    reference = target.properties.get("lookupReferenceFieldId")
    relationship = next((r for r in table.relationships if r.id == reference), None)
    parent = table.tables.get(relationship.parent_table_id) if relationship else None
    parent_row = parent.rows.get(row.get(reference)) if parent else None
    if parent_row is None:
        return None
    return view(parent, parent_row, depth + 1).get(target.properties.get("lookupTargetFieldId"))


def _as_type(field_type: str, value: Any) -> Any:
    try:
        return coerce(field_type, value)
    except ValueError:
        return None


def view(table: "QbTable", row: dict[int, Any], depth: int = 0) -> dict[int, Any]:
    """The record with its derived fields filled in (``row`` itself if the table has none)."""
    derived = [f for f in table.fields.values() if f.derived]
    if not derived or depth > 3:  # a lookup of a lookup of ...: deep enough for any real app
        return row
    values = dict(row)
    for target in derived:
        if target.mode == "lookup":
            values[target.id] = _lookup(table, target, row, depth)
        elif target.mode == "summary":
            values[target.id] = _summary(table, target, row.get(RECORD_ID))
    app = table.app_id
    for target in sorted((f for f in derived if f.mode == "formula"), key=lambda f: f.id):
        context = FormulaContext(values, table.id, app, table.realm)
        result = evaluate(target.properties.get("formula", ""), table.field_ids_by_label(), context)
        values[target.id] = None if result is None else _as_type(target.field_type, result)
    return values


def has_derived(table: "QbTable") -> bool:
    return any(f.derived for f in table.fields.values())


def lookup_label(parent: "QbTable", source: QbField) -> str:
    return f"{parent.single_record_name} - {source.label}"


def summary_label(function: str, child: "QbTable", source: Optional[QbField]) -> str:
    if function == "COUNT" or source is None:
        return f"# of {child.plural_record_name}"
    return f"{function.title()} of {source.label}"
