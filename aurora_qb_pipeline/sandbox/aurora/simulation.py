"""Performance simulations: Aurora's asynchronous job pattern, and the event integrations rely on.

Documented: ``POST /designs/{id}/performance_simulation/run`` answers 202 with
``{"performance_simulation_job": {job_id, design_id, status: "in-progress", source, requested_at,
completed_at, error}}``; ``GET .../performance_simulation/status?job_id=`` retrieves it until
``succeeded`` / ``failed``; a failed pre-check is a 422 with a message; 409 while an operation on
the resource is in progress. Each finished job fires ``performance_simulation_job_completed``
(``<DESIGN_ID>``, ``<JOB_ID>``, ``<STATUS>``), for API- and app-started jobs alike.

A job runs ``simulation_s`` (scaled) and recomputes the design's ``energy_production`` from its
arrays. App-side simulations (a designer in the web app, an accepted design request, the
``mutate`` admin operation) are recorded as finished ``source: "app"`` jobs.
"""

from __future__ import annotations

from typing import Optional

from .core import StateCore
from .errors import AuroraError, lookup
from .synthetic import TenantData, format_timestamp, resimulated

KIND = "performance_simulation"


def public_job(job: dict) -> dict:
    """A job record as the API answers it (bookkeeping keys start with ``_``)."""
    return {key: value for key, value in job.items() if not key.startswith("_")}


class SimulationMixin(StateCore):
    def _simulated(self, tenant: TenantData, design_id: str, source: str = "app") -> Optional[dict]:
        """Record a finished app-side simulation of ``design_id`` and fire its event (only when the
        design's summary carries simulation results: a design never simulated fires nothing)."""
        if "energy_production" not in tenant.summaries[design_id]:
            return None
        now = format_timestamp(self._now())
        job = self._add_job(tenant, {
            "_kind": KIND, "job_id": self._job_id(tenant), "design_id": design_id, "status": "succeeded",
            "source": source, "requested_at": now, "completed_at": now, "error": None})
        self._emit(tenant, "performance_simulation_job_completed", DESIGN_ID=design_id, JOB_ID=job["job_id"],
                   STATUS="succeeded")
        return public_job(job)

    def run_simulation(self, tenant_id: str, design_id: str, source: str = "api") -> dict:
        """Start a simulation job (202); it finishes after ``simulation_s`` (scaled)."""
        with self.lock:
            tenant = self.tenant(tenant_id)
            lookup(tenant.designs, design_id, "Design")
            arrays = tenant.summaries[design_id].get("arrays") or []
            if not any(array.get("module") for array in arrays):
                raise AuroraError(422, f"Design {design_id} has no modules to simulate.")
            running = [job for job in self.jobs.values() if job["_kind"] == KIND
                       and job["design_id"] == design_id and job["status"] == "in-progress"]
            if running:
                raise AuroraError(409, f"A performance simulation of design {design_id} is already in "
                                       f"progress (job {running[0]['job_id']}); retry later.")
            job = self._add_job(tenant, {
                "_kind": KIND, "job_id": self._job_id(tenant), "design_id": design_id,
                "status": "in-progress", "source": source, "requested_at": format_timestamp(self._now()),
                "completed_at": None, "error": None})
            self.scheduler.call_later(self.scaled(self.services.simulation_s), self._finish_simulation,
                                      job["job_id"])
            return public_job(job)

    def _finish_simulation(self, job_id: str) -> None:
        with self.lock:
            job = self.jobs[job_id]
            if job["status"] != "in-progress":
                return
            tenant = self.tenants[self._job_tenants[job_id]]
            design_id = job["design_id"]
            summary = tenant.summaries.get(design_id)
            if summary is None:  # the design went away meanwhile
                job.update(status="failed", error="Design not found.", completed_at=format_timestamp(self._now()))
            else:
                project = tenant.projects[summary["project_id"]]
                tenant.summaries[design_id] = {**summary, "energy_production": resimulated(summary, project)}
                job.update(status="succeeded", completed_at=format_timestamp(self._now()))
            self._emit(tenant, "performance_simulation_job_completed", DESIGN_ID=design_id, JOB_ID=job_id,
                       STATUS=job["status"])

    def simulation_status(self, tenant_id: str, design_id: str, job_id: Optional[str]) -> dict:
        with self.lock:
            tenant = self.tenant(tenant_id)
            lookup(tenant.designs, design_id, "Design")
            return public_job(self._job(tenant, job_id, KIND, design_id=design_id))

    def simulate_design(self, design_id: str) -> dict:
        """Admin: a designer runs a simulation in the app; it finishes at once and fires its event."""
        with self.lock:
            tenant = self.owner("designs", design_id, "Design")
            job = self.run_simulation(tenant.tenant_id, design_id, source="app")
            self._finish_simulation(job["job_id"])
            return public_job(self.jobs[job["job_id"]])
