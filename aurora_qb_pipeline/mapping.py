"""The Aurora -> Quickbase field mapping: loading, checking against the live table, encoding rows.

The mapping lives in a YAML file (``config/field_mapping.yaml`` by default). Before anything is
written, :func:`resolve_mapping` checks it against the table's fields as Quickbase reports them,
and collects *every* problem into one error, so a misconfigured table is fixed in one pass.
:func:`table_changes` says what changed when the table stops fitting during an export, and
:func:`values_match` compares a value the export sends with the one a record holds (the drift
check of the reconcile).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Union

import pandas as pd
import yaml

from .api_facts import (
    QUICKBASE_BUILT_IN_FIELD_IDS,
    QUICKBASE_CHECKBOX_FIELD_TYPES,
    QUICKBASE_NUMERIC_FIELD_TYPES,
    QUICKBASE_TEXT_FIELD_TYPES,
    QUICKBASE_TIME_FIELD_TYPES,
)
from .mapping_paths import CustomSource, PathTally, convert, parse_source, static_problems
from .raw_payloads import RAW_WRITERS
from .schemas import EXPORT_COLUMNS, EXPORT_CONTRACT, EXPORT_SOURCES, ValueKind
from .status_fields import STATUS_SOURCES, status_field_problems


class MatchingStrategy(str, Enum):
    ENRICH = "enrich"
    REPLACE = "replace"
    SKIP = "skip"


COMPATIBLE: dict[ValueKind, frozenset[str]] = {
    ValueKind.TEXT: QUICKBASE_TEXT_FIELD_TYPES,
    ValueKind.NUMBER: QUICKBASE_NUMERIC_FIELD_TYPES | {"text"},
    ValueKind.INTEGER: QUICKBASE_NUMERIC_FIELD_TYPES | {"text"},
    ValueKind.BOOLEAN: QUICKBASE_CHECKBOX_FIELD_TYPES,
    ValueKind.TIMESTAMP: QUICKBASE_TIME_FIELD_TYPES | {"text"},
}
"""Quickbase field types (as GET /v1/fields reports them) each kind of export value may go into."""


class MappingError(ValueError):
    """The mapping does not fit the Quickbase table; the message lists every problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("Field mapping does not fit the Quickbase table:\n- " + "\n- ".join(problems))


@dataclass(frozen=True)
class MappingConfig:
    fields: dict[str, Union[str, int]]
    merge_field: Union[str, int]
    matching_strategy: MatchingStrategy = MatchingStrategy.ENRICH
    units: dict[str, str] = field(default_factory=dict)  # custom path -> unit asked for (e.g. kW)
    # sources whose field may be absent from the table ({field: ..., optional: true}): skipped, not a problem
    optional: frozenset[str] = frozenset()

    def is_custom(self, source: str) -> bool:
        return source not in EXPORT_COLUMNS and source not in STATUS_SOURCES


@dataclass(frozen=True)
class TargetField:
    source: str
    field_id: int
    label: str
    field_type: str
    required: bool = False
    choices: Optional[frozenset[str]] = None  # set only when Quickbase refuses new choices
    max_length: Optional[int] = None  # the field's "Max characters" (properties.maxLength), when set
    custom: Optional[CustomSource] = None  # set for a custom mapping (an Aurora field path)


@dataclass
class ResolvedMapping:
    targets: list[TargetField]
    merge_field_id: int
    merge_source: str
    strategy: MatchingStrategy
    config: Optional[MappingConfig] = None  # what it was resolved from (to check the table again)
    status: dict[str, TargetField] = field(default_factory=dict)  # sync-status fields (STATUS_SOURCES) present

    @property
    def raw_kinds(self) -> set[str]:
        """The raw Aurora payloads (``staging.aurora_raw`` kinds) the custom mappings read."""
        return {root for t in self.targets if t.custom for root in t.custom.roots}


def default_mapping_path() -> Path:
    return Path(str(resources.files("aurora_qb_pipeline") / "config" / "field_mapping.yaml"))


