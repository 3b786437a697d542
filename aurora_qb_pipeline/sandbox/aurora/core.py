"""The emulator's state kernel: tenants, their API keys, one lock, the clock, background work.

:class:`StateCore` is what every part of :class:`~.state.AuroraState` shares: the mixins for
projects, design requests, jobs and agreements build on it. Stored records are never changed in
place (an update replaces the dict), so a handler can serialise what it read after releasing the
lock. State changes publish webhook events while holding the lock; the hub only queues them and
sends later from its own threads.
"""

from __future__ import annotations

import random
import secrets
import threading
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Optional

from ...api_facts import AURORA_RATE_LIMIT
from ..common import SandboxConfig, SandboxState
from .auth import SCOPES, UNPROVISIONED, Credential
from .errors import AuroraError, lookup
from .scheduler import Scheduler, Timer
from .settings import ServiceConfig, TenantOptions, WebhookConfig, update_config
from .synthetic import TenantBuilder, TenantData, parse_timestamp, random_uuid
from .webhooks import WebhookHub


def default_config() -> SandboxConfig:
    """Shared sandbox settings with Aurora's documented rate limit (90 requests a minute per key)."""
    return SandboxConfig(rate_limit=AURORA_RATE_LIMIT.requests, rate_window_s=AURORA_RATE_LIMIT.window_s)


