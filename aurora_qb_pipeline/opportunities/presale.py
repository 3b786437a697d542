"""Pre-sale tracking: what Aurora reports about a linked project shows on its opportunity.

From the webhook inbox (read by the opportunities sensor as a consumer of its own, so the
webhook sensor's reading is untouched): ``agreement_status_changed`` (``sent``, ``viewed``,
``signed``, ... -> Aurora Stage "agreement sent", "agreement viewed", "agreement signed") and
``project_status_changed`` (the tenant's own project statuses, e.g. "Proposal Sent", shown as
they are). Only projects the pipeline made for an opportunity are followed (the store knows them).

Files: once the agreement is signed, its PDF (Aurora's asynchronous download job, then the signed
URL) goes into the "Signed Agreement" file attachment field; the newest proposal PDF among the
project's assets (``GET /projects/{id}/assets``, a sandbox-modelled endpoint whose item fields
are guessed) goes into "Proposal" when that field is still empty.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from ..clients import NotFoundError, PermanentApiError
from ..clients.quickbase import quote
from ..webhooks.inbox import InboxRow
from .sync import OpportunitySync, read_opportunities

STAGE_EVENTS = frozenset({"agreement_status_changed", "project_status_changed"})


@dataclass(frozen=True)
class StageUpdate:
    project_id: str
    stage: str
    agreement_id: Optional[str] = None
    signed: bool = False


def stage_of(event: str, status: str) -> str:
    if event == "agreement_status_changed":
        return f"agreement {status.replace('-', ' ').replace('_', ' ')}"
    return status


def stage_updates(rows: Iterable[InboxRow], linked_projects: set[str]) -> list[StageUpdate]:
    """The newest stage per linked project among ``rows`` (a signature is kept once seen)."""
    latest: dict[str, StageUpdate] = {}
    for row in rows:
        project = row.params.get("project_id")
        status = row.params.get("status")
        if row.event not in STAGE_EVENTS or not project or project not in linked_projects or not status:
            continue
        signed = row.event == "agreement_status_changed" and status == "signed"
        agreement = row.params.get("agreement_id") or None
        before = latest.get(project)
        if before is not None and before.signed and not signed:  # keep the signed agreement to attach
            agreement, signed = before.agreement_id, True
        latest[project] = StageUpdate(project, stage_of(row.event, status), agreement, signed)
    return list(latest.values())


def _file(name: str, content: bytes) -> dict[str, str]:
    return {"fileName": name, "data": base64.b64encode(content).decode()}


def _newest_proposal(sync: OpportunitySync, project_id: str) -> Optional[dict[str, Any]]:
    try:
        assets = sync.aurora.project_assets(project_id)
    except (NotFoundError, PermanentApiError):
        return None
    proposals = [a for a in assets if a.get("file_url") and "proposal" in str(a.get("asset_type", "")).lower()]
    return max(proposals, key=lambda a: str(a.get("created_at") or ""), default=None)


def apply_stage_updates(sync: OpportunitySync, updates: Iterable[StageUpdate]) -> dict[str, str]:
    """Write each stage (and the files) to the opportunity linked to its project; returns
    {project id: what was done}."""
    done: dict[str, str] = {}
    for update in updates:
        where = "{%d.EX.%s}" % (sync.fields["project_id"], quote(update.project_id))
        found = read_opportunities(sync.opps, sync.fields, where=where)
        if not found:
            done[update.project_id] = "no opportunity linked"
            continue
        opp = found[0]
        values: dict[str, Any] = {"stage": update.stage}
        notes = [f"stage {update.stage!r}"]
        if update.signed and update.agreement_id:
            url = sync.aurora.agreement_download_url(update.agreement_id)
            if url:
                values["agreement_file"] = _file(*sync.aurora.download(url))
                notes.append("signed agreement attached")
        if not _has_file(sync, opp.record_id, "proposal_file"):
            proposal = _newest_proposal(sync, update.project_id)
            if proposal is not None:
                name, content = sync.aurora.download(proposal["file_url"])
                values["proposal_file"] = _file(proposal.get("file_name") or name, content)
                notes.append("proposal attached")
        sync.write_back(opp.record_id, values)
        done[update.project_id] = ", ".join(notes)
    return done


def _has_file(sync: OpportunitySync, record_id: str, name: str) -> bool:
    fid = sync.fields[name]
    rows = list(sync.opps.query([fid], where="{3.EX.%s}" % quote(record_id)))
    value = rows[0].get(str(fid)) if rows else None
    return bool(value and (value.get("versions") if isinstance(value, dict) else value))
