"""Webhook subscriptions per tenant and their delivery, as Aurora does it.

:meth:`WebhookHub.publish` is called by the state while it holds its own lock; it only records
the event and queues deliveries. Sending happens elsewhere: a worker pool makes the HTTP GETs and
the state's :class:`~..scheduler.Scheduler` runs retries, so no request handler ever waits for a
subscriber.

Aurora's documented behaviour: GET to the filled ``url_template`` with the subscription's custom
headers; an answer other than 2xx (redirects are not followed) or no answer within 10 s is a
failure; failures are retried after about 30 s, 5 min, 30 min, 3 h and 20 h (scaled by
``time_scale``); a subscription failing consistently (about 48 h and 100 attempts) is disabled.
No ordering guarantee; duplicates are possible. The switches in :class:`WebhookConfig` (duplicate,
drop, reorder) exercise those last two promises on purpose.

Subscriptions belong to an *owner*: a tenant (its id) or a partner application
(``"partner:<application id>"``). A tenant event goes to the tenant's subscriptions and to those of
every partner application the tenant enabled (``partner_owners``, set by the state), with
``<TENANT_ID>`` filled for the latter; :meth:`WebhookHub.publish_partner` sends a partner event
(``site_survey_requested``) to one application's subscriptions only.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Callable, Iterable, Optional

import requests

from ..errors import lookup
from ..scheduler import Scheduler
from ..settings import WebhookConfig, update_config
from ..synthetic import format_timestamp
from . import subscriptions
from .events import event_values, fill_url
from .records import ABANDONED, DELIVERED, FAILED, PENDING, Attempt, Delivery, WebhookEvent
from .subscriptions import Subscription

LOG_LIMIT = 50_000  # events and deliveries kept in the log (oldest forgotten first)
USER_AGENT = "Aurora-Webhooks (aurora_qb_pipeline sandbox)"


class WebhookHub:
    """Subscriptions of every tenant, the events published, and the deliveries with their attempts."""

    def __init__(self, clock: Callable[[], datetime], time_scale: Callable[[], float], scheduler: Scheduler,
                 config: Optional[WebhookConfig] = None, workers: int = 8) -> None:
        self.config = config or WebhookConfig()
        self._clock, self._time_scale, self._scheduler, self._workers = clock, time_scale, scheduler, workers
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._subscriptions: dict[str, dict[str, Subscription]] = {}
        self._events: deque[WebhookEvent] = deque(maxlen=LOG_LIMIT)
        self._deliveries: deque[Delivery] = deque(maxlen=LOG_LIMIT)
        self._held: list[Delivery] = []
        self._held_timer = None
        self._rng = random.Random(self.config.seed)
        self._executor: Optional[ThreadPoolExecutor] = None
        self._local = threading.local()
        self._closed = False
        self.partner_owners: Callable[[str], list[str]] = lambda tenant_id: []
        """Owner keys of the partner applications a tenant enabled (called outside the hub's lock)."""

    def _now(self) -> str:
        return format_timestamp(self._clock())

    def configure(self, **values: Any) -> dict[str, Any]:
        """Change delivery settings (see :class:`WebhookConfig`); returns them all."""
        with self._lock:
            update_config(self.config, values)
            if "seed" in values:
                self._rng = random.Random(self.config.seed)
            return self.config.as_dict()

    # --- subscriptions (the webhooks API) -------------------------------------------------
    def _subscription(self, tenant_id: str, webhook_id: str) -> Subscription:
        return lookup(self._subscriptions.get(tenant_id, {}), webhook_id, "Webhook")

    def create(self, tenant_id: str, body: dict, partner: bool = False) -> dict:
        """A new subscription of ``tenant_id`` (an owner key: a tenant id or ``partner:<app id>``)."""
        checked = subscriptions.validate(body, partner=partner)
        with self._lock:
            sub = Subscription(id=str(uuid.uuid4()), tenant_id=tenant_id, created_at=self._now(), partner=partner,
                               **checked)
            self._subscriptions.setdefault(tenant_id, {})[sub.id] = sub
            return sub.to_api()

    def subscribe(self, tenant_id: str, event: str, url_template: str, *, headers: Optional[dict] = None,
                  filters: Optional[dict] = None, description: Optional[str] = None, enabled: bool = True) -> dict:
        """Python-side :meth:`create` with keyword arguments (same checks, same answer)."""
        body: dict[str, Any] = {"event": event, "url_template": url_template, "enabled": enabled}
        body.update({k: v for k, v in (("headers", headers), ("filters", filters), ("description", description))
                     if v is not None})
        return self.create(tenant_id, body)

    def list(self, tenant_id: str) -> list[dict]:
        with self._lock:
            return [sub.to_api() for sub in self._subscriptions.get(tenant_id, {}).values()]

    def get(self, tenant_id: str, webhook_id: str) -> dict:
        with self._lock:
            return self._subscription(tenant_id, webhook_id).to_api()

    def update(self, tenant_id: str, webhook_id: str, body: dict) -> dict:
        """Change the given fields (PUT and PATCH alike); re-enabling clears the failure streak."""
        with self._lock:
            sub = self._subscription(tenant_id, webhook_id)
            checked = subscriptions.validate(body, current=sub, partner=sub.partner)
            for key, value in checked.items():
                setattr(sub, key, value)
            if checked.get("enabled") is True:
                sub.failure_streak, sub.streak_started, sub.disabled_reason = 0, None, None
            if checked.get("enabled") is False:
                self._abandon(sub, "subscription disabled")
            return sub.to_api()

    def delete(self, tenant_id: str, webhook_id: str) -> None:
        with self._lock:
            sub = self._subscription(tenant_id, webhook_id)
            del self._subscriptions[tenant_id][webhook_id]
            self._abandon(sub, "subscription deleted")

    def _abandon(self, sub: Subscription, note: str) -> None:
        for delivery in self._deliveries:
            if delivery.subscription_id == sub.id and delivery.status == PENDING and not delivery.in_flight:
                delivery.cancel(ABANDONED, note)
        self._changed.notify_all()

    # --- events -------------------------------------------------------------------------------
    def _roll(self, next_key: str, rate: float) -> bool:
        if getattr(self.config, next_key) > 0:
            setattr(self.config, next_key, getattr(self.config, next_key) - 1)
            return True
        return rate > 0 and self._rng.random() < rate

    def publish(self, tenant_id: str, event: str, **values: Any) -> dict:
        """Record an event of a tenant and queue a delivery to every enabled subscription that
        matches it: the tenant's own and those of the partner applications it enabled.

        ``values`` are the event's placeholders (see :func:`.events.event_values`)."""
        filled = event_values(event, **values)
        owners = [tenant_id, *self.partner_owners(tenant_id)]
        return self._publish(tenant_id, event, filled, owners)

    def publish_partner(self, application_id: str, tenant_id: str, event: str, **values: Any) -> dict:
        """Record a partner event of a tenant and queue it for one application's subscriptions."""
        filled = event_values(event, **values)
        return self._publish(tenant_id, event, filled, [f"partner:{application_id}"])

    def _publish(self, tenant_id: str, event: str, filled: dict[str, str], owners: list[str]) -> dict:
        with self._lock:
            record = WebhookEvent(str(uuid.uuid4()), tenant_id, event, filled, self._now())
            record.dropped = self._roll("drop_next", self.config.drop_rate)
            record.duplicated = not record.dropped and self._roll("duplicate_next", self.config.duplicate_rate)
            self._events.append(record)
            if not record.dropped and not self._closed:
                for owner in owners:
                    for sub in list(self._subscriptions.get(owner, {}).values()):
                        values = {**filled, "TENANT_ID": tenant_id} if sub.partner else filled
                        if sub.matches(event, values):
                            self._queue(record, sub, values)
            self._changed.notify_all()
            return record.to_dict()

    def _queue(self, record: WebhookEvent, sub: Subscription, values: dict[str, str]) -> None:
        for copy in range(2 if record.duplicated else 1):
            delivery = Delivery(str(uuid.uuid4()), record.id, record.event, record.tenant_id, sub.id,
                                fill_url(sub.url_template, values), dict(sub.headers), copy > 0, owner=sub.tenant_id)
            self._deliveries.append(delivery)
            record.deliveries += 1
            self._start(delivery)

    def _start(self, delivery: Delivery) -> None:
        window = self.config.reorder_window_real_s
        if window <= 0:
            self._submit(self._attempt, delivery)
            return
        self._held.append(delivery)
        if self._held_timer is None:
            self._held_timer = self._scheduler.call_later(window, self._release_held)

    def _release_held(self) -> None:
        with self._lock:
            batch, self._held, self._held_timer = self._held[::-1], [], None
        if batch:
            self._submit(self._attempt_in_order, batch)

    def _attempt_in_order(self, batch: Iterable[Delivery]) -> None:
        for delivery in batch:  # one after another, so the reversed order is the order of arrival
            self._attempt(delivery)

    def _submit(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            if self._closed:
                return
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="aurora-webhook")
            self._executor.submit(fn, *args)

    # --- delivery -----------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
        return session

    def _send(self, delivery: Delivery, timeout: float) -> tuple[Optional[int], Optional[str]]:
        try:
            response = self._session().get(delivery.url, headers=delivery.headers, timeout=timeout,
                                           allow_redirects=False)
            response.close()
            return response.status_code, None
        except requests.Timeout:
            return None, f"no answer within {timeout:.3g} s"
        except requests.ConnectionError:
            return None, "connection failed"
        except requests.RequestException as exc:  # the message may hold the URL: keep only the kind
            return None, type(exc).__name__

    def _attempt(self, delivery: Delivery) -> None:
        with self._lock:
            delivery.timer, delivery.next_attempt_at = None, None
            if delivery.status != PENDING or delivery.in_flight:
                return
            sub = self._subscriptions.get(delivery.owner, {}).get(delivery.subscription_id)
            if sub is None or not sub.enabled:
                delivery.cancel(ABANDONED, "subscription deleted" if sub is None else "subscription disabled")
                self._changed.notify_all()
                return
            delivery.in_flight = True
            timeout = max(self.config.timeout_s * self._time_scale(), self.config.min_timeout_real_s)
            at, ts = self._now(), time.time()
        started = time.perf_counter()
        status_code, error = self._send(delivery, timeout)
        duration_ms = (time.perf_counter() - started) * 1000
        with self._lock:
            delivery.in_flight = False
            delivery.attempts.append(Attempt(at, ts, status_code, error, duration_ms))
            if status_code is not None and 200 <= status_code < 300:
                delivery.status = DELIVERED
                sub.failure_streak, sub.streak_started = 0, None
            else:
                self._failed(delivery, sub)
            self._changed.notify_all()

    def _failed(self, delivery: Delivery, sub: Subscription) -> None:
        cfg, scale, now = self.config, self._time_scale(), time.monotonic()
        sub.failure_streak += 1
        sub.streak_started = sub.streak_started if sub.streak_started is not None else now
        if (sub.enabled and sub.failure_streak >= cfg.disable_after_attempts
                and now - sub.streak_started >= cfg.disable_after_s * scale):
            sub.enabled = False
            sub.disabled_reason = f"disabled after {sub.failure_streak} failed attempts in a row"
            self._abandon(sub, "subscription disabled: " + sub.disabled_reason)
        if not sub.enabled:
            delivery.cancel(ABANDONED, "subscription disabled: " + (sub.disabled_reason or "by its owner"))
            return
        retries = len(delivery.attempts) - 1
        if retries >= len(cfg.retry_schedule_s):
            delivery.cancel(FAILED, f"gave up after {len(delivery.attempts)} attempts")
            return
        delay = cfg.retry_schedule_s[retries] * scale
        delivery.next_attempt_at = now + delay
        delivery.timer = self._scheduler.call_later(delay, self._submit, self._attempt, delivery)

    def flush(self) -> int:
        """Send every waiting delivery now (retries not yet due, held reorder batch); returns how many."""
        with self._lock:
            waiting = [d for d in self._deliveries if d.status == PENDING and d.timer is not None]
            for delivery in waiting:
                delivery.timer.cancel()
                delivery.timer, delivery.next_attempt_at = None, None
                self._submit(self._attempt, delivery)
            held = len(self._held)
            if self._held_timer is not None:
                self._held_timer.cancel()
                self._held_timer = None
        self._release_held()
        return len(waiting) + held

    # --- the log ------------------------------------------------------------------------------
    def deliveries(self, event: Optional[str] = None, status: Optional[str] = None,
                   subscription_id: Optional[str] = None, tenant_id: Optional[str] = None) -> list[dict]:
        """The delivery log, oldest first, URLs masked; filters combine."""
        with self._lock:
            return [d.to_dict() for d in self._deliveries
                    if (event is None or d.event == event) and (status is None or d.status == status)
                    and (subscription_id is None or d.subscription_id == subscription_id)
                    and (tenant_id is None or d.tenant_id == tenant_id)]

    def events(self, event: Optional[str] = None, tenant_id: Optional[str] = None) -> list[dict]:
        """Every event published, oldest first, with ``dropped`` / ``duplicated`` flags."""
        with self._lock:
            return [e.to_dict() for e in self._events
                    if (event is None or e.event == event) and (tenant_id is None or e.tenant_id == tenant_id)]

    def clear_log(self) -> None:
        """Forget finished deliveries and all events (pending deliveries go on)."""
        with self._lock:
            self._events.clear()
            pending = [d for d in self._deliveries if d.status == PENDING]
            self._deliveries.clear()
            self._deliveries.extend(pending)

    def wait_for(self, predicate: Callable[[list[dict]], bool], timeout: float = 10.0) -> list[dict]:
        """Block until ``predicate(deliveries())`` holds; returns that log or raises TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                log = self.deliveries()
                if predicate(log):
                    return log
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"webhook deliveries did not reach the expected state: {log}")
                self._changed.wait(min(remaining, 0.1))

    def wait_settled(self, timeout: float = 10.0) -> list[dict]:
        """Block until no delivery is pending (all delivered, failed or abandoned)."""
        return self.wait_for(lambda log: all(d["status"] != PENDING for d in log), timeout)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for delivery in self._deliveries:
                if delivery.timer is not None:
                    delivery.timer.cancel()
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

