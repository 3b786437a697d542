"""The opportunities mapping (``config/opportunity_mapping.yaml``): loading, and checking it
against ``GET /v1/fields`` of the opportunities and designs tables before anything is written.

Every problem is collected into one :class:`OpportunityMappingError`, so a table is fixed in one
pass. The types each logical field accepts are listed in :data:`FIELD_TYPES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from ..api_facts import QUICKBASE_NUMERIC_FIELD_TYPES, QUICKBASE_TEXT_FIELD_TYPES

_TEXT = QUICKBASE_TEXT_FIELD_TYPES
FIELD_TYPES: dict[str, frozenset[str]] = {
    "ready": frozenset({"checkbox"}),
    **{name: _TEXT for name in ("first_name", "last_name", "street", "city", "state", "postal_code", "country",
                                "project_id", "design_request_id", "sync_status", "sync_error", "stage",
                                "create_signature", "sync_signature")},
    "email": _TEXT | {"email"},
    "phone": _TEXT | {"phone"},
    "agreement_file": frozenset({"file"}),
    "proposal_file": frozenset({"file"}),
}
READ_FIELDS = ("ready", "first_name", "last_name", "email", "phone", "street", "city", "state", "postal_code",
               "country")
WRITTEN_FIELDS = ("project_id", "design_request_id", "sync_status", "sync_error", "stage", "create_signature",
                  "sync_signature", "agreement_file", "proposal_file")
# fields the pipeline writes must be plain fields (not formula, lookup or summary)
_REQUIRABLE = {"first_name", "last_name", "email", "phone", "street", "city", "state", "postal_code", "country"}


class OpportunityMappingError(ValueError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("Opportunity mapping does not fit the Quickbase tables:\n- " + "\n- ".join(problems))


@dataclass(frozen=True)
class OpportunityMappingConfig:
    fields: dict[str, Union[str, int]]
    required: tuple[str, ...]
    designs_reference: Union[str, int]
    create_design_request: bool = True


@dataclass(frozen=True)
class OpportunityFields:
    """The mapping resolved to field ids: ``ids[name]``, the designs table's reference field."""

    ids: dict[str, int]
    required: tuple[str, ...]
    designs_reference: int
    create_design_request: bool
    labels: dict[str, str]

    def __getitem__(self, name: str) -> int:
        return self.ids[name]

    def select(self) -> list[int]:
        return sorted({self.ids[n] for n in READ_FIELDS + ("project_id", "design_request_id", "sync_status")})


def load_opportunity_mapping(path: Optional[Path] = None) -> OpportunityMappingConfig:
    if path is None:
        text = resources.files("aurora_qb_pipeline.config").joinpath("opportunity_mapping.yaml").read_text()
    else:
        text = Path(path).read_text()
    raw = yaml.safe_load(text) or {}
    problems = []
    fields = raw.get("fields") or {}
    missing = [name for name in FIELD_TYPES if name not in fields]
    if missing:
        problems.append(f"fields: missing {', '.join(missing)}")
    unknown = sorted(set(fields) - set(FIELD_TYPES))
    if unknown:
        problems.append(f"fields: unknown names {', '.join(unknown)} (known: {', '.join(FIELD_TYPES)})")
    required = tuple(raw.get("required") or ())
    bad = [r for r in required if r not in _REQUIRABLE]
    if bad:
        problems.append(f"required: {', '.join(bad)} cannot be required (choose from {', '.join(sorted(_REQUIRABLE))})")
    if not raw.get("designs_reference"):
        problems.append("designs_reference: name the designs table's reference field")
    if problems:
        raise OpportunityMappingError(problems)
    return OpportunityMappingConfig(dict(fields), required, raw["designs_reference"],
                                    bool(raw.get("create_design_request", True)))


def _find(fields: list[dict], wanted: Union[str, int]) -> Optional[dict]:
    if isinstance(wanted, int) or str(wanted).isdigit():
        return next((f for f in fields if int(f["id"]) == int(wanted)), None)
    return next((f for f in fields if str(f.get("label", "")).lower() == str(wanted).lower()), None)


def _mode(field: dict) -> str:
    if field.get("mode"):
        return str(field["mode"])
    props = field.get("properties") or {}
    return "formula" if props.get("formula") else "lookup" if props.get("lookupTargetFieldId") else ""


def resolve_opportunity_mapping(config: OpportunityMappingConfig, opportunity_fields: list[dict],
                                design_fields: list[dict]) -> OpportunityFields:
    """Field ids for every mapped name, checked: exists, type fits, written fields are plain."""
    problems: list[str] = []
    ids: dict[str, int] = {}
    labels: dict[str, str] = {}
    for name, wanted in config.fields.items():
        found = _find(opportunity_fields, wanted)
        if found is None:
            problems.append(f"{name}: the opportunities table has no field {wanted!r}")
            continue
        if found["fieldType"] not in FIELD_TYPES[name]:
            problems.append(f"{name}: field {found['label']!r} is {found['fieldType']}, expected one of "
                            f"{', '.join(sorted(FIELD_TYPES[name]))}")
        if name in WRITTEN_FIELDS and _mode(found):
            problems.append(f"{name}: field {found['label']!r} is a {_mode(found)} field; the pipeline writes it")
        ids[name], labels[name] = int(found["id"]), str(found["label"])
    reference = _find(design_fields, config.designs_reference)
    if reference is None:
        problems.append(f"designs_reference: the designs table has no field {config.designs_reference!r} "
                        "(`aurora-qb quickbase init --apply` creates the relationship)")
    elif reference["fieldType"] not in QUICKBASE_NUMERIC_FIELD_TYPES:
        problems.append(f"designs_reference: field {reference['label']!r} is {reference['fieldType']}, "
                        "expected a numeric reference field")
    if problems:
        raise OpportunityMappingError(problems)
    return OpportunityFields(ids, config.required, int(reference["id"]), config.create_design_request, labels)


def describe(value: Any) -> str:
    return "" if value is None else str(value).strip()
