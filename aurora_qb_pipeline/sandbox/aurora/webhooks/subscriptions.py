"""Webhook subscriptions: the object Aurora's webhooks API stores, and the checks on its body.

Documented by Aurora: ``description``, ``event``, ``url_template``, ``enabled`` (create body) and
``id`` / ``created_at`` on the stored object. Aurora also lets a subscription carry custom
headers (e.g. a shared secret) and attribute filters, without publishing the field names: the
emulator calls them ``headers`` (``{"Name": "value"}``) and ``filters``
(``{"STATUS": ["signed"]}``, keys are the event's placeholders). Header values are secrets and
are never answered back: reads show ``"********"`` in their place.

Strictness where Aurora publishes nothing (the emulator's choice, so client bugs show): unknown
keys, JSON ``null`` for a string, a relative or non-http(s) URL, and a placeholder the event does
not provide are all answered 422.

Partner applications subscribe with the same fields under ``partner_application_webhook``
(Aurora's CRM-app guide); their URL templates may also use ``<TENANT_ID>``, and only they may
subscribe to partner events (``site_survey_requested``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import urlsplit

from ..errors import AuroraError
from .events import PARTNER_EVENTS, canonical_event, placeholders_in, placeholders_of

MASK = "********"
MAX_URL_LENGTH = 2048
MAX_TEXT_LENGTH = 255
MAX_HEADERS = 20
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header name
_FIELDS = {"description", "event", "url_template", "enabled", "headers", "filters"}


@dataclass
class Subscription:
    id: str
    tenant_id: str
    event: str  # as the subscriber spelled it (legacy names are kept)
    url_template: str
    created_at: str
    description: Optional[str] = None
    enabled: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    filters: dict[str, list[str]] = field(default_factory=dict)
    partner: bool = False  # a partner application's subscription (tenant_id is then "partner:<app id>")
    # delivery bookkeeping (not part of the API object)
    failure_streak: int = 0
    streak_started: Optional[float] = None
    disabled_reason: Optional[str] = None

    @property
    def canonical_event(self) -> str:
        return canonical_event(self.event)

    def matches(self, event: str, values: dict[str, str]) -> bool:
        return (self.enabled and self.canonical_event == event
                and all(values.get(name, "") in allowed for name, allowed in self.filters.items()))

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "description": self.description,
            "event": self.event,
            "url_template": self.url_template,
            "enabled": self.enabled,
            "headers": {name: MASK for name in self.headers},
            "filters": {name: list(values) for name, values in self.filters.items()},
            "created_at": self.created_at,
        }


def _text(body: dict, key: str, problems: list[str], limit: int = MAX_TEXT_LENGTH) -> Optional[str]:
    value = body[key]
    if not isinstance(value, str):
        problems.append(f"webhook.{key} must be a string.")
        return None
    if len(value) > limit:
        problems.append(f"webhook.{key} is too long (maximum is {limit} characters).")
    return value


def _headers(value: Any, problems: list[str]) -> dict[str, str]:
    if not isinstance(value, dict):
        problems.append("webhook.headers must be an object of header names to string values.")
        return {}
    if len(value) > MAX_HEADERS:
        problems.append(f"webhook.headers: at most {MAX_HEADERS} headers.")
    for name, text in value.items():
        if not _TOKEN.match(name):
            problems.append(f"webhook.headers: {name!r} is not a valid header name.")
        if not isinstance(text, str) or "\r" in text or "\n" in text or len(text) > 1024:
            problems.append(f"webhook.headers.{name} must be a single-line string (at most 1024 characters).")
    return dict(value)


def _filters(value: Any, event: Optional[str], problems: list[str], partner: bool) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        problems.append('webhook.filters must be an object such as {"STATUS": ["signed"]}.')
        return {}
    filters = {}
    for name, allowed in value.items():
        key = name.strip("<>") if isinstance(name, str) else name
        if event is not None and key not in placeholders_of(event, partner):
            problems.append(f"webhook.filters: {name!r} is not an attribute of {event} "
                            f"({', '.join(placeholders_of(event, partner))}).")
        if not isinstance(allowed, list) or not allowed or not all(isinstance(v, str) for v in allowed):
            problems.append(f"webhook.filters.{name} must be a non-empty list of strings.")
            continue
        filters[key] = list(allowed)
    return filters


def _check_url(template: str, event: Optional[str], problems: list[str], partner: bool) -> None:
    parts = urlsplit(re.sub(r"<[A-Z][A-Z0-9_]*>", "x", template))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append("webhook.url_template must be an absolute http(s) URL.")
    if event is not None:
        allowed = placeholders_of(event, partner)
        unknown = [p for p in placeholders_in(template) if p not in allowed]
        if unknown:
            problems.append(f"webhook.url_template uses {', '.join(f'<{p}>' for p in unknown)}, which "
                            f"{event} does not provide (it provides "
                            f"{', '.join(f'<{p}>' for p in allowed)}).")


def validate(body: dict, current: Optional[Subscription] = None, partner: bool = False) -> dict[str, Any]:
    """The checked fields of a create (``current`` None) or update body; 422 lists every problem.

    ``partner``: a partner application's subscription (messages then name its wrapper)."""
    problems: list[str] = []
    checked = _validate(body, current, partner, problems)
    if problems:
        if partner:
            problems = [p.replace("webhook", "partner_application_webhook", 1) for p in problems]
        raise AuroraError(422, problems)
    return checked


def _validate(body: dict, current: Optional[Subscription], partner: bool, problems: list[str]) -> dict[str, Any]:
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        problems.append(f"webhook: unknown field(s) {', '.join(unknown)}.")
    if current is None:
        problems += [f"webhook.{key} is required." for key in ("event", "url_template") if key not in body]
    checked: dict[str, Any] = {}
    event = current.canonical_event if current is not None else None  # None: unknown or invalid
    if "event" in body:
        event = None
        name = _text(body, "event", problems)
        if name is not None:
            try:
                event = canonical_event(name)
                checked["event"] = name
            except KeyError:
                problems.append(f"webhook.event: unknown event {name!r}.")
            if event in PARTNER_EVENTS and not partner:
                problems.append(f"webhook.event: {name} is a partner application event; subscribe with "
                                "POST /partner_applications/{application_id}/webhooks.")
                event = None
    if "url_template" in body:
        template = _text(body, "url_template", problems, MAX_URL_LENGTH)
        if template is not None:
            _check_url(template, event, problems, partner)
            checked["url_template"] = template
    elif current is not None and "event" in checked and event is not None:
        _check_url(current.url_template, event, problems, partner)
    if "description" in body:
        checked["description"] = _text(body, "description", problems)
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            problems.append("webhook.enabled must be true or false.")
        checked["enabled"] = body["enabled"]
    if "headers" in body:
        checked["headers"] = _headers(body["headers"], problems)
    if "filters" in body:
        checked["filters"] = _filters(body["filters"], event, problems, partner)
    elif current is not None and event is not None:
        _filters(current.filters, event, problems, partner)
    return checked
