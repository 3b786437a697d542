"""The sandbox app's Opportunities table (SANDBOX SEEDING for issue 14): a CRM table the way a
Quickbase customer would have built it, related to the designs table.

``with_design_table(..., opportunities=True)`` (what ``start_sandbox`` asks for) adds it after
the designs table and the token (so the ids seeded before it
stay as they were): the fields below, and the relationship "Opportunity" (the reference field in
the designs table holds the opportunity's Record ID#). The button fields ("Create in Aurora",
"Sync from Aurora now") are formula-URL fields that need the receiver's public URL, so they are
not seeded: ``aurora-qb quickbase init --apply`` adds them, as it would in a customer's app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .bodies import CreateRelationshipBody
from .relationships import create_relationship

if TYPE_CHECKING:
    from .state import QuickbaseState

OPPORTUNITY_TABLE_NAME = "Opportunities"
SYNC_STATUSES = ["project created", "design requested", "error"]
OPPORTUNITY_FIELDS: list[tuple[str, str]] = [
    ("Customer First Name", "text"),
    ("Customer Last Name", "text"),
    ("Customer Email", "email"),
    ("Customer Phone", "phone"),
    ("Street", "text"),
    ("City", "text"),
    ("State", "text"),
    ("Postal Code", "text"),
    ("Country", "text"),
    ("Ready for Aurora", "checkbox"),
    ("Aurora Project ID", "text"),
    ("Aurora Design Request ID", "text"),
    ("Aurora Sync Status", "text-multiple-choice"),
    ("Aurora Sync Error", "text-multi-line"),
    ("Aurora Stage", "text"),
    ("Aurora Create Signature", "text"),
    ("Aurora Sync Signature", "text"),
    ("Signed Agreement", "file"),
    ("Proposal", "file"),
]
REFERENCE_LABEL = "Opportunity"


def add_opportunities_table(state: "QuickbaseState", app_id: str, designs_table_id: str) -> str:
    """Create the table, its fields and the relationship; returns the table id."""
    table = state.add_table(app_id, OPPORTUNITY_TABLE_NAME, single_record_name="Opportunity",
                            plural_record_name="Opportunities")
    for label, field_type in OPPORTUNITY_FIELDS:
        field = state.add_field(table.id, label, field_type)
        if label == "Aurora Sync Status":
            state.update_field(table.id, field.id, properties={"choices": SYNC_STATUSES, "allowNewChoices": False})
    body = CreateRelationshipBody.model_validate({"parentTableId": table.id,
                                                  "foreignKeyField": {"label": REFERENCE_LABEL}})
    with state.lock:
        create_relationship(state.tables[designs_table_id], state.tables, body)
    return table.id
