"""Site surveys: an Aurora user requests one from a site-survey app, the app uploads the results.

Aurora's site-survey guide (the flow a site-survey app implements):

1. a user requests a survey: the app's partner subscriptions get ``site_survey_requested`` with
   ``<SITE_SURVEY_REQUEST_ID> <TENANT_ID> <SESSION_TOKEN>`` (here: :meth:`request_site_survey`,
   the admin route ``POST /_sandbox/site_surveys``);
2. the app exchanges its application key for a temporary token (:mod:`.partners`);
3. ``GET /tenants/{tid}/site_surveys/{id}/request`` -> ``{"site_survey_request": {id, project_id,
   requested_for_design_id, status: "requested", requested_at, completed_at, screenshot_url}}``,
   timestamps as ``2024-01-25T07:21:30.507Z``; the screenshot URL expires after 24 hours;
4. ``PUT .../electrical`` ``{"electrical": {...}}``, ``PUT .../electrical/subpanels``
   ``{"subpanels": [...]}``, ``PUT .../roofs/mounting_planes`` ``{"mounting_planes": [...]}``
   (fields and checks in :mod:`.survey_input`); images are URLs Aurora downloads
   (:mod:`.image_fetch`);
5. ``PUT .../status`` ``{"site_survey": {"status": "completed"}}``: 422 with one error per
   "required at completion" field missing.

GUESS: every answer body of the PUTs (the stored object under the body's own key; the status PUT
answers the request object under ``site_survey``); that a new screenshot URL, valid 24 h
(``ServiceConfig.screenshot_url_ttl_s``, scaled), is minted on each retrieval; that ``completed``
is the only status a client may set and setting it again is a no-op; that uploads to a completed
survey are refused (422); that only an app with ``read_site_surveys`` can be asked for surveys.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional

from .errors import AuroraError, lookup
from .files import file_url, png_image, sign
from .image_fetch import PENDING, ImageFetcher
from .partners import PartnersMixin
from .survey_input import check_electrical, check_mounting_planes, check_subpanels, completion_problems, image_refs
from .synthetic import TenantData, format_iso_ms

REQUEST_FIELDS = ("id", "project_id", "requested_for_design_id", "status", "requested_at", "completed_at")
PARTS = {"electrical": check_electrical, "subpanels": check_subpanels, "mounting_planes": check_mounting_planes}


class SiteSurveysMixin(PartnersMixin):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.image_fetcher = ImageFetcher()
        super().__init__(*args, **kwargs)
        self._surveys_changed = threading.Condition(self.lock)

    # --- a user asks for a survey (admin) -----------------------------------------------------------
    def request_site_survey(self, project_id: str, design_id: Optional[str] = None,
                            application_id: Optional[str] = None) -> dict:
        """A user requests a survey of ``project_id`` (for ``design_id``, default its newest design)
        from ``application_id`` (default: the one site-survey app the tenant enabled); fires
        ``site_survey_requested`` to that app. Answers the request with its ``session_token``."""
        with self.lock:
            tenant = self.owner("projects", project_id, "Project")
            designs = tenant.project_design_ids[project_id]
            if design_id is None and not designs:
                raise AuroraError(422, f"Project {project_id} has no design to survey.")
            if design_id is not None and design_id not in designs:
                raise AuroraError(422, f"Design {design_id} is not a design of project {project_id}.")
            app_id = self._survey_app(tenant, application_id)
            survey_id = self._builder(tenant).uuid()
            record = {"id": survey_id, "project_id": project_id, "requested_for_design_id": design_id or designs[-1],
                      "status": "requested", "requested_at": format_iso_ms(self._now()), "completed_at": None,
                      "_application_id": app_id, "electrical": None, "subpanels": None, "mounting_planes": None,
                      "_history": [], "_images": []}
            tenant.site_surveys[survey_id] = record
            session = self._new_session_token(app_id, tenant.tenant_id)
            self.webhooks.publish_partner(app_id, tenant.tenant_id, "site_survey_requested",
                                          SITE_SURVEY_REQUEST_ID=survey_id, TENANT_ID=tenant.tenant_id,
                                          SESSION_TOKEN=session)
            return {**{k: record[k] for k in REQUEST_FIELDS}, "application_id": app_id, "session_token": session}

    def _survey_app(self, tenant: TenantData, application_id: Optional[str]) -> str:
        apps = [app for app in self.partner_apps.values() if tenant.tenant_id in app.tenants
                and (app.scopes is None or "read_site_surveys" in app.scopes)]
        if application_id is not None:
            if application_id not in {app.id for app in apps}:
                raise AuroraError(422, f"Application {application_id} is not a site-survey app enabled on "
                                       f"tenant {tenant.tenant_id}.")
            return application_id
        if len(apps) != 1:
            raise AuroraError(422, f"Tenant {tenant.tenant_id} has {len(apps)} site-survey apps enabled; "
                                   "name application_id.")
        return apps[0].id

    # --- the API --------------------------------------------------------------------------------------
    def _survey(self, tenant: TenantData, survey_id: str) -> dict:
        return lookup(tenant.site_surveys, survey_id, "Site survey request")

    def get_site_survey_request(self, tenant_id: str, survey_id: str, base_url: str) -> dict:
        """``GET .../site_surveys/{id}/request`` with a freshly signed screenshot URL."""
        with self.lock:
            tenant = self.tenant(tenant_id)
            record = self._survey(tenant, survey_id)
            token = sign(self.file_secret, {"t": tenant.tenant_id, "kind": "screenshot", "id": survey_id},
                         self.scaled(self.services.screenshot_url_ttl_s))
            return {**{k: record[k] for k in REQUEST_FIELDS}, "screenshot_url": file_url(base_url, token)}

    def upload_site_survey(self, tenant_id: str, survey_id: str, part: str, body: Any) -> Any:
        """``PUT`` of ``part`` (electrical, subpanels, mounting_planes): checked, stored (replacing
        the earlier upload), its images queued for download; answers what was stored."""
        with self.lock:
            tenant = self.tenant(tenant_id)
            record = self._survey(tenant, survey_id)
            try:
                if record["status"] == "completed":
                    raise AuroraError(422, f"Site survey {survey_id} is completed; it can no longer be updated.")
                checked = PARTS[part](body)
            except AuroraError as exc:
                self._log(tenant, record, part, 422, exc.messages)
                raise
            record = {**record, part: checked}
            refs = image_refs(*(record[p] for p in PARTS))
            kept = [i for i in record["_images"] if not self._in_part(i["where"], part)]
            fresh = [{"where": r["where"], "url": r["url"], "filename": r["filename"], "status": PENDING}
                     for r in refs if self._in_part(r["where"], part)]
            tenant.site_surveys[survey_id] = {**record, "_images": kept + fresh}
            self._log(tenant, tenant.site_surveys[survey_id], part, 200, [])
            for index, image in enumerate(fresh):
                self._fetch(tenant.tenant_id, survey_id, len(kept) + index, image)
            return checked

    @staticmethod
    def _in_part(where: str, part: str) -> bool:
        return where == part or where.startswith(part + "[")

    def set_site_survey_status(self, tenant_id: str, survey_id: str, body: Any) -> dict:
        """``PUT .../status``: ``completed`` when every "required at completion" field is there,
        else 422 listing what is missing."""
        with self.lock:
            tenant = self.tenant(tenant_id)
            record = self._survey(tenant, survey_id)
            problems = [f"site_survey.{key} is not a field." for key in sorted(set(body) - {"status"})]
            if body.get("status") != "completed":
                problems.append(f"site_survey.status must be \"completed\", got {body.get('status')!r}.")
            if not problems and record["status"] != "completed":
                problems = completion_problems(record["electrical"])
            if problems:
                self._log(tenant, record, "status", 422, problems)
                raise AuroraError(422, problems)
            if record["status"] != "completed":
                record = {**record, "status": "completed", "completed_at": format_iso_ms(self._now())}
                tenant.site_surveys[survey_id] = record
                self._log(tenant, record, "status", 200, [])
            return {k: record[k] for k in REQUEST_FIELDS}

    # --- what was uploaded (admin / tests) ----------------------------------------------------------
    def _log(self, tenant: TenantData, record: dict, action: str, outcome: int, errors: list[str]) -> None:
        entry = {"at": format_iso_ms(self._now()), "action": action, "outcome": outcome, "errors": list(errors)}
        tenant.site_surveys[record["id"]] = {**record, "_history": [*record["_history"], entry]}
        self._surveys_changed.notify_all()

    @staticmethod
    def _admin_view(tenant: TenantData, record: dict) -> dict:
        return {**{k: record[k] for k in REQUEST_FIELDS}, "tenant_id": tenant.tenant_id,
                "application_id": record["_application_id"], "electrical": record["electrical"],
                "subpanels": record["subpanels"], "mounting_planes": record["mounting_planes"],
                "history": list(record["_history"]), "images": [dict(i) for i in record["_images"]]}

    def site_survey(self, survey_id: str) -> dict:
        """Admin: a survey with every upload, each attempt (200 or 422 with its errors) and the
        outcome of each image download."""
        with self.lock:
            tenant = self.owner("site_surveys", survey_id, "Site survey request")
            return self._admin_view(tenant, tenant.site_surveys[survey_id])

    def site_surveys(self, tenant_id: Optional[str] = None) -> list[dict]:
        """Admin: every survey of a tenant (all tenants when None), oldest request first."""
        with self.lock:
            tenants = self.tenants.values() if tenant_id is None else [self.tenant(tenant_id)]
            views = [self._admin_view(t, r) for t in tenants for r in t.site_surveys.values()]
            return sorted(views, key=lambda v: (v["requested_at"], v["id"]))

    def wait_for_site_survey(self, survey_id: str, predicate: Callable[[dict], bool], timeout: float = 10.0) -> dict:
        """Block until ``predicate(site_survey(id))`` holds (e.g. every image fetched); TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._surveys_changed:
            while True:
                view = self.site_survey(survey_id)
                if predicate(view):
                    return view
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"site survey {survey_id} did not reach the expected state: {view}")
                self._surveys_changed.wait(min(remaining, 0.1))

    def wait_for_image_fetches(self, survey_id: str, timeout: float = 10.0) -> list[dict]:
        """Block until no image of the survey is still being downloaded; returns the images."""
        return self.wait_for_site_survey(
            survey_id, lambda v: all(i["status"] != PENDING for i in v["images"]), timeout)["images"]

    # --- images and the screenshot --------------------------------------------------------------------
    def _fetch(self, tenant_id: str, survey_id: str, index: int, image: dict) -> None:
        if not self.services.fetch_survey_images:
            self._fetched(tenant_id, survey_id, index, image["url"], {"status": "not_fetched"})
            return
        self.image_fetcher.submit(image["url"], self.services.image_fetch_timeout_s,
                                  lambda result: self._fetched(tenant_id, survey_id, index, image["url"], result))

    def _fetched(self, tenant_id: str, survey_id: str, index: int, url: str, result: dict) -> None:
        with self.lock:
            tenant = self.tenants.get(tenant_id)
            record = tenant.site_surveys.get(survey_id) if tenant else None
            if record is None or index >= len(record["_images"]) or record["_images"][index]["url"] != url:
                return  # deleted or replaced meanwhile
            images = list(record["_images"])
            images[index] = {**images[index], **result}
            tenant.site_surveys[survey_id] = {**record, "_images": images}
            self._surveys_changed.notify_all()

    def _open_file(self, tenant: TenantData, payload: dict) -> tuple[str, bytes, str]:
        if payload["kind"] != "screenshot":
            return super()._open_file(tenant, payload)
        lookup(tenant.site_surveys, payload["id"], "File")
        return f"Site survey {payload['id']}.png", png_image(payload["id"]), "image/png"

    def close(self) -> None:
        self.image_fetcher.close()
        super().close()
