"""Declarative Quickbase table specs and the plan that makes an app fit them
(``aurora-qb quickbase init``): tables, fields with their types and choice lists, unique fields,
formula (button) fields and relationships, created through the JSON API
(``POST /v1/tables``, ``POST /v1/fields``, ``POST /v1/fields/{id}``, ``POST /v1/tables/{id}/relationship``).

Specs live in ``config/quickbase_tables/*.yaml``, one file per table group (``designs.yaml``,
``opportunities.yaml``; other features add theirs, e.g. ``site_surveys.yaml``). Shape::

    tables:
      - key: opportunities              # how other specs and the pipeline refer to the table
        name: Opportunities             # the table's name in the app (found by it when no id is known)
        single_record_name: Opportunity # optional, as createTable takes them
        plural_record_name: Opportunities
        description: ...                # optional
        fields:
          - label: Aurora Sync Status   # matched without regard to case
            type: text-multiple-choice  # a Quickbase field type (createField's fieldType)
            choices: [a, b]             # optional; missing choices are added (never removed)
            allow_new_choices: true     # optional, only used when the field is created
            unique: true                # optional; set through updateField (with required: true)
            required: true              # optional
            formula: '"{receiver_url}/x/" & ToText([Record ID#])'  # optional: a formula field;
                                        # {receiver_url} is filled from --receiver-url
    relationships:
      - child: designs                  # table keys (of any spec file)
        parent: opportunities
        reference: Opportunity          # the reference field's label in the child

Also understood (the site-survey spec's spelling): ``parent: {table: <key>, reference_field:
<label>}`` on a table is a relationship to that parent; ``choices_from: <enum>`` fills ``choices``
from ``api_facts.AURORA_SITE_SURVEY_ENUMS``; other keys (``key_field``, ``description`` of a
field) are ignored here.

A table spec may come in several files (``fields`` are merged by label). The plan is read-only:
it lists what is missing and what conflicts (a field of another type is never changed; it is
reported). :func:`apply_plan` carries it out; a second plan then finds nothing to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from .clients import QuickbaseClient

RECEIVER_PLACEHOLDER = "{receiver_url}"
_READS_BACK_AS = {"datetime": "timestamp"}  # a "datetime" field is created so and reads back as "timestamp"


@dataclass
class TableSpec:
    key: str
    name: str
    fields: list[dict[str, Any]]
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class Specs:
    tables: dict[str, TableSpec]
    relationships: list[dict[str, str]]


@dataclass
class Step:
    table: str
    action: str
    detail: str
    run: Callable[[dict[str, str]], None]


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    table_ids: dict[str, Optional[str]] = field(default_factory=dict)

    def rows(self) -> list[tuple[str, str, str]]:
        return [(s.table, s.action, s.detail) for s in self.steps]


def load_specs(folder: Optional[Path] = None) -> Specs:
    """Every ``*.yaml`` spec of ``folder`` (default: the packaged ``config/quickbase_tables``)."""
    if folder is None:
        base = resources.files("aurora_qb_pipeline.config").joinpath("quickbase_tables")
        texts = [(p.name, p.read_text()) for p in sorted(base.iterdir(), key=lambda p: p.name)
                 if p.name.endswith(".yaml")]
    else:
        texts = [(p.name, p.read_text()) for p in sorted(Path(folder).glob("*.yaml"))]
    tables: dict[str, TableSpec] = {}
    relationships: list[dict[str, str]] = []
    problems: list[str] = []
    for name, text in texts:
        raw = yaml.safe_load(text) or {}
        for item in raw.get("tables") or []:
            if not item.get("key") or not item.get("name"):
                problems.append(f"{name}: every table needs a key and a name")
                continue
            spec = tables.setdefault(item["key"], TableSpec(item["key"], item["name"], []))
            spec.attributes.update({k: item[k] for k in ("single_record_name", "plural_record_name", "description")
                                    if item.get(k)})
            known = {f["label"].lower() for f in spec.fields}
            parent = item.get("parent")  # the site-survey spec's way to name a relationship
            if isinstance(parent, dict) and parent.get("table") and parent.get("reference_field"):
                relationships.append({"child": item["key"], "parent": parent["table"],
                                      "reference": parent["reference_field"]})
            for f in item.get("fields") or []:
                if f.get("choices_from") and not f.get("choices"):
                    from .api_facts import AURORA_SITE_SURVEY_ENUMS

                    f = {**f, "choices": list(AURORA_SITE_SURVEY_ENUMS.get(f["choices_from"], ()))}
                if not f.get("label") or not f.get("type"):
                    problems.append(f"{name}: table {item['key']}: every field needs a label and a type")
                elif f["label"].lower() not in known:
                    spec.fields.append(dict(f))
                    known.add(f["label"].lower())
        relationships += [dict(r) for r in raw.get("relationships") or []]
    for r in relationships:
        for end in ("child", "parent"):
            if r.get(end) not in tables:
                problems.append(f"relationship {r}: no table with key {r.get(end)!r}")
        if not r.get("reference"):
            problems.append(f"relationship {r}: name the reference field (reference: ...)")
    if problems:
        raise ValueError("Quickbase table specs are not valid:\n- " + "\n- ".join(problems))
    return Specs(tables, relationships)


_CAMEL = {"single_record_name": "singleRecordName", "plural_record_name": "pluralRecordName",
          "description": "description"}


def _create_field_body(spec: dict[str, Any], receiver_url: Optional[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"label": spec["label"], "fieldType": spec["type"]}
    props: dict[str, Any] = {}
    if spec.get("choices"):
        props["choices"] = list(spec["choices"])
    if "allow_new_choices" in spec:
        props["allowNewChoices"] = bool(spec["allow_new_choices"])
    if spec.get("formula"):
        props["formula"] = spec["formula"].replace(RECEIVER_PLACEHOLDER, (receiver_url or "").rstrip("/"))
    if props:
        body["properties"] = props
    return body


def plan_tables(client: QuickbaseClient, app_id: str, specs: Specs, known_ids: dict[str, Optional[str]],
                receiver_url: Optional[str] = None) -> Plan:
    """What the app lacks, read through GET /v1/tables, /v1/fields and relationships; nothing is changed."""
    plan = Plan()
    existing = client.app_tables(app_id)
    by_name = {t["name"].lower(): t["id"] for t in existing}
    ids = {t["id"] for t in existing}
    for key, spec in specs.tables.items():
        wanted = known_ids.get(key)
        table_id = wanted if wanted in ids else by_name.get(spec.name.lower())
        plan.table_ids[key] = table_id
        if table_id is None:
            body = {"name": spec.name, **{_CAMEL[k]: v for k, v in spec.attributes.items()}}

            def create_table(ctx: dict[str, str], key=key, body=body) -> None:
                ctx[key] = client.create_table(app_id, body)["id"]

            plan.steps.append(Step(spec.name, "create table", spec.name, create_table))
            current: list[dict] = []
        else:
            current = client.table_fields(table_id)
        _plan_fields(plan, client, spec, current, receiver_url)
    for rel in specs.relationships:
        child, parent = plan.table_ids.get(rel["child"]), plan.table_ids.get(rel["parent"])
        if child and parent:
            linked = any(str(r.get("parentTableId")) == parent for r in client.relationships(child))
            if linked:
                continue
            if any(f["label"].lower() == rel["reference"].lower() for f in client.table_fields(child)):
                plan.conflicts.append(f"{specs.tables[rel['child']].name}: a field {rel['reference']!r} exists but "
                                      f"is not a reference to {specs.tables[rel['parent']].name}")
                continue

        def relate(ctx: dict[str, str], rel=rel) -> None:
            client.create_relationship(ctx[rel["child"]], ctx[rel["parent"]], rel["reference"])

        plan.steps.append(Step(specs.tables[rel["child"]].name, "create relationship",
                               f"{rel['reference']} -> {specs.tables[rel['parent']].name}", relate))
    return plan


def _plan_fields(plan: Plan, client: QuickbaseClient, spec: TableSpec, current: list[dict],
                 receiver_url: Optional[str]) -> None:
    by_label = {f["label"].lower(): f for f in current}
    for f in spec.fields:
        label = f["label"]
        formula = f.get("formula")
        if formula and RECEIVER_PLACEHOLDER in formula and not receiver_url:
            if label.lower() not in by_label:
                plan.skipped.append(f"{spec.name}: {label} (a button: give --receiver-url)")
            continue
        have = by_label.get(label.lower())
        if have is None:
            body = _create_field_body(f, receiver_url)

            def create_field(ctx: dict[str, str], key=spec.key, body=body, f=f) -> None:
                made = client.create_field(ctx[key], body)
                if f.get("unique") or f.get("required"):
                    client.update_field(ctx[key], made["id"], {"unique": bool(f.get("unique")),
                                                               "required": bool(f.get("required"))})

            extra = [x for x in ("unique", "required") if f.get(x)]
            plan.steps.append(Step(spec.name, "create field", f"{label} ({f['type']}{', ' if extra else ''}"
                                   f"{', '.join(extra)})", create_field))
            continue
        if _READS_BACK_AS.get(have["fieldType"], have["fieldType"]) != _READS_BACK_AS.get(f["type"], f["type"]):
            plan.conflicts.append(f"{spec.name}: field {label!r} is {have['fieldType']}, the spec says {f['type']}; "
                                  "change it in Quickbase (init never retypes a field)")
            continue
        props = have.get("properties") or {}
        changes: dict[str, Any] = {}
        missing = [c for c in f.get("choices") or [] if c not in (props.get("choices") or [])]
        if missing:
            changes["properties"] = {"choices": list(props.get("choices") or []) + missing}
        if formula:
            text = formula.replace(RECEIVER_PLACEHOLDER, (receiver_url or "").rstrip("/"))
            if props.get("formula") != text:
                changes.setdefault("properties", {})["formula"] = text
        for flag in ("unique", "required"):
            if f.get(flag) and not have.get(flag):
                changes[flag] = True
        if changes:
            def update(ctx: dict[str, str], key=spec.key, fid=have["id"], changes=changes) -> None:
                client.update_field(ctx[key], fid, changes)

            plan.steps.append(Step(spec.name, "update field", f"{label}: {', '.join(sorted(_describe(changes)))}",
                                   update))


def _describe(changes: dict[str, Any]) -> list[str]:
    out = [k for k in changes if k != "properties"]
    props = changes.get("properties") or {}
    if "choices" in props:
        out.append("add choices")
    if "formula" in props:
        out.append("set formula")
    return out


def apply_plan(plan: Plan, log: Callable[[str], None] = print) -> dict[str, str]:
    """Carry the plan out in order; returns {table key: table id}."""
    ctx = {k: v for k, v in plan.table_ids.items() if v}
    for step in plan.steps:
        step.run(ctx)
        log(f"done: {step.table}: {step.action} {step.detail}")
    return ctx
