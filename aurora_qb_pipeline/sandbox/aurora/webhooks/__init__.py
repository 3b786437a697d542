"""Aurora webhooks in the emulator: subscriptions API, events, delivery with retries, delivery log."""

from .events import EVENT_PLACEHOLDERS, FIRED_EVENTS, LEGACY_EVENT_NAMES, PARTNER_EVENTS, canonical_event, fill_url
from .hub import WebhookHub
from .records import ABANDONED, DELIVERED, FAILED, PENDING, mask_url

__all__ = ["ABANDONED", "DELIVERED", "EVENT_PLACEHOLDERS", "FAILED", "FIRED_EVENTS", "LEGACY_EVENT_NAMES",
           "PARTNER_EVENTS", "PENDING",
           "WebhookHub", "canonical_event", "fill_url", "mask_url"]
