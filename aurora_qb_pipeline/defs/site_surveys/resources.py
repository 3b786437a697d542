"""``SiteSurveyResource``: the site-survey app's configuration (secrets as ``dg.EnvVar``) and the
plain clients made from it: Aurora through the partner application's temporary tokens, the
Quickbase app holding the survey tables, the tables themselves (found by name and label once per
run or tick) and the signed image links."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import dagster as dg
from pydantic import Field, PrivateAttr

from ...clients.partner import PartnerAuroraClient
from ...clients.quickbase_app import QuickbaseAppClient
from ...settings import (
    PARTNER_KEY_VARIABLE,
    WEBHOOK_SECRET_VARIABLE,
    Credentials,
    Settings,
)
from ...site_surveys.file_links import FileLinks
from ...site_surveys.tables import SurveyTables, load_spec, resolve_tables
from ..resources import _ApiResource, _secrets, client_config


class SiteSurveyResource(_ApiResource):
    """Aurora's site-survey API as the partner app, and the survey tables in Quickbase."""

    aurora_base_url: str = Field(description="Aurora API root.")
    tenant_id: str = Field(description="Aurora tenant the app serves (secret: an EnvVar).")
    application_id: Optional[str] = Field(default=None, description="The app's application_id (unset: not configured).")
    application_key: Optional[str] = Field(default=None, description="The app's application key (secret: an EnvVar).")
    quickbase_base_url: str = Field(description="Quickbase API root (without /v1).")
    realm_hostname: str = Field(description="QB-Realm-Hostname (secret: an EnvVar).")
    user_token: str = Field(description="Quickbase user token (secret: an EnvVar).")
    app_id: Optional[str] = Field(default=None, description="Quickbase app holding the survey tables (QB_APP_ID).")
    designs_table_id: Optional[str] = Field(default=None, description="Designs table surveys link to (secret: an EnvVar).")
    webhook_secret: Optional[str] = Field(default=None, description="Signs the image links (secret: an EnvVar).")
    public_url: Optional[str] = Field(default=None, description="Where Aurora reaches the receiver (image links).")
    link_ttl_s: float = Field(default=7 * 24 * 3600.0, description="How long an image link works, seconds.")
    tables_file: Optional[str] = Field(default=None, description="Table spec (default: the packaged one).")
    tenant: Optional[str] = Field(default=None, description="Many tenants: the tenant its image links name.")

    _qb: Optional[QuickbaseAppClient] = PrivateAttr(default=None)
    _tables: Optional[SurveyTables] = PrivateAttr(default=None)

    def missing(self) -> list[str]:
        """What keeps site surveys from working, as variable names (empty: configured)."""
        needed = {"AURORA_PARTNER_APPLICATION_ID": self.application_id, PARTNER_KEY_VARIABLE: self.application_key,
                  "QB_APP_ID": self.app_id}
        return [name for name, value in needed.items() if not value]

    @property
    def configured(self) -> bool:
        return not self.missing()

    @property
    def aurora(self) -> PartnerAuroraClient:
        return self._get_client()

    def _make_client(self) -> PartnerAuroraClient:
        if not self.configured:
            raise RuntimeError(f"site surveys are not configured: set {', '.join(self.missing())}")
        return PartnerAuroraClient(base_url=self.aurora_base_url, application_id=str(self.application_id),
                                   application_key=str(self.application_key), tenant_id=self.tenant_id,
                                   options=self.options())

    @property
    def quickbase(self) -> QuickbaseAppClient:
        if self._qb is None:
            with self._lock:
                if self._qb is None:
                    self._qb = QuickbaseAppClient(base_url=self.quickbase_base_url, realm_hostname=self.realm_hostname,
                                                  user_token=self.user_token, app_id=str(self.app_id),
                                                  table_id=self.designs_table_id or "", options=self.options())
        return self._qb

    def tables(self) -> SurveyTables:
        """The survey tables and their field ids, found once (TablesNotReady lists what is missing)."""
        if self._tables is None:
            spec = load_spec(Path(self.tables_file) if self.tables_file else None)
            self._tables = resolve_tables(self.quickbase, spec, self.designs_table_id)
        return self._tables

    def links(self) -> FileLinks:
        if not self.webhook_secret or not self.public_url:
            raise RuntimeError(f"image links need {WEBHOOK_SECRET_VARIABLE} and AURORA_QB_WEBHOOK_PUBLIC_URL")
        return FileLinks(self.webhook_secret, self.public_url, self.link_ttl_s, tenant=self.tenant)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        super().teardown_after_execution(context)
        if self._qb is not None:
            self._qb.close()
            self._qb = None
        self._tables = None


def site_survey_resource(settings: Settings, credentials: Optional[Credentials] = None, **fields: Any) -> SiteSurveyResource:
    """The resource from the settings; secrets as ``dg.EnvVar`` unless ``credentials`` are given. A
    tenant's location (many tenants) serves that tenant: its Aurora tenant id (the partner app's
    tokens, and rate budget, of that tenant), its Quickbase token and designs table, and the app of
    its survey tables (``quickbase_app_id`` in the tenants file, default QB_APP_ID)."""
    tenant, _, realm, user_token, table = _secrets(credentials, settings)
    if credentials is None:
        key: Any = dg.EnvVar(PARTNER_KEY_VARIABLE) if settings.aurora_partner_application_id else None
        secret: Any = dg.EnvVar(WEBHOOK_SECRET_VARIABLE) if settings.aurora_partner_application_id else None
    else:
        key, secret = credentials.aurora_partner_application_key, credentials.webhook_secret
    config = settings.tenant_config()
    app_id = (config.quickbase_app_id if config else None) or settings.quickbase_app_id
    return SiteSurveyResource(**{
        "aurora_base_url": settings.aurora_base_url, "tenant_id": tenant,
        "application_id": settings.aurora_partner_application_id, "application_key": key,
        "quickbase_base_url": settings.quickbase_base_url, "realm_hostname": realm, "user_token": user_token,
        "app_id": app_id, "designs_table_id": table, "webhook_secret": secret,
        "public_url": settings.webhook_public_url, "link_ttl_s": settings.site_survey_link_ttl_s,
        "tables_file": str(settings.site_survey_tables_file) if settings.site_survey_tables_file else None,
        "tenant": settings.tenant,
        **client_config(settings), **fields,
    })
