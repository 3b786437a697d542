"""The alerting hook: a run-failure sensor that POSTs each failed run to a URL.

Set ``AURORA_QB_ALERT_URL`` (a Slack or Teams incoming webhook, an incident tool's endpoint, any
URL that takes a JSON POST) and turn on the ``run_failure_alert`` sensor (on by default with
``AURORA_QB_AUTOMATION=running``). The URL is a secret (such URLs embed their own token): Dagster
reads it through ``dg.EnvVar`` when the sensor runs; it is never logged, shown or kept, and errors
name only what went wrong (``HTTP 500``, ``ConnectTimeout``), never the address.

Each POST has a timeout and is retried with exponential backoff (tenacity) on timeouts, dropped
connections, 429 and 5xx; another 4xx is not retried. A delivery that still fails fails the
sensor's tick, which Dagster shows, and the run's failure is sent again on the next tick.
"""

from __future__ import annotations

from typing import Any, Optional

import dagster as dg
import requests
from pydantic import Field
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from ..settings import ALERT_URL_VARIABLE, Settings
from .partitions import RANGE_END, RANGE_START, TRIGGER_TAG


class AlertDeliveryFailed(RuntimeError):
    """The alert could not be delivered (the message never holds the URL)."""


class _Retryable(Exception):
    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


class AlertWebhookResource(dg.ConfigurableResource):
    """Where run-failure alerts are POSTed (None: alerting off)."""

    url: Optional[str] = Field(default=None, description="Alert URL (secret: an EnvVar, AURORA_QB_ALERT_URL).")
    timeout_s: float = Field(default=10.0, description="Connect/read timeout of one POST, seconds.")
    max_attempts: int = Field(default=4, description="POST attempts for timeouts, dropped connections, 429, 5xx.")
    backoff_initial_s: float = Field(default=1.0, description="First wait between attempts; doubles, with jitter.")

    def send(self, payload: dict[str, Any]) -> str:
        """POST ``payload`` as JSON; returns what the endpoint answered (``HTTP 200``)."""
        if not self.url:
            raise AlertDeliveryFailed("no alert URL configured")

        def attempt() -> str:
            try:
                response = requests.post(self.url, json=payload, timeout=self.timeout_s)
            except (requests.Timeout, requests.ConnectionError) as exc:
                raise _Retryable(type(exc).__name__) from None
            except requests.RequestException as exc:  # an invalid URL and the like: retrying cannot help
                raise AlertDeliveryFailed(f"alert not sent: {type(exc).__name__}") from None
            if response.status_code == 429 or response.status_code >= 500:
                raise _Retryable(f"HTTP {response.status_code}")
            if response.status_code >= 400:
                raise AlertDeliveryFailed(f"alert refused: HTTP {response.status_code}")
            return f"HTTP {response.status_code}"

        retrying = Retrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, _Retryable)),
            stop=stop_after_attempt(max(1, self.max_attempts)),
            wait=wait_exponential_jitter(multiplier=self.backoff_initial_s, max=60.0, jitter=self.backoff_initial_s),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retryable as exc:
            raise AlertDeliveryFailed(f"alert not delivered after {self.max_attempts} attempts: {exc.what}") from None


def alert_webhook_resource(settings: Settings) -> AlertWebhookResource:
    """The alert resource: the URL as ``dg.EnvVar`` when the settings say it is set, else off."""
    return AlertWebhookResource(url=dg.EnvVar(ALERT_URL_VARIABLE) if settings.alert_url_set else None,
                                backoff_initial_s=max(0.01, settings.time_scale))


def alert_payload(run: dg.DagsterRun, message: str) -> dict[str, Any]:
    """What is sent: the run, its job, what launched it, its project range and Dagster's message.
    ``text`` makes it readable as is by Slack's and Teams' incoming webhooks."""
    trigger = run.tags.get(TRIGGER_TAG, "manual")
    projects = (f"{run.tags[RANGE_START]} .. {run.tags[RANGE_END]}" if RANGE_START in run.tags
                else run.tags.get("dagster/partition", ""))
    return {
        "text": f"aurora_qb_pipeline: run {run.run_id[:8]} of {run.job_name} failed ({trigger}). {message}",
        "run_id": run.run_id, "job": run.job_name, "status": run.status.value, "trigger": trigger,
        "projects": projects, "message": message,
    }


def build_alert_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    @dg.run_failure_sensor(
        name="run_failure_alert",
        default_status=dg.DefaultSensorStatus.RUNNING if settings.automation_running else dg.DefaultSensorStatus.STOPPED,
        description="POSTs every failed run of this code location to AURORA_QB_ALERT_URL (JSON with the run, job, "
        "trigger, projects and Dagster's message; timeout, retries with backoff). Does nothing while the URL is unset.",
    )
    def run_failure_alert(context: dg.RunFailureSensorContext, alert_webhook: AlertWebhookResource):
        if not alert_webhook.url:
            context.log.info(f"run {context.dagster_run.run_id[:8]} failed; no {ALERT_URL_VARIABLE} set, no alert sent")
            return
        outcome = alert_webhook.send(alert_payload(context.dagster_run, context.failure_event.message or ""))
        context.log.info(f"alert for run {context.dagster_run.run_id[:8]} delivered ({outcome})")

    return [run_failure_alert]
