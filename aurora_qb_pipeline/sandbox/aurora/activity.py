"""What Aurora's users do in the web app while a pipeline runs (driven by admin routes and tests).

* :meth:`ActivityMixin.add_projects`: new projects with designs, created now. Fires
  ``project_created`` (``SOURCE=app``) per project and ``performance_simulation_job_completed``
  per new design that is simulated.
* :meth:`ActivityMixin.mutate`: designers revise a share of the designs (module count and/or
  azimuth; sizes, bill of materials and energy follow), re-run the simulation, the default
  proposal's ``updated_at`` moves to now, and each affected project gets a design request
  submitted, completed and accepted now. Fires, as the real changes would:
  ``performance_simulation_job_completed`` (``STATUS=succeeded``) for every changed design that
  is simulated, and ``design_request_completed`` (``STATUS=designer_completed``) for every
  request it records. A changed design without simulation results fires no simulation event;
  its project's design-request event still does.
"""

from __future__ import annotations

import random
from typing import Optional

from .design_requests import DesignRequestsMixin
from .errors import AuroraError
from .synthetic import distribute, format_timestamp, is_revisable, revise_design

MAX_NEW_PROJECTS = 10_000


class ActivityMixin(DesignRequestsMixin):
    def mutate(self, fraction: float, seed: int = 0, tenant_id: Optional[str] = None) -> dict:
        """Designers edit ``fraction`` of the designs (at least one when fraction > 0), chosen
        deterministically from ``seed``. Returns ``{"changed_design_ids", "project_ids"}``."""
        if not 0 <= fraction <= 1:
            raise AuroraError(422, "fraction must be between 0 and 1.")
        rng = random.Random(seed)
        with self.lock:
            tenant = self.tenant(tenant_id)
            now = self._now()
            candidates = [d for d in tenant.designs if is_revisable(tenant.summaries[d])]
            wanted = round(fraction * len(tenant.designs)) or (1 if fraction > 0 else 0)
            changed = rng.sample(candidates, min(wanted, len(candidates)))
            first_change: dict[str, str] = {}  # project id -> first changed design
            for design_id in changed:
                design = tenant.designs[design_id]
                project = tenant.projects[design["project_id"]]
                tenant.designs[design_id], tenant.summaries[design_id] = revise_design(
                    rng, design, tenant.summaries[design_id], project)
                proposal = tenant.proposals.get(design_id)
                if proposal is not None:
                    tenant.proposals[design_id] = {**proposal, "updated_at": format_timestamp(now, iso=True)}
                first_change.setdefault(project["id"], design_id)
                self._simulated(tenant, design_id, source="app")
            builder = self._builder(tenant)
            for project_id, design_id in first_change.items():
                request = builder.design_request(project_id, "accepted", now, finished=now, reviewed=now,
                                                 design_id=design_id)
                tenant.add_design_request(request)
                self._emit(tenant, "design_request_completed", design_request_id=request["id"],
                           STATUS="designer_completed")
            self._inserted(tenant)
            return {"changed_design_ids": changed, "project_ids": list(first_change)}

    def add_projects(self, count: int, designs_per_project: float = 2.5,
                     tenant_id: Optional[str] = None) -> dict:
        """New projects created now (so they list first), with round(count * designs_per_project)
        designs spread over them. Returns ``{"project_ids", "design_ids"}``."""
        if not 0 <= count <= MAX_NEW_PROJECTS:
            raise AuroraError(422, f"count must be between 0 and {MAX_NEW_PROJECTS}.")
        if designs_per_project < 0:
            raise AuroraError(422, "designs_per_project must be 0 or greater.")
        with self.lock:
            tenant = self.tenant(tenant_id)
            builder = self._builder(tenant)
            now = self._now()
            project_ids, design_ids = [], []
            for design_count in distribute(builder.rng, count, round(count * designs_per_project)):
                project = builder.project(now)
                tenant.add_project(project)
                project_ids.append(project["id"])
                self._emit(tenant, "project_created", PROJECT_ID=project["id"], SOURCE="app")
                for _ in range(design_count):
                    design_id = self._add_design(tenant, project, now)
                    design_ids.append(design_id)
                    self._simulated(tenant, design_id, source="app")
            self._inserted(tenant)
            return {"project_ids": project_ids, "design_ids": design_ids}
