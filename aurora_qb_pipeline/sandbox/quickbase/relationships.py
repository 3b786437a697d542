"""Table relationships (createRelationship / getRelationships).

Creating a relationship on a child table adds, as Quickbase does:

* the reference (foreign key) field in the child, numeric, labelled ``foreignKeyField.label`` or
  "Related <parent single record name>"; its id is the relationship id. A child record points
  at its parent by holding the parent's Record ID# in it;
* one lookup field in the child per ``lookupFieldIds`` (a parent field), labelled
  "<parent single record name> - <label>", of the parent field's type;
* one summary field in the parent per ``summaryFields`` entry (sandbox subset: COUNT, SUM,
  AVG, MIN, MAX; others are refused).

Lookups and summaries are read-only and computed when read (see :mod:`.derived`).
"""

from __future__ import annotations

from typing import Any, Mapping

from .bodies import CreateRelationshipBody
from .derived import SUMMARY_FUNCTIONS, lookup_label, summary_label
from .errors import QuickbaseError, not_found
from .models import Relationship
from .query import QueryError, compile_where
from .table import QbTable


def create_relationship(
    child: QbTable, tables: Mapping[str, QbTable], body: CreateRelationshipBody
) -> Relationship:
    parent = tables.get(body.parent_table_id)
    if parent is None:
        raise not_found(f"Table {body.parent_table_id} does not exist.")
    if parent.app_id != child.app_id:
        raise QuickbaseError(400, "Relationships can only be created for tables within the same app.")
    if parent.id == child.id:
        raise QuickbaseError(400, "A table cannot be related to itself.")  # GUESS
    lookups = body.lookup_field_ids or []
    unknown = [fid for fid in lookups if fid not in parent.fields]
    if unknown:
        raise QuickbaseError(400, f"Field {unknown[0]} does not exist in table {parent.id}.")
    summaries = body.summary_fields or []
    for spec in summaries:
        _check_summary(spec, child)

    label = (body.foreign_key_field.label if body.foreign_key_field else None) or (
        f"Related {parent.single_record_name}"
    )
    reference = child.add_field(label, "numeric", properties={"foreignKey": True})
    relationship = Relationship(reference.id, parent.id, child.id)
    for fid in lookups:
        source = parent.fields[fid]
        lookup = child.add_field(
            lookup_label(parent, source),
            source.field_type,
            mode="lookup",
            properties={"lookupReferenceFieldId": reference.id, "lookupTargetFieldId": fid},
        )
        relationship.lookup_field_ids.append(lookup.id)
    for spec in summaries:
        source = child.fields.get(int(spec.summary_fid)) if spec.summary_fid else None
        function = spec.accumulation_type
        summary = parent.add_field(
            spec.label or summary_label(function, child, source),
            "numeric" if function == "COUNT" or source is None else source.field_type,
            mode="summary",
            properties={
                "summaryFunction": function,
                "summaryReferenceFieldId": reference.id,
                "summaryTargetFieldId": int(spec.summary_fid or 0),
                "summaryTableId": child.id,
                "summaryQuery": spec.where or "",
            },
        )
        relationship.summary_field_ids.append(summary.id)
    child.relationships.append(relationship)
    return relationship


def _check_summary(spec: Any, child: QbTable) -> None:
    function = spec.accumulation_type
    if function not in SUMMARY_FUNCTIONS:
        raise QuickbaseError(400, f"The sandbox does not compute {function} summary fields.")
    if function == "COUNT":
        if spec.summary_fid:
            raise QuickbaseError(400, "A COUNT summary field takes summaryFid 0 or none.")
    elif not spec.summary_fid or int(spec.summary_fid) not in child.fields:
        raise QuickbaseError(
            400, f"The summaryFid of a {function} summary must name a field of the child table."
        )
    if spec.where:
        try:
            compile_where(spec.where, child.field_types())
        except QueryError as exc:
            raise QuickbaseError(400, str(exc)) from None


def relationships_of(table: QbTable, tables: Mapping[str, QbTable], skip: int = 0) -> dict[str, Any]:
    """getRelationships: the relationships in which ``table`` is the child."""
    found = [r for r in table.relationships if r.id in table.fields and r.parent_table_id in tables]
    page = found[skip:]
    return {
        "relationships": [r.to_api(table.fields, tables[r.parent_table_id].fields) for r in page],
        "metadata": {"skip": skip, "totalRelationships": len(found), "numRelationships": len(page)},
    }