def load_mapping(path: Optional[Union[str, Path]] = None) -> MappingConfig:
    """Read and shape-check the mapping file; errors name the file and the offending entry."""
    path = Path(path) if path else default_mapping_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError([f"cannot read mapping file {path}: {exc}"]) from exc
    problems = []
    fields_raw = raw.get("fields")
    if not isinstance(fields_raw, dict) or not fields_raw:
        problems.append(f"{path}: 'fields' must be a non-empty mapping of Aurora column -> Quickbase field")
        fields_raw = {}
    fields: dict[str, Any] = {}
    units: dict[str, str] = {}
    optional: set[str] = set()
    for source, target in fields_raw.items():
        source = str(source)
        unit = None
        if isinstance(target, dict):  # {field: <label or id>, unit: kW, optional: true}
            unknown = sorted(set(target) - {"field", "unit", "optional"})
            if unknown:
                problems.append(f"{path}: '{source}' has unknown keys {', '.join(unknown)} "
                                "(allowed: field, unit, optional)")
            if target.get("optional") is True:
                optional.add(source)
            elif target.get("optional") not in (None, False):
                problems.append(f"{path}: '{source}': optional must be true or false")
            unit, target = target.get("unit"), target.get("field")
        if source in STATUS_SOURCES and unit is not None:
            problems.append(f"{path}: '{source}' is the record's sync status; units do not apply")
        elif source not in EXPORT_COLUMNS and source not in STATUS_SOURCES:
            if "." not in source and "(" not in source:
                problems.append(f"{path}: unknown Aurora column '{source}' (known: {', '.join(sorted(EXPORT_COLUMNS))}; "
                                "or an Aurora field path such as summary.system_size_ac)")
            else:
                problems += [f"{path}: {p}" for p in parse_source(source, unit)[1]]
        elif unit is not None:
            problems.append(f"{path}: '{source}' is a staged column; units apply to Aurora field paths only")
        if not isinstance(target, (str, int)) or isinstance(target, bool) or target == "":
            problems.append(f"{path}: target of '{source}' must be a field label or id, got {target!r}")
        fields[source] = target
        if unit is not None:
            units[source] = str(unit)
    merge = raw.get("merge_field")
    if merge in (None, ""):
        problems.append(f"{path}: 'merge_field' is required (the unique Quickbase field holding the design id)")
    strategy = raw.get("matching_strategy", MatchingStrategy.ENRICH.value)
    try:
        strategy = MatchingStrategy(strategy)
    except ValueError:
        problems.append(f"{path}: matching_strategy must be one of enrich, replace, skip (got {strategy!r})")
        strategy = MatchingStrategy.ENRICH
    if problems:
        raise MappingError(problems)
    return MappingConfig(fields=fields, merge_field=merge, matching_strategy=strategy, units=units,
                         optional=frozenset(optional))


def _find_field(table_fields: list[dict], ref: Union[str, int]) -> Optional[dict]:
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        return next((f for f in table_fields if f.get("id") == int(ref)), None)
    wanted = ref.strip().casefold()
    return next((f for f in table_fields if str(f.get("label", "")).strip().casefold() == wanted), None)


def resolve_mapping(
    config: MappingConfig, table_fields: list[dict], strategy: Optional[MatchingStrategy] = None
) -> ResolvedMapping:
    """Check the mapping against the table's fields (GET /v1/fields) and resolve labels to ids."""
    problems: list[str] = []
    targets: list[TargetField] = []
    used: dict[int, str] = {}
    for source, ref in config.fields.items():
        fdef = _find_field(table_fields, ref)
        if fdef is None and source in config.optional:
            continue  # e.g. the Opportunity reference of a table made before issue 14: not mapped
        if fdef is None:
            labels = ", ".join(repr(f.get("label")) for f in table_fields if f.get("id") not in QUICKBASE_BUILT_IN_FIELD_IDS)
            problems.append(f"'{source}' -> {ref!r}: no such field in the table (fields: {labels})")
            continue
        fid, ftype, label = int(fdef["id"]), str(fdef.get("fieldType", "")), str(fdef.get("label"))
        if fid in QUICKBASE_BUILT_IN_FIELD_IDS:
            problems.append(f"'{source}' -> '{label}' ({fid}): built-in fields cannot be written")
        if fdef.get("mode"):
            problems.append(f"'{source}' -> '{label}' ({fid}): a {fdef['mode']} field cannot be written")
        custom = None
        status_kind = STATUS_SOURCES.get(source)
        if status_kind is not None:
            problems += status_field_problems(source, fdef, COMPATIBLE[status_kind])
        elif config.is_custom(source):
            custom, path_problems = parse_source(source, config.units.get(source))
            problems += path_problems
            if custom is not None:
                problems += static_problems(custom, ftype, label, fid)
        elif ftype not in COMPATIBLE[EXPORT_COLUMNS[source]]:
            kind = EXPORT_COLUMNS[source]
            problems.append(
                f"'{source}' ({kind.value}) -> '{label}' ({fid}) is of type {ftype}; "
                f"it needs one of {', '.join(sorted(COMPATIBLE[kind]))}"
            )
        if fid in used:
            problems.append(f"'{source}' and '{used[fid]}' both map to '{label}' ({fid})")
        used[fid] = source
        props = fdef.get("properties") or {}
        choices = None
        if ftype == "text-multiple-choice" and not props.get("allowNewChoices", False):
            choices = frozenset(str(c) for c in props.get("choices") or [])
        max_length = props.get("maxLength")
        max_length = max_length if isinstance(max_length, int) and max_length > 0 else None
        targets.append(TargetField(source, fid, label, ftype, bool(fdef.get("required")), choices, max_length, custom))

    merge_def = _find_field(table_fields, config.merge_field)
    merge_fid = int(merge_def["id"]) if merge_def else -1
    merge_source = used.get(merge_fid, "")
    if merge_def is None:
        problems.append(f"merge field {config.merge_field!r} does not exist in the table")
    else:
        if not merge_def.get("unique"):
            problems.append(
                f"merge field '{merge_def.get('label')}' ({merge_fid}) is not unique: Quickbase can only merge on a "
                "unique field (set 'Unique' on it in the table's field settings)"
            )
        if merge_source != "design_id":
            problems.append(f"merge field '{merge_def.get('label')}' must be mapped from design_id")
    mapped = {t.field_id for t in targets}
    status = {t.source: t for t in targets if t.source in STATUS_SOURCES}  # not Aurora values: sync_status.py
    targets = [t for t in targets if t.source not in STATUS_SOURCES]
    for fdef in table_fields:
        if fdef.get("required") and int(fdef["id"]) not in QUICKBASE_BUILT_IN_FIELD_IDS and int(fdef["id"]) not in mapped:
            problems.append(f"required field '{fdef.get('label')}' ({fdef['id']}) is not mapped: creates would fail")
    if problems:
        raise MappingError(problems)
    return ResolvedMapping(targets, merge_fid, merge_source, strategy or config.matching_strategy, config, status)


