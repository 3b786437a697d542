"""Quickbase opportunities -> Aurora projects and design requests, with the results written back
(plain Python; the Dagster job in ``defs/opportunities/`` calls :func:`sync_opportunities`).

For each opportunity:

1. claim it in the store (committed before any POST; a live claim elsewhere -> passed over);
2. if an earlier attempt got as far as asking Aurora (a claim without a project id: it may have
   died between Aurora's answer and recording it), look the project up by
   ``external_provider_id`` = the Quickbase record id (list pages, newest first);
3. otherwise check the values (every problem at once) and ``POST /projects``; a 4xx (422: an
   address Aurora cannot use, a value too long) is written to Aurora Sync Error with Aurora Sync
   Status "error", and the opportunity is not tried again until its Date Modified moves past
   the one the error write left;
4. optionally ``POST /design_requests`` (marked as started before the POST; after a crash the
   request is looked up through the list endpoint where the tenant has one, else not repeated),
   and hand it to the design-request tracking of the webhook path (``tracked_design_requests``):
   its completion syncs the design into Quickbase as any other;
5. write Aurora Project ID, Aurora Design Request ID, status, a cleared error and the button
   signatures back (an upsert merged on Record ID#, so repeating it is harmless).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from ..api_facts import QUICKBASE_DATE_MODIFIED_FIELD, QUICKBASE_RECORD_ID_FIELD
from ..clients import AuroraClient, PermanentApiError, QuickbaseClient
from ..clients.aurora import OutcomeUnknown
from ..clients.quickbase import KEYS_PER_QUERY, quote, where_equals_any
from ..webhooks.inbox import Inbox
from .buttons import sign
from .mapping import OpportunityFields, describe
from .store import OpportunityStore

log = logging.getLogger(__name__)

STATUS_CREATED = "project created"
STATUS_REQUESTED = "design requested"
STATUS_ERROR = "error"
TRACKING_SOURCE = "opportunity"
MAX_ERROR_TEXT = 4000


@dataclass(frozen=True)
class Opportunity:
    record_id: str
    modified: Optional[str]
    values: dict[str, Any]

    def get(self, name: str) -> str:
        return describe(self.values.get(name))


@dataclass
class SyncReport:
    outcomes: dict[str, str] = field(default_factory=dict)  # record id -> what happened
    projects: dict[str, str] = field(default_factory=dict)  # record id -> Aurora project id
    errors: dict[str, str] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)

    def note(self, record_id: str, outcome: str) -> None:
        self.outcomes[record_id] = outcome
        self.counts[outcome] += 1


def ready_where(fields: OpportunityFields, modified_after: Optional[str] = None) -> str:
    """Opportunities flagged ready, without an Aurora project, changed after ``modified_after``."""
    where = "{%d.EX.true}AND{%d.EX.''}" % (fields["ready"], fields["project_id"])
    if modified_after:
        where += "AND{%d.AF.%s}" % (QUICKBASE_DATE_MODIFIED_FIELD, quote(modified_after))
    return where


def read_opportunities(opps: QuickbaseClient, fields: OpportunityFields, where: Optional[str] = None,
                       record_ids: Optional[Iterable[str]] = None) -> list[Opportunity]:
    """Opportunities matching ``where`` or with one of ``record_ids``, oldest change first."""
    wheres: list[Optional[str]] = [where]
    if record_ids is not None:
        ids = [str(r) for r in record_ids]
        wheres = [where_equals_any(QUICKBASE_RECORD_ID_FIELD, ids[i:i + KEYS_PER_QUERY])
                  for i in range(0, len(ids), KEYS_PER_QUERY)]
    by_id = {v: k for k, v in fields.ids.items()}
    select = sorted(set(fields.select()) | {QUICKBASE_RECORD_ID_FIELD, QUICKBASE_DATE_MODIFIED_FIELD})
    found = []
    for clause in wheres:
        for row in opps.query(select, where=clause):
            values = {by_id[int(fid)]: value for fid, value in row.items() if int(fid) in by_id}
            found.append(Opportunity(str(row[str(QUICKBASE_RECORD_ID_FIELD)]),
                                     row.get(str(QUICKBASE_DATE_MODIFIED_FIELD)), values))
    return sorted(found, key=lambda o: (o.modified or "", int(o.record_id)))


def due(opportunities: list[Opportunity], store: OpportunityStore) -> tuple[list[Opportunity], list[str]]:
    """Those worth an attempt, and the record ids passed over because they failed and nobody has
    changed them since (their Date Modified is the one the error write left)."""
    rows = store.get(o.record_id for o in opportunities)
    keep, unchanged = [], []
    for opp in opportunities:
        row = rows.get(opp.record_id)
        if row is not None and row.state == "error" and row.error_modified and row.error_modified == opp.modified:
            unchanged.append(opp.record_id)
        else:
            keep.append(opp)
    return keep, unchanged


def project_body(opp: Opportunity, fields: OpportunityFields) -> tuple[dict, list[str]]:
    """The ``POST /projects`` body of an opportunity, and every missing required value."""
    labels = fields.labels
    problems = [f"{labels[name]} is empty" for name in fields.required if not opp.get(name)]
    street, city, state, postal = (opp.get(n) for n in ("street", "city", "state", "postal_code"))
    country = opp.get("country") or "USA"
    address = f"{street}, {city}, {' '.join(filter(None, (state, postal)))}, {country}"
    body: dict[str, Any] = {"external_provider_id": opp.record_id, "location": {"property_address": address}}
    for name, key in (("first_name", "customer_first_name"), ("last_name", "customer_last_name"),
                      ("email", "customer_email"), ("phone", "customer_phone")):
        if opp.get(name):
            body[key] = opp.get(name)
    name = " ".join(filter(None, (opp.get("first_name"), opp.get("last_name"))))
    if name:
        body["name"] = f"{name} - {street}" if street else name
    return body, problems


class OpportunitySync:
    """One batch of opportunities against one tenant and one opportunities table."""

    def __init__(self, aurora: AuroraClient, opps: QuickbaseClient, fields: OpportunityFields,
                 store: OpportunityStore, inbox: Optional[Inbox] = None, button_secret: Optional[str] = None,
                 log_fn: Callable[[str], None] = log.info):
        """Many tenants: ``store.tenant`` names the tenant (its buttons' signatures name it), and the
        design requests it hands to the tracking are recorded as ``aurora``'s tenant's."""
        self.aurora, self.opps, self.fields, self.store, self.inbox = aurora, opps, fields, store, inbox
        self.button_secret, self.log = button_secret, log_fn

    # --- write-back ----------------------------------------------------------------------------
    def signatures(self, record_id: str) -> dict[int, str]:
        if not self.button_secret:
            return {}
        tenant = self.store.tenant
        return {self.fields[f"{action}_signature"]: sign(self.button_secret, self.opps.table_id, record_id, action, tenant)
                for action in ("create", "sync")}

    def write_back(self, record_id: str, values: dict[str, Any]) -> Optional[str]:
        """Write ``values`` (names -> value) to the opportunity; returns its new Date Modified."""
        record = {QUICKBASE_RECORD_ID_FIELD: int(record_id), **{self.fields[k]: v for k, v in values.items()},
                  **self.signatures(record_id)}
        result = self.opps.upsert([record], QUICKBASE_RECORD_ID_FIELD)
        if result.line_errors:
            raise PermanentApiError("Quickbase", "POST", "/records", 207, "; ".join(result.line_errors[0]))
        return result.date_modified[0] if result.date_modified else None

    def _fail(self, report: SyncReport, opp: Opportunity, token: str, message: str) -> None:
        message = message[:MAX_ERROR_TEXT]
        modified = self.write_back(opp.record_id, {"sync_status": STATUS_ERROR, "sync_error": message})
        self.store.release(opp.record_id, token, state="error", error=message, error_modified=modified)
        report.errors[opp.record_id] = message
        report.note(opp.record_id, "error")
        self.log(f"opportunity {opp.record_id}: error written back: {message}")

    # --- one opportunity -----------------------------------------------------------------------
    def run(self, opportunities: Iterable[Opportunity]) -> SyncReport:
        report = SyncReport()
        for opp in opportunities:
            self.one(opp, report)
        return report

    def one(self, opp: Opportunity, report: SyncReport) -> None:
        claimed = self.store.claim(opp.record_id)
        if claimed is None:
            report.note(opp.record_id, "in progress elsewhere")
            return
        token, before = claimed
        try:
            project_id = before.project_id or opp.get("project_id") or None
            if project_id is None and before.state not in ("new", "error"):
                found = self.aurora.find_project_by_external_id(opp.record_id)
                if found is not None:
                    project_id = found["id"]
                    report.counts["found after an interrupted attempt"] += 1
                    self.log(f"opportunity {opp.record_id}: project {project_id} found by external_provider_id")
            if project_id is None:
                project_id = self._create_project(opp, token, report)
                if project_id is None:
                    return
            self.store.update(opp.record_id, token, state="project_created", project_id=project_id, error=None)
            report.projects[opp.record_id] = project_id
            request_id = self._design_request(opp, token, before, project_id)
            values = {"project_id": project_id, "sync_status": STATUS_REQUESTED if request_id else STATUS_CREATED,
                      "sync_error": ""}
            if request_id:
                values["design_request_id"] = request_id
            self.write_back(opp.record_id, values)
            self.store.release(opp.record_id, token, state="done", error=None, error_modified=None)
            report.note(opp.record_id, "linked" if before.project_id or before.state not in ("new", "error")
                        else "created")
        except BaseException:
            self.store.release(opp.record_id, token)  # the trace stays: state and ids are kept
            raise

    def _create_project(self, opp: Opportunity, token: str, report: SyncReport) -> Optional[str]:
        body, problems = project_body(opp, self.fields)
        if problems:
            self._fail(report, opp, token, "Missing values: " + "; ".join(problems))
            return None
        try:
            project = self.aurora.create_project(body)
        except OutcomeUnknown:
            found = self.aurora.find_project_by_external_id(opp.record_id)
            if found is None:
                raise
            project = found
        except PermanentApiError as exc:
            if exc.status in (401, 403) or exc.status is None or exc.status >= 500:
                raise
            self._fail(report, opp, token, f"Aurora refused the project ({exc.status}): {exc.detail}")
            return None
        return project["id"]

    def _design_request(self, opp: Opportunity, token: str, before, project_id: str) -> Optional[str]:
        request_id = before.design_request_id or opp.get("design_request_id") or None
        if request_id is None and self.fields.create_design_request:
            if before.design_request_started:  # an earlier attempt may have made it
                listed = self.aurora.design_requests_of(project_id)
                if listed:
                    request_id = listed[0]["id"]
                elif listed is None:
                    self.log(f"opportunity {opp.record_id}: a design request may have been made by an "
                             "interrupted attempt and Aurora lists none; not requesting another")
                    return None
            if request_id is None:
                self.store.update(opp.record_id, token, design_request_started=True)
                try:
                    request_id = self.aurora.create_design_request(project_id)["id"]
                except OutcomeUnknown:
                    listed = self.aurora.design_requests_of(project_id) or []
                    if not listed:
                        raise
                    request_id = listed[0]["id"]
            self.store.update(opp.record_id, token, state="requested", design_request_id=request_id)
        if request_id and self.inbox is not None:
            self.inbox.track_design_request(request_id, source=TRACKING_SOURCE, project_id=project_id,
                                            status="submitted",
                                            tenant_id=self.aurora.tenant_id if self.store.tenant else None)
        return request_id


def stamp_signatures(sync: OpportunitySync, limit: int = 500) -> int:
    """Write the button signatures into opportunities that have none yet; returns how many."""
    if not sync.button_secret:
        return 0
    where = "{%d.EX.''}" % sync.fields["create_signature"]
    ids = [str(row[str(QUICKBASE_RECORD_ID_FIELD)]) for row in sync.opps.query([QUICKBASE_RECORD_ID_FIELD], where)]
    ids = ids[:limit]
    if ids:
        sync.opps.upsert([{QUICKBASE_RECORD_ID_FIELD: int(r), **sync.signatures(r)} for r in ids],
                         QUICKBASE_RECORD_ID_FIELD)
    return len(ids)
