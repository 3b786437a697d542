"""Aurora-specific knobs of the emulator, changeable while it runs (admin routes ``.../config``).

The shared knobs (latency, faults, rate limit, ``time_scale``) live in
:class:`~aurora_qb_pipeline.sandbox.common.SandboxConfig`. Durations here are in *Aurora*
seconds and are multiplied by ``time_scale`` when used, except where a name says ``real``.
"""

from __future__ import annotations

import typing
from dataclasses import asdict, dataclass, fields
from typing import Any, Optional

from ...api_facts import (
    AURORA_WEBHOOK_DISABLE_AFTER_ATTEMPTS,
    AURORA_WEBHOOK_DISABLE_AFTER_S,
    AURORA_WEBHOOK_RETRY_SCHEDULE_S,
    AURORA_WEBHOOK_TIMEOUT_S,
)

MAGIC_ADDRESS = "901 Mears Ct, Stanford, CA 94305, USA"
"""Aurora's sandbox fills design requests for projects at this address instantly."""


def update_config(config: Any, values: Any) -> None:
    """Set fields of a config dataclass from a JSON object; ValueError names what is wrong."""
    if not isinstance(values, dict):
        raise ValueError("settings must be a JSON object")
    hints = typing.get_type_hints(type(config))
    known = {f.name for f in fields(config)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    checked = {}
    for key, value in values.items():
        hint = hints[key]
        optional = type(None) in typing.get_args(hint)
        base = next((a for a in typing.get_args(hint) if a is not type(None)), hint) if optional else hint
        if value is None and optional:
            checked[key] = None
        elif base is bool and isinstance(value, bool):
            checked[key] = value
        elif base in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
            if base is int and not float(value).is_integer():
                raise ValueError(f"{key} must be an integer")
            if value < 0:
                raise ValueError(f"{key} must be 0 or greater")
            checked[key] = base(value)
        elif typing.get_origin(base) is tuple and isinstance(value, list) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in value):
            checked[key] = tuple(float(v) for v in value)
        elif base is str and isinstance(value, str):
            checked[key] = value
        else:
            raise ValueError(f"{key} has the wrong type: {value!r}")
    for key in ("reject_rate", "duplicate_rate", "drop_rate"):
        if key in checked and checked[key] > 1:
            raise ValueError(f"{key} must be between 0 and 1")
    for key, value in checked.items():
        setattr(config, key, value)


@dataclass
class ServiceConfig:
    """Aurora's background services as the emulator simulates them."""

    design_service: bool = True
    """Process submitted design requests by themselves (off: only admin routes move them)."""
    design_service_delay_s: float = 3 * 3600.0
    """Turnaround of the design service (Aurora targets about 3 h in business hours)."""
    reject_rate: float = 0.1
    """Share of residential requests the designers reject (bad imagery); commercial ones always are."""
    magic_address: str = MAGIC_ADDRESS
    simulation_s: float = 30.0
    """How long a performance simulation job runs."""
    download_job_s: float = 5.0
    """How long an agreement download-url job runs."""
    file_url_ttl_s: float = 15 * 60.0
    """Download URLs expire after 15 minutes (documented for agreement PDFs)."""
    design_request_list: bool = True
    """EMULATOR EXTENSION default: tenants answer ``GET /design_requests`` (Aurora documents no
    list endpoint; a tenant can be switched to answer 404 as the real API would)."""
    partner_token_ttl_s: float = 3600.0
    """GUESS: lifetime of a partner application's temporary token (Aurora says they expire, not when)."""
    session_token_ttl_s: float = 24 * 3600.0
    """GUESS: how long the ``session_token`` of a ``site_survey_requested`` webhook is accepted."""
    screenshot_url_ttl_s: float = 24 * 3600.0
    """A site-survey request's screenshot URL expires after 24 hours (Aurora's site-survey guide)."""
    fetch_survey_images: bool = True
    """Download the image URLs a site-survey upload names, as Aurora says it does (in the background)."""
    image_fetch_timeout_s: float = 10.0
    """Real seconds one image download may take (not scaled: it must cover a real server)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WebhookConfig:
    """Webhook delivery: Aurora's documented behaviour plus switches that misbehave on purpose."""

    timeout_s: float = AURORA_WEBHOOK_TIMEOUT_S
    min_timeout_real_s: float = 1.0
    """Floor of the scaled timeout in real seconds, so a tiny time_scale cannot fail healthy receivers."""
    retry_schedule_s: tuple[float, ...] = AURORA_WEBHOOK_RETRY_SCHEDULE_S
    disable_after_attempts: int = AURORA_WEBHOOK_DISABLE_AFTER_ATTEMPTS
    disable_after_s: float = AURORA_WEBHOOK_DISABLE_AFTER_S
    # --- switches for tests: none of this is Aurora's documented behaviour ---------------------
    duplicate_rate: float = 0.0
    """Share of events delivered twice (Aurora says duplicates are possible)."""
    duplicate_next: int = 0
    """The next N events are delivered twice."""
    drop_rate: float = 0.0
    """Share of events never delivered (a lost event the nightly reconcile must repair)."""
    drop_next: int = 0
    """The next N events are never delivered."""
    reorder_window_real_s: float = 0.0
    """When > 0, first attempts are held this many real seconds and then sent newest first."""
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "retry_schedule_s": list(self.retry_schedule_s)}


@dataclass
class TenantOptions:
    """Per-tenant switches; None follows the emulator-wide default."""

    design_request_list: Optional[bool] = None
    pricing: bool = True
    """False: ``GET /designs/{id}/pricing`` answers 403 for every key of the tenant, as Aurora does
    for an endpoint not provisioned for a key (the pricing feature must then switch itself off)."""
    project_list_location: bool = True
    """False: the project objects of ``GET /projects`` pages carry no ``location`` (a test switch,
    not Aurora behaviour: Aurora's list items are full projects; a client must fall back to
    ``GET /projects/{id}`` for the address)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
