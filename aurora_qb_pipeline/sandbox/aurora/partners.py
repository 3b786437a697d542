"""Partner applications: an application key, temporary tokens per tenant, partner webhooks.

What Aurora documents (CRM-app and site-survey-app guides): the account team gives an app an
``application_id`` and an *application key*; tenants enable the app; the app exchanges its key
for a temporary bearer token of one tenant with ``POST /partner_applications/{application_id}/
tenants/{tenant_id}/create_token[?session_token=...]`` (``Authorization: Bearer <application
key>``), answered ``{"token": {"bearer_token": "tk_test_...", "expires_at": "YYYY-MM-DD HH:MM:SS
UTC"}}``; tokens expire; ``session_token`` (from a ``site_survey_requested`` webhook) is optional
for backend apps. Partner webhooks: ``POST /partner_applications/{application_id}/webhooks`` with
``{"partner_application_webhook": {description, event, url_template, enabled}}``, delivered for
every tenant that enabled the app, ``<TENANT_ID>`` available in the template. Access scopes limit
what the token may call (see :mod:`.auth`); during development Aurora grants every endpoint, so
an app made without ``scopes`` gets them all.

GUESS (the emulator's choices where Aurora publishes nothing): the key format ``ak_sand_<hex>``;
token lifetime ``ServiceConfig.partner_token_ttl_s`` (1 h, scaled by ``time_scale``; ``expires_at``
is the real moment of expiry, whole seconds, on the emulator clock); 401 for a missing or unknown
key, an expired or revoked token (disabling the app revokes its tokens) and an unknown or expired
``session_token``; 404 for another application's id or an unknown tenant; 403 for a tenant that
has not enabled the app; a partner's tokens share one rate-limit bucket per tenant; the
subscription CRUD beyond create (list, retrieve, PUT/PATCH, DELETE) mirrors the tenant webhooks
API. Enabling or disabling an app fires the tenant event ``app_status_changed`` (``<APP_ID>``,
``<STATUS>`` = ``enabled`` / ``disabled``).
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Optional

from .auth import SCOPES, Credential
from .core import StateCore
from .errors import AuroraError, lookup
from .synthetic import format_timestamp


@dataclass
class PartnerApplication:
    id: str
    name: str
    key: str  # the application key: a secret, answered only when the app is made
    scopes: Optional[frozenset[str]]  # None: every endpoint (Aurora's development access)
    created_at: str
    tenants: set[str] = field(default_factory=set)  # tenants that enabled the app

    def to_admin(self, with_key: bool = False) -> dict[str, Any]:
        answer = {"application_id": self.id, "name": self.name,
                  "scopes": sorted(SCOPES if self.scopes is None else self.scopes),
                  "tenant_ids": sorted(self.tenants), "created_at": self.created_at}
        return {**answer, "application_key": self.key} if with_key else answer


def _owner(application_id: str) -> str:
    return f"partner:{application_id}"


class PartnersMixin(StateCore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.partner_apps: dict[str, PartnerApplication] = {}
        self._sessions: dict[str, tuple[str, str, float]] = {}  # session token -> (app, tenant, expiry)
        super().__init__(*args, **kwargs)
        self.webhooks.partner_owners = self._partner_owners

    # --- applications (admin: what Aurora's account team and a tenant admin do) ----------------------
    def create_partner_application(self, name: str = "Site Survey App", scopes: Optional[Iterable[str]] = None,
                                   tenant_ids: Optional[Iterable[str]] = None) -> dict:
        """A new app with its ``application_id`` and ``application_key`` (answered this once),
        enabled on ``tenant_ids`` (default: the primary tenant; ``[]``: none)."""
        chosen = None if scopes is None else frozenset(scopes)
        if chosen is not None and (not chosen or chosen - SCOPES):
            raise AuroraError(422, f"scopes must be a non-empty list of: {', '.join(sorted(SCOPES))}.")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise AuroraError(422, "name must be a non-empty string of at most 255 characters.")
        with self.lock:
            tenants = [self.tenant(t).tenant_id for t in ([None] if tenant_ids is None else list(tenant_ids))]
            app = PartnerApplication(str(uuid.uuid4()), name, "ak_sand_" + secrets.token_hex(16), chosen,
                                     format_timestamp(self._now()))
            self.partner_apps[app.id] = app
            for tenant_id in tenants:
                self.set_partner_app_enabled(app.id, tenant_id, True)
            return app.to_admin(with_key=True)

    def partner_applications(self) -> list[dict]:
        with self.lock:
            return [app.to_admin() for app in self.partner_apps.values()]

    def set_partner_app_enabled(self, application_id: str, tenant_id: str, enabled: bool) -> dict:
        """A tenant admin enables or disables the app; disabling revokes the app's tokens there."""
        with self.lock:
            app = lookup(self.partner_apps, application_id, "Partner application")
            tenant = self.tenant(tenant_id)
            if (tenant.tenant_id in app.tenants) != enabled:
                (app.tenants.add if enabled else app.tenants.discard)(tenant.tenant_id)
                self._emit(tenant, "app_status_changed", APP_ID=app.id, STATUS="enabled" if enabled else "disabled")
            return app.to_admin()

    def _partner_owners(self, tenant_id: str) -> list[str]:
        with self.lock:
            return [_owner(app.id) for app in self.partner_apps.values() if tenant_id in app.tenants]

    def credential_valid(self, credential: Credential) -> bool:
        if credential.kind != "partner":
            return True
        app = self.partner_apps.get(credential.application_id or "")
        return app is not None and credential.tenant_id in app.tenants

    # --- the partner API ------------------------------------------------------------------------
    def authenticate_application(self, application_id: str, key: Optional[str]) -> PartnerApplication:
        """The app ``key`` belongs to, if it is ``application_id``; 401 / 404 otherwise."""
        if not key:
            raise AuroraError(401, "Missing application key: send 'Authorization: Bearer <application key>'.")
        with self.lock:
            app = next((a for a in self.partner_apps.values() if secrets.compare_digest(a.key, key)), None)
            if app is None:
                raise AuroraError(401, "Invalid application key.")
            if app.id != application_id:
                raise AuroraError(404, f"Partner application {application_id} not found.")
            return app

    def create_partner_token(self, application_id: str, key: Optional[str], tenant_id: str,
                             session_token: Optional[str] = None) -> dict:
        """``POST .../create_token``: a temporary bearer token of ``tenant_id`` for the app."""
        with self.lock:
            app = self.authenticate_application(application_id, key)
            tenant = self.tenant(tenant_id)
            if tenant.tenant_id not in app.tenants:
                raise AuroraError(403, f"Tenant {tenant_id} has not enabled application {application_id}.")
            if session_token is not None:
                session = self._sessions.get(session_token)
                if session is None or session[:2] != (app.id, tenant.tenant_id) or self.now_epoch() >= session[2]:
                    raise AuroraError(401, "Invalid or expired session_token.")
            expires = math.ceil(self.now_epoch() + self.scaled(self.services.partner_token_ttl_s))
            token = "tk_test_" + secrets.token_hex(12)
            self._credentials[token] = Credential(tenant.tenant_id, "partner", app.scopes, app.id, float(expires))
            expires_at = format_timestamp(datetime.fromtimestamp(expires, timezone.utc))
            return {"bearer_token": token, "expires_at": expires_at}

    def expire_partner_tokens(self, application_id: Optional[str] = None, tenant_id: Optional[str] = None) -> int:
        """Admin: every live temporary token (of one app / tenant) expires now; returns how many."""
        now, count = self.now_epoch(), 0
        with self.lock:
            for token, cred in list(self._credentials.items()):
                if (cred.kind == "partner" and (cred.expires_at or 0) > now
                        and application_id in (None, cred.application_id) and tenant_id in (None, cred.tenant_id)):
                    self._credentials[token] = dataclasses.replace(cred, expires_at=now)
                    count += 1
        return count

    def partner_tokens(self, application_id: Optional[str] = None) -> list[dict]:
        """Admin: the temporary tokens issued (their last 4 characters only), with expiry."""
        now = self.now_epoch()
        with self.lock:
            return [{"token_end": token[-4:], "application_id": cred.application_id, "tenant_id": cred.tenant_id,
                     "expires_at": format_timestamp(datetime.fromtimestamp(cred.expires_at or 0, timezone.utc)),
                     "expired": now >= (cred.expires_at or 0), "valid": self.credential_valid(cred)}
                    for token, cred in self._credentials.items()
                    if cred.kind == "partner" and application_id in (None, cred.application_id)]

    def _new_session_token(self, application_id: str, tenant_id: str) -> str:
        token = "st_" + secrets.token_hex(16)
        expiry = self.now_epoch() + self.scaled(self.services.session_token_ttl_s)
        self._sessions[token] = (application_id, tenant_id, expiry)
        return token

    # --- partner webhook subscriptions --------------------------------------------------------------
    def partner_webhooks(self, application_id: str, key: Optional[str]) -> list[dict]:
        self.authenticate_application(application_id, key)
        return self.webhooks.list(_owner(application_id))

    def create_partner_webhook(self, application_id: str, key: Optional[str], body: dict) -> dict:
        self.authenticate_application(application_id, key)
        return self.webhooks.create(_owner(application_id), body, partner=True)

    def get_partner_webhook(self, application_id: str, key: Optional[str], webhook_id: str) -> dict:
        self.authenticate_application(application_id, key)
        return self.webhooks.get(_owner(application_id), webhook_id)

    def update_partner_webhook(self, application_id: str, key: Optional[str], webhook_id: str, body: dict) -> dict:
        self.authenticate_application(application_id, key)
        return self.webhooks.update(_owner(application_id), webhook_id, body)

    def delete_partner_webhook(self, application_id: str, key: Optional[str], webhook_id: str) -> None:
        self.authenticate_application(application_id, key)
        self.webhooks.delete(_owner(application_id), webhook_id)

    def subscribe_partner(self, application_id: str, event: str, url_template: str, **fields: Any) -> dict:
        """Python-side subscription of an app (no key needed), e.g. ``site_survey_requested``."""
        with self.lock:
            lookup(self.partner_apps, application_id, "Partner application")
        body = {"event": event, "url_template": url_template, "enabled": True,
                **{k: v for k, v in fields.items() if v is not None}}
        return self.webhooks.create(_owner(application_id), body, partner=True)
