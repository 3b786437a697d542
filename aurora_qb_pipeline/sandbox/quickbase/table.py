"""A table: its fields, its stored records and the unique indexes over them.

Records are stored as ``{fid: value}`` keyed by record id; an empty field is absent or None.
Derived fields (formula, lookup, summary) are never stored: :mod:`.derived` computes them when
records are read. Every change to data or schema moves the table's ``updated`` time, which
getTable reports ("when the table schema or data was last updated").
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from ...api_facts import QUICKBASE_BUILT_IN_FIELD_IDS
from .errors import QuickbaseError, not_found
from .fields import BUILTIN_FIELDS, DATE_MODIFIED, FIRST_USER_FIELD_ID, RECORD_ID, QbField, make_field
from .models import Relationship
from .values import Clock, convert


def index_key(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value


@dataclass
class QbTable:
    """One table. ``tables`` is the realm's registry (shared), so lookups and summaries can
    reach related tables; ``clock`` stamps writes."""

    id: str
    app_id: str
    name: str
    clock: Clock
    tables: Mapping[str, "QbTable"]
    realm: str = ""
    description: str = ""
    single_record_name: str = "Record"
    plural_record_name: str = "Records"
    created: str = ""
    updated: str = ""
    fields: dict[int, QbField] = field(default_factory=dict)
    rows: dict[int, dict[int, Any]] = field(default_factory=dict)
    relationships: list[Relationship] = field(default_factory=list)  # where this table is the child
    next_record_id: int = 1
    next_field_id: int = FIRST_USER_FIELD_ID
    _unique: dict[int, dict[Any, int]] = field(default_factory=dict)  # fid -> value -> record id

    def __post_init__(self) -> None:
        self.created = self.updated = self.created or self.clock.now()
        for fid, label, field_type in BUILTIN_FIELDS:
            self.add_field(
                label,
                field_type,
                fid=fid,
                appears_by_default=fid == RECORD_ID,
                unique=fid == RECORD_ID,
                required=fid == RECORD_ID,
            )

    def touch(self) -> str:
        """Stamp a change of data or schema; returns the timestamp."""
        self.updated = self.clock.now()
        return self.updated

    # -- description ---------------------------------------------------------------------------

    @property
    def alias(self) -> str:
        return "_DBID_" + "".join(c if c.isalnum() else "_" for c in self.name.upper())

    def to_api(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id": self.id,
            "alias": self.alias,
            "description": self.description,
            "created": self.created,
            "updated": self.updated,
            "nextRecordId": self.next_record_id,
            "nextFieldId": self.next_field_id,
            "defaultSortFieldId": DATE_MODIFIED,
            "defaultSortOrder": "DESC",
            "keyFieldId": RECORD_ID,
            "singleRecordName": self.single_record_name,
            "pluralRecordName": self.plural_record_name,
            "sizeLimit": "500 MB",
            "spaceUsed": f"{math.ceil(len(self.rows) / 1024)} MB",  # about 1 KB a record
            "spaceRemaining": "500 MB",
        }

    def update(self, **changes: Optional[str]) -> None:
        """updateTable: name, description, single_record_name, plural_record_name."""
        for key, value in changes.items():
            if value is not None:
                setattr(self, key, value)
        self.touch()

    # -- fields --------------------------------------------------------------------------------

    def get_field(self, fid: int) -> QbField:
        try:
            return self.fields[fid]
        except KeyError:
            raise not_found(f"Field {fid} does not exist in table {self.id}.") from None

    def field_types(self) -> dict[int, str]:
        return {fid: f.field_type for fid, f in self.fields.items()}

    def field_ids_by_label(self) -> dict[str, int]:
        return {f.label: fid for fid, f in self.fields.items()}

    def default_columns(self) -> list[int]:
        return [fid for fid, f in sorted(self.fields.items()) if f.appears_by_default]

    def add_field(
        self, label: str, field_type: str, *, fid: Optional[int] = None, **attributes: Any
    ) -> QbField:
        """Add a field; ``attributes`` are QbField attributes (snake_case), ``properties`` merged
        over the type's defaults."""
        fid = self.next_field_id if fid is None else fid
        self.fields[fid] = make_field(fid, label, field_type, **attributes)
        self.next_field_id = max(self.next_field_id, fid + 1)
        if self.fields[fid].unique and fid != RECORD_ID:  # record ids are looked up in rows directly
            self._unique[fid] = self._build_index(fid)
        self.touch()
        return self.fields[fid]

    def update_field(self, fid: int, **changes: Any) -> QbField:
        """updateField: attributes (snake_case) as given; ``properties`` merged over the current
        ones; making a field unique or required fails if the data does not allow it."""
        current = self.get_field(fid)
        refused = set(changes) - (set(QbField.model_fields) - {"id", "field_type"})
        if refused:  # a typo in a Python caller, or the type (see change_field_type)
            raise TypeError(f"update_field cannot change {sorted(refused)}")
        unique, required = changes.pop("unique", None), changes.pop("required", None)
        if changes.get("properties") is not None:
            changes["properties"] = {**current.properties, **changes["properties"]}
        if fid in QUICKBASE_BUILT_IN_FIELD_IDS and (unique is not None or required is not None):
            raise QuickbaseError(
                400, f'The unique and required settings of built-in field "{fid}" cannot change.'
            )
        if unique:
            index = self._build_index(fid)  # refuses existing duplicates
        if required and any(row.get(fid) is None for row in self.rows.values()):
            raise QuickbaseError(
                400, f'Field "{fid}" cannot be made required: some records have no value in it.'
            )
        updated = QbField.model_validate({**current.model_dump(), **changes})
        updated.unique = current.unique if unique is None else unique
        updated.required = current.required if required is None else required
        self.fields[fid] = updated
        if unique:
            self._unique[fid] = index
        elif unique is False:
            self._unique.pop(fid, None)
        self.touch()
        return updated

    def change_field_type(self, fid: int, field_type: str) -> QbField:
        """Sandbox only (updateField cannot change a type; the Quickbase UI can): the field takes
        ``field_type`` with that type's default properties, and stored values are converted
        where they can be and cleared where not (see :func:`.values.convert`)."""
        current = self.get_field(fid)
        if fid in QUICKBASE_BUILT_IN_FIELD_IDS or current.derived:
            raise QuickbaseError(400, f"The type of field {fid} cannot change.")
        for row in self.rows.values():
            if fid in row:
                row[fid] = convert(current.field_type, field_type, row[fid])
        attributes = current.model_dump(exclude={"id", "label", "field_type", "properties"})
        replaced = make_field(fid, current.label, field_type, **attributes)
        self.fields[fid] = replaced
        if replaced.unique:
            try:
                self._unique[fid] = self._build_index(fid)
            except QuickbaseError:
                replaced.unique = False  # converted values collide: the field stops being unique
                self._unique.pop(fid, None)
        self.touch()
        return replaced

    def delete_fields(self, fids: list[int]) -> dict[str, list]:
        deleted, errors = [], []
        for fid in fids:
            if fid in QUICKBASE_BUILT_IN_FIELD_IDS or fid not in self.fields:
                errors.append(f"Error found with fid: {fid}")
                continue
            del self.fields[fid]
            self._unique.pop(fid, None)
            for row in self.rows.values():
                row.pop(fid, None)
            self.relationships = [r for r in self.relationships if r.id != fid]
            deleted.append(fid)
        if deleted:
            self.touch()
        return {"deletedFieldIds": deleted, "errors": errors}

    # -- unique indexes and storage ------------------------------------------------------------

    def _build_index(self, fid: int) -> dict[Any, int]:
        index: dict[Any, int] = {}
        for rid, row in self.rows.items():
            value = row.get(fid)
            if value is None:
                continue
            if index_key(value) in index:
                raise QuickbaseError(
                    400, f'Field "{fid}" cannot be made unique: the table has duplicate values in it.'
                )
            index[index_key(value)] = rid
        return index

    def is_unique(self, fid: int) -> bool:
        return fid in self._unique

    def find(self, fid: int, value: Any) -> Optional[int]:
        """The record whose unique field ``fid`` holds ``value``."""
        if fid == RECORD_ID:
            return value if value in self.rows else None
        return self._unique[fid].get(index_key(value))

    def store(self, rid: int, values: dict[int, Any]) -> None:
        """Write ``values`` into record ``rid`` (created if new), keeping the indexes."""
        row = self.rows.setdefault(rid, {})
        for fid, index in self._unique.items():
            if fid in values:
                index.pop(index_key(row.get(fid)), None)
                if values[fid] is not None:
                    index[index_key(values[fid])] = rid
        row.update(values)

    def remove(self, rid: int) -> None:
        row = self.rows.pop(rid)
        for fid, index in self._unique.items():
            index.pop(index_key(row.get(fid)), None)
