"""Dagster resources: configuration (secrets as ``dg.EnvVar``) around the plain API clients.

``AuroraResource`` and ``QuickbaseResource`` are ``dg.ConfigurableResource``s holding only
configuration, and a ``client`` (:class:`AuroraClient` / :class:`QuickbaseClient`) made from it on
first use and closed when the step, run or sensor tick ends. Dagster sees and validates the
configuration and resolves ``dg.EnvVar`` at run time, so no secret value is ever shown or stored;
the code that uses a client speaks in domain terms (``aurora.client.get_project(...)``) and the
clients know nothing of Dagster. (``ConfigurableResourceFactory``, which would hand the client
itself to assets, is not public API in Dagster 1.13.)
"""

from __future__ import annotations

import threading
from typing import Any, Optional

import dagster as dg
from pydantic import Field, PrivateAttr

from ..api_facts import AURORA_MAX_PER_PAGE
from ..clients import ApiClient, AuroraClient, ClientOptions, QuickbaseClient
from ..clients.http import RetrySettings
from ..clients.quickbase import DEFAULT_MAX_REQUEST_BYTES
from ..settings import (
    PARTNER_KEY_VARIABLE,
    SECRET_VARIABLES,
    WEBHOOK_SECRET_VARIABLE,
    Credentials,
    Settings,
)
from ..store import STAGING_SCHEMA, HoldPolicy
from ..tenant_apps import opportunities_variable
from .storage import AtomicDuckDBPandasIOManager, PipelineDuckDB
from .opportunities.resources import OpportunitiesResource
from .alerts import alert_webhook_resource
from .webhooks.resources import WebhookInboxResource


