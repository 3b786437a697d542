"""Agreements (sales contracts sent for e-signature), their PDFs, and a project's files.

Documented: ``GET /agreements/{id}`` -> ``{"agreement": {id, project_id, design_id,
agreement_template_name, status, signing_provider, created_at, sent_at, last_viewed_at,
error_message}}`` (no ``signed_at``, no ``updated_at``); statuses ``sent, viewed, signed,
canceled, declined, error, cancel_pending`` (the webhook spells the last one ``cancel-pending``);
the PDF comes from an async job, ``POST /agreements/{id}/download_url/run`` then
``GET .../download_url/status?job_id=`` -> ``agreement_download_url_job {job_id, requested_at,
completed_at, status, file_url, project_id, design_id, error}``, the URL expiring after 15 min.
Event ``agreement_status_changed``: ``<PROJECT_ID> <AGREEMENT_ID> <STATUS> <DESIGN_ID>
<FINANCING_ID>`` (empty: the emulator has no financings).

The emulator's choices: agreements are made and moved by admin routes (a salesperson sends one,
the customer views and signs it); moves Aurora's statuses do not allow in practice (e.g. from
``canceled``) are 422; ``agreement_download_url_job_completed`` fires when a PDF job ends
(placeholders guessed). ``GET /projects/{id}/assets`` -> ``{"project_assets": [...]}`` (envelope
seen in a real client; item fields guessed) lists a "Proposal PDF" for each design that has a
default proposal, with a signed, expiring ``file_url``.
"""

from __future__ import annotations

import uuid
from typing import Optional

from .core import StateCore
from .errors import AuroraError, lookup
from .files import file_url, pdf_document, sign, verify
from .simulation import public_job
from .synthetic import TenantData, format_timestamp

AGREEMENT_STATUSES = ("sent", "viewed", "signed", "canceled", "declined", "error", "cancel_pending")
_OPEN = {"viewed", "signed", "canceled", "declined", "error", "cancel_pending"}
ALLOWED_MOVES: dict[str, set[str]] = {
    "sent": _OPEN, "viewed": _OPEN, "signed": {"cancel_pending"}, "cancel_pending": {"canceled"},
    "error": {"sent"}, "canceled": set(), "declined": set(),
}
SIGNING_PROVIDERS = ("docusign", "dropbox_sign")
DOWNLOAD_KIND = "agreement_download_url"
_ASSET_NAMESPACE = uuid.UUID("0d6f3f39-8a2e-4b7e-9d0c-2f6a1c4b5e7d")


def webhook_status(status: str) -> str:
    """An agreement status as the webhook spells it (``cancel_pending`` -> ``cancel-pending``)."""
    return status.replace("_", "-")


