"""Outbound: a survey marked "Completed" in Quickbase goes to Aurora.

For one survey record (unless Aurora already has the request completed: then only the outcome
is written back, as after a run whose write-back failed): read it and its subpanel and mounting-plane records (the child tables,
found by their reference to the survey), build the three bodies of Aurora's site-survey guide
(``PUT .../electrical``, ``.../electrical/subpanels``, ``.../roofs/mounting_planes``), then mark the
request completed (``PUT .../status``). Empty Quickbase values are left out (Aurora refuses
``null``: omitting a key leaves it empty); Quickbase file attachments become signed links on the
webhook receiver that Aurora downloads (:mod:`.file_links`).

Aurora judges the values. Every 422 is collected (one message per problem, from any of the
uploads and from the completion), and written back to the survey: *Survey Status* "Needs Fixes"
and the messages in *Aurora Messages*. Only a surveyor setting the status to "Completed" again
sends the survey again (the sensor looks for "Completed" only). When Aurora accepts everything,
the status becomes "Sent to Aurora" with *Sent to Aurora At*, and the messages are cleared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional

from ..api_facts import QUICKBASE_RECORD_ID_FIELD
from ..clients.partner import PartnerAuroraClient, SurveyRejected
from ..clients.quickbase import where_equals_any
from ..clients.quickbase_app import QuickbaseAppClient
from .file_links import FileLinks, FileRef, latest_version
from .tables import SurveyTables, Table

STATUS_COMPLETED, STATUS_NEEDS_FIXES, STATUS_SENT = "Completed", "Needs Fixes", "Sent to Aurora"

# Aurora field -> Quickbase label (the spec's labels); whole numbers where Aurora wants integers
ELECTRICAL = {
    "main_panel_location": "Main Panel Location", "main_bus_rating": "Main Bus Rating (A)",
    "main_breaker_rating": "Main Breaker Rating (A)", "service_type": "Service Type", "feeder_type": "Feeder Type",
    "utility_meter_location": "Utility Meter Location", "existing_grounding": "Existing Grounding",
    "existing_grounding_location": "Existing Grounding Location", "main_panel_manufacturer": "Main Panel Manufacturer",
    "notes": "Electrical Notes",
}
ELECTRICAL_IMAGES = ("Main Panel Photo", "Meter Photo")
SUBPANEL = {"location": "Location", "disconnect_location": "Disconnect Location", "bus_rating": "Bus Rating (A)",
            "disconnect_size": "Disconnect Size (A)", "notes": "Notes"}
PLANE = {"units_of_measurement": "Units of Measurement", "pitch": "Pitch (deg)", "azimuth": "Azimuth (deg)",
         "roof_type": "Roof Type", "framing_type": "Framing Type", "rafter_size": "Rafter Size",
         "rafter_spacing": "Rafter Spacing", "notes": "Notes"}
INTEGERS = frozenset({"bus_rating", "disconnect_size", "rafter_spacing"})
PHOTO = "Photo"


@dataclass
class UploadResult:
    record_id: int
    request_id: str
    outcome: str  # sent / needs_fixes / skipped
    messages: list[str] = field(default_factory=list)
    images: int = 0


def _value(aurora_field: str, value: Any) -> Any:
    """A Quickbase value as Aurora takes it; None for an empty one (the key is then left out)."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, float) and aurora_field in INTEGERS and value.is_integer():
        return int(value)
    return value


def _images(table: Table, row: dict[int, Any], labels: tuple[str, ...], links: FileLinks) -> list[dict]:
    images = []
    for label in labels:
        newest = latest_version(row.get(table.fid(label)))
        if newest is not None:
            version, name = newest
            ref = FileRef(table.id, int(row[QUICKBASE_RECORD_ID_FIELD]), table.fid(label), version, name)
            images.append({"url": links.url(ref), "filename": name})
    return images


def _body(table: Table, row: dict[int, Any], mapping: dict[str, str], images: tuple[str, ...],
          links: FileLinks) -> dict[str, Any]:
    body = {name: _value(name, row.get(table.fid(label))) for name, label in mapping.items()}
    body = {k: v for k, v in body.items() if v is not None}
    found = _images(table, row, images, links)
    return {**body, "images": found} if found else body