class _ApiResource(dg.ConfigurableResource):
    """Client options both API resources share, and the client's life cycle."""

    timeout_s: float = Field(default=30.0, description="Read/connect timeout per request, seconds.")
    max_attempts: int = Field(default=8, description="Attempts per request for transient errors (first included).")
    backoff_initial_s: float = Field(default=1.0, description="First backoff step; doubles each retry, with jitter.")
    backoff_max_s: float = Field(default=60.0, description="Longest single wait between attempts.")
    time_scale: float = Field(default=1.0, description="Shrinks the rate window (sandbox and benchmark only).")
    rate_limit_db: Optional[str] = Field(
        default=None, description="Where the shared rate budget lives: a SQLite file (every process on this "
        "machine) or a Postgres URL without password (every host)."
    )
    max_workers: int = Field(default=4, description="Concurrent requests within one step.")

    _client: Optional[ApiClient] = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def options(self) -> ClientOptions:
        retry = RetrySettings(self.max_attempts, self.backoff_initial_s, self.backoff_max_s)
        return ClientOptions(timeout_s=self.timeout_s, retry=retry, time_scale=self.time_scale,
                             rate_limit_db=self.rate_limit_db, max_workers=self.max_workers)

    def _make_client(self) -> ApiClient:  # pragma: no cover - defined by each resource
        raise NotImplementedError

    def _get_client(self) -> Any:
        """The plain client, made on first use."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class AuroraResource(_ApiResource):
    """Aurora Sync API of one tenant."""

    base_url: str = Field(description="Aurora API root.")
    tenant_id: str = Field(description="Aurora tenant id (secret: an EnvVar).")
    api_token: str = Field(description="Aurora API key, sent as a bearer token (secret: an EnvVar).")
    per_page: int = Field(default=AURORA_MAX_PER_PAGE, description="per_page of list endpoints (max 250).")
    fetch_pricing: bool = Field(default=False, description="Fetch each design's pricing (one request a design).")
    partner_application_id: Optional[str] = Field(
        default=None, description="Many tenants, a `partner: true` tenant: the partner application whose key "
        "(api_token) is exchanged for the tenant's temporary tokens."
    )

    @property
    def client(self) -> AuroraClient:
        return self._get_client()

    def _make_client(self) -> AuroraClient:
        if self.partner_application_id:
            from ..clients.partner import PartnerAuroraClient

            client: AuroraClient = PartnerAuroraClient(
                base_url=self.base_url, application_id=self.partner_application_id,
                application_key=self.api_token, tenant_id=self.tenant_id, options=self.options())
            client.per_page = self.per_page
            return client
        return AuroraClient(base_url=self.base_url, tenant_id=self.tenant_id, api_token=self.api_token,
                            options=self.options(), per_page=self.per_page)


class QuickbaseResource(_ApiResource):
    """One Quickbase table."""

    base_url: str = Field(description="Quickbase API root (without /v1).")
    realm_hostname: str = Field(description="QB-Realm-Hostname, e.g. mycompany.quickbase.com (secret: an EnvVar).")
    user_token: str = Field(description="Quickbase user token (secret: an EnvVar).")
    table_id: str = Field(description="Target table id (secret: an EnvVar).")
    app_id: Optional[str] = Field(default=None, description="App holding the table.")
    max_request_bytes: int = Field(default=DEFAULT_MAX_REQUEST_BYTES, description="Largest upsert body sent.")
    max_records_per_request: Optional[int] = Field(default=None, description="Cap on records per upsert.")
    line_items_table_id: Optional[str] = Field(
        default=None, description="Table of design line items (unset: line items are not synced)."
    )
    export_log_retention_days: int = Field(default=90, description="Days ops.export_log keeps (0: for ever).")
    hold_policy: str = Field(
        default=HoldPolicy.DESIGN.value,
        description="Which quarantined rows hold a design back: 'design' (its own) or 'project' (also its address).",
    )

    @property
    def client(self) -> QuickbaseClient:
        return self._get_client()

    def _make_client(self) -> QuickbaseClient:
        return QuickbaseClient(
            base_url=self.base_url, realm_hostname=self.realm_hostname, user_token=self.user_token,
            table_id=self.table_id, app_id=self.app_id, options=self.options(),
            max_request_bytes=self.max_request_bytes, max_records_per_request=self.max_records_per_request,
        )


def client_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """The shared client fields of both resources, from the settings."""
    options = settings.client_options()
    return {
        "timeout_s": options.timeout_s, "max_attempts": options.retry.max_attempts,
        "backoff_initial_s": options.retry.backoff_initial_s, "backoff_max_s": options.retry.backoff_max_s,
        "time_scale": options.time_scale, "rate_limit_db": options.rate_limit_db,
        "max_workers": options.max_workers, **overrides,
    }


def storage_resources(duckdb_file: str) -> dict[str, Any]:
    """The DuckDB resource (ops tables, export reads; it keeps each run's worker record and
    heartbeat) and the IO manager of the staged tables (atomic partition writes)."""
    return {
        "duckdb": PipelineDuckDB(database=duckdb_file),
        "io_manager": AtomicDuckDBPandasIOManager(database=duckdb_file, schema=STAGING_SCHEMA),
    }


def _secrets(credentials: Optional[Credentials], settings: Optional[Settings] = None) -> list[Any]:
    """Each secret as a ``dg.EnvVar`` (read by Dagster at run time), or the explicit values. A
    tenant's location (many tenants) takes its tenant id, and the variables its credentials are in,
    from the tenants file."""
    if credentials is not None:
        return credentials.values()
    secrets: list[Any] = [dg.EnvVar(name) for name in SECRET_VARIABLES]
    tenant = settings.tenant_config() if settings is not None else None
    if tenant is not None:
        token = PARTNER_KEY_VARIABLE if tenant.partner else tenant.api_token_env
        secrets[0:2] = [tenant.aurora_tenant_id, dg.EnvVar(token)]
        if tenant.quickbase_user_token_env:
            secrets[3] = dg.EnvVar(tenant.quickbase_user_token_env)
        if tenant.quickbase_table_id_env:
            secrets[4] = dg.EnvVar(tenant.quickbase_table_id_env)
    return secrets


def aurora_resource(settings: Settings, credentials: Optional[Credentials] = None, **fields: Any) -> AuroraResource:
    """The Aurora resource; ``fields`` override any field (tests: ``per_page=5``). A ``partner: true``
    tenant's goes through the partner application's temporary tokens."""
    tenant, token, *_ = _secrets(credentials, settings)
    config = settings.tenant_config()
    partner = settings.aurora_partner_application_id if config is not None and config.partner else None
    if config is not None and config.partner and not partner:
        raise ValueError(f"tenant {config.name!r} is a partner tenant: set AURORA_PARTNER_APPLICATION_ID")
    return AuroraResource(**{"base_url": settings.aurora_base_url, "tenant_id": tenant, "api_token": token,
                             "fetch_pricing": settings.fetch_pricing, "partner_application_id": partner,
                             **client_config(settings), **fields})


def quickbase_resource(
    settings: Settings, credentials: Optional[Credentials] = None, **fields: Any
) -> QuickbaseResource:
    """The Quickbase resource; ``fields`` override any field."""
    *_, realm, user_token, table = _secrets(credentials, settings)
    return QuickbaseResource(**{
        "base_url": settings.quickbase_base_url, "realm_hostname": realm, "user_token": user_token,
        "table_id": table, "app_id": settings.quickbase_app_id,
        "max_request_bytes": settings.export_max_request_bytes,
        "max_records_per_request": settings.export_max_records_per_request,
        "hold_policy": settings.hold_policy.value,
        "line_items_table_id": settings.line_items_table_id,
        "export_log_retention_days": settings.export_log_retention_days,
        **client_config(settings), **fields,
    })


def opportunities_resource(settings: Settings, credentials: Optional[Credentials] = None,
                           **fields: Any) -> OpportunitiesResource:
    """The opportunities table (issue 14): its id and the button secret are ``dg.EnvVar``s read
    only by the runs that need them, or explicit values. A tenant's location (many tenants) has its
    own store tables, and its own table when the tenants file names its variable."""
    tenant = settings.tenant_config()
    if credentials is None:
        table: Any = dg.EnvVar(opportunities_variable(tenant))
        secret: Any = dg.EnvVar(WEBHOOK_SECRET_VARIABLE) if settings.opportunity_buttons else None
    else:
        table = credentials.quickbase_opportunities_table_id or ""
        secret = credentials.webhook_secret if settings.opportunity_buttons else None
    mapping = str(settings.opportunity_mapping_file) if settings.opportunity_mapping_file else None
    return OpportunitiesResource(**{"table_id": table, "store_url": settings.inbox_database_url,
                                    "mapping_file": mapping, "button_secret": secret, "tenant": settings.tenant,
                                    **fields})


def build_resources(settings: Settings, credentials: Optional[Credentials] = None) -> dict[str, Any]:
    """Every resource of the code location. ``credentials`` None: each secret is a ``dg.EnvVar``
    (production, ``dagster dev``); given: explicit values (sandbox, tests, benchmark)."""
    from .site_surveys.resources import site_survey_resource  # it builds on this module

    return {
        "aurora": aurora_resource(settings, credentials),
        "quickbase": quickbase_resource(settings, credentials),
        **storage_resources(settings.duckdb_file),
        "webhook_inbox": WebhookInboxResource(url=settings.inbox_database_url),
        "opportunities": opportunities_resource(settings, credentials),
        "site_surveys": site_survey_resource(settings, credentials),
        "alert_webhook": alert_webhook_resource(settings),
    }
