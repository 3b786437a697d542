"""Aurora Solar Sync API emulator: a Starlette app over synthetic tenants.

Models Aurora's conventions (bearer API keys bound to one tenant, singular/plural envelopes,
``page``/``per_page`` paging without metadata, ``{"errors": [{"message": ...}]}`` error bodies,
90 requests per minute per key through :class:`~..common.SandboxMiddleware`) and these parts of
the API: projects (list, retrieve, create, update), designs, design summaries, default
proposals, design requests (create, retrieve, accept; a simulated design service), performance
simulation jobs, agreements and their PDF job, project files, webhook subscriptions and their
delivery. Where the emulator goes beyond what Aurora documents the code says
"EMULATOR EXTENSION" (e.g. ``GET /design_requests``, switchable per tenant).

Layout: ``synthetic/`` (deterministic tenants), ``core``/``state`` and the mixins
(``projects``, ``design_requests``, ``simulation``, ``agreements``, ``activity``),
``webhooks/`` (events, subscriptions, delivery hub), ``routes`` (tenant API), ``admin``
(``/_sandbox`` routes), ``auth``, ``app`` (:func:`create_app`).
"""

from ...api_facts import AURORA_DEFAULT_PER_PAGE as DEFAULT_PER_PAGE
from ...api_facts import AURORA_MAX_PER_PAGE as MAX_PER_PAGE
from .app import create_app
from .auth import bearer_token
from .errors import AuroraError, aurora_error
from .settings import MAGIC_ADDRESS, ServiceConfig, TenantOptions, WebhookConfig
from .state import EXTRA_TENANT_SEED_STEP, AuroraState
from .synthetic import MODULE_CATALOGUE, TenantData, generate_tenant
from .webhooks import WebhookHub

__all__ = [
    "DEFAULT_PER_PAGE", "EXTRA_TENANT_SEED_STEP", "MAGIC_ADDRESS", "MAX_PER_PAGE", "MODULE_CATALOGUE", "AuroraError",
    "AuroraState", "ServiceConfig", "TenantData", "TenantOptions", "WebhookConfig", "WebhookHub", "aurora_error",
    "bearer_token", "create_app", "generate_tenant",
]
