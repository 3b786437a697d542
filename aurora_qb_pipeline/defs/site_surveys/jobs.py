"""The two site-survey jobs: ``site_survey_intake`` (requests from Aurora -> Quickbase survey
records) and ``site_survey_upload`` (surveys completed in Quickbase -> Aurora). Each run handles a
list given in its run config by the sensors (``sensors.py``); one survey that fails does not stop
the others, and the run fails at the end naming each (a refused credential stops it at once).

The failure lists, as metadata ``retry_keys``, the surveys that failed on a transient error; the
sensor that launched the run sends exactly those again with a backoff (``retry.py``), so the step
itself is not retried for them (a step retry would redo every survey of the list at once). The
step retry policy remains for a transient error outside the per-survey loop (reading the tables).
"""


from typing import Optional

import dagster as dg
from pydantic import Field

from ...clients.errors import AuthenticationError, TransientApiError
from ...site_surveys.intake import take_in
from ...site_surveys.tables import TablesNotReady
from ...site_surveys.upload import read_surveys, send_survey
from ..jobs import ONE_PROCESS
from ..retries import STEP_RETRY
from ..webhooks.resources import WebhookInboxResource
from .resources import SiteSurveyResource
from .retry import RETRY_KEYS

TAGS = {"dagster/kind/aurora": "", "dagster/kind/quickbase": ""}


class IntakeConfig(dg.Config):
    request_ids: list[str] = Field(description="site_survey_request_id of each request to take in.")
    inbox_ids: list[int] = Field(default_factory=list, description="Inbox rows of the webhooks (their session tokens).")


class UploadConfig(dg.Config):
    record_ids: list[int] = Field(description="Record ids of the surveys marked Completed in Quickbase.")


def _session_tokens(inbox: WebhookInboxResource, inbox_ids: list[int]) -> dict[str, str]:
    """{request id: session token} from the webhooks' inbox rows (the token never enters run config)."""
    found: dict[str, str] = {}
    for row_id in inbox_ids:
        for row in inbox.inbox.read(row_id - 1, 1):
            if row.id == row_id and row.params.get("session_token"):
                found[row.params.get("site_survey_request_id", "")] = row.params["session_token"]
    return found


def _finish(context: dg.OpExecutionContext, failures: dict[str, str], done: int, what: str,
            retry_key: Optional[dict[str, str]] = None) -> None:
    """Fail the run naming every failure; ``retry_key``: the sensor's key of a shown one (else itself)."""
    if failures:
        listed = "; ".join(f"{key}: {why}" for key, why in failures.items())
        transient = [(retry_key or {}).get(key, key) for key, why in failures.items() if why.startswith("transient")]
        again = f" ({len(transient)} to be sent again by the sensor)" if transient else ""
        raise dg.Failure(f"{len(failures)} of {done + len(failures)} {what} failed{again}: {listed}",
                         allow_retries=False, metadata={RETRY_KEYS: dg.MetadataValue.json(transient)})


def _problem(exc: Exception, redact) -> Optional[str]:
    if isinstance(exc, (AuthenticationError, TablesNotReady)):  # every survey would fail alike: none is retried
        raise dg.Failure(str(exc), allow_retries=False, metadata={RETRY_KEYS: dg.MetadataValue.json([])}) from None
    kind = "transient" if isinstance(exc, TransientApiError) else type(exc).__name__
    return f"{kind}: {redact(str(exc))}"


@dg.op(description="Retrieves each requested site survey (request, project, screenshot) from Aurora and upserts "
       "its Quickbase survey record, merged on the request id.", retry_policy=STEP_RETRY, tags=TAGS)
def take_in_site_surveys(context: dg.OpExecutionContext, config: IntakeConfig, site_surveys: SiteSurveyResource,
                         webhook_inbox: WebhookInboxResource) -> None:
    tables, aurora, qb = site_surveys.tables(), site_surveys.aurora, site_surveys.quickbase
    sessions = _session_tokens(webhook_inbox, config.inbox_ids)
    outcomes: dict[str, int] = {}
    failures: dict[str, str] = {}
    for request_id in dict.fromkeys(config.request_ids):
        try:
            result = take_in(aurora, qb, tables, request_id, sessions.get(request_id))
        except Exception as exc:  # noqa: BLE001 - one request never stops the others
            failures[request_id] = _problem(exc, aurora.redact)
            context.log.warning(f"site survey {request_id} not taken in: {failures[request_id]}")
            continue
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        if result.screenshot_problem:
            context.log.warning(f"site survey {request_id}: screenshot not copied ({result.screenshot_problem}); "
                                "the next intake of this request tries again")
        context.log.info(f"site survey {request_id}: {result.outcome} (record {result.record_id}, screenshot "
                         f"{'copied' if result.screenshot_copied else 'kept'}, design record {result.design_record_id}, "
                         f"opportunity record {result.opportunity_record_id})")
    _finish(context, failures, sum(outcomes.values()), "site-survey requests")
    context.add_output_metadata({**{f"surveys_{k}": v for k, v in outcomes.items()},
                                 "token_exchanges": aurora.tokens.exchanges})


@dg.op(description="Uploads each completed Quickbase survey to Aurora (electrical, subpanels, mounting planes), "
       "marks the request completed, and writes Aurora's verdict back to the survey.", retry_policy=STEP_RETRY, tags=TAGS)
def upload_site_surveys(context: dg.OpExecutionContext, config: UploadConfig,
                        site_surveys: SiteSurveyResource) -> None:
    tables, aurora, qb, links = site_surveys.tables(), site_surveys.aurora, site_surveys.quickbase, site_surveys.links()
    outcomes: dict[str, int] = {}
    failures: dict[str, str] = {}
    record_of: dict[str, str] = {}  # request id -> record id (the completion sensor's key)
    for survey in read_surveys(qb, tables, sorted(set(config.record_ids))):
        key = str(survey.get(tables.surveys.key_field_id) or survey.get(3))
        record_of[key] = str(survey.get(3))
        try:
            result = send_survey(aurora, qb, tables, survey, links)
        except Exception as exc:  # noqa: BLE001 - one survey never stops the others
            failures[key] = _problem(exc, aurora.redact)
            context.log.warning(f"site survey {key} not sent: {failures[key]}")
            continue
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        detail = f": {len(result.messages)} problem(s) written back" if result.messages else ""
        context.log.info(f"site survey {key}: {result.outcome} ({result.images} image link(s)){detail}")
    _finish(context, failures, sum(outcomes.values()), "site surveys", record_of)
    context.add_output_metadata({**{f"surveys_{k}": v for k, v in outcomes.items()},
                                 "token_exchanges": aurora.tokens.exchanges})


@dg.job(description="Site-survey requests from Aurora become Quickbase survey records (launched by "
        "site_survey_request_sensor).", executor_def=ONE_PROCESS)
def site_survey_intake():
    take_in_site_surveys()


@dg.job(description="Surveys completed in Quickbase go to Aurora (launched by site_survey_completion_sensor).",
        executor_def=ONE_PROCESS)
def site_survey_upload():
    upload_site_surveys()
