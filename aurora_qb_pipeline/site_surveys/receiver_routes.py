"""What the webhook receiver adds for site surveys: the signed image links Aurora downloads.

``GET /quickbase/files/{token}/{file name}``: no shared secret (Aurora's image download sends no
credential); the signed token is the authorization (:mod:`.file_links`). A bad or expired link
is 403 and no Quickbase call is made; a file Quickbase no longer has is 404. The Quickbase
download runs in Starlette's thread pool, so webhook deliveries are never held up by it.
"""

from __future__ import annotations

import logging
from typing import Callable, Optional

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..clients.errors import ApiError, NotFoundError
from ..clients.quickbase_app import QuickbaseAppClient
from .file_links import FILES_PATH, BadLink, FileLinks

log = logging.getLogger("aurora_qb_pipeline.site_surveys.files")


def file_routes(links: FileLinks, quickbase: Callable[[], QuickbaseAppClient],
                tenant_quickbase: Optional[Callable[[str], QuickbaseAppClient]] = None) -> list[Route]:
    """The route serving signed links; ``quickbase`` gives the client to download with,
    ``tenant_quickbase`` (many tenants) the client of the tenant a link names."""

    def serve(request: Request) -> Response:
        try:
            ref = links.verify(request.path_params["token"])
        except BadLink as exc:
            return JSONResponse({"error": f"forbidden: {exc}"}, status_code=403)
        try:
            client = tenant_quickbase(ref.tenant) if ref.tenant and tenant_quickbase else quickbase()
            content = client.download_file(ref.table_id, ref.record_id, ref.field_id, ref.version)
        except NotFoundError:
            return JSONResponse({"error": "the file is no longer in Quickbase"}, status_code=404)
        except ApiError as exc:
            log.warning("Quickbase file download failed: %s", type(exc).__name__)
            return JSONResponse({"error": "Quickbase is unavailable, retry later"}, status_code=503)
        return Response(content, media_type=ref.content_type, headers={"Cache-Control": "private, max-age=300"})

    return [Route(FILES_PATH + "/{token}/{name}", serve, methods=["GET"])]


def routes_from_environment(settings, webhook_secret: str) -> list[Route]:
    """The file routes when the receiver can serve them (a public URL and Quickbase's credentials
    in the environment), else none: the receiver then serves webhooks only."""
    import threading

    from ..settings import Credentials, environment

    if not settings.webhook_public_url or not settings.quickbase_app_id:
        return []
    try:
        credentials = Credentials.from_env()
    except KeyError:
        return []
    links = FileLinks(webhook_secret, settings.webhook_public_url, settings.site_survey_link_ttl_s)
    lock, made = threading.Lock(), {}
    tenants = settings.tenants()

    def client_of(tenant: Optional[str]) -> QuickbaseAppClient:
        """The download client of ``tenant`` (its own Quickbase token if the tenants file names one)."""
        try:
            config = tenants.get(tenant) if tenants is not None and tenant is not None else None
        except KeyError:  # a tenant since removed from the file: its links get the default client
            config = None
        token = credentials.quickbase_user_token
        if config is not None and config.quickbase_user_token_env:
            token = environment().get(config.quickbase_user_token_env) or token
        with lock:
            if tenant not in made:
                made[tenant] = QuickbaseAppClient(
                    base_url=settings.quickbase_base_url, realm_hostname=credentials.quickbase_realm_hostname,
                    user_token=token, app_id=(config.quickbase_app_id if config else None) or settings.quickbase_app_id,
                    options=settings.client_options())
            return made[tenant]

    return file_routes(links, lambda: client_of(None), client_of if tenants is not None else None)
