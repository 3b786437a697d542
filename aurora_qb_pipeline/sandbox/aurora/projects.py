"""Projects: list, retrieve, create and update (the CRM side of an integration), status changes.

Events: ``project_created`` (``<PROJECT_ID>``, ``<SOURCE>`` = ``api`` for the API, ``app`` for
projects made through the admin routes) and ``project_status_changed`` (``<STATUS>``,
``<PROJECT_ID>``) whenever ``status`` takes a new value, by API update or admin route.

``external_provider_id`` (the CRM's id) is stored as sent and listed with the project; Aurora
documents no filter on it, so a client finds a project it created earlier by paging the list
(newest first: a project created moments ago is on the first page).
"""

from __future__ import annotations

from typing import Any, Optional

from ...api_facts import AURORA_DEFAULT_PER_PAGE
from .core import StateCore
from .errors import AuroraError, lookup, page_slice
from .project_input import check_project
from .synthetic import TenantData, format_timestamp


class ProjectsMixin(StateCore):
    # --- reads ----------------------------------------------------------------------------
    def list_projects(self, tenant_id: str, page: int = 1, per_page: int = AURORA_DEFAULT_PER_PAGE) -> list[dict]:
        """A page of full project objects, newest first (without ``location`` while the tenant's
        ``project_list_location`` test switch is off)."""
        with self.lock:
            tenant = self.tenant(tenant_id)
            ids = page_slice(self._sorted_ids(tenant, "projects", "created_at"), page, per_page)
            if self._options[tenant.tenant_id].project_list_location:
                return [tenant.projects[i] for i in ids]
            return [{k: v for k, v in tenant.projects[i].items() if k != "location"} for i in ids]

    def get_project(self, tenant_id: str, project_id: str) -> dict:
        with self.lock:
            return lookup(self.tenant(tenant_id).projects, project_id, "Project")

    def find_projects(self, tenant_id: Optional[str] = None, external_provider_id: Optional[str] = None) -> list[dict]:
        """Python-side helper (no such endpoint): projects carrying this CRM id, newest first."""
        with self.lock:
            tenant = self.tenant(tenant_id)
            return [tenant.projects[i] for i in self._sorted_ids(tenant, "projects", "created_at")
                    if tenant.projects[i]["external_provider_id"] == external_provider_id]

    # --- create / update ------------------------------------------------------------------
    def create_project(self, tenant_id: str, body: Any, source: str = "api") -> dict:
        """``POST /projects``: the inner ``project`` object, checked (422 lists every problem),
        geocoded, stored; fires ``project_created``."""
        with self.lock:
            tenant = self.tenant(tenant_id)
            checked = check_project(body, tenant.user_ids, creating=True)
            project = self._new_project(tenant, checked)
            tenant.add_project(project)
            self._inserted(tenant)
            self._emit(tenant, "project_created", PROJECT_ID=project["id"], SOURCE=source)
            return project

    def _new_project(self, tenant: TenantData, fields: dict[str, Any]) -> dict:
        location = fields["location"]
        return {
            "id": self._builder(tenant).uuid(),
            "name": fields.get("name", location["property_address"]),
            "external_provider_id": fields.get("external_provider_id"),
            "status": fields.get("status"),
            "project_type": fields.get("project_type", "residential"),
            "tags": list(fields.get("tags", [])),
            **{key: fields.get(key) for key in ("customer_salutation", "customer_first_name",
                                                "customer_last_name", "customer_email", "customer_phone",
                                                "mailing_address")},
            "owner_id": fields.get("owner_id", tenant.user_ids[0] if tenant.user_ids else None),
            "team_id": fields.get("team_id"),
            "partner_id": fields.get("partner_id"),
            "location": location,
            "created_at": format_timestamp(self._now()),
            "created_from_lead_id": None,
            "order_id": None,
            "ahj_id": None,
            "preferred_solar_modules": list(fields.get("preferred_solar_modules", [])),
        }

    def update_project(self, tenant_id: str, project_id: str, body: Any) -> dict:
        """``PUT``/``PATCH /projects/{id}`` (method not published; both accepted): the given
        fields change, a new ``location`` is geocoded again; fires ``project_status_changed``
        when ``status`` changes."""
        with self.lock:
            tenant = self.tenant(tenant_id)
            current = lookup(tenant.projects, project_id, "Project")
            checked = check_project(body, tenant.user_ids, creating=False)
            return self._replace_project(tenant, current, checked)

    def _replace_project(self, tenant: TenantData, current: dict, changes: dict[str, Any]) -> dict:
        updated = {**current, **changes}
        tenant.projects[current["id"]] = updated
        if updated["status"] != current["status"]:
            self._emit(tenant, "project_status_changed", STATUS=updated["status"], PROJECT_ID=current["id"])
        return updated

    def set_project_status(self, project_id: str, status: str) -> dict:
        """Admin: a user moves the project to ``status`` in the app (any string, as Aurora allows)."""
        if not isinstance(status, str) or not status or len(status) > 255:
            raise AuroraError(422, "status must be a non-empty string of at most 255 characters.")
        with self.lock:
            tenant = self.owner("projects", project_id, "Project")
            return self._replace_project(tenant, tenant.projects[project_id], {"status": status})
