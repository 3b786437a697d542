"""Fixtures of the event path: a real receiver on loopback writing the test's inbox, and the
sandbox tenant subscribed to it through the webhooks API (as `aurora-qb webhooks subscribe` does)."""

import dagster as dg
import pytest

from aurora_qb_pipeline.definitions import build_definitions
from aurora_qb_pipeline.defs.webhooks.sensors import SENSOR_NAME, WebhookTuning
from aurora_qb_pipeline.runner import apply_partition_requests, tick
from aurora_qb_pipeline.sandbox.launcher import start_sandbox
from aurora_qb_pipeline.webhooks.events import KNOWN_EVENTS
from aurora_qb_pipeline.webhooks.inbox import Inbox
from aurora_qb_pipeline.webhooks.receiver import ReceiverThread, create_receiver_app
from aurora_qb_pipeline.webhooks.subscriptions import apply_subscriptions, wanted_subscriptions

SECRET = "test-webhook-secret-5f2c9a7e41"
TUNING = WebhookTuning()


@pytest.fixture
def sandbox():
    """A smaller tenant than the other tests': these sync it first, then follow changes."""
    with start_sandbox(projects=12, designs_per_project=2.5, seed=11, time_scale=0.01) as sb:
        yield sb


@pytest.fixture
def inbox(pipeline):
    box = Inbox(pipeline.settings.inbox_database_url)
    yield box
    box.close()


@pytest.fixture
def receiver(inbox):
    server = ReceiverThread(create_receiver_app(inbox, [SECRET])).start()
    yield server
    server.stop()


def subscribe(pipeline, url, secret=SECRET, secret_in="header", events=tuple(KNOWN_EVENTS)):
    client = pipeline.aurora().client
    try:
        return apply_subscriptions(client, wanted_subscriptions(url, secret, list(events), secret_in))
    finally:
        client.close()


@pytest.fixture
def subscribed(pipeline, receiver):
    subscribe(pipeline, receiver.url)
    return receiver


class EventPath:
    """Ticks of aurora_webhook_sensor against the pipeline fixture, the cursor kept between them."""

    def __init__(self, pipeline, tuning=TUNING):
        self.pipeline, self.cursor = pipeline, None
        self.defs = build_definitions(pipeline.settings, pipeline.resources, webhook_tuning=tuning)

    def tick(self):
        """One evaluation and the runs it asks for, executed."""
        outcome = tick(self.defs, self.pipeline.instance, SENSOR_NAME, cursor=self.cursor)
        self.cursor = outcome.cursor
        return outcome

    def evaluate(self):
        """One evaluation without running anything: (SensorResult or SkipReason); partitions are added."""
        sensor = self.defs.resolve_sensor_def(SENSOR_NAME)
        with dg.build_sensor_context(instance=self.pipeline.instance, cursor=self.cursor, definitions=self.defs,
                                     resources=dict(self.defs.resources)) as context:
            result = sensor(context)
            self.cursor = getattr(result, "cursor", None) or context.cursor
        apply_partition_requests(self.pipeline.instance, getattr(result, "dynamic_partitions_requests", None))
        return result


@pytest.fixture
def event_path(pipeline):
    return EventPath(pipeline)


def module_counts(pipeline, design_ids):
    """{design id: modules in Aurora now} for the designs that have arrays."""
    summaries = pipeline.sandbox.aurora.primary.summaries
    return {d: sum(a["module"]["count"] for a in summaries[d]["arrays"] if "module" in a) for d in design_ids}
