"""Design line items: each design's bill of materials as records of a child Quickbase table.

The table is declared in ``config/quickbase_tables/line_items.yaml`` (the shape ``aurora-qb
quickbase init`` reads): one record per component of a design (Aurora's summary
``bill_of_materials``: id, name, component_type, quantity, sku, manufacturer_name), related to the
design's record by a reference field, upserted on the unique key ``<design id>:<component id>``.

* Only designs the design export has a record id for, and that nothing holds back (quarantine),
  are considered; their components are read from the raw summaries staged in DuckDB.
* Only what changed is sent (``ops.line_item_state`` keeps a hash of what Quickbase accepted per
  key), in upserts sized by Quickbase's 40 MB body limit exactly as the design export's.
* A component no longer in a design's bill of materials is deleted from the table.
* A component listed twice in one design (same id) becomes one record with the quantities summed.
* The line items of a design deleted in Aurora follow the declaration's ``deletion_policy``:
  ``delete`` (the default), ``leave``, or ``mark``: set ``status_field`` (a field the declaration
  lists) to ``status_value`` (default "Deleted in Aurora"), once. A policy that cannot be applied
  (unknown, or ``mark`` without a declared status field) fails :func:`load_spec`, which the
  definitions call when line items are on, so ``dg check defs`` names the problem.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Union

import yaml
from dagster_duckdb import DuckDBResource

from .clients import QuickbaseClient
from .raw_payloads import read_documents
from .store import OPS_SCHEMA, STAGING_SCHEMA, HoldPolicy, connect, held_sql, insert_rows, now_utc, table_exists

STATE_DDL = f"""
create schema if not exists {OPS_SCHEMA};
create table if not exists {OPS_SCHEMA}.line_item_state (
    item_key varchar primary key, design_id varchar, content_hash varchar, qb_record_id bigint,
    exported_at timestamptz);
"""

COMPONENT_FIELDS = {  # table field label -> bill-of-materials key
    "Component ID": "id", "Component Name": "name", "Component Type": "component_type",
    "Quantity": "quantity", "SKU": "sku", "Manufacturer": "manufacturer_name",
}


class LineItemsError(ValueError):
    """The line items table does not fit its declaration; the message lists every problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("Line items table does not fit config/quickbase_tables/line_items.yaml:\n- "
                         + "\n- ".join(problems))


def default_spec_path() -> Path:
    return Path(str(resources.files("aurora_qb_pipeline") / "config" / "quickbase_tables" / "line_items.yaml"))


def load_spec(path: Optional[Union[str, Path]] = None) -> dict[str, Any]:
    """The ``line_items`` table of the declaration file, its deletion policy checked (:func:`deletion_of`)."""
    raw = yaml.safe_load(Path(path or default_spec_path()).read_text(encoding="utf-8")) or {}
    tables = {t.get("key"): t for t in raw.get("tables") or []}
    if "line_items" not in tables:
        raise LineItemsError([f"{path or default_spec_path()}: no table with key 'line_items'"])
    deletion_of(tables["line_items"])
    return tables["line_items"]


@dataclass(frozen=True)
class LineItemsDeletion:
    """What happens to the line items of a design deleted in Aurora."""

    policy: str = "delete"  # delete | leave | mark
    status_field: Optional[str] = None  # mark: the label of the field set
    status_value: str = "Deleted in Aurora"


DELETION_POLICIES = ("delete", "leave", "mark")


def deletion_of(spec: dict[str, Any]) -> LineItemsDeletion:
    """The declaration's deletion policy; every problem at once (:class:`LineItemsError`)."""
    policy = str(spec.get("deletion_policy", "delete"))
    status_field = spec.get("status_field")
    declared = {str(f.get("label", "")).casefold() for f in spec.get("fields") or []}
    problems = []
    if policy not in DELETION_POLICIES:
        problems.append(f"deletion_policy must be one of {', '.join(DELETION_POLICIES)} (got {policy!r})")
    if policy == "mark":
        if not status_field:
            problems.append("deletion_policy mark needs status_field: the label of the field to set on the line "
                            "items of a design deleted in Aurora (e.g. 'Aurora Status', declared under fields)")
        elif str(status_field).casefold() not in declared:
            problems.append(f"status_field {status_field!r} is not among the declared fields")
    if problems:
        raise LineItemsError(problems)
    return LineItemsDeletion(policy, status_field, str(spec.get("status_value", "Deleted in Aurora")))


