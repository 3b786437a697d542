"""What an Aurora webhook delivery carries, and how the receiver reads it.

Aurora calls a subscriber with HTTP GET on the subscription's ``url_template`` with every
``<PLACEHOLDER>`` filled in; there is no body, only ids and statuses. The subscriptions this
pipeline makes (``aurora-qb webhooks subscribe``) use one path per event and name each query
parameter after its placeholder in lower case (``<DESIGN_ID>`` -> ``design_id``;
``<DESIGN_REQUEST_ID_IN_AURORA>`` and the legacy ``<DESIGN_REQUEST_UUID_IN_AURORA>`` ->
``design_request_id``), e.g. ``/aurora/events/project_status_changed?project_id=..&status=..``.

:func:`parse_delivery` turns an event name and a raw query string into an :class:`InboundEvent`,
or raises :class:`BadDelivery` with a message that says exactly what is wrong. Events the
pipeline does not know, and statuses it has never seen, are valid deliveries: Aurora adds enum
values without a version bump and listeners must take them gracefully, so they are stored and
the sensor ignores what no trigger rule names.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import parse_qsl

from ..api_facts import (
    AURORA_PARTNER_WEBHOOK_EVENTS,
    AURORA_WEBHOOK_EVENTS,
    AURORA_WEBHOOK_LEGACY_NAMES,
    AURORA_WEBHOOK_LEGACY_PLACEHOLDERS,
)

SOURCE_AURORA = "aurora"
SECRET_PARAMETER = "token"
"""Query parameter that may carry the shared secret (when it cannot travel in a header)."""
SECRET_HEADER = "X-Aurora-Webhook-Token"
"""Header that carries the shared secret (set as a custom header on the subscription)."""

MAX_QUERY_BYTES = 4096
MAX_PARAMETERS = 32
MAX_VALUE_LENGTH = 1024
MAX_STATUS_LENGTH = 255
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")

# parameter name -> the object it names; where a known event carries the project directly
ID_PARAMETERS = frozenset({"design_id", "job_id", "design_request_id", "project_id", "agreement_id", "financing_id",
                           "tenant_id", "site_survey_request_id", "session_token"})
PROJECT_PARAMETER = "project_id"


class BadDelivery(ValueError):
    """A delivery the receiver refuses with 400; the message says what is wrong."""


def parameter_name(placeholder: str) -> str:
    """``DESIGN_REQUEST_ID_IN_AURORA`` -> ``design_request_id``; ``DESIGN_ID`` -> ``design_id``."""
    placeholder = AURORA_WEBHOOK_LEGACY_PLACEHOLDERS.get(placeholder, placeholder)
    name = placeholder.lower()
    return name[: -len("_in_aurora")] if name.endswith("_in_aurora") else name


# parameter spellings a hand-made subscription may use, mapped to ours
_ALIASES = {
    "design_request_uuid": "design_request_id", "design_request_uuid_in_aurora": "design_request_id",
    "design_request_id_in_aurora": "design_request_id",
}


@dataclass(frozen=True)
class EventSpec:
    """An event the pipeline knows: its query parameters, the one it cannot do without, and the
    parameters it may identify its object by (the legacy design-request template puts the id in
    the path)."""

    name: str
    parameters: tuple[str, ...]
    required: str

    def template(self, base_url: str) -> str:
        """The ``url_template`` of a subscription to this event on a receiver at ``base_url``."""
        placeholders = {**AURORA_WEBHOOK_EVENTS, **AURORA_PARTNER_WEBHOOK_EVENTS}[self.name]
        query = "&".join(f"{parameter_name(p)}=<{p}>" for p in placeholders)
        return f"{base_url.rstrip('/')}{EVENTS_PATH}/{self.name}?{query}"


EVENTS_PATH = "/aurora/events"


def _spec(name: str, placeholders: tuple[str, ...]) -> EventSpec:
    parameters = tuple(parameter_name(p) for p in placeholders)
    # the object the event is about: design, design request or project (never the job or financing)
    required = next(p for p in parameters if p.endswith("_id") and p not in ("job_id", "financing_id"))
    return EventSpec(name, parameters, required)


KNOWN_EVENTS: dict[str, EventSpec] = {name: _spec(name, p) for name, p in AURORA_WEBHOOK_EVENTS.items()}
"""Tenant events: what ``aurora-qb webhooks subscribe`` and the trigger rules may name."""
PARTNER_EVENTS: dict[str, EventSpec] = {name: _spec(name, p) for name, p in AURORA_PARTNER_WEBHOOK_EVENTS.items()}
"""Partner-application events (``site_survey_requested``): the receiver accepts them on the same
path; they are subscribed with the application key (``aurora-qb site-surveys subscribe``) and read
by the site-survey sensor, never by the trigger rules."""


def canonical_event(name: str) -> str:
    """The current name of an event given either generation's name (unknown names unchanged)."""
    return AURORA_WEBHOOK_LEGACY_NAMES.get(name, name)