class StateCore(SandboxState):
    """Tenants, their API keys and the machinery every operation of the emulator shares.

    ``tenants[0]`` given to the constructor is the *primary* tenant: admin operations act on it
    unless told otherwise. Runtime records (new projects, designs made by accepted requests)
    come from a per-tenant RNG seeded from the tenant id, so a replayed sequence of operations
    yields the same ids; their timestamps come from ``clock`` (UTC now by default)."""

    def __init__(self, tenants: Iterable[TenantData], config: Optional[SandboxConfig] = None,
                 clock: Optional[Callable[[], datetime]] = None, services: Optional[ServiceConfig] = None,
                 webhooks: Optional[WebhookConfig] = None) -> None:
        super().__init__(config or default_config())
        self.lock = threading.RLock()
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.services = services or ServiceConfig()
        self.scheduler = Scheduler()
        self.webhooks = WebhookHub(self._now, lambda: self.config.time_scale, self.scheduler, webhooks)
        self.file_secret = secrets.token_bytes(32)  # signs download URLs (see files.py)
        self.tenants: dict[str, TenantData] = {}
        self._credentials: dict[str, Credential] = {}  # bearer value -> what it grants
        self._builders: dict[str, TenantBuilder] = {}
        self._options: dict[str, TenantOptions] = {}
        self._orders: dict[tuple[str, str], list[str]] = {}
        self._service_rngs: dict[str, random.Random] = {}
        self._job_rngs: dict[str, random.Random] = {}  # job ids, apart from the records' RNG
        self.service_timers: dict[str, Timer] = {}  # design request id -> the design service's timer
        self.jobs: dict[str, dict] = {}  # job id -> async job record (simulations, downloads)
        self._job_tenants: dict[str, str] = {}  # job id -> tenant id
        for tenant in tenants:
            self.add_tenant(tenant)

    # --- tenants and keys -----------------------------------------------------------------
    def add_tenant(self, tenant: TenantData, options: Optional[TenantOptions] = None) -> None:
        with self.lock:
            if tenant.tenant_id in self.tenants or tenant.token in self._credentials:
                raise ValueError(f"tenant {tenant.tenant_id} or its API key is already registered")
            self.tenants[tenant.tenant_id] = tenant
            self._credentials[tenant.token] = Credential(tenant.tenant_id, "standard")
            self._builders[tenant.tenant_id] = TenantBuilder(random.Random(f"runtime:{tenant.tenant_id}"), tenant)
            self._service_rngs[tenant.tenant_id] = random.Random(f"design-service:{tenant.tenant_id}")
            self._job_rngs[tenant.tenant_id] = random.Random(f"jobs:{tenant.tenant_id}")
            self._options[tenant.tenant_id] = options or TenantOptions()

    @property
    def primary(self) -> TenantData:
        return next(iter(self.tenants.values()))

    def tenant_for_token(self, token: str) -> Optional[TenantData]:
        """The tenant a key or unexpired temporary token belongs to."""
        credential = self.credential_for(token)
        if credential is None or (credential.expires_at is not None and self.now_epoch() >= credential.expires_at):
            return None
        return self.tenants[credential.tenant_id]

    # --- credentials (see auth.py) --------------------------------------------------------------
    def credential_for(self, token: str) -> Optional[Credential]:
        """What a bearer value grants (None: unknown). Called twice per request (rate limit, auth):
        a plain dict read, atomic in CPython, so it takes no lock; writers replace whole entries."""
        return self._credentials.get(token)

    def credential_valid(self, credential: Credential) -> bool:
        """Whether a credential still works (partner tokens die with their app's enablement)."""
        return True

    def now_epoch(self) -> float:
        """The emulator clock as epoch seconds (token expiry follows the clock, so tests can move it)."""
        return self._now().timestamp()

    def withdrawn_scopes(self, tenant_id: str) -> set[str]:
        """Scopes no key of the tenant has, because a switch unprovisioned their endpoints."""
        options = self._options[tenant_id]
        return {scope for switch, scope in UNPROVISIONED.items() if not getattr(options, switch)}

    def create_api_key(self, tenant_id: Optional[str] = None, scopes: Optional[Iterable[str]] = None) -> dict:
        """Admin: a restricted key (``rk_sand_...``) of the tenant limited to ``scopes`` (as a tenant
        admin makes one in Aurora's settings); None makes another standard-like key with every scope."""
        chosen = None if scopes is None else frozenset(scopes)
        if chosen is not None and (not chosen or chosen - SCOPES):
            raise AuroraError(422, f"scopes must be a non-empty list of: {', '.join(sorted(SCOPES))}.")
        with self.lock:
            tenant = self.tenant(tenant_id)
            key = "rk_sand_" + secrets.token_hex(16)
            self._credentials[key] = Credential(tenant.tenant_id, "restricted", chosen)
            return {"key": key, "tenant_id": tenant.tenant_id,
                    "scopes": sorted(SCOPES if chosen is None else chosen)}

    def revoke_api_key(self, key: str) -> None:
        """Admin: a restricted key stops working (401)."""
        with self.lock:
            credential = self._credentials.get(key)
            if credential is None or credential.kind != "restricted":
                raise AuroraError(404, "Restricted API key not found.")
            del self._credentials[key]

    def tenant(self, tenant_id: Optional[str] = None) -> TenantData:
        """The tenant with this id (the primary one for None); 404 when unknown."""
        return self.primary if tenant_id is None else lookup(self.tenants, tenant_id, "Tenant")

    def owner(self, collection: str, record_id: str, what: str) -> TenantData:
        """The tenant holding ``record_id`` in ``collection`` (admin routes address records by id)."""
        with self.lock:
            for tenant in self.tenants.values():
                if record_id in getattr(tenant, collection):
                    return tenant
        raise AuroraError(404, f"{what} {record_id} not found.")

    # --- per-tenant switches --------------------------------------------------------------
    def tenant_options(self, tenant_id: Optional[str] = None) -> dict[str, Any]:
        """A tenant's switches, with the emulator-wide default filled in where it has none."""
        with self.lock:
            tenant = self.tenant(tenant_id)
            options = self._options[tenant.tenant_id].as_dict()
            return {"tenant_id": tenant.tenant_id, **options,
                    "design_request_list_effective": self.design_request_list_enabled(tenant.tenant_id)}

    def set_tenant_options(self, tenant_id: Optional[str] = None, **values: Any) -> dict[str, Any]:
        """E.g. ``set_tenant_options(tid, design_request_list=False)``: that tenant's list endpoint
        answers 404 as Aurora's does (None follows :attr:`ServiceConfig.design_request_list`);
        ``pricing=False``: its pricing endpoint answers 403; ``project_list_location=False``: list
        pages leave ``location`` out (see :class:`~.settings.TenantOptions`)."""
        with self.lock:
            tenant = self.tenant(tenant_id)
            update_config(self._options[tenant.tenant_id], values)
            return self.tenant_options(tenant.tenant_id)

    def design_request_list_enabled(self, tenant_id: str) -> bool:
        own = self._options[tenant_id].design_request_list
        return self.services.design_request_list if own is None else own

    # --- shared helpers -------------------------------------------------------------------
    def _now(self) -> datetime:
        return self.clock().astimezone(timezone.utc)

    def scaled(self, seconds: float) -> float:
        """Real seconds for ``seconds`` of Aurora time (``time_scale``)."""
        return seconds * self.config.time_scale

    def _builder(self, tenant: TenantData) -> TenantBuilder:
        return self._builders[tenant.tenant_id]

    def _emit(self, tenant: TenantData, event: str, **values: Any) -> None:
        """Publish a webhook event of ``tenant`` (queued; sent later by the hub's workers)."""
        self.webhooks.publish(tenant.tenant_id, event, **values)

    def _sorted_ids(self, tenant: TenantData, collection: str, time_field: str) -> list[str]:
        """Ids of a collection, newest first (ties broken by id), cached until the next insert."""
        key = (tenant.tenant_id, collection)
        order = self._orders.get(key)
        if order is None:
            records = getattr(tenant, collection)
            order = sorted(records, reverse=True,
                           key=lambda rid: (parse_timestamp(records[rid][time_field]), rid))
            self._orders[key] = order
        return order

    def _inserted(self, tenant: TenantData) -> None:
        for collection in ("projects", "design_requests"):
            self._orders.pop((tenant.tenant_id, collection), None)

    def _job_id(self, tenant: TenantData) -> str:
        return random_uuid(self._job_rngs[tenant.tenant_id])

    def _add_job(self, tenant: TenantData, job: dict) -> dict:
        self.jobs[job["job_id"]] = job
        self._job_tenants[job["job_id"]] = tenant.tenant_id
        return job

    def _job(self, tenant: TenantData, job_id: Optional[str], kind: str, **match: str) -> dict:
        """A job of ``tenant`` of this ``kind`` whose fields equal ``match``; 422 / 404 otherwise."""
        if not job_id:
            raise AuroraError(422, "job_id is required.")
        job = self.jobs.get(job_id)
        if (job is None or self._job_tenants.get(job_id) != tenant.tenant_id or job.get("_kind") != kind
                or any(job.get(k) != v for k, v in match.items())):
            raise AuroraError(404, f"Job {job_id} not found.")
        return job

    def close(self) -> None:
        """Stop background work (design service timers, webhook deliveries)."""
        self.scheduler.stop()
        self.webhooks.close()
