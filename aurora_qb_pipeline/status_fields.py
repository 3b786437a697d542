"""The mapping lines of a record's own sync status (``sync_status.py``): not read from Aurora, but
checked against the table like the others (``mapping.resolve_mapping``)."""

from __future__ import annotations

from .schemas import ValueKind

STATUS_SOURCES: dict[str, ValueKind] = {
    "sync_status": ValueKind.TEXT, "sync_problem": ValueKind.TEXT, "last_synced": ValueKind.TIMESTAMP,
}
SYNCED, HELD, NOT_SENT = "Synced", "Held back", "Not sent"
STATUS_VALUES = (SYNCED, HELD, NOT_SENT)


def status_field_problems(source: str, fdef: dict, compatible: frozenset[str]) -> list[str]:
    """A sync-status field must take its values: a type of ``compatible``; a choice field offering them."""
    ftype, label, fid = str(fdef.get("fieldType", "")), fdef.get("label"), fdef.get("id")
    if ftype not in compatible:
        return [f"'{source}' -> '{label}' ({fid}) is of type {ftype}; it needs one of {', '.join(sorted(compatible))}"]
    props = fdef.get("properties") or {}
    if source == "sync_status" and ftype == "text-multiple-choice" and not props.get("allowNewChoices", False):
        missing = [v for v in STATUS_VALUES if v not in (props.get("choices") or [])]
        if missing:
            return [f"'{source}' -> '{label}' ({fid}) does not offer the choice(s) {', '.join(missing)}"]
    return []