@dataclass(frozen=True)
class LineItemFields:
    key: int
    design_id: int
    reference: int
    components: dict[str, int]  # bill-of-materials key -> field id
    status: Optional[int] = None  # the deletion policy mark's status field


def resolve_fields(spec: dict[str, Any], table_fields: list[dict]) -> LineItemFields:
    """Field ids of the declared fields in the live table (GET /v1/fields); every problem at once."""
    by_label = {str(f.get("label", "")).strip().casefold(): f for f in table_fields}
    problems: list[str] = []

    def fid(label: str, *, unique: bool = False) -> int:
        found = by_label.get(label.casefold())
        if found is None:
            problems.append(f"field '{label}' is missing from the line items table")
            return -1
        if found.get("mode"):
            problems.append(f"field '{label}' ({found['id']}) is a {found['mode']} field and cannot be written")
        if unique and not found.get("unique"):
            problems.append(f"key field '{label}' ({found['id']}) is not unique: Quickbase can only merge on it "
                            "when it is")
        return int(found["id"])

    key = fid(spec["key_field"], unique=True)
    design = fid("Aurora Design ID")
    reference = fid(spec["parent"]["reference_field"])
    components = {source: fid(label) for label, source in COMPONENT_FIELDS.items()}
    deletion = deletion_of(spec)
    status = fid(str(deletion.status_field)) if deletion.policy == "mark" else None
    if problems:
        raise LineItemsError(problems)
    return LineItemFields(key, design, reference, components, status)


def component_records(design_id: str, record_id: int, summary: Any, fields: LineItemFields) -> dict[str, dict]:
    """{item key: record} of one design's bill of materials (lines that are not objects are skipped)."""
    records: dict[str, dict] = {}
    lines = summary.get("bill_of_materials") if isinstance(summary, dict) else None
    for line in lines if isinstance(lines, list) else []:
        if not isinstance(line, dict):
            continue
        component = line.get("id") or f"{line.get('component_type')}:{line.get('name')}"
        key = f"{design_id}:{component}"
        record = {fields.key: key, fields.design_id: design_id, fields.reference: record_id}
        for source, fid in fields.components.items():
            value = line.get(source)
            record[fid] = value if isinstance(value, (int, float, str)) and not isinstance(value, bool) else None
        quantity_fid = fields.components["quantity"]
        if key in records and isinstance(record[quantity_fid], (int, float)):
            previous = records[key][quantity_fid]
            record[quantity_fid] += previous if isinstance(previous, (int, float)) else 0
        records[key] = record
    return records


def _hash(record: dict) -> str:
    return hashlib.sha256(json.dumps(sorted(record.items()), default=str).encode()).hexdigest()[:32]


@dataclass
class LineItemsTally:
    designs: int = 0
    items: int = 0
    sent: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    deleted: int = 0
    marked: int = 0  # line items of designs deleted in Aurora, marked (deletion_policy mark)
    requests: int = 0
    failures: list[str] = field(default_factory=list)


def designs_in_scope(duckdb: DuckDBResource, hold_policy: HoldPolicy) -> dict[str, int]:
    """{design id: its Quickbase record id} for staged designs the export wrote and nothing holds."""
    with connect(duckdb) as conn:
        if not table_exists(conn, STAGING_SCHEMA, "designs"):
            return {}
        rows = conn.execute(
            f"""select d.design_id, e.qb_record_id from {STAGING_SCHEMA}.designs d
                join {OPS_SCHEMA}.export_state e using (design_id)
                where e.qb_record_id is not null and not ({held_sql(hold_policy)})"""
        ).fetchall()
    return {d: int(r) for d, r in rows}


