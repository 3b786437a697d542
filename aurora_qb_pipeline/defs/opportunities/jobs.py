"""``opportunities_to_aurora``: create Aurora projects (and design requests) for opportunities."""


from typing import Optional

import dagster as dg

from ...clients import RateBudgetExhausted, TransientApiError
from ...opportunities.presale import StageUpdate, apply_stage_updates
from ...opportunities.sync import due, read_opportunities
from ..resources import AuroraResource, QuickbaseResource
from ..webhooks.resources import WebhookInboxResource
from .resources import OpportunitiesResource

JOB_NAME = "opportunities_to_aurora"


class StageUpdateConfig(dg.Config):
    project_id: str
    agreement_id: Optional[str] = None
    project_status: bool = False


class OpportunitiesConfig(dg.Config):
    record_ids: list[str] = []
    """Opportunities to act on (their current values are read again here)."""
    clicked: list[str] = []
    """Of those, the ones whose "Create in Aurora" button was used: the ready flag is not needed."""
    stage_updates: list[StageUpdateConfig] = []
    """Pre-sale stages Aurora reported for linked projects (agreement and project status webhooks)."""


@dg.op(
    description="Reads the given Quickbase opportunities, creates an Aurora project for each that is ready and "
    "not linked yet (looked up by external_provider_id first after an interrupted attempt), requests a design "
    "when configured, and writes Aurora Project ID, Design Request ID, status or error back.",
    out=dg.Out(dg.Nothing, description="Outcome per opportunity in the metadata."),
    retry_policy=dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL),
)
def create_aurora_projects(context: dg.OpExecutionContext, config: OpportunitiesConfig, aurora: AuroraResource,
                           quickbase: QuickbaseResource, opportunities: OpportunitiesResource,
                           webhook_inbox: WebhookInboxResource) -> dg.Output:
    sync = opportunities.sync(aurora.client, quickbase.client, webhook_inbox.inbox, context.log.info)
    found = read_opportunities(sync.opps, sync.fields, record_ids=config.record_ids)
    clicked = set(config.clicked)
    wanted = [o for o in found if not o.get("project_id")
              and (o.values.get("ready") is True or o.record_id in clicked)]
    todo, unchanged = due([o for o in wanted if o.record_id not in clicked], opportunities.store)
    todo += [o for o in wanted if o.record_id in clicked]  # a click is a request to try again
    try:
        report = sync.run(todo)
    except (TransientApiError, RateBudgetExhausted):
        raise  # the step is retried; what was done is in the store
    stages = apply_stage_updates(sync, [StageUpdate(**u.model_dump()) for u in config.stage_updates])
    if stages:
        context.log.info(f"pre-sale stages: {stages}")
    linked = len(found) - len(wanted)
    summary = {**dict(report.counts), "already linked or not ready": linked, "unchanged since error": len(unchanged)}
    context.log.info(f"opportunities: {summary}")
    return dg.Output(None, metadata={"outcomes": dg.MetadataValue.json(report.outcomes),
                                     "counts": dg.MetadataValue.json(summary),
                                     "projects": dg.MetadataValue.json(report.projects),
                                     "stages": dg.MetadataValue.json(stages)})


@dg.job(name=JOB_NAME, executor_def=dg.in_process_executor,
        description="Quickbase opportunities -> Aurora projects and design requests, results written back.")
def opportunities_to_aurora():
    create_aurora_projects()
