"""Inbound: a ``site_survey_requested`` webhook becomes a Quickbase site-survey record.

For each request id (with the webhook's ``session_token``, optional): retrieve the request (``GET
/tenants/{tid}/site_surveys/{id}/request``: project, requested design, requested at, a screenshot
URL that expires after 24 hours) and the project (customer, address), copy the screenshot into the
record's file attachment field at once (before its URL expires), link the record to the design's
record in the designs table when there is one and to the opportunity the project was made for
(issue 14: the project's ``external_provider_id`` is the opportunity's Record ID#, so no lookup is
needed) when the survey table has that optional reference field, and upsert on *Aurora Site Survey
Request ID*.

Idempotent: the same webhook delivered twice (or replayed) finds the record by its merge key and
updates only what Aurora owns (customer, address, design, requested at); the surveyor's work and
status are never touched, and the screenshot is copied only while the field is empty.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Optional

from ..api_facts import QUICKBASE_RECORD_ID_FIELD
from ..clients.errors import PermanentApiError
from ..clients.partner import PartnerAuroraClient
from ..clients.quickbase_app import QuickbaseAppClient
from .file_links import latest_version
from ..transform import opportunity_record_id
from .tables import OPPORTUNITIES, SurveyTables

STATUS_REQUESTED = "Requested"


@dataclass(frozen=True)
class IntakeResult:
    request_id: str
    record_id: Optional[int]
    outcome: str  # created / updated / unchanged / failed
    screenshot_copied: bool
    design_record_id: Optional[int]
    screenshot_problem: Optional[str] = None  # why the screenshot could not be copied (it is then not)
    opportunity_record_id: Optional[int] = None  # the opportunity linked, if any


def customer_name(project: dict) -> str:
    parts = [project.get(k) for k in ("customer_salutation", "customer_first_name", "customer_last_name")]
    return " ".join(str(p).strip() for p in parts if p and str(p).strip())


def site_address(project: dict) -> str:
    """The site: ``location.property_address`` (the project endpoint), else ``address`` (as the
    site-survey guide's example shows it), else the customer's address."""
    location = project.get("location") if isinstance(project.get("location"), dict) else {}
    for value in (location.get("property_address"), project.get("address"), project.get("customer_address")):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def take_in(aurora: PartnerAuroraClient, qb: QuickbaseAppClient, tables: SurveyTables, request_id: str,
            session_token: Optional[str] = None) -> IntakeResult:
    """One site-survey request into Quickbase (created, or updated without touching the survey)."""
    aurora.use_session_token(session_token)
    request = aurora.get_site_survey_request(request_id)
    project = aurora.get_project(request["project_id"])
    surveys = tables.surveys
    fid = surveys.fid
    screenshot_fid = fid("Design Screenshot")
    table = qb.table(surveys.id)
    existing = table.records_by_key(surveys.key_field_id, [screenshot_fid], [request_id]).get(request_id)

    design_id = request.get("requested_for_design_id")
    record: dict[int, Any] = {
        surveys.key_field_id: request_id,
        fid("Aurora Project ID"): _text(request.get("project_id")),
        fid("Aurora Design ID"): _text(design_id),
        fid("Customer Name"): customer_name(project),
        fid("Customer Email"): _text(project.get("customer_email")),
        fid("Customer Phone"): _text(project.get("customer_phone")),
        fid("Site Address"): site_address(project),
        fid("Requested At"): request.get("requested_at"),
    }
    if existing is None:
        record[fid("Survey Status")] = STATUS_REQUESTED

    copied, screenshot_problem = False, None
    if (existing is None or latest_version(existing.get(screenshot_fid)) is None) and request.get("screenshot_url"):
        try:
            content = aurora.download(request["screenshot_url"])[1]
        except PermanentApiError as exc:  # e.g. expired: the survey is made without it, a later intake retries
            screenshot_problem = str(exc)
        else:
            name = f"design-{design_id or request_id}.png"
            record[screenshot_fid] = {"fileName": name, "data": base64.b64encode(content).decode()}
            copied = True

    design_record = None
    if tables.designs is not None and surveys.reference_field_id and design_id and tables.designs.key_field_id:
        designs = qb.table(tables.designs.id)
        design_record = designs.existing_keys(tables.designs.key_field_id, [design_id]).get(design_id)
        if design_record is not None:
            record[surveys.reference_field_id] = design_record

    opportunity = opportunity_record_id(project.get("external_provider_id"))
    if opportunity is not None and OPPORTUNITIES in surveys.links:
        record[surveys.links[OPPORTUNITIES]] = opportunity

    answer = table.upsert([record], surveys.key_field_id)
    if answer.line_errors:
        raise ValueError(f"Quickbase refused site survey {request_id}: {'; '.join(answer.line_errors[0])}")
    return IntakeResult(request_id, answer.record_ids[0], answer.outcome(0), copied, design_record, screenshot_problem,
                        opportunity if OPPORTUNITIES in surveys.links else None)


def survey_record_ids(qb: QuickbaseAppClient, tables: SurveyTables, request_ids: list[str]) -> dict[str, int]:
    """{request id: record id} of the surveys Quickbase holds."""
    found = qb.table(tables.surveys.id).records_by_key(tables.surveys.key_field_id, [], request_ids)
    return {key: int(row[QUICKBASE_RECORD_ID_FIELD]) for key, row in found.items()}
