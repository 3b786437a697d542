"""The pipeline's configuration: one typed object, read once when the definitions load.

:meth:`Settings.from_env` is the only place in the pipeline that reads environment variables
(Dagster itself also reads ``dg.EnvVar`` values at run time and ``DAGSTER_HOME``). Constructing
``Settings(...)`` reads nothing: tests, the demo and the benchmark pass every value they want.

Secrets are not settings: tenant id, tokens, realm and table id stay ``dg.EnvVar`` in
``defs/resources.py`` (Dagster reads them at run time and never shows or stores their values),
or explicit :class:`Credentials` where a caller has them (the sandbox, tests).

Every variable, with its meaning and default, is in README's "Configuration" table.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from .api_facts import QUICKBASE_MAX_REQUEST_BYTES
from .clients.base import ClientOptions
from .clients.buckets import is_postgres_url
from .clients.quickbase import DEFAULT_MAX_REQUEST_BYTES
from .ranges import requests_per_project, runtime_budget_s
from .store import HoldPolicy
from .tenants import TenantConfig, TenantNames, TenantsFile, load_tenants

AURORA_PROD_URL = "https://api.aurorasolar.com"
QB_PROD_URL = "https://api.quickbase.com"

# name of each secret's environment variable (read by Dagster through dg.EnvVar)
SECRET_VARIABLES = ("AURORA_TENANT_ID", "AURORA_API_TOKEN", "QB_REALM_HOSTNAME", "QB_USER_TOKEN", "QB_TABLE_ID")
OPPORTUNITIES_TABLE_VARIABLE = "QB_OPPORTUNITIES_TABLE_ID"  # a secret like QB_TABLE_ID (issue 14)
WEBHOOK_SECRET_VARIABLE = "AURORA_QB_WEBHOOK_SECRET"
"""The shared secret Aurora's webhook deliveries carry. Only the receiver and ``aurora-qb webhooks
subscribe`` read it (:func:`webhook_secret_from_env`); Dagster never needs it."""
MIN_WEBHOOK_SECRET_LENGTH = 16
PARTNER_KEY_VARIABLE = "AURORA_PARTNER_APPLICATION_KEY"
"""The site-survey app's application key (a secret: exchanged for temporary tokens, never logged)."""
ALERT_URL_VARIABLE = "AURORA_QB_ALERT_URL"
"""Where run-failure alerts are POSTed (``defs/alerts.py``). A secret: Dagster reads it through
``dg.EnvVar``; the settings keep only whether it is set (``alert_url_set``)."""
OPTIONAL_SECRET_VARIABLES = (OPPORTUNITIES_TABLE_VARIABLE, PARTNER_KEY_VARIABLE, ALERT_URL_VARIABLE)
"""Secrets of the optional features (read through ``dg.EnvVar`` or ``Credentials`` when the feature is on)."""


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        self._environ = dict(environ)
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, Optional[str]]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