def _rows(qb: QuickbaseAppClient, table: Table, where: Optional[str]) -> list[dict[int, Any]]:
    select = sorted({QUICKBASE_RECORD_ID_FIELD, *table.fields.values()})
    rows = [{int(k): v for k, v in row.items()} for row in qb.table(table.id).query(select, where=where)]
    return sorted(rows, key=lambda r: int(r[QUICKBASE_RECORD_ID_FIELD]))


def survey_bodies(qb: QuickbaseAppClient, tables: SurveyTables, survey: dict[int, Any],
                  links: FileLinks) -> tuple[dict, list[dict], list[dict]]:
    """The electrical object, the subpanels and the mounting planes of one survey record."""
    record_id = int(survey[QUICKBASE_RECORD_ID_FIELD])
    electrical = _body(tables.surveys, survey, ELECTRICAL, ELECTRICAL_IMAGES, links)
    children = []
    for table, mapping in ((tables.subpanels, SUBPANEL), (tables.planes, PLANE)):
        rows = _rows(qb, table, where_equals_any(table.reference_field_id, [record_id]))
        children.append([_body(table, row, mapping, (PHOTO,), links) for row in rows])
    return electrical, children[0], children[1]


def read_surveys(qb: QuickbaseAppClient, tables: SurveyTables, record_ids: list[int]) -> list[dict[int, Any]]:
    if not record_ids:
        return []
    return _rows(qb, tables.surveys, where_equals_any(QUICKBASE_RECORD_ID_FIELD, record_ids))


def send_survey(aurora: PartnerAuroraClient, qb: QuickbaseAppClient, tables: SurveyTables,
                survey: dict[int, Any], links: FileLinks) -> UploadResult:
    """Upload one survey to Aurora and write the outcome back to its Quickbase record."""
    surveys = tables.surveys
    record_id = int(survey[QUICKBASE_RECORD_ID_FIELD])
    request_id = str(survey.get(surveys.key_field_id) or "")
    if survey.get(surveys.fid("Survey Status")) != STATUS_COMPLETED or not request_id:
        return UploadResult(record_id, request_id, "skipped")  # changed since the sensor saw it
    messages: list[str] = []
    images = 0
    # already completed in Aurora (a run whose write-back to Quickbase failed): uploads would be
    # refused now, so only the outcome is written back
    if aurora.get_site_survey_request(request_id).get("status") != "completed":
        electrical, subpanels, planes = survey_bodies(qb, tables, survey, links)
        for put, body in ((aurora.put_electrical, electrical), (aurora.put_subpanels, subpanels),
                          (aurora.put_mounting_planes, planes)):
            try:
                put(request_id, body)
            except SurveyRejected as exc:
                messages += exc.messages
        if not messages:
            try:
                aurora.complete_site_survey(request_id)
            except SurveyRejected as exc:
                messages += exc.messages
        images = sum(len(part.get("images", [])) for part in [electrical, *subpanels, *planes])
    fid = surveys.fid
    if messages:
        update = {fid("Survey Status"): STATUS_NEEDS_FIXES, fid("Aurora Messages"): "\n".join(messages)}
    else:
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        update = {fid("Survey Status"): STATUS_SENT, fid("Aurora Messages"): "", fid("Sent to Aurora At"): now}
    answer = qb.table(surveys.id).upsert([{QUICKBASE_RECORD_ID_FIELD: record_id, **update}], QUICKBASE_RECORD_ID_FIELD)
    if answer.line_errors:
        raise ValueError(f"Quickbase refused the outcome of survey {request_id}: {'; '.join(answer.line_errors[0])}")
    return UploadResult(record_id, request_id, "needs_fixes" if messages else "sent", messages, images)


def completed_since(qb: QuickbaseAppClient, tables: SurveyTables, after: Optional[str]) -> list[tuple[int, str]]:
    """(record id, Date Modified) of the surveys whose status is "Completed", modified on or after
    ``after`` (an ISO timestamp; all when None), oldest change first."""
    status = tables.surveys.fid("Survey Status")
    where = "{%d.EX.'%s'}" % (status, STATUS_COMPLETED)
    if after:
        where += "AND{2.OAF.'%s'}" % after
    found = [(int(row["3"]), str(row["2"])) for row in qb.table(tables.surveys.id).query([2, 3], where=where)]
    return sorted(found, key=lambda item: (item[1], item[0]))
