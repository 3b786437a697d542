"""Pre-sale tracking: what Aurora reports about a linked project shows on its opportunity.

From the webhook inbox (read by the opportunities sensor as a consumer of its own, so the
webhook sensor's reading is untouched): ``agreement_status_changed`` (``sent``, ``viewed``,
``signed``, ... -> Aurora Stage "agreement sent", "agreement viewed", "agreement signed") and
``project_status_changed`` (the tenant's own project statuses, e.g. "Proposal Sent", shown as
they are; when both come in one batch the project status wins: it is the tenant's sales stage).
Events only say *that* something moved: the current agreement and project are read from Aurora
when the run writes the stage, so deliveries out of order never move a stage back. Only projects
the pipeline made for an opportunity are followed (the store knows them).

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
    """A linked project whose pre-sale stage moved: the agreement an event named (the newest) and
    whether its project status changed. The values themselves are read from Aurora when the run
    applies it: deliveries may arrive out of order, the objects' current state may not."""

    project_id: str
    agreement_id: Optional[str] = None
    project_status: bool = False


def agreement_stage(status: str) -> str:
    return f"agreement {status.replace('-', ' ').replace('_', ' ')}"


def stage_updates(rows: Iterable[InboxRow], linked_projects: set[str]) -> list[StageUpdate]:
    """One update per linked project among ``rows``."""
    latest: dict[str, StageUpdate] = {}
    for row in rows:
        project = row.params.get("project_id")
        if row.event not in STAGE_EVENTS or not project or project not in linked_projects:
            continue
        before = latest.get(project, StageUpdate(project))
        if row.event == "agreement_status_changed":
            latest[project] = StageUpdate(project, row.params.get("agreement_id") or before.agreement_id,
                                          before.project_status)
        else:
            latest[project] = StageUpdate(project, before.agreement_id, True)
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
        values: dict[str, Any] = {}
        agreement = sync.aurora.get_agreement(update.agreement_id) if update.agreement_id else None
        status = sync.aurora.get_project(update.project_id).get("status") if update.project_status else None
        # the tenant's own project status is its sales stage; else the agreement's
        if status:
            values["stage"] = status
        elif agreement is not None:
            values["stage"] = agreement_stage(str(agreement.get("status")))
        notes = [f"stage {values.get('stage')!r}"]
        if agreement is not None and agreement.get("status") == "signed":
            url = sync.aurora.agreement_download_url(agreement["id"])
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