def table_changes(mapping: ResolvedMapping, table_fields: list[dict]) -> list[str]:
    """What changed in the table since ``mapping`` was resolved, as far as the export is concerned;
    empty when the mapping still fits. Each line names the field and the change (deleted, retyped,
    no longer unique, now read-only), followed by the mapping check's own problems."""
    if mapping.config is None:
        return []
    try:
        resolve_mapping(mapping.config, table_fields, mapping.strategy)
        return []
    except MappingError as exc:
        problems = exc.problems
    by_id = {int(f["id"]): f for f in table_fields if "id" in f}
    changes = []
    for target in mapping.targets:
        now = by_id.get(target.field_id)
        what = f"field '{target.label}' ({target.field_id})"
        if now is None:
            changes.append(f"{what} was deleted from the table")
            continue
        if str(now.get("fieldType")) != target.field_type:
            changes.append(f"{what} changed type from {target.field_type} to {now.get('fieldType')}")
        if now.get("mode"):
            changes.append(f"{what} became a {now['mode']} field (read-only)")
        if target.field_id == mapping.merge_field_id and not now.get("unique"):
            changes.append(f"merge {what} is no longer unique")
    return changes + [p for p in problems if p not in changes]


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value is False


def _as_time(value: Any) -> Optional[datetime]:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    if pd.isna(stamp):
        return None
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).to_pydatetime()


def values_match(target: TargetField, sent: Any, held: Any) -> bool:
    """Whether a record holding ``held`` (as runQuery answers it) already has the value ``sent``
    (as :func:`encode_row` made it) in ``target``. Empty is empty whatever its form (null, "",
    false); numbers compare as numbers (a numeric value may sit in a text field); timestamps as
    instants; choices without regard to case, as Quickbase matches them."""
    if _empty(sent) or _empty(held):
        return _empty(sent) and _empty(held)
    if isinstance(sent, (int, float)) and not isinstance(sent, bool):
        try:
            return abs(float(held) - float(sent)) <= 1e-6 * max(1.0, abs(float(sent)))
        except (TypeError, ValueError):
            return False
    if target.field_type in QUICKBASE_TIME_FIELD_TYPES:
        return _as_time(sent) is not None and _as_time(sent) == _as_time(held)
    if target.field_type == "text-multiple-choice":
        return str(sent).casefold() == str(held).casefold()
    return sent == held


def _normalise(kind: ValueKind, value: Any) -> Any:
    if value is None or (not isinstance(value, (list, tuple, dict)) and pd.isna(value)):
        return None
    if kind is ValueKind.INTEGER:
        return int(value)
    if kind is ValueKind.BOOLEAN:
        return bool(value)
    if kind is ValueKind.NUMBER:
        number = float(value)
        if not math.isfinite(number):
            return number  # refused by encode_row: JSON has no NaN or Infinity
        return int(number) if number.is_integer() else round(number, 6)
    if kind is ValueKind.TIMESTAMP:
        stamp = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
        return stamp.isoformat().replace("+00:00", "Z") if isinstance(stamp, datetime) else str(stamp)
    return str(value)


