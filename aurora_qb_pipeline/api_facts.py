"""Documented facts about the two external APIs, kept in one place.

The HTTP clients, the sandbox servers that model the APIs and the benchmark all read them from
here, so a limit is written down once. These are properties of Aurora and Quickbase, not settings
of this pipeline (those live in :mod:`aurora_qb_pipeline.settings`). The project README's
"API facts" section lists where each one comes from.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    """``requests`` per ``window_s`` seconds, counted per credential by the service."""

    requests: int
    window_s: float

    def scaled(self, time_scale: float) -> "RateLimit":
        """The same limit with its window shrunk by ``time_scale`` (sandbox and benchmark runs)."""
        return RateLimit(self.requests, self.window_s * time_scale)


# --- Aurora Solar Sync API -----------------------------------------------------------------

AURORA_RATE_LIMIT = RateLimit(requests=90, window_s=60.0)
"""90 requests a minute per API key (Aurora's rate-limit page; answered with 429)."""

AURORA_DEFAULT_PER_PAGE = 100
AURORA_MAX_PER_PAGE = 250
"""List endpoints page with ``page``/``per_page`` and send no paging metadata: a page shorter
than ``per_page`` is the last one."""

AURORA_WEBHOOK_RETRY_SCHEDULE_S = (30.0, 300.0, 1800.0, 10800.0, 72000.0)
"""Aurora retries a failed webhook delivery after about 30 s, 5 min, 30 min, 3 h and 20 h."""

AURORA_WEBHOOK_TIMEOUT_S = 10.0
"""A webhook receiver must answer within 10 s; a slower answer counts as a failed delivery."""

AURORA_WEBHOOK_DISABLE_AFTER_ATTEMPTS = 100
AURORA_WEBHOOK_DISABLE_AFTER_S = 48 * 3600.0
"""A subscription whose deliveries keep failing (about 48 h, 100 or more attempts) is disabled."""

# --- Quickbase JSON RESTful API ------------------------------------------------------------

QUICKBASE_RATE_LIMIT = RateLimit(requests=100, window_s=10.0)
"""100 requests per 10 seconds per user token (answered with 429)."""

QUICKBASE_MAX_REQUEST_BYTES = 40 * 1024 * 1024
"""Largest request body Quickbase accepts (upsert); larger ones are refused with 413."""

QUICKBASE_BUILT_IN_FIELD_IDS = frozenset({1, 2, 3, 4, 5})
"""Date created, date modified, record id, record owner, last modified by: never writable."""

QUICKBASE_RECORD_ID_FIELD = 3
QUICKBASE_DATE_MODIFIED_FIELD = 2

# Field types as GET /v1/fields reports them ("fieldType"), grouped by the JSON values a write
# accepts. A "datetime" field is created with that name and reads back as "timestamp".
QUICKBASE_TEXT_FIELD_TYPES = frozenset(
    {"text", "text-multiple-choice", "text-multi-line", "rich-text", "email", "url", "phone"}
)
QUICKBASE_NUMERIC_FIELD_TYPES = frozenset({"numeric", "currency", "percent", "rating", "duration"})
QUICKBASE_TIME_FIELD_TYPES = frozenset({"date", "datetime", "timestamp"})
QUICKBASE_CHECKBOX_FIELD_TYPES = frozenset({"checkbox"})

# --- Aurora webhooks (the events this pipeline subscribes to) --------------------------------

AURORA_WEBHOOK_EVENTS: dict[str, tuple[str, ...]] = {
    "performance_simulation_job_completed": ("DESIGN_ID", "JOB_ID", "STATUS"),
    "design_request_completed": ("DESIGN_REQUEST_ID_IN_AURORA", "STATUS"),
    "design_request_rejected": ("DESIGN_REQUEST_ID_IN_AURORA", "STATUS"),
    "agreement_status_changed": ("PROJECT_ID", "AGREEMENT_ID", "STATUS", "DESIGN_ID", "FINANCING_ID"),
    "project_status_changed": ("STATUS", "PROJECT_ID"),
    "project_created": ("PROJECT_ID", "SOURCE"),
}
"""Events Aurora fires and the ``<PLACEHOLDERS>`` it fills in a subscription's ``url_template``.
Aurora calls the filled URL with HTTP GET and no body; only ids and statuses travel."""

AURORA_WEBHOOK_LEGACY_NAMES: dict[str, str] = {
    "design_request_completion": "design_request_completed",
    "design_request_rejection": "design_request_rejected",
    "project_status_updated": "project_status_changed",
}
"""Older names of the same events, still accepted by Aurora on a subscription."""

AURORA_WEBHOOK_LEGACY_PLACEHOLDERS: dict[str, str] = {"DESIGN_REQUEST_UUID_IN_AURORA": "DESIGN_REQUEST_ID_IN_AURORA"}
"""The legacy design-request webhook spells the request id ``<DESIGN_REQUEST_UUID_IN_AURORA>``."""

AURORA_DESIGN_REQUEST_STATUSES = ("submitted", "designer_rejected", "designer_completed", "accepted")
AURORA_DESIGN_REQUEST_FINAL_STATUSES = frozenset({"designer_rejected", "accepted"})
"""submitted -> designer_rejected (final) | designer_completed -> accepted (final)."""

AURORA_AGREEMENT_STATUSES = ("sent", "viewed", "signed", "canceled", "declined", "error", "cancel_pending")
"""Agreement statuses (the webhook spells the last one ``cancel-pending``). Aurora may add values
without a version bump; listeners must ignore unfamiliar ones."""

AURORA_SIMULATION_STATUSES = ("succeeded", "failed")

# --- Aurora site surveys (the site-survey app guide) ----------------------------------------

AURORA_PARTNER_WEBHOOK_EVENTS: dict[str, tuple[str, ...]] = {
    "site_survey_requested": ("SITE_SURVEY_REQUEST_ID", "TENANT_ID", "SESSION_TOKEN"),
}
"""Partner-application events (subscribed with the application key on
``/partner_applications/{application_id}/webhooks``, delivered for every tenant that enabled the
app) and their placeholders. A site-survey app gets ``site_survey_requested``."""

AURORA_PARTNER_TOKEN_EXPIRES_FORMAT = "%Y-%m-%d %H:%M:%S %Z"
"""``create_token`` answers ``{"token": {"bearer_token", "expires_at": "2023-07-29 04:30:46 UTC"}}``."""

AURORA_SITE_SURVEY_SCREENSHOT_TTL_S = 24 * 3600.0
"""The screenshot URL of a site-survey request expires 24 hours after it is retrieved."""

AURORA_SITE_SURVEY_ENUMS: dict[str, tuple[str, ...]] = {
    "main_panel_location": ("interior", "exterior", "garage", "basement", "other"),
    "service_type": ("single_phase_120_240v", "three_phase_120_208v", "three_phase_277_480v"),
    "feeder_type": ("overhead", "underground"),
    "utility_meter_location": ("exterior_wall", "interior", "garage", "pedestal", "other"),
    "existing_grounding": ("ground_rod", "ufer", "water_pipe", "none", "unknown"),
    "units_of_measurement": ("imperial", "metric"),
    "roof_type": ("comp_shingle", "tile", "metal_standing_seam", "metal_corrugated", "flat_membrane",
                  "wood_shake", "other"),
    "framing_type": ("rafters", "trusses", "i_joists", "other"),
    "rafter_size": ("2x4", "2x6", "2x8", "2x10", "2x12", "other"),
}
"""The enum fields of the site-survey uploads. Aurora's guide marks these fields "(enum)" but
does not publish their values: these are GUESSES, shared by the sandbox (which checks them) and the
Quickbase survey tables (their choice lists), so both change together when Aurora publishes them."""

AURORA_SITE_SURVEY_REQUIRED_AT_COMPLETION = ("main_panel_location", "main_bus_rating", "main_breaker_rating")
"""Electrical fields "required at completion": without them ``PUT .../status`` answers 422."""
