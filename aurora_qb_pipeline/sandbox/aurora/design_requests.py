"""Design requests and the simulated design service that fulfils them.

Aurora documents create, retrieve and accept, and the states ``submitted`` ->
``designer_rejected`` | ``designer_completed`` -> ``accepted`` (accepting creates a design in
the project and stores its id on the request). Field names of the request object are not
published; the emulator's are ``id, project_id, design_id, status, image_src, submission_time,
completed_at, reviewed_at, designer_rejected_at, rejection_reason``.

EMULATOR EXTENSION: ``GET /design_requests`` (list, ``?status=&project_id=``, newest submission
first). Aurora documents no list endpoint; a tenant switched off
(``set_tenant_options(tid, design_request_list=False)``) answers 404 as Aurora would.

The design service (:class:`~.settings.ServiceConfig`): a submitted request is decided after
``design_service_delay_s`` (scaled): commercial projects are always rejected (out of scope for
the service), ``reject_rate`` of the others are rejected for bad imagery, the rest completed.
Projects at Aurora's magic sandbox address are completed at once, as Aurora's sandbox does.
Events: ``design_request_completed`` / ``design_request_rejected``
(``<DESIGN_REQUEST_ID_IN_AURORA>``, legacy ``<DESIGN_REQUEST_UUID_IN_AURORA>``, ``<STATUS>``);
accepting fires ``performance_simulation_job_completed`` for the new, simulated design.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ...api_facts import AURORA_DEFAULT_PER_PAGE
from .errors import AuroraError, lookup, page_slice
from .simulation import SimulationMixin
from .synthetic import DESIGN_REQUEST_STATUSES, REJECTION_REASONS, TenantData, format_timestamp

IMAGERY_REASONS = REJECTION_REASONS[:2]
COMMERCIAL_REASON = REJECTION_REASONS[2]


@dataclass(frozen=True)
class _Transition:
    source: str  # the only status the transition starts from
    target: str
    stamp: str  # the timestamp field it sets


_TRANSITIONS = {
    "complete": _Transition("submitted", "designer_completed", "completed_at"),
    "reject": _Transition("submitted", "designer_rejected", "designer_rejected_at"),
    "accept": _Transition("designer_completed", "accepted", "reviewed_at"),
}
_EVENTS = {"designer_completed": "design_request_completed", "designer_rejected": "design_request_rejected"}


class DesignRequestsMixin(SimulationMixin):
    def list_design_requests(self, tenant_id: str, page: int = 1, per_page: int = AURORA_DEFAULT_PER_PAGE,
                             status: Optional[str] = None, project_id: Optional[str] = None) -> list[dict]:
        """EMULATOR EXTENSION (no public list endpoint is documented): newest submission first."""
        if status is not None and status not in DESIGN_REQUEST_STATUSES:
            raise AuroraError(422, f"status must be one of {', '.join(DESIGN_REQUEST_STATUSES)}.")
        with self.lock:
            tenant = self.tenant(tenant_id)
            ids = self._sorted_ids(tenant, "design_requests", "submission_time")
            requests = (tenant.design_requests[i] for i in ids)
            matching = [r for r in requests
                        if (status is None or r["status"] == status)
                        and (project_id is None or r["project_id"] == project_id)]
            return page_slice(matching, page, per_page)

    def get_design_request(self, tenant_id: str, request_id: str) -> dict:
        with self.lock:
            return lookup(self.tenant(tenant_id).design_requests, request_id, "Design request")

    def create_design_request(self, tenant_id: str, project_id: Any, image_src: Any = None) -> dict:
        """``POST /design_requests``: a submitted request, queued for the design service."""
        if not isinstance(project_id, str) or not project_id:
            raise AuroraError(422, "design_request.project_id is required.")
        if image_src is not None and not isinstance(image_src, str):
            raise AuroraError(422, "design_request.image_src must be a string.")
        with self.lock:
            tenant = self.tenant(tenant_id)
            if project_id not in tenant.projects:
                raise AuroraError(422, f"design_request.project_id: project {project_id} not found.")
            request = self._builder(tenant).design_request(project_id, "submitted", self._now(), image_src=image_src)
            tenant.add_design_request(request)
            self._inserted(tenant)
            self._queue_for_service(tenant, request)
            return request

    # --- state machine --------------------------------------------------------------------
    def _transition(self, tenant: TenantData, request_id: str, action: str, **changes: Any) -> dict:
        rule = _TRANSITIONS[action]
        current = lookup(tenant.design_requests, request_id, "Design request")
        if current["status"] != rule.source:
            raise AuroraError(422, f"Cannot {action} design request {request_id}: its status is "
                                   f"{current['status']!r}, expected {rule.source!r}.")
        updated = {**current, "status": rule.target, rule.stamp: format_timestamp(self._now()), **changes}
        tenant.design_requests[request_id] = updated
        timer = self.service_timers.pop(request_id, None)
        if timer is not None:
            timer.cancel()
        if rule.target in _EVENTS:
            self._emit(tenant, _EVENTS[rule.target], design_request_id=request_id, STATUS=rule.target)
        return updated

    def complete_design_request(self, request_id: str) -> dict:
        """Admin: the designer finished the model (submitted -> designer_completed)."""
        with self.lock:
            tenant = self.owner("design_requests", request_id, "Design request")
            return self._transition(tenant, request_id, "complete")

    def reject_design_request(self, request_id: str, reason: Optional[str] = None) -> dict:
        """Admin: the designer could not build a model (submitted -> designer_rejected)."""
        with self.lock:
            tenant = self.owner("design_requests", request_id, "Design request")
            return self._transition(tenant, request_id, "reject", rejection_reason=reason or REJECTION_REASONS[0])

    def accept_design_request(self, tenant_id: Optional[str], request_id: str) -> dict:
        """designer_completed -> accepted: creates the design (with summary and proposal), stores
        its id on the request, fires ``performance_simulation_job_completed`` when it is simulated.
        ``tenant_id`` None: the request's own tenant (accepted in the app)."""
        with self.lock:
            tenant = (self.tenant(tenant_id) if tenant_id is not None
                      else self.owner("design_requests", request_id, "Design request"))
            accepted = self._transition(tenant, request_id, "accept")
            project = tenant.projects[accepted["project_id"]]
            design_id = self._add_design(tenant, project, self._now(), name="Design Service Model")
            tenant.design_requests[request_id] = accepted = {**accepted, "design_id": design_id}
            self._simulated(tenant, design_id, source="app")
            return accepted

    def _add_design(self, tenant: TenantData, project: dict, created: Any, name: Optional[str] = None) -> str:
        index = len(tenant.project_design_ids[project["id"]])
        bundle = self._builder(tenant).design(project, created, index, name=name, latest=created)
        tenant.add_design(bundle)
        return bundle.design["id"]

    # --- the simulated design service -----------------------------------------------------
    def _is_magic(self, project: dict) -> bool:
        address = " ".join((project["location"].get("property_address") or "").split()).lower()
        return address == " ".join(self.services.magic_address.split()).lower()

    def _queue_for_service(self, tenant: TenantData, request: dict) -> None:
        project = tenant.projects[request["project_id"]]
        magic = self._is_magic(project)
        if not (magic or self.services.design_service):
            return
        delay = 0.0 if magic else self.scaled(self.services.design_service_delay_s)
        self.service_timers[request["id"]] = self.scheduler.call_later(delay, self._service_due, tenant.tenant_id,
                                                                  request["id"])

    def _service_due(self, tenant_id: str, request_id: str) -> None:
        with self.lock:
            self.service_timers.pop(request_id, None)
            self._decide(self.tenants[tenant_id], request_id)

    def _decide(self, tenant: TenantData, request_id: str) -> Optional[dict]:
        request = tenant.design_requests[request_id]
        if request["status"] != "submitted":
            return None
        project = tenant.projects[request["project_id"]]
        rng = self._service_rngs[tenant.tenant_id]
        if self._is_magic(project):
            return self._transition(tenant, request_id, "complete")
        if project["project_type"] == "commercial":
            return self._transition(tenant, request_id, "reject", rejection_reason=COMMERCIAL_REASON)
        if rng.random() < self.services.reject_rate:
            return self._transition(tenant, request_id, "reject", rejection_reason=rng.choice(IMAGERY_REASONS))
        return self._transition(tenant, request_id, "complete")

    def run_design_service(self, tenant_id: Optional[str] = None) -> list[dict]:
        """Admin: decide every request the service has queued now (all tenants when None);
        returns the requests it completed or rejected."""
        with self.lock:
            decided = []
            for request_id in list(self.service_timers):
                tenant = self.owner("design_requests", request_id, "Design request")
                if tenant_id is not None and tenant.tenant_id != tenant_id:
                    continue
                self.service_timers.pop(request_id).cancel()
                result = self._decide(tenant, request_id)
                if result is not None:
                    decided.append(result)
            return decided