@dataclass
class EncodedRow:
    design_id: str
    record: dict[int, Any]  # field id -> value, as sent
    content_hash: str
    problems: list[str]  # reasons Quickbase would refuse the row; empty when it may be sent
    notes: list[str] = field(default_factory=list)  # what was changed to fit (text cut to a field's limit)
    status: Optional[tuple[str, str]] = None  # the sync status and problem this row carries (sync_status.py)
    status_only: bool = False  # only the merge key and the sync status: no Aurora values


def encode_row(mapping: ResolvedMapping, row: dict[str, Any], tallies: Optional[dict[str, PathTally]] = None
               ) -> EncodedRow:
    """Turn one staged row into a Quickbase record according to the strategy.

    enrich drops empty values (a blank never overwrites what a PM typed in Quickbase);
    replace sends them as null, clearing the field. Text longer than the field's "Max characters"
    is cut to it, with a note; a number that is not finite (NaN, Infinity: JSON has neither) is
    never sent: the row is refused (staging quarantines those before they get here). A custom
    mapping's value (``row[path]``, as evaluated on the raw payloads) is converted for its field
    (:func:`.mapping_paths.convert`); one that cannot be refuses the row, counted in ``tallies``."""
    record: dict[int, Any] = {}
    problems: list[str] = []
    notes: list[str] = []
    for target in mapping.targets:
        if target.custom is not None:
            value, problem = convert(target.custom, target.field_type, row.get(target.source))
            if tallies is not None:
                tallies.setdefault(target.source, PathTally()).add(problem, row.get(target.source) is not None)
            if problem:
                problems.append(f"'{target.label}' cannot take {target.source}: {problem}")
                continue
        else:
            value = _normalise(EXPORT_COLUMNS[target.source], row.get(target.source))
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"'{target.label}' would get {value!r} from {target.source}: not a finite number")
            continue
        limit = target.max_length
        if isinstance(value, str) and limit and len(value) > limit and target.field_id != mapping.merge_field_id:
            notes.append(f"'{target.label}' cut from {len(value)} to {limit} characters (the field's limit)")
            value = value[:limit]
        if value is None:
            if target.required:
                problems.append(f"'{target.label}' is required but Aurora has no {target.source}")
            if mapping.strategy is MatchingStrategy.REPLACE:
                record[target.field_id] = None
            continue
        if target.choices is not None and value not in target.choices:
            problems.append(
                f"'{target.label}' does not offer the choice {value!r}; add it to the field's choices in Quickbase "
                "(the record is retried on the next run)"
            )
        record[target.field_id] = value
    canonical = json.dumps(
        [mapping.strategy.value, sorted(record.items())], sort_keys=True, ensure_ascii=False, default=str
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:32]
    return EncodedRow(str(row["design_id"]), record, digest, problems, notes)


def add_custom_values(mapping: ResolvedMapping, row: dict[str, Any], documents: Optional[dict]) -> None:
    """Evaluate the custom mappings' paths on one design's raw payloads ({kind: payload}) into ``row``."""
    for target in mapping.targets:
        if target.custom is not None:
            row[target.source] = target.custom.evaluate(documents)


def mapping_never_fits(tallies: dict[str, PathTally], mapping: ResolvedMapping) -> list[str]:
    """Custom mappings none of whose staged values fit their field: problems of the mapping."""
    by_source = {t.source: t for t in mapping.targets}
    return [f"'{source}' -> '{by_source[source].label}' ({by_source[source].field_id}, {by_source[source].field_type}): "
            f"none of its {tally.present} values fits, e.g. {tally.example}"
            for source, tally in tallies.items() if tally.never_fits]


@dataclass(frozen=True)
class FieldSource:
    """Where a Quickbase field's value comes from: a staged table (asset name under ``aurora/``)
    and its column, or the raw payload of a staging asset and the Aurora path in it."""

    asset: str  # staging asset name (key aurora/<asset>)
    column: str  # staged column, or the Aurora field path for a custom mapping
    aurora_path: str  # the path in Aurora's answer


def field_lineage(mapping: ResolvedMapping) -> dict[str, list[FieldSource]]:
    """{Quickbase field label: [FieldSource]} for the resolved mapping: the column lineage of the
    export (standard columns from their staged table, custom paths from the raw payload's asset)."""
    schemas = dict(EXPORT_SOURCES)
    lineage: dict[str, list[FieldSource]] = {}
    for target in mapping.targets:
        if target.custom is not None:
            lineage[target.label] = [FieldSource(RAW_WRITERS[root], target.source, target.source)
                                     for root in sorted(target.custom.roots) if root in RAW_WRITERS]
        else:
            table = EXPORT_CONTRACT[target.source][0]
            column = schemas[table].to_schema().columns[target.source]
            path = (column.metadata or {}).get("aurora", target.source)
            lineage[target.label] = [FieldSource(table, target.source, path)]
    return lineage