class AgreementsMixin(StateCore):
    def get_agreement(self, tenant_id: str, agreement_id: str) -> dict:
        with self.lock:
            return lookup(self.tenant(tenant_id).agreements, agreement_id, "Agreement")

    def _emit_agreement(self, tenant: TenantData, agreement: dict) -> None:
        self._emit(tenant, "agreement_status_changed", PROJECT_ID=agreement["project_id"],
                   AGREEMENT_ID=agreement["id"], STATUS=webhook_status(agreement["status"]),
                   DESIGN_ID=agreement["design_id"], FINANCING_ID="")

    def create_agreement(self, design_id: str, template_name: str = "Residential Solar Agreement",
                         signing_provider: str = "docusign") -> dict:
        """Admin: a salesperson sends the agreement for ``design_id`` (status ``sent``)."""
        if not isinstance(template_name, str) or not template_name or len(template_name) > 255:
            raise AuroraError(422, "template_name must be a non-empty string of at most 255 characters.")
        if signing_provider not in SIGNING_PROVIDERS:
            raise AuroraError(422, f"signing_provider must be one of {', '.join(SIGNING_PROVIDERS)}.")
        with self.lock:
            tenant = self.owner("designs", design_id, "Design")
            now = format_timestamp(self._now())
            agreement = {
                "id": self._builder(tenant).uuid(), "project_id": tenant.designs[design_id]["project_id"],
                "design_id": design_id, "agreement_template_name": template_name, "status": "sent",
                "signing_provider": signing_provider, "created_at": now, "sent_at": now, "last_viewed_at": None,
                "error_message": None,
            }
            tenant.agreements[agreement["id"]] = agreement
            self._emit_agreement(tenant, agreement)
            return agreement

    def set_agreement_status(self, agreement_id: str, status: str, error_message: Optional[str] = None) -> dict:
        """Admin: the customer views / signs / declines, or the salesperson cancels; fires the event."""
        if status not in AGREEMENT_STATUSES:
            raise AuroraError(422, f"status must be one of {', '.join(AGREEMENT_STATUSES)}.")
        with self.lock:
            tenant = self.owner("agreements", agreement_id, "Agreement")
            current = tenant.agreements[agreement_id]
            if status not in ALLOWED_MOVES[current["status"]]:
                raise AuroraError(422, f"Agreement {agreement_id} cannot go from {current['status']!r} to {status!r}.")
            now = format_timestamp(self._now())
            changes: dict = {"status": status, "error_message": (error_message or "Signing provider error.")
                             if status == "error" else None}
            if status == "viewed":
                changes["last_viewed_at"] = now
            if status == "sent":
                changes["sent_at"] = now
            tenant.agreements[agreement_id] = updated = {**current, **changes}
            self._emit_agreement(tenant, updated)
            return updated

    # --- the agreement PDF ----------------------------------------------------------------
    def start_agreement_download(self, tenant_id: str, agreement_id: str, base_url: str) -> dict:
        """``POST /agreements/{id}/download_url/run`` (202): the URL is ready after ``download_job_s``."""
        with self.lock:
            tenant = self.tenant(tenant_id)
            agreement = lookup(tenant.agreements, agreement_id, "Agreement")
            job = self._add_job(tenant, {
                "_kind": DOWNLOAD_KIND, "_agreement_id": agreement_id, "_base_url": base_url,
                "job_id": self._job_id(tenant), "requested_at": format_timestamp(self._now()),
                "completed_at": None, "status": "in-progress", "file_url": None,
                "project_id": agreement["project_id"], "design_id": agreement["design_id"], "error": None})
            self.scheduler.call_later(self.scaled(self.services.download_job_s), self._finish_download, job["job_id"])
            return public_job(job)

    def _finish_download(self, job_id: str) -> None:
        with self.lock:
            job = self.jobs[job_id]
            if job["status"] != "in-progress":
                return
            tenant = self.tenants[self._job_tenants[job_id]]
            token = sign(self.file_secret, {"t": tenant.tenant_id, "kind": "agreement", "id": job["_agreement_id"]},
                         self.scaled(self.services.file_url_ttl_s))
            job.update(status="succeeded", completed_at=format_timestamp(self._now()),
                       file_url=file_url(job["_base_url"], token))
            self._emit(tenant, "agreement_download_url_job_completed", JOB_ID=job_id, STATUS="succeeded",
                       AGREEMENT_ID=job["_agreement_id"], PROJECT_ID=job["project_id"], DESIGN_ID=job["design_id"])

    def agreement_download_status(self, tenant_id: str, agreement_id: str, job_id: Optional[str]) -> dict:
        with self.lock:
            tenant = self.tenant(tenant_id)
            lookup(tenant.agreements, agreement_id, "Agreement")
            return public_job(self._job(tenant, job_id, DOWNLOAD_KIND, _agreement_id=agreement_id))

    # --- project files --------------------------------------------------------------------
    def project_assets(self, tenant_id: str, project_id: str, base_url: str) -> list[dict]:
        """A "Proposal PDF" for every design of the project that has a default proposal."""
        with self.lock:
            tenant = self.tenant(tenant_id)
            lookup(tenant.projects, project_id, "Project")
            ttl = self.scaled(self.services.file_url_ttl_s)
            assets = []
            for design in tenant.designs_of(project_id):
                proposal = tenant.proposals.get(design["id"])
                if proposal is None:
                    continue
                token = sign(self.file_secret, {"t": tenant.tenant_id, "kind": "proposal", "id": design["id"]}, ttl)
                assets.append({
                    "id": str(uuid.uuid5(_ASSET_NAMESPACE, f"proposal-pdf:{design['id']}")),
                    "project_id": project_id, "design_id": design["id"], "asset_type": "Proposal PDF",
                    "file_name": f"Proposal - {design['name']}.pdf", "content_type": "application/pdf",
                    "file_url": file_url(base_url, token), "created_at": proposal["updated_at"],
                })
            return assets

    def open_file(self, token: str) -> tuple[str, bytes, str]:
        """``GET /files/{token}``: (file name, bytes, media type) of a signed URL; 403 expired or forged."""
        payload = verify(self.file_secret, token)
        with self.lock:
            tenant = self.tenants.get(payload["t"])
            if tenant is None:
                raise AuroraError(404, "File not found.")
            return self._open_file(tenant, payload)

    def _open_file(self, tenant: TenantData, payload: dict) -> tuple[str, bytes, str]:
        """The file a verified URL names (mixins handle their own kinds first)."""
        if payload["kind"] not in ("agreement", "proposal"):
            raise AuroraError(404, "File not found.")
        if payload["kind"] == "agreement":
            agreement = lookup(tenant.agreements, payload["id"], "File")
            project = tenant.projects[agreement["project_id"]]
            lines = [f"Agreement {agreement['id']}", f"Template: {agreement['agreement_template_name']}",
                     f"Status: {agreement['status']}", f"Design: {agreement['design_id']}"]
            title, name = "Solar Agreement", f"Agreement {agreement['id']}.pdf"
        else:
            design = lookup(tenant.designs, payload["id"], "File")
            project = tenant.projects[design["project_id"]]
            summary = tenant.summaries[design["id"]]
            lines = [f"Design: {design['name']} ({design['id']})",
                     f"System size: {summary['system_size_stc'] / 1000:.2f} kW DC"]
            title, name = "Solar Proposal", f"Proposal - {design['name']}.pdf"
        lines = [f"Customer: {project['name']}", f"Address: {project['location']['property_address']}", *lines]
        return name, pdf_document(title, lines), "application/pdf"