@dataclass(frozen=True)
class InboundEvent:
    """One delivery as the inbox stores it: never the secret."""

    event: str  # canonical name
    params: dict[str, str]
    event_as_sent: str
    known: bool
    source: str = SOURCE_AURORA
    tenant_id: Optional[str] = None
    extra: dict[str, str] = field(default_factory=dict)  # parameters no spec names (static ones)

    @property
    def dedupe_key(self) -> str:
        """Identical deliveries (Aurora may send one twice) share this key."""
        body = json.dumps([self.source, self.event, sorted(self.params.items()), sorted(self.extra.items())])
        return hashlib.sha256(body.encode()).hexdigest()

    @property
    def status(self) -> Optional[str]:
        return self.params.get("status") or None

    def all_params(self) -> dict[str, str]:
        return {**self.extra, **self.params}


def _pairs(raw_query: str) -> list[tuple[str, str]]:
    if len(raw_query.encode()) > MAX_QUERY_BYTES:
        raise BadDelivery(f"query string longer than {MAX_QUERY_BYTES} bytes")
    try:
        return parse_qsl(raw_query, keep_blank_values=True, strict_parsing=False, errors="strict",
                         max_num_fields=MAX_PARAMETERS)
    except UnicodeDecodeError:
        raise BadDelivery("query string is not valid UTF-8 after percent-decoding") from None
    except ValueError:
        raise BadDelivery(f"more than {MAX_PARAMETERS} query parameters") from None


def read_query(raw_query: str) -> dict[str, str]:
    """Query parameters, names lower-cased and aliases resolved; a name given twice with different
    values is refused (which one would be true?)."""
    values: dict[str, str] = {}
    for name, value in _pairs(raw_query):
        key = _ALIASES.get(name.strip().lower(), name.strip().lower())
        if not key:
            raise BadDelivery("a query parameter has no name")
        if len(value) > MAX_VALUE_LENGTH:
            raise BadDelivery(f"parameter {key!r} is longer than {MAX_VALUE_LENGTH} characters")
        if key in values and values[key] != value:
            raise BadDelivery(f"parameter {key!r} is given twice with different values")
        values[key] = value
    return values


def _check_value(name: str, value: str) -> None:
    if name in ID_PARAMETERS and value and not _ID.match(value):
        raise BadDelivery(f"parameter {name!r} is not an Aurora id: {value[:60]!r}")
    if name == "status" and (len(value) > MAX_STATUS_LENGTH or not value.isprintable()):
        raise BadDelivery(f"parameter 'status' must be printable text of at most {MAX_STATUS_LENGTH} characters")


def parse_delivery(event_name: str, raw_query: str, path_id: Optional[str] = None) -> InboundEvent:
    """The event in one delivery. ``path_id``: an object id carried in the path (the legacy
    design-request template ``.../<DESIGN_REQUEST_UUID_IN_AURORA>?status=<STATUS>``).
    The shared secret, if it came in the query, is dropped here."""
    if not _EVENT_NAME.match(event_name or ""):
        raise BadDelivery("the event name in the path must be lower_snake_case, e.g. project_status_changed")
    values = read_query(raw_query)
    values.pop(SECRET_PARAMETER, None)
    name = canonical_event(event_name)
    spec = KNOWN_EVENTS.get(name) or PARTNER_EVENTS.get(name)
    if spec is None:  # stored and ignored: Aurora may add events
        for key, value in values.items():
            _check_value(key, value)
        return InboundEvent(name, {}, event_name, known=False, tenant_id=values.get("tenant_id") or None,
                            extra=values)
    if path_id is not None:
        if values.get(spec.required, path_id) != path_id:
            raise BadDelivery(f"{spec.required} in the path and in the query differ")
        values[spec.required] = path_id
    if not values.get(spec.required):
        raise BadDelivery(f"{name} needs the query parameter {spec.required!r} "
                          f"(expected: {', '.join(spec.parameters)})")
    params = {key: values.pop(key) for key in spec.parameters if key in values}
    for key, value in params.items():
        _check_value(key, value)
    for key, value in values.items():
        _check_value(key, value)
    return InboundEvent(name, params, event_name, known=True,
                        tenant_id=params.get("tenant_id") or values.pop("tenant_id", None) or None,
                        extra=values)