class Settings(BaseSettings):
    """Everything configurable that is not a secret. Field aliases are the environment variables."""

    # hide_input_in_errors: a refused value (say, a URL with a password in it) is never echoed
    model_config = SettingsConfigDict(frozen=True, extra="forbid", populate_by_name=True, case_sensitive=True,
                                      hide_input_in_errors=True,
                                      # a variable set empty (compose `${X:-}`) counts as unset
                                      env_ignore_empty=True)

    aurora_base_url: str = Field(AURORA_PROD_URL, alias="AURORA_BASE_URL", description="Aurora API root.")
    quickbase_base_url: str = Field(QB_PROD_URL, alias="QB_BASE_URL", description="Quickbase API root (without /v1).")
    quickbase_app_id: Optional[str] = Field(None, alias="QB_APP_ID", description="Quickbase app holding the table.")
    dagster_home: Optional[Path] = Field(
        None, alias="DAGSTER_HOME", description="Dagster instance folder; DuckDB and the rate-limit bucket default to it."
    )
    duckdb_path: Optional[Path] = Field(None, alias="AURORA_QB_DUCKDB", description="DuckDB file.")
    automation_running: bool = Field(
        False, alias="AURORA_QB_AUTOMATION",
        description="Sensors and the schedule start running ('running') instead of stopped.",
    )
    design_request_interval_s: int = Field(
        60, alias="AURORA_QB_SENSOR_INTERVAL_S", ge=10, description="Design-request sensor interval, seconds."
    )
    discovery_interval_s: int = Field(
        300, alias="AURORA_QB_DISCOVERY_INTERVAL_S", ge=10, description="Project-discovery sensor interval, seconds."
    )
    daily_cron: str = Field("0 2 * * *", alias="AURORA_QB_DAILY_CRON", description="When the daily reconcile runs.")
    timezone: str = Field("America/Los_Angeles", alias="AURORA_QB_TIMEZONE", description="Timezone of the cron.")
    daily_budget_share: float = Field(
        0.5, alias="AURORA_QB_DAILY_BUDGET_SHARE", gt=0, le=1,
        description="Share of Aurora's daily request budget the reconcile may use.",
    )
    export_max_records_per_request: Optional[int] = Field(
        None, alias="AURORA_QB_EXPORT_MAX_RECORDS", ge=1,
        description="Cap on records per Quickbase upsert (unset: only the body size limits a request).",
    )
    export_max_request_bytes: int = Field(
        DEFAULT_MAX_REQUEST_BYTES, alias="AURORA_QB_EXPORT_MAX_BYTES", ge=1024, le=QUICKBASE_MAX_REQUEST_BYTES,
        description="Largest upsert body the export sends (Quickbase refuses more than 40 MB).",
    )
    hold_policy: HoldPolicy = Field(
        HoldPolicy.DESIGN, alias="AURORA_QB_HOLD_POLICY",
        description="Which quarantined rows hold a design back from the export: 'design' (its own rows only; "
        "a quarantined project address is left out of its designs' records) or 'project' (also its project's "
        "address: all the project's designs wait).",
    )
    line_items_table_id: Optional[str] = Field(
        None, alias="QB_LINE_ITEMS_TABLE_ID",
        description="Quickbase table of design line items (config/quickbase_tables/line_items.yaml); unset: "
        "line items are not synced.",
    )
    export_log_retention_days: int = Field(
        90, alias="AURORA_QB_EXPORT_LOG_RETENTION_DAYS", ge=0,
        description="Days ops.export_log keeps its lines (0: for ever); older lines are dropped after an export.",
    )
    fetch_pricing: bool = Field(
        False, alias="AURORA_QB_FETCH_PRICING",
        description="Fetch each design's pricing (GET /designs/{id}/pricing, one request a design) for mappings "
        "that name pricing.* paths; a key not provisioned for it (403) switches it off for the run.",
    )
    time_scale: float = Field(
        1.0, alias="AURORA_QB_TIME_SCALE", gt=0, le=1,
        description="Sandbox only: shrinks rate windows, backoff and timeouts by this factor.",
    )
    rate_limit_db: Optional[Path] = Field(
        None, alias="AURORA_QB_RATE_LIMIT_DB",
        description="SQLite file of the rate budget shared by all processes on this machine.",
    )
    rate_limit_url: Optional[str] = Field(
        None, alias="AURORA_QB_RATE_LIMIT_URL",
        description="Postgres URL of the rate budget shared by every host (wins over the SQLite file). "
        "No password in it: libpq reads PGPASSWORD or ~/.pgpass.",
    )
    inbox_url: Optional[str] = Field(
        None, alias="AURORA_QB_INBOX_URL",
        description="SQLAlchemy URL of the webhook inbox (default: SQLite beside the Dagster instance). "
        "No password in it: Postgres reads PGPASSWORD or ~/.pgpass.",
    )
    webhook_interval_s: int = Field(
        30, alias="AURORA_QB_WEBHOOK_INTERVAL_S", ge=5, description="Webhook sensor interval, seconds."
    )
    webhook_triggers_file: Optional[Path] = Field(
        None, alias="AURORA_QB_WEBHOOK_TRIGGERS",
        description="Trigger rules: which Aurora events and statuses sync a project (default: the packaged "
        "config/webhook_triggers.yaml).",
    )
    webhook_public_url: Optional[str] = Field(
        None, alias="AURORA_QB_WEBHOOK_PUBLIC_URL",
        description="Where Aurora reaches the webhook receiver (default of `webhooks subscribe --public-url`).",
    )
    alert_url_set: bool = Field(
        False, alias=ALERT_URL_VARIABLE,
        description="URL the run_failure_alert sensor POSTs failed runs to (a secret: read by Dagster through "
        "dg.EnvVar when the sensor runs; the settings keep only whether it is set).",
    )

    @field_validator("alert_url_set", mode="before")
    @classmethod
    def _only_whether_set(cls, value: Any) -> Any:
        if isinstance(value, str):  # the URL itself is never kept
            return bool(value.strip())
        return value

    aurora_partner_application_id: Optional[str] = Field(
        None, alias="AURORA_PARTNER_APPLICATION_ID",
        description="Site surveys: the application_id Aurora gave the site-survey app (its key is the secret "
        "AURORA_PARTNER_APPLICATION_KEY). Unset: the site-survey sensors stand down.",
    )
    site_survey_interval_s: int = Field(
        60, alias="AURORA_QB_SITE_SURVEY_INTERVAL_S", ge=10,
        description="Site surveys: how often the sensors look for new requests and completed surveys, seconds.",
    )
    site_survey_link_ttl_s: float = Field(
        7 * 24 * 3600.0, alias="AURORA_QB_SITE_SURVEY_LINK_TTL_S", gt=0,
        description="Site surveys: how long the image links handed to Aurora work, seconds.",
    )
    site_survey_tables_file: Optional[Path] = Field(
        None, alias="AURORA_QB_SITE_SURVEY_TABLES",
        description="Site surveys: the Quickbase table spec (default: the packaged "
        "config/quickbase_tables/site_surveys.yaml).",
    )

    opportunities_sync: bool = Field(
        False, alias="AURORA_QB_OPPORTUNITIES",
        description="Quickbase opportunities create Aurora projects (the opportunities sensor is built; "
        "QB_OPPORTUNITIES_TABLE_ID names the table).",
    )
    opportunities_interval_s: int = Field(
        60, alias="AURORA_QB_OPPORTUNITIES_INTERVAL_S", ge=5, description="Opportunities sensor interval, seconds."
    )
    opportunity_mapping_file: Optional[Path] = Field(
        None, alias="AURORA_QB_OPPORTUNITY_MAPPING",
        description="Opportunity field mapping (default: the packaged config/opportunity_mapping.yaml).",
    )
    opportunity_buttons: bool = Field(
        False, alias="AURORA_QB_OPPORTUNITY_BUTTONS",
        description="Write the signed button URLs' signatures into opportunities (the runs then read "
        "AURORA_QB_WEBHOOK_SECRET through dg.EnvVar).",
    )

    tenants_file: Optional[Path] = Field(
        None, alias="AURORA_QB_TENANTS_FILE",
        description="Many tenants: the YAML list of Aurora tenants (name, aurora_tenant_id, api_token_env or "
        "partner: true); README \"Many tenants\". Unset: one tenant, from AURORA_TENANT_ID and AURORA_API_TOKEN.",
    )
    tenant: Optional[str] = Field(
        None, alias="AURORA_QB_TENANT",
        description="Many tenants: the tenant this code location serves (a name in the tenants file): its asset "
        "keys, partitions, pool, DuckDB file and run tag carry the name.",
    )

    @field_validator("automation_running", "opportunities_sync", "opportunity_buttons", mode="before")
    @classmethod
    def _running(cls, value: Any) -> Any:
        if isinstance(value, str):  # AURORA_QB_AUTOMATION=running (or true/1)
            return value.strip().lower() in ("running", "true", "1", "yes", "on")
        return value

    @field_validator("rate_limit_url")
    @classmethod
    def _postgres_without_password(cls, value: Optional[str]) -> Optional[str]:
        if value:
            parts = urlsplit(value)
            if not is_postgres_url(value):
                raise ValueError("must be a Postgres URL: postgresql://user@host:port/dbname")
            if parts.password is not None or "password" in parse_qs(parts.query):
                raise ValueError("must not hold a password (settings are not a secret store): "
                                 "give it to libpq through PGPASSWORD or ~/.pgpass")
        return value

    @field_validator("inbox_url")
    @classmethod
    def _no_password_in_url(cls, value: Optional[str]) -> Optional[str]:
        if value:
            from sqlalchemy import make_url
            from sqlalchemy.exc import ArgumentError

            try:
                url = make_url(value)
            except ArgumentError as exc:
                raise ValueError(f"not a database URL ({exc})") from None
            if url.password:
                raise ValueError("the inbox URL must not hold a password (it is not a secret store); "
                                 "give it to Postgres through PGPASSWORD or ~/.pgpass")
        return value

    @model_validator(mode="after")
    def _tenant_in_file(self) -> "Settings":
        if self.tenant is not None:
            TenantNames(self.tenant)  # a valid name
            if self.tenants_file is None:
                raise ValueError("AURORA_QB_TENANT needs AURORA_QB_TENANTS_FILE (the tenant's credentials are there)")
        return self

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource, *_: Any, **__: Any
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """``Settings(...)`` takes only what it is given; :meth:`from_env` is the one reader."""
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None, **overrides: Any) -> "Settings":
        """Settings from environment variables (``os.environ`` unless a mapping is given, such as
        ``Sandbox.env()``); ``overrides`` (field names) win over both."""
        names = cls.variables()
        found = _MappingEnvSource(cls, os.environ if environ is None else environ)()
        return cls(**{**{names.get(k, k): v for k, v in found.items()}, **overrides})

    @classmethod
    def variables(cls) -> dict[str, str]:
        """{environment variable: field name} of every setting."""
        return {info.alias: name for name, info in cls.model_fields.items() if info.alias}

    # --- derived --------------------------------------------------------------------------

    @property
    def duckdb_file(self) -> str:
        """The DuckDB file: AURORA_QB_DUCKDB, else beside the Dagster instance, else ./aurora_qb.duckdb;
        a tenant's location has its own beside it (``aurora_qb__acme.duckdb``)."""
        if self.duckdb_path:
            return str(self.names.file(self.duckdb_path))
        path = self.dagster_home / "aurora_qb.duckdb" if self.dagster_home else Path("aurora_qb.duckdb")
        return str(self.names.file(path))

    @property
    def names(self) -> TenantNames:
        """The per-tenant names of this code location (the single-tenant ones without a tenant)."""
        return TenantNames(self.tenant)

    def tenants(self) -> Optional[TenantsFile]:
        """The tenants file, read and validated (``TenantsFileError`` lists every problem); None when unset."""
        return load_tenants(self.tenants_file) if self.tenants_file else None

    def tenant_config(self) -> Optional[TenantConfig]:
        """This location's tenant from the tenants file (None without a tenant)."""
        if self.tenant is None:
            return None
        tenants = self.tenants()
        assert tenants is not None  # the validator requires the file with a tenant
        return tenants.get(self.tenant)

    @property
    def rate_limit_file(self) -> str:
        """The shared rate-limit bucket: beside the Dagster instance if there is one, else in the temp folder."""
        if self.rate_limit_db:
            return str(self.rate_limit_db)
        folder = self.dagster_home or Path(tempfile.gettempdir())
        return str(folder / "aurora_qb_rate_limits.sqlite")

    @property
    def rate_limit_location(self) -> str:
        """Where the shared rate budget lives: the Postgres URL if one is set (every host), else
        the SQLite file (every process on this machine)."""
        return self.rate_limit_url or self.rate_limit_file

    def run_max_runtime_s(self, projects: int) -> int:
        """``dagster/max_runtime`` of a range run over ``projects`` projects (``ranges.runtime_budget_s``)."""
        return runtime_budget_s(projects, self.daily_budget_share, self.time_scale, requests_per_project(self.fetch_pricing))

    @property
    def inbox_database_url(self) -> str:
        """The webhook inbox: AURORA_QB_INBOX_URL, else SQLite beside the Dagster instance, else ./."""
        if self.inbox_url:
            return self.inbox_url
        folder = self.dagster_home or Path(".")
        return f"sqlite:///{(folder / 'aurora_qb_inbox.sqlite').resolve()}"

    def client_options(self, **overrides: Any) -> ClientOptions:
        """Timeouts, retries and rate budget of both API clients (scaled in the sandbox)."""
        return ClientOptions.for_time_scale(self.time_scale, self.rate_limit_location, **overrides)


