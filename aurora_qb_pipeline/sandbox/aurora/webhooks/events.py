"""Aurora's webhook events, their URL placeholders, and how a URL is built from a template.

Aurora calls a subscriber with HTTP GET on its ``url_template`` with every ``<PLACEHOLDER>``
replaced by a value (in the query string or the path); there is no body. Two generations of
event names exist in Aurora's documentation and both are accepted on a subscription.

The emulator *fires* the events in :data:`FIRED_EVENTS`; the others may be subscribed to (Aurora
accepts them) but nothing in the emulator produces them.
"""

from __future__ import annotations

import re
from typing import Mapping
from urllib.parse import quote

# event -> placeholders Aurora documents for it (without the angle brackets)
EVENT_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "performance_simulation_job_completed": ("DESIGN_ID", "JOB_ID", "STATUS"),
    # The legacy design-request webhook spells the id <DESIGN_REQUEST_UUID_IN_AURORA>.
    "design_request_completed": ("DESIGN_REQUEST_ID_IN_AURORA", "DESIGN_REQUEST_UUID_IN_AURORA", "STATUS"),
    "design_request_rejected": ("DESIGN_REQUEST_ID_IN_AURORA", "DESIGN_REQUEST_UUID_IN_AURORA", "STATUS"),
    "agreement_status_changed": ("PROJECT_ID", "AGREEMENT_ID", "STATUS", "DESIGN_ID", "FINANCING_ID"),
    "project_status_changed": ("STATUS", "PROJECT_ID"),
    "project_created": ("PROJECT_ID", "SOURCE"),
    # Aurora names this event; its placeholders are the emulator's guess.
    "agreement_download_url_job_completed": ("JOB_ID", "STATUS", "AGREEMENT_ID", "PROJECT_ID", "DESIGN_ID"),
    # accepted on subscriptions, never fired by the emulator
    "ahj_lookup_completed": ("PROJECT_ID", "AHJ_ID", "STATUS"),
    "app_status_changed": ("APP_ID", "STATUS"),
    "asset_created": ("ASSET_TYPE", "ASSET_ID", "PROJECT_ID", "DESIGN_ID"),
    "lead_created": ("LEAD_ID",),
    "lead_changed": ("LEAD_ID",),
    "lead_converted": ("LEAD_ID", "PROJECT_ID"),
    "consumption_profile_changed": ("PROJECT_ID",),
    "auto_designer_job_completed": ("STATUS", "DESIGN_ID", "JOB_ID"),
    "irradiance_analysis_job_completed": ("STATUS", "DESIGN_ID", "JOB_ID"),
    "ai_roof_job_completed": ("STATUS", "DESIGN_ID", "JOB_ID"),
    "imagery_lidar_completed": ("STATUS", "DESIGN_ID", "JOB_ID"),
    "web_proposal_url_created": ("DESIGN_ID", "SOURCE"),
    # partner application event (site-survey apps): only partner subscriptions receive it
    "site_survey_requested": ("SITE_SURVEY_REQUEST_ID", "TENANT_ID", "SESSION_TOKEN"),
}

PARTNER_EVENTS = frozenset({"site_survey_requested"})
"""Events only a partner application's subscription (``POST /partner_applications/{id}/webhooks``)
can receive. A partner subscription may also take any tenant event, from every tenant that enabled
the application, with ``<TENANT_ID>`` added to its placeholders."""
PARTNER_PLACEHOLDER = "TENANT_ID"

LEGACY_EVENT_NAMES: dict[str, str] = {
    "design_request_completion": "design_request_completed",
    "design_request_rejection": "design_request_rejected",
    "project_status_updated": "project_status_changed",
    "auto_designer_job_completion": "auto_designer_job_completed",
    "irradiance_analysis_job_completion": "irradiance_analysis_job_completed",
}

FIRED_EVENTS = frozenset({
    "performance_simulation_job_completed", "design_request_completed", "design_request_rejected",
    "agreement_status_changed", "project_status_changed", "project_created",
    "agreement_download_url_job_completed", "app_status_changed", "site_survey_requested",
})


def placeholders_of(event: str, partner: bool) -> tuple[str, ...]:
    """The placeholders a subscription to ``event`` may use (partners get ``<TENANT_ID>`` too)."""
    names = EVENT_PLACEHOLDERS[event]
    return names + (PARTNER_PLACEHOLDER,) if partner and PARTNER_PLACEHOLDER not in names else names

_PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*)>")


def canonical_event(name: str) -> str:
    """The current name of an event, given either generation's name; KeyError when unknown."""
    name = LEGACY_EVENT_NAMES.get(name, name)
    if name not in EVENT_PLACEHOLDERS:
        raise KeyError(name)
    return name


def placeholders_in(template: str) -> list[str]:
    """The placeholder names a URL template uses, in order of appearance."""
    return _PLACEHOLDER.findall(template)


def fill_url(template: str, values: Mapping[str, str]) -> str:
    """The URL Aurora calls: every ``<NAME>`` replaced by its percent-encoded value ("" if none).

    Values are encoded for either position (``Project Sold`` -> ``Project%20Sold``)."""
    return _PLACEHOLDER.sub(lambda m: quote(str(values.get(m.group(1)) or ""), safe=""), template)


def event_values(event: str, **values: object) -> dict[str, str]:
    """Placeholder values of one event occurrence, keyed by placeholder name, as strings.

    ``design_request_id`` fills both spellings of the design-request placeholder."""
    if "design_request_id" in values:
        request_id = values.pop("design_request_id")
        values["DESIGN_REQUEST_ID_IN_AURORA"] = values["DESIGN_REQUEST_UUID_IN_AURORA"] = request_id
    allowed = EVENT_PLACEHOLDERS[event]
    unknown = set(values) - set(allowed)
    if unknown:
        raise ValueError(f"{event} has no placeholder(s) {sorted(unknown)}")
    return {name: "" if values.get(name) is None else str(values[name]) for name in allowed}
