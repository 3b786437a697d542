""":class:`AuroraState`: every operation of the emulator, for the HTTP routes and for tests.

Built from mixins by concern, all sharing :class:`~.core.StateCore` (tenants, one lock, the
clock, the scheduler and the webhook hub):

* :mod:`.projects` - list, retrieve, create, update, status changes;
* :mod:`.design_requests` - the request state machine and the simulated design service;
* :mod:`.simulation` - performance simulation jobs;
* :mod:`.agreements` - agreements, their PDF job, project files;
* :mod:`.activity` - what users do in the app (``add_projects``, ``mutate``);
* :mod:`.deletions` - users delete designs and projects;
* :mod:`.partners` - partner applications, their temporary tokens and webhooks;
* :mod:`.site_surveys` - site-survey requests and what the survey app uploads;
* this module - design reads (with pricing) and :meth:`AuroraState.generate`.

Every admin route is also a method here, so a test running the server in-process can call it
directly. ``state.webhooks`` (:class:`~.webhooks.WebhookHub`) holds subscriptions and the
delivery log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable, Optional

from ..common import SandboxConfig
from .activity import ActivityMixin
from .agreements import AgreementsMixin
from .deletions import DeletionsMixin
from .errors import lookup
from .projects import ProjectsMixin
from .settings import ServiceConfig, WebhookConfig
from .site_surveys import SiteSurveysMixin
from .synthetic import generate_tenant, pricing_for

EXTRA_TENANT_SEED_STEP = 1_000_003  # extra tenant i is generated from seed + i * step


class AuroraState(SiteSurveysMixin, ActivityMixin, ProjectsMixin, AgreementsMixin, DeletionsMixin):
    """Tenants, their API keys and every operation of the emulator, guarded by one lock."""

    @classmethod
    def generate(cls, seed: int = 0, projects: int = 20, designs_per_project: float = 2.5,
                 config: Optional[SandboxConfig] = None, extra_tenants: int = 1, messy_fraction: float = 0.15,
                 extra_tenant_projects: int = 5, clock: Optional[Callable[[], datetime]] = None,
                 services: Optional[ServiceConfig] = None, webhooks: Optional[WebhookConfig] = None) -> "AuroraState":
        """A state with a generated primary tenant and ``extra_tenants`` small ones (isolation tests).

        Extra tenant ``i`` (1-based) comes from ``seed + i * EXTRA_TENANT_SEED_STEP``."""
        tenants = [generate_tenant(seed, projects, designs_per_project, messy_fraction)]
        tenants += [
            generate_tenant(seed + i * EXTRA_TENANT_SEED_STEP, extra_tenant_projects, designs_per_project,
                            messy_fraction)
            for i in range(1, extra_tenants + 1)
        ]
        return cls(tenants, config, clock, services, webhooks)

    # --- design reads ---------------------------------------------------------------------
    def list_designs(self, tenant_id: str, project_id: str) -> list[dict]:
        with self.lock:
            tenant = self.tenant(tenant_id)
            lookup(tenant.projects, project_id, "Project")
            return tenant.designs_of(project_id)

    def get_design(self, tenant_id: str, design_id: str) -> dict:
        with self.lock:
            return lookup(self.tenant(tenant_id).designs, design_id, "Design")

    def get_design_summary(self, tenant_id: str, design_id: str) -> dict:
        with self.lock:
            return lookup(self.tenant(tenant_id).summaries, design_id, "Design")

    def get_default_proposal(self, tenant_id: str, design_id: str) -> dict:
        with self.lock:
            tenant = self.tenant(tenant_id)
            lookup(tenant.designs, design_id, "Design")
            return lookup(tenant.proposals, design_id, "Default proposal of design")

    def get_design_pricing(self, tenant_id: str, design_id: str) -> dict:
        """``GET /designs/{id}/pricing``: computed from the design's pricing plan and current summary
        (see :mod:`.synthetic.pricing`). Route-level 403 when the key lacks ``read_pricing``."""
        with self.lock:
            tenant = self.tenant(tenant_id)
            lookup(tenant.designs, design_id, "Design")
            return pricing_for(tenant.pricing_plans[design_id], tenant.summaries[design_id])
