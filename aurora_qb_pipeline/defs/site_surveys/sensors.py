"""The site-survey sensors, built from the settings:

* ``site_survey_request_sensor`` reads the ``site_survey_requested`` webhooks the receiver stored
  in the inbox (its own position there, as a second reader beside ``aurora_webhook_sensor``) and
  launches one ``site_survey_intake`` run for the requests of the tick. Requests of another
  tenant than the configured one are counted and skipped. Many tenants: a tenant's sensor reads
  only its tenant's events of the shared inbox, under a consumer name of its own.
* ``site_survey_completion_sensor`` asks Quickbase for surveys whose *Survey Status* is
  "Completed", modified on or after its cursor (Date Modified), and launches one
  ``site_survey_upload`` run for them. The cursor keeps the newest Date Modified seen and the
  records seen at that moment, so none is sent twice for the same change and none is missed when
  several share a millisecond. A survey changes status when the run is done ("Sent to Aurora" or
  "Needs Fixes"), so a later tick never finds it again until a surveyor sets "Completed" anew.

A survey whose run failed on a transient error is not lost past either cursor: each sensor
follows its runs by their status and launches the failed surveys again with a backoff
(``retry.py``; the retry set and the runs awaited live in the cursor).

Both stand down (a skip that says which variables are missing) while site surveys are not
configured, and, many tenants, while the tenant would share its survey tables (the Quickbase app
they are in) with another tenant: a skip naming the tenants and ``quickbase_app_id``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

import dagster as dg

from ..cursors import JsonCursor
from ...settings import Settings
from ...site_surveys.tables import TablesNotReady
from ...site_surveys.upload import completed_since
from ...tenant_apps import check_not_shared
from ..aurora.sensors import sensor_status
from ..partitions import TRIGGER_TAG
from ..webhooks.resources import WebhookInboxResource
from .jobs import site_survey_intake, site_survey_upload
from .resources import SiteSurveyResource
from .retry import BATCH_TAG, MAX_BACKOFF_S, RetryBook, follow_up

REQUEST_SENSOR, COMPLETION_SENSOR = "site_survey_request_sensor", "site_survey_completion_sensor"
EVENT = "site_survey_requested"
MAX_EVENTS_PER_TICK = 500


def _shared_app(settings: Settings) -> Optional[str]:
    """Why this tenant's location must not handle surveys: its survey tables' app is another's too."""
    try:
        check_not_shared(settings.tenants(), settings.tenant, "the Quickbase app of their site-survey tables",
                         lambda t: t.quickbase_app_id or settings.quickbase_app_id, "quickbase_app_id")
    except ValueError as exc:
        return str(exc)
    return None


def _not_configured(site_surveys: SiteSurveyResource, shared: Optional[str] = None) -> Optional[dg.SkipReason]:
    missing = site_surveys.missing()
    if missing:
        return dg.SkipReason(f"site surveys are not configured (set {', '.join(missing)})")
    return dg.SkipReason(f"site surveys stand down: {shared}") if shared else None


def build_request_sensor(settings: Settings) -> dg.SensorDefinition:
    shared = _shared_app(settings)
    consumer = f"{REQUEST_SENSOR}__{settings.tenant}" if settings.tenant else REQUEST_SENSOR

    @dg.sensor(name=REQUEST_SENSOR, job=site_survey_intake, minimum_interval_seconds=settings.site_survey_interval_s,
               default_status=sensor_status(settings),
               description="Reads site_survey_requested webhooks from the inbox and launches one site_survey_intake "
               "run for the new requests (a Quickbase survey record each).")
    def site_survey_request_sensor(context: dg.SensorEvaluationContext, site_surveys: SiteSurveyResource,
                                   webhook_inbox: WebhookInboxResource):
        skip = _not_configured(site_surveys, shared)
        if skip is not None:
            return skip
        cursor = RequestCursor.parse(context.cursor)
        now = time.time()
        book = cursor.book()
        follow_up(book, context.instance, now, *_backoff(settings), context.log)
        inbox = webhook_inbox.inbox
        rows = inbox.read(cursor.after, MAX_EVENTS_PER_TICK,
                          tenant_id=site_surveys.tenant_id if settings.tenant else None)
        last = rows[-1].id if rows else cursor.after
        wanted: dict[str, tuple[int, Any]] = {}
        other_tenant = 0
        for row in rows:
            if row.event != EVENT or not row.known:
                continue
            if row.params.get("tenant_id") not in (None, "", site_surveys.tenant_id):
                other_tenant += 1
                continue
            wanted.setdefault(row.params["site_survey_request_id"], (0, row.id))
        inbox.mark_read(consumer, last)
        for key in wanted:  # delivered again: taken in now, whatever its retry was waiting for
            book.retry.pop(key, None)
        retried = {k: v for k, v in book.due(now).items() if k not in wanted}
        note = f"; {other_tenant} request(s) of another tenant skipped" if other_tenant else ""
        items = {**wanted, **retried}
        if not items:
            context.update_cursor(RequestCursor(after=last, batches=book.batches, retry=book.retry).dump())
            return dg.SkipReason(f"no new site-survey request in {len(rows)} inbox row(s){note}{_waiting(book)}")
        context.log.info(f"{len(wanted)} site-survey request(s) to take in, {len(retried)} again{note}")
        batch = book.launch(items, [cursor.after, last], now)
        config = {"ops": {"take_in_site_surveys": {"config": {
            "request_ids": list(items), "inbox_ids": [ref for _, ref in items.values() if ref is not None]}}}}
        run = dg.RunRequest(run_key=f"site-survey-intake:{batch}", run_config=config,
                            tags={TRIGGER_TAG: "site_survey_webhooks", BATCH_TAG: batch})
        cursor = RequestCursor(after=last, batches=book.batches, retry=book.retry)
        return dg.SensorResult(run_requests=[run], cursor=cursor.dump())

    return site_survey_request_sensor


