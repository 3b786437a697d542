"""The benchmark's event-path variant of the 1%-changed step: Aurora's webhooks -> the receiver
(a real uvicorn server on loopback) -> the inbox -> ``aurora_webhook_sensor`` -> sync runs.

Before the clock starts: the tenant is subscribed to the receiver (through the sandbox's Python
API, so setting up costs no counted request), its design-request list switched off (Aurora has
none), and 1% of the designs change. Measured: waiting until Aurora has delivered every event,
one sensor tick (resolution requests included) and its runs. Latency is taken per changed design
from the change to the Quickbase record's Date Modified; in production the sensor's interval
(``AURORA_QB_WEBHOOK_INTERVAL_S``, 30 s by default) comes on top, as the tick would wait for it.
"""

from __future__ import annotations

import secrets
import statistics
import time
from collections import Counter
from datetime import datetime
from typing import Any, Callable, Optional

import dagster as dg

from ..api_facts import QUICKBASE_DATE_MODIFIED_FIELD
from ..defs.webhooks.sensors import SENSOR_NAME
from ..runner import tick
from ..sandbox.launcher import Sandbox
from ..settings import Settings
from ..webhooks.inbox import Inbox
from ..webhooks.receiver import ReceiverThread, create_receiver_app
from ..webhooks.subscriptions import wanted_subscriptions

CHANGE_SEED_OFFSET = 2  # a different 1% of the designs than the polling step's


class WebhookVariant:
    """Owns the receiver and the webhook sensor's cursor for one benchmark mode."""

    def __init__(self, sandbox: Sandbox, settings: Settings, defs: dg.Definitions, instance: dg.DagsterInstance,
                 seed: int, fraction: float, runs_detail: Callable[[list], dict[str, Any]]):
        self.sandbox, self.settings, self.defs, self.instance = sandbox, settings, defs, instance
        self.seed, self.fraction, self.runs_detail = seed, fraction, runs_detail
        self.inbox: Optional[Inbox] = None
        self.receiver: Optional[ReceiverThread] = None
        self.cursor: Optional[str] = None
        self.changed: dict[str, Any] = {}
        self.changed_at = 0.0

    def _subscribe(self) -> None:
        secret = secrets.token_urlsafe(32)
        self.inbox = Inbox(self.settings.inbox_database_url)
        self.receiver = ReceiverThread(create_receiver_app(self.inbox, [secret])).start()
        aurora = self.sandbox.aurora
        tenant = aurora.primary.tenant_id
        for wanted in wanted_subscriptions(self.receiver.url, secret, ["performance_simulation_job_completed",
                                                                       "design_request_completed",
                                                                       "design_request_rejected"]):
            aurora.webhooks.create(tenant, wanted.body())
        aurora.set_tenant_options(design_request_list=False)

    def prepare(self) -> dict[str, Any]:
        """Before the clock: subscribe (first time), then designers change 1% of the designs."""
        if self.receiver is None:
            self._subscribe()
        self.changed_at = time.time()
        self.changed = self.sandbox.aurora.mutate(self.fraction, seed=self.seed + CHANGE_SEED_OFFSET)
        return {"changed_designs": len(self.changed["changed_design_ids"]),
                "changed_projects": len(self.changed["project_ids"])}

    def run(self) -> dict[str, Any]:
        """Wait for Aurora's deliveries, then one webhook-sensor tick and its runs."""
        deliveries = self.sandbox.aurora.webhooks.wait_settled(timeout=300)
        delivered_s = time.time() - self.changed_at
        outcome = tick(self.defs, self.instance, SENSOR_NAME, cursor=self.cursor)
        self.cursor = outcome.cursor
        latencies = record_latencies(self.sandbox, self.changed.get("changed_design_ids", []), self.changed_at)
        summary = self.inbox.summary() if self.inbox else {}
        return {
            **self.runs_detail(outcome.runs),
            "new_partitions": len(outcome.new_partitions),
            "webhook_deliveries": len(deliveries),
            "webhook_events_stored": summary.get("events"),
            "all_delivered_after_s": round(delivered_s, 3),
            **latency_figures(latencies),
            **needed_requests(self.sandbox, self.changed, resolution=True),
            "sensor_interval_s": self.settings.webhook_interval_s,
            **({"skip_reason": outcome.skip_reason} if outcome.skip_reason else {}),
        }

    def close(self) -> None:
        if self.receiver is not None:
            self.receiver.stop()
        if self.inbox is not None:
            self.inbox.close()


def record_latencies(sandbox: Sandbox, design_ids: list[str], changed_at: float) -> list[float]:
    """Seconds from the change (``changed_at``) to each changed design's Quickbase record update."""
    qb = sandbox.quickbase
    key = qb.field_by_label(qb.table_id, "Aurora Design ID").id
    records = {r[key]: r for r in qb.records(qb.table_id)}
    found = []
    for design_id in design_ids:
        modified = records.get(design_id, {}).get(QUICKBASE_DATE_MODIFIED_FIELD)
        if modified:
            moment = datetime.fromisoformat(str(modified).replace("Z", "+00:00")).timestamp()
            if moment >= changed_at:
                found.append(moment - changed_at)
    return found


def latency_figures(latencies: list[float]) -> dict[str, Any]:
    return {"latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
            "latency_max_s": round(max(latencies), 3) if latencies else None,
            "records_current": len(latencies)}


def needed_requests(sandbox: Sandbox, changed: dict[str, Any], resolution: bool) -> dict[str, Any]:
    """What the changed designs need from Aurora, the yardstick of the 5% goal: staging their
    projects (the unit of staging: the project, its design list, each design's summary and default
    proposal: 2 + 2 x designs) and, on the event path, what the webhooks leave open: one
    ``GET /design_requests/{id}`` per design_request_completed event (its payload names the request,
    not the project). A simulation event costs nothing here: staging taught the inbox each design's
    project."""
    designs = Counter(d["project_id"] for d in sandbox.aurora.primary.designs.values())
    projects = changed.get("project_ids", [])
    staging = sum(2 + 2 * designs[p] for p in projects)
    resolve = len(projects) if resolution else 0
    return {"aurora_needed": staging + resolve, "aurora_needed_staging": staging, "aurora_needed_resolution": resolve}