def environment(env_file: Optional[Path] = None) -> dict[str, str]:
    """The process environment, with the variables of a dotenv file (e.g. the ``.env`` that
    ``aurora-qb sandbox`` writes) over it: for commands run outside Dagster."""
    values = dict(os.environ)
    if env_file is not None:
        from dotenv import dotenv_values

        if not Path(env_file).is_file():
            raise FileNotFoundError(f"environment file not found: {env_file}")
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    return values


def webhook_secret_from_env(environ: Optional[Mapping[str, str]] = None) -> Optional[SecretStr]:
    """The webhook shared secret (``os.environ`` unless a mapping is given), or None when unset.
    A ``SecretStr``: printing or logging it shows ``**********``."""
    value = (os.environ if environ is None else environ).get(WEBHOOK_SECRET_VARIABLE, "").strip()
    if not value:
        return None
    if len(value) < MIN_WEBHOOK_SECRET_LENGTH:
        raise ValueError(f"{WEBHOOK_SECRET_VARIABLE} is too short: use at least {MIN_WEBHOOK_SECRET_LENGTH} "
                         "random characters (`aurora-qb webhooks new-secret` prints one)")
    return SecretStr(value)


def opportunities_table_from_env(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The opportunities table id (``QB_OPPORTUNITIES_TABLE_ID``), or None: the receiver serves the
    opportunity buttons only when it is set."""
    return ((os.environ if environ is None else environ).get(OPPORTUNITIES_TABLE_VARIABLE) or "").strip() or None


@dataclass(frozen=True)
class Credentials:
    """Secret values given explicitly (sandbox, tests, benchmark). In production there are none:
    the resources read each secret through ``dg.EnvVar`` at run time."""

    aurora_tenant_id: str
    aurora_api_token: str
    quickbase_realm_hostname: str
    quickbase_user_token: str
    quickbase_table_id: str
    quickbase_opportunities_table_id: Optional[str] = None  # QB_OPPORTUNITIES_TABLE_ID (issue 14)
    aurora_partner_application_key: Optional[str] = None  # site surveys only
    webhook_secret: Optional[str] = None  # AURORA_QB_WEBHOOK_SECRET: signs site-survey image links and the opportunity buttons

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "Credentials":
        """From a mapping holding the secret variables (e.g. ``Sandbox.env()``; ``os.environ``
        when None, for commands that call the APIs outside Dagster). KeyError names a missing one."""
        environ = os.environ if environ is None else environ
        missing = [name for name in SECRET_VARIABLES if not environ.get(name)]
        if missing:
            raise KeyError(f"not set: {', '.join(missing)}")
        return cls(*(str(environ[name]) for name in SECRET_VARIABLES),
                   quickbase_opportunities_table_id=environ.get(OPPORTUNITIES_TABLE_VARIABLE) or None,
                   aurora_partner_application_key=environ.get(PARTNER_KEY_VARIABLE) or None,
                   webhook_secret=environ.get(WEBHOOK_SECRET_VARIABLE) or None)

    def values(self) -> list[str]:
        return [self.aurora_tenant_id, self.aurora_api_token, self.quickbase_realm_hostname,
                self.quickbase_user_token, self.quickbase_table_id]