def _backoff(settings: Settings) -> tuple[float, float]:
    """First retry delay (the sensor interval) and the longest, both scaled like the sandbox's time."""
    return settings.site_survey_interval_s * settings.time_scale, MAX_BACKOFF_S * settings.time_scale


def _waiting(book: RetryBook) -> str:
    count = book.waiting()
    return f"; {count} survey(s) in runs awaited or waiting for a retry" if count else ""


@dataclass
class _Retries:
    batches: dict[str, dict] = field(default_factory=dict)  # runs launched, awaiting their verdict
    retry: dict[str, list] = field(default_factory=dict)  # surveys to send again: [attempts, due, ref]

    def book(self) -> RetryBook:
        return RetryBook(self.batches, self.retry)


@dataclass
class RequestCursor(JsonCursor, _Retries):
    after: int = 0  # the inbox position read up to

    @classmethod
    def parse(cls, raw: Optional[str]) -> "RequestCursor":
        if raw and raw.strip().isdigit():  # written before the retries: the inbox position alone
            return cls(after=int(raw))
        return super().parse(raw)


@dataclass
class CompletionCursor(JsonCursor, _Retries):
    after: Optional[str] = None  # newest Date Modified seen
    seen: list[int] = field(default_factory=list)  # records seen with exactly that Date Modified



def build_completion_sensor(settings: Settings) -> dg.SensorDefinition:
    shared = _shared_app(settings)

    @dg.sensor(name=COMPLETION_SENSOR, job=site_survey_upload, minimum_interval_seconds=settings.site_survey_interval_s,
               default_status=sensor_status(settings),
               description="Polls Quickbase for site surveys marked Completed since its cursor and launches one "
               "site_survey_upload run for them.")
    def site_survey_completion_sensor(context: dg.SensorEvaluationContext, site_surveys: SiteSurveyResource):
        skip = _not_configured(site_surveys, shared)
        if skip is not None:
            return skip
        cursor = CompletionCursor.parse(context.cursor)
        now = time.time()
        book = cursor.book()
        follow_up(book, context.instance, now, *_backoff(settings), context.log)
        try:
            found = completed_since(site_surveys.quickbase, site_surveys.tables(), cursor.after)
        except TablesNotReady as exc:
            return dg.SkipReason(str(exc))
        new = [(rid, dm) for rid, dm in found if not (dm == cursor.after and rid in cursor.seen)]
        if found:
            newest = found[-1][1]
            seen = cursor.seen if newest == cursor.after else []
            cursor.after, cursor.seen = newest, sorted(set(seen) | {rid for rid, dm in found if dm == newest})
        items: dict[str, tuple[int, Any]] = {str(rid): (0, None) for rid, _ in new}
        for key in items:  # marked Completed again: sent now
            book.retry.pop(key, None)
        items.update({k: v for k, v in book.due(now).items() if k not in items})
        if not items:
            context.update_cursor(cursor.dump())
            return dg.SkipReason(f"no survey newly marked Completed in Quickbase{_waiting(book)}")
        batch = book.launch(items, new, now)
        config = {"ops": {"upload_site_surveys": {"config": {"record_ids": [int(key) for key in items]}}}}
        run = dg.RunRequest(run_key=f"site-survey-upload:{batch}", run_config=config,
                            tags={TRIGGER_TAG: "site_survey_completed", BATCH_TAG: batch})
        return dg.SensorResult(run_requests=[run], cursor=cursor.dump())

    return site_survey_completion_sensor


def build_site_survey_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    return [build_request_sensor(settings), build_completion_sensor(settings)]
