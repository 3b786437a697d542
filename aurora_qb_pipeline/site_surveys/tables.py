"""The site-survey tables in Quickbase: the declarative spec (``config/quickbase_tables/
site_surveys.yaml``), creating what is missing through the Quickbase API, and finding the tables
and field ids by name and label at run time.

The spec is checked with pydantic when it is read, every problem at once. Field ids are never
written down: they are whatever Quickbase gave when the fields were made, found by label
(``GET /v1/fields``), so the tables may be made by this module, by ``aurora-qb quickbase init`` or
by hand. Until ``init`` reads this folder, :func:`ensure_tables` makes them (tests and the demo).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..api_facts import AURORA_SITE_SURVEY_ENUMS, QUICKBASE_RECORD_ID_FIELD
from ..clients.quickbase_app import QuickbaseAppClient

SPEC_FILE = Path(__file__).resolve().parent.parent / "config" / "quickbase_tables" / "site_surveys.yaml"
DESIGNS = "designs"  # the designs table the export writes (QB_TABLE_ID), a parent other specs may name
OPPORTUNITIES = "opportunities"  # issue 14's table (QB_OPPORTUNITIES_TABLE_ID), a parent other specs may name
RECORD_ID_LABEL = "Record ID#"
SURVEYS, SUBPANELS, PLANES = "site_surveys", "site_survey_subpanels", "site_survey_mounting_planes"

FieldType = Literal["text", "text-multiple-choice", "text-multi-line", "numeric", "currency", "percent", "email",
                    "phone", "url", "date", "datetime", "checkbox", "file"]


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    label: str = Field(min_length=1)
    type: FieldType
    unique: bool = False
    required: bool = False
    choices: Optional[list[str]] = None
    choices_from: Optional[str] = None
    description: str = ""

    @model_validator(mode="after")
    def _choices(self) -> "FieldSpec":
        if self.choices_from is not None:
            if self.choices_from not in AURORA_SITE_SURVEY_ENUMS:
                raise ValueError(f"choices_from {self.choices_from!r} is not one of Aurora's site-survey enums "
                                 f"({', '.join(AURORA_SITE_SURVEY_ENUMS)})")
            self.choices = list(AURORA_SITE_SURVEY_ENUMS[self.choices_from])
        if self.choices is not None and self.type != "text-multiple-choice":
            raise ValueError(f"field {self.label!r}: choices need type text-multiple-choice")
        return self


class ParentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    table: str
    reference_field: str


class TableSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1)
    description: str = ""
    key_field: str
    fields: list[FieldSpec] = Field(min_length=1)
    parent: Optional[ParentSpec] = None

    @model_validator(mode="after")
    def _key_field(self) -> "TableSpec":
        labels = [f.label for f in self.fields]
        if len(set(labels)) != len(labels):
            raise ValueError(f"table {self.key}: a field label is given twice")
        if self.key_field != RECORD_ID_LABEL:
            key = next((f for f in self.fields if f.label == self.key_field), None)
            if key is None or not key.unique:
                raise ValueError(f"table {self.key}: key_field {self.key_field!r} must be a unique field of the table")
        return self


class LinkSpec(BaseModel):
    """A further relationship of a table (``relationships:`` of the spec, as ``quickbase init`` reads
    it). ``optional``: a table made before it may lack the reference field; it is then not linked."""

    model_config = ConfigDict(extra="forbid")
    child: str
    parent: str
    reference: str = Field(min_length=1)
    optional: bool = False


class TablesSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tables: list[TableSpec] = Field(min_length=1)
    relationships: list[LinkSpec] = Field(default_factory=list)

    def table(self, key: str) -> TableSpec:
        return next(t for t in self.tables if t.key == key)


def load_spec(path: Optional[Path] = None) -> TablesSpec:
    """The spec of ``path`` (default: the packaged site-survey tables); ValueError lists every problem."""
    path = Path(path or SPEC_FILE)
    try:
        spec = TablesSpec.model_validate(yaml.safe_load(path.read_text()))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{path.name}: {problems}") from None
    keys = {t.key for t in spec.tables} | {DESIGNS, OPPORTUNITIES}
    missing = [f"{t.key}.parent.table {t.parent.table!r}" for t in spec.tables if t.parent and t.parent.table not in keys]
    missing += [f"relationships: {end} {name!r}" for link in spec.relationships
                for end, name in (("child", link.child), ("parent", link.parent)) if name not in keys]
    if missing:
        raise ValueError(f"{path.name}: unknown parent table(s): {', '.join(missing)}")
    return spec


@dataclass
class Table:
    """One table as Quickbase has it: its id and ``{label: field id}``."""

    key: str
    id: str
    fields: dict[str, int]
    key_field_id: int
    reference_field_id: Optional[int] = None  # the reference to the parent table, if any
    links: dict[str, int] = field(default_factory=dict)  # further parents (spec ``relationships``): key -> reference fid

    def fid(self, label: str) -> int:
        return self.fields[label]


@dataclass
class SurveyTables:
    """The three site-survey tables and the designs table (``designs``: None when not linked)."""

    tables: dict[str, Table]
    designs: Optional[Table] = None
    made: list[str] = field(default_factory=list)  # what ensure_tables created ("table X", "field X.Y", ...)

    @property
    def surveys(self) -> Table:
        return self.tables[SURVEYS]

    @property
    def subpanels(self) -> Table:
        return self.tables[SUBPANELS]

    @property
    def planes(self) -> Table:
        return self.tables[PLANES]


class TablesNotReady(RuntimeError):
    """The site-survey tables are missing or lack fields; the message lists every problem."""


def _field_ids(fields: list[dict]) -> dict[str, int]:
    return {f["label"]: int(f["id"]) for f in fields}


def resolve_tables(qb: QuickbaseAppClient, spec: TablesSpec, designs_table_id: Optional[str] = None,
                   design_key_label: str = "Aurora Design ID") -> SurveyTables:
    """The tables of ``spec`` found by name in the app and their fields by label; TablesNotReady
    lists everything missing (run ``ensure_tables`` / ``aurora-qb quickbase init``)."""
    by_name = {t["name"]: t["id"] for t in qb.tables()}
    problems: list[str] = []
    found: dict[str, Table] = {}
    for table in spec.tables:
        table_id = by_name.get(table.name)
        if table_id is None:
            problems.append(f"table {table.name!r} is missing")
            continue
        ids = _field_ids(qb.fields_of(table_id))
        wanted = [f.label for f in table.fields] + ([table.parent.reference_field] if table.parent else [])
        problems += [f"table {table.name!r} has no field {label!r}" for label in wanted if label not in ids]
        key_id = QUICKBASE_RECORD_ID_FIELD if table.key_field == RECORD_ID_LABEL else ids.get(table.key_field, 0)
        reference = ids.get(table.parent.reference_field) if table.parent else None
        links = {}
        for link in (link for link in spec.relationships if link.child == table.key):
            if link.reference in ids:
                links[link.parent] = ids[link.reference]
            elif not link.optional:
                problems.append(f"table {table.name!r} has no field {link.reference!r}")
        found[table.key] = Table(table.key, table_id, ids, key_id, reference, links)
    if problems:
        raise TablesNotReady("the site-survey tables are not ready in Quickbase: " + "; ".join(problems)
                             + " (create them with `aurora-qb site-surveys init-tables`)")
    designs = None
    if designs_table_id:
        ids = _field_ids(qb.fields_of(designs_table_id))
        designs = Table(DESIGNS, designs_table_id, ids, ids.get(design_key_label, 0))
    return SurveyTables(found, designs)


def _properties(spec: FieldSpec) -> Optional[dict[str, Any]]:
    if spec.choices is None:
        return None
    return {"choices": list(spec.choices), "allowNewChoices": False}


def ensure_tables(qb: QuickbaseAppClient, spec: TablesSpec, designs_table_id: Optional[str] = None,
                  opportunities_table_id: Optional[str] = None) -> SurveyTables:
    """Create what ``spec`` names and the app lacks (tables, fields, unique/required flags, the
    relationships to the parents given); what exists is left as it is. Running it twice changes nothing."""
    made: list[str] = []
    by_name = {t["name"]: t["id"] for t in qb.tables()}
    ids_of: dict[str, str] = {DESIGNS: designs_table_id} if designs_table_id else {}
    if opportunities_table_id:
        ids_of[OPPORTUNITIES] = opportunities_table_id
    for table in spec.tables:
        if table.name not in by_name:
            created = qb.create_table(table.name, table.description)
            by_name[table.name] = created["id"]
            made.append(f"table {table.name}")
        ids_of[table.key] = by_name[table.name]
        existing = {f["label"]: f for f in qb.fields_of(ids_of[table.key])}
        for field_spec in table.fields:
            current = existing.get(field_spec.label)
            if current is None:
                current = qb.create_field(ids_of[table.key], field_spec.label, field_spec.type,
                                          field_spec.description, _properties(field_spec))
                made.append(f"field {table.name}.{field_spec.label}")
            flags = {k: True for k in ("unique", "required") if getattr(field_spec, k) and not current.get(k)}
            if flags:
                qb.update_field(ids_of[table.key], int(current["id"]), **flags)
    links = [(t.key, t.parent.table, t.parent.reference_field) for t in spec.tables if t.parent is not None]
    links += [(link.child, link.parent, link.reference) for link in spec.relationships]
    for child, parent, reference in links:
        if parent not in ids_of:
            continue
        labels = {f["label"] for f in qb.fields_of(ids_of[child])}
        if reference not in labels:
            qb.create_relationship(ids_of[child], ids_of[parent], reference)
            made.append(f"relationship {spec.table(child).name} -> {parent}")
    resolved = resolve_tables(qb, spec, designs_table_id)
    resolved.made = made
    return resolved
