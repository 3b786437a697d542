"""The opportunity buttons: "Create in Aurora" and "Sync from Aurora now".

Each is a Quickbase formula-URL field pointing at the webhook receiver::

    GET {receiver}/quickbase/opportunities/{record id}/{action}?sig={signature}

Every Quickbase user who can read an opportunity can read its button URLs, so they must not carry
the receiver's shared secret. Instead each URL carries a signature valid for ONE record and ONE
action: ``HMAC-SHA256(secret, "aurora-qb-button:{table id}:{record id}:{action}")`` in hex. A
Quickbase formula cannot compute an HMAC, so the pipeline writes the signatures into two text
fields of the record (``Aurora Create Signature``, ``Aurora Sync Signature``) and the formula
concatenates them into the URL. A URL copied from one record works for that record only; the
receiver compares signatures in constant time (``hmac.compare_digest``) and answers 401 otherwise.

The endpoint only queues the click (the ``opportunity_requests`` table beside the inbox) and
answers a small HTML page saying what happened; the opportunities sensor does the work.

Many tenants: a tenant's buttons live under ``/tenants/{tenant}`` (``GET {receiver}/tenants/acme/
quickbase/opportunities/{record id}/{action}?sig=...``: the tenant's receiver URL is the receiver's
plus ``/tenants/acme``, so ``aurora-qb quickbase init --receiver-url`` writes the same formula) and
the signed message names the tenant too: ``"aurora-qb-button:{tenant}:{table id}:{record id}:{action}"``.
A click is queued in that tenant's store only, and a URL signed for one tenant is refused (401) at
another's path, even when both use the same opportunities table.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
from typing import Optional, Sequence

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from .store import OpportunityStore

log = logging.getLogger(__name__)

ACTIONS = {"create": "Create in Aurora", "sync": "Sync from Aurora now"}
BUTTON_PATH = "/quickbase/opportunities/{record_id}/{action}"
TENANT_PREFIX = "/tenants/{tenant}"


def tenant_prefix(tenant: Optional[str]) -> str:
    """Where a tenant's buttons live on the receiver ('' without a tenant)."""
    return TENANT_PREFIX.format(tenant=tenant) if tenant else ""


def sign(secret: str, table_id: str, record_id: str, action: str, tenant: Optional[str] = None) -> str:
    scope = f"{tenant}:{table_id}" if tenant else table_id
    message = f"aurora-qb-button:{scope}:{record_id}:{action}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def button_url(public_url: str, record_id: str, action: str, signature: str, tenant: Optional[str] = None) -> str:
    base = public_url.rstrip("/") + tenant_prefix(tenant)
    return f"{base}/quickbase/opportunities/{record_id}/{action}?sig={signature}"


def button_formula(public_url: str, action: str, signature_label: str, tenant: Optional[str] = None) -> str:
    """The Quickbase formula of a button field (formula-URL): the URL of this record's button."""
    base = f"{public_url.rstrip('/')}{tenant_prefix(tenant)}/quickbase/opportunities/"
    return f'"{base}" & ToText([Record ID#]) & "/{action}?sig=" & [{signature_label}]'


def _page(status: int, title: str, message: str) -> HTMLResponse:
    body = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>")
    return HTMLResponse(body, status_code=status)


def button_routes(store: OpportunityStore, table_id: str, secrets: Sequence[str]) -> list[Route]:
    """The receiver's button endpoint (``create_receiver_app(..., routes=button_routes(...))``) of
    ``store``'s tenant (``store.tenant``; None: the single-tenant path)."""
    keys = [s for s in secrets if s]
    tenant = store.tenant

    def endpoint(request: Request) -> Response:
        record_id, action = request.path_params["record_id"], request.path_params["action"]
        given = request.query_params.get("sig", "")
        if action not in ACTIONS or not record_id.isdigit():
            return _page(404, "Unknown button", "This button URL is not one the pipeline made.")
        ok = False
        for key in keys:  # no early exit
            expected = sign(key, table_id, record_id, action, tenant)
            ok |= hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())
        if not ok:
            return _page(401, "Not allowed", "This button URL is not valid for this record. "
                                             "Open the opportunity in Quickbase and use its own button.")
        try:
            queued = store.queue(record_id, action)
        except SQLAlchemyError as exc:
            log.error("button queue write failed (%s)", type(exc).__name__)
            return _page(503, "Try again", "The request could not be queued; please try again in a minute.")
        what = ("An Aurora project will be created for this opportunity"
                if action == "create" else "This opportunity's designs will be synced from Aurora")
        return _page(200, ACTIONS[action], f"Queued (request {queued}). {what} within a few minutes; "
                                           "reload the opportunity to see the result.")

    return [Route(tenant_prefix(tenant) + BUTTON_PATH, endpoint, methods=["GET"])]
