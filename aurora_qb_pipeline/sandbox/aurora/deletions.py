"""Deleting designs and projects, as a user does in Aurora's web app.

Aurora documents no delete endpoint for projects or designs in the Sync API (only that a deleted
object answers 404, and that 204 is the usual answer of a delete), so the emulator offers
deletion through admin routes only (``DELETE /_sandbox/designs/{id}``,
``DELETE /_sandbox/projects/{id}``, ``POST /_sandbox/delete`` for a random share); the tenant API
keeps answering 405 for ``DELETE`` on them. After a deletion every read of the object and of
what hangs on it (summary, default proposal, pricing, agreements; for a project also its designs,
design requests and site surveys) answers 404 and list pages no longer show it. Aurora fires no
documented webhook for a deletion, so none is fired; a client finds deletions by a 404 on a known
id or by their absence from a full listing. A simulation running on a deleted design ends
``failed`` (and fires its event, see :mod:`.simulation`).

``TenantData.deleted`` (admin: ``GET /_sandbox/deletions``) records what was deleted and when, so
tests and the benchmark can check that a pipeline followed.
"""

from __future__ import annotations

import random
from typing import Optional

from .core import StateCore
from .errors import AuroraError, lookup
from .synthetic import TenantData, format_timestamp


class DeletionsMixin(StateCore):
    def delete_design(self, design_id: str, tenant_id: Optional[str] = None) -> dict:
        """Admin: a user deletes a design. Returns ``{"design_ids": [id], "project_ids": []}``."""
        with self.lock:
            tenant = (self.owner("designs", design_id, "Design") if tenant_id is None
                      else self.tenant(tenant_id))
            lookup(tenant.designs, design_id, "Design")
            self._drop_design(tenant, design_id)
            return {"design_ids": [design_id], "project_ids": []}

    def delete_project(self, project_id: str, tenant_id: Optional[str] = None) -> dict:
        """Admin: a user deletes a project with everything in it. Returns the deleted ids."""
        with self.lock:
            tenant = (self.owner("projects", project_id, "Project") if tenant_id is None
                      else self.tenant(tenant_id))
            lookup(tenant.projects, project_id, "Project")
            design_ids = self._drop_project(tenant, project_id)
            return {"design_ids": design_ids, "project_ids": [project_id]}

    def delete_random(self, designs: float = 0.0, projects: float = 0.0, seed: int = 0,
                      tenant_id: Optional[str] = None) -> dict:
        """Admin: delete a share of the projects (with their designs), then a share of the remaining
        designs, chosen deterministically from ``seed``. Returns the deleted ids."""
        if not (0 <= designs <= 1 and 0 <= projects <= 1):
            raise AuroraError(422, "designs and projects must be shares between 0 and 1.")
        rng = random.Random(seed)
        with self.lock:
            tenant = self.tenant(tenant_id)
            project_ids = rng.sample(sorted(tenant.projects), round(projects * len(tenant.projects)))
            design_ids = [d for p in project_ids for d in self._drop_project(tenant, p)]
            chosen = rng.sample(sorted(tenant.designs), round(designs * len(tenant.designs)))
            for design_id in chosen:
                self._drop_design(tenant, design_id)
            return {"design_ids": design_ids + chosen, "project_ids": project_ids}

    def deletions(self, tenant_id: Optional[str] = None) -> list[dict]:
        """Admin: what was deleted (``{"id", "kind", "deleted_at"}``), oldest first."""
        with self.lock:
            tenant = self.tenant(tenant_id)
            return [{"id": record_id, **entry} for record_id, entry in tenant.deleted.items()]

    # --- the work ------------------------------------------------------------------------------------
    def _drop_design(self, tenant: TenantData, design_id: str) -> None:
        tenant.remove_design(design_id, format_timestamp(self._now()))

    def _drop_project(self, tenant: TenantData, project_id: str) -> list[str]:
        request_ids = [r for r, request in tenant.design_requests.items() if request["project_id"] == project_id]
        design_ids = tenant.remove_project(project_id, format_timestamp(self._now()))
        for request_id in request_ids:
            timer = self.service_timers.pop(request_id, None)
            if timer is not None:
                timer.cancel()
        self._inserted(tenant)
        return design_ids
