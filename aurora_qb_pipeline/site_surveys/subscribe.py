"""The partner webhook subscription of the site-survey app, as code.

Aurora's guide, step 1: subscribe to the ``site_survey_requested`` partner event (``POST
/partner_applications/{application_id}/webhooks``, with the application key), pointing at the app.
It is delivered for every tenant that enabled the app, with ``<SITE_SURVEY_REQUEST_ID>``,
``<TENANT_ID>`` and ``<SESSION_TOKEN>``. Same rules as the tenant subscriptions
(:mod:`..webhooks.subscriptions`): ours are recognised by their description, the shared secret
travels in a header, running it twice changes nothing.
"""

from __future__ import annotations

from ..clients.partner import PartnerAuroraClient
from ..webhooks.events import PARTNER_EVENTS, SECRET_HEADER
from ..webhooks.subscriptions import MARKER, Change, WantedSubscription, apply_subscriptions, fingerprint

EVENT = "site_survey_requested"


def wanted_survey_subscription(public_url: str, secret: str) -> WantedSubscription:
    template = PARTNER_EVENTS[EVENT].template(public_url)
    description = f"{MARKER}: {EVENT} (secret {fingerprint(secret)}, in the header)"
    return WantedSubscription(EVENT, template, description, {SECRET_HEADER: secret})


def subscribe_site_surveys(aurora: PartnerAuroraClient, public_url: str, secret: str,
                           dry_run: bool = False) -> list[Change]:
    """Create or update the app's ``site_survey_requested`` subscription; others are left alone."""
    return apply_subscriptions(aurora, [wanted_survey_subscription(public_url, secret)], dry_run=dry_run,
                               remove_others=False)