def designs_deleted_in_aurora(duckdb: DuckDBResource) -> set[str]:
    with connect(duckdb) as conn:
        if not table_exists(conn, OPS_SCHEMA, "aurora_deletions"):
            return set()
        return {d for (d,) in conn.execute(
            f"select object_id from {OPS_SCHEMA}.aurora_deletions where kind = 'design'").fetchall()}


def export_line_items(duckdb: DuckDBResource, client: QuickbaseClient, spec: dict[str, Any],
                      hold_policy: HoldPolicy = HoldPolicy.DESIGN, dry_run: bool = False) -> LineItemsTally:
    """Bring the line items table in step with the staged bills of materials (see the module doc)."""
    fields = resolve_fields(spec, client.get_fields())
    with connect(duckdb) as conn:
        conn.execute(STATE_DDL)
        state = {k: (d, h) for k, d, h in conn.execute(
            f"select item_key, design_id, content_hash from {OPS_SCHEMA}.line_item_state").fetchall()}
    scope = designs_in_scope(duckdb, hold_policy)
    summaries = read_documents(duckdb, {"summary"})
    tally = LineItemsTally()
    current: dict[str, dict] = {}
    for design_id, record_id in scope.items():
        summary = (summaries.get(design_id) or {}).get("summary")
        if summary is None:
            continue
        tally.designs += 1
        current.update(component_records(design_id, record_id, summary, fields))
    tally.items = len(current)
    changed = [(key, record, _hash(record)) for key, record in current.items()
               if state.get(key, (None, None))[1] != _hash(record)]
    tally.unchanged = len(current) - len(changed)
    removed = sorted(k for k, (design_id, _) in state.items() if design_id in scope and k not in current)
    deletion, marking = deletion_of(spec), set()
    if deletion.policy != "leave":  # line items of designs deleted in Aurora
        deleted_designs = designs_deleted_in_aurora(duckdb)
        gone = sorted(k for k, (design_id, _) in state.items() if design_id in deleted_designs)
        if deletion.policy == "delete":
            removed += gone
        else:  # mark, once: the state then holds the mark's hash
            mark = {fields.status: deletion.status_value}
            marking = {k for k in gone if state[k][1] != _hash(mark)}
            changed += [(k, {fields.key: k, **mark}, _hash(mark)) for k in sorted(marking)]
    if dry_run:
        tally.sent, tally.deleted = len(changed), len(removed)
        return tally
    state_rows, stamp = [], now_utc()
    records = [record for _, record, _ in changed]
    for batch in client.batches(records):
        result = client.upsert([records[i] for i in batch], fields.key)
        tally.requests += 1
        for position, index in enumerate(batch):
            key, _, digest = changed[index]
            outcome = result.outcome(position)
            if outcome == "failed":
                tally.failed += 1
                if len(tally.failures) < 20:
                    tally.failures.append(f"{key}: {'; '.join(result.line_errors.get(position, [])) or 'refused'}")
                continue
            setattr(tally, outcome, getattr(tally, outcome) + 1)
            tally.sent += 1
            tally.marked += key in marking
            state_rows.append((key, key.split(":", 1)[0], digest, result.record_ids[position], stamp))
    if removed:
        tally.deleted = client.delete_keys(fields.key, removed)
        tally.requests += -(-len(removed) // 100)
    with connect(duckdb) as conn:
        conn.execute("begin")
        insert_rows(conn, f"{OPS_SCHEMA}.line_item_state",
                    ("item_key", "design_id", "content_hash", "qb_record_id", "exported_at"), state_rows,
                    on_conflict="""on conflict (item_key) do update
                    set design_id = excluded.design_id, content_hash = excluded.content_hash,
                    qb_record_id = excluded.qb_record_id, exported_at = excluded.exported_at""")
        if removed:
            conn.execute(f"delete from {OPS_SCHEMA}.line_item_state where list_contains(?, item_key)", [removed])
        conn.execute("commit")
    return tally
