"""Aurora Solar Sync API emulator: a Starlette app over synthetic tenants.

Models Aurora's conventions (bearer API keys bound to one tenant, scopes answered 403,
singular/plural envelopes, ``page``/``per_page`` paging without metadata,
``{"errors": [{"message": ...}]}`` error bodies, 90 requests per minute per key through
:class:`~..common.SandboxMiddleware`) and these parts of the API: projects (list, retrieve,
create, update), designs, full design summaries, pricing, default proposals, design requests
(create, retrieve, accept; a simulated design service), performance simulation jobs, agreements
and their PDF job, project files, webhook subscriptions and their delivery, partner applications
(temporary tokens, partner webhooks) and site surveys. Where the emulator goes beyond what Aurora
documents the code says "EMULATOR EXTENSION" (e.g. ``GET /design_requests``, switchable per
tenant); names Aurora does not publish are marked GUESS.

Layout: ``synthetic/`` (deterministic tenants), ``core``/``state`` and the mixins
(``projects``, ``design_requests``, ``simulation``, ``agreements``, ``activity``, ``deletions``,
``partners``, ``site_surveys`` with ``survey_input`` and ``image_fetch``), ``webhooks/``
(events, subscriptions, delivery hub), ``routes`` (tenant API), ``partner_routes`` (partner
API), ``admin`` and ``admin_partners`` (``/_sandbox`` routes), ``auth`` (keys, tokens, scopes),
``app`` (:func:`create_app`).
"""

from ...api_facts import AURORA_DEFAULT_PER_PAGE as DEFAULT_PER_PAGE
from ...api_facts import AURORA_MAX_PER_PAGE as MAX_PER_PAGE
from .app import create_app
from .auth import DOCUMENTED_SCOPES, SCOPES, bearer_token
from .errors import AuroraError, aurora_error
from .settings import MAGIC_ADDRESS, ServiceConfig, TenantOptions, WebhookConfig
from .state import EXTRA_TENANT_SEED_STEP, AuroraState
from .survey_input import ENUMS as SITE_SURVEY_ENUMS
from .survey_input import REQUIRED_AT_COMPLETION
from .synthetic import MODULE_CATALOGUE, TenantData, generate_tenant
from .webhooks import WebhookHub

__all__ = [
    "DEFAULT_PER_PAGE", "DOCUMENTED_SCOPES", "EXTRA_TENANT_SEED_STEP", "MAGIC_ADDRESS", "MAX_PER_PAGE",
    "MODULE_CATALOGUE", "REQUIRED_AT_COMPLETION", "SCOPES", "SITE_SURVEY_ENUMS", "AuroraError", "AuroraState",
    "ServiceConfig", "TenantData", "TenantOptions", "WebhookConfig", "WebhookHub", "aurora_error", "bearer_token",
    "create_app", "generate_tenant",
]
