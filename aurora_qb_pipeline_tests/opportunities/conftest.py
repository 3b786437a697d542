"""Fixtures of the opportunity tests: a small sandbox (its app has the Opportunities table), the
pipeline with the opportunities sensor and buttons on, helpers to add and edit opportunities as a
Quickbase user would, and ticks of the opportunities sensor executed by the local runner."""

import dataclasses

import pytest

from aurora_qb_pipeline.definitions import build_definitions
from aurora_qb_pipeline.defs.opportunities.sensors import SENSOR_NAME
from aurora_qb_pipeline.defs.resources import build_resources
from aurora_qb_pipeline.runner import tick
from aurora_qb_pipeline.sandbox.aurora.settings import MAGIC_ADDRESS
from aurora_qb_pipeline.sandbox.launcher import start_sandbox
from aurora_qb_pipeline.settings import Credentials

from ..conftest import Pipeline, sandbox_settings

SECRET = "test-button-secret-0c9e2a41b7d5"
MAGIC = dict(street="901 Mears Ct", city="Stanford", state="CA", postal_code="94305", country="USA")


@pytest.fixture
def sandbox():
    with start_sandbox(projects=4, designs_per_project=1.5, seed=5, time_scale=0.01) as sb:
        sb.aurora.services.design_service = False  # only the magic address is designed (at once)
        yield sb


@pytest.fixture
def settings(sandbox, tmp_path):
    return sandbox_settings(sandbox, tmp_path, opportunities_sync=True, opportunity_buttons=True)


@pytest.fixture
def credentials(sandbox):
    return dataclasses.replace(Credentials.from_env(sandbox.env()), webhook_secret=SECRET)


class Opportunities:
    """The sandbox's Opportunities table, edited as a Quickbase user would (Date Modified moves)."""

    LABELS = {"first_name": "Customer First Name", "last_name": "Customer Last Name", "email": "Customer Email",
              "phone": "Customer Phone", "street": "Street", "city": "City", "state": "State",
              "postal_code": "Postal Code", "country": "Country", "ready": "Ready for Aurora",
              "project_id": "Aurora Project ID", "design_request_id": "Aurora Design Request ID",
              "sync_status": "Aurora Sync Status", "sync_error": "Aurora Sync Error", "stage": "Aurora Stage",
              "create_signature": "Aurora Create Signature", "sync_signature": "Aurora Sync Signature",
              "agreement_file": "Signed Agreement", "proposal_file": "Proposal"}

    def __init__(self, pipeline):
        self.pipeline = pipeline
        self.qb = pipeline.sandbox.quickbase
        self.table_id = self.qb.opportunities_table_id
        self.fid = {name: self.qb.field_by_label(self.table_id, label).id for name, label in self.LABELS.items()}

    def add(self, ready=True, **values) -> str:
        values = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", **MAGIC,
                  "ready": ready, **values}
        result = self.qb.add_records(self.table_id, [{self.fid[k]: v for k, v in values.items() if v is not None}])
        assert not result.line_errors, result.line_errors
        return str(result.record_ids["created"][0])

    def edit(self, record_id, **values) -> None:
        self.qb.edit_record(self.table_id, int(record_id), {self.fid[k]: v for k, v in values.items()})

    def get(self, record_id) -> dict:
        row = next(r for r in self.qb.records(self.table_id) if r[3] == int(record_id))
        return {name: row.get(fid) for name, fid in self.fid.items()} | {"modified": row.get(2)}

    def projects_for(self, record_id) -> list[dict]:
        return self.pipeline.sandbox.aurora.find_projects(None, str(record_id))


class OpportunityPath:
    """Ticks of the opportunities sensor, runs executed in process, cursor kept."""

    def __init__(self, pipeline):
        self.pipeline, self.cursor = pipeline, None
        self.defs = build_definitions(pipeline.settings, pipeline.resources)

    def tick(self):
        outcome = tick(self.defs, self.pipeline.instance, SENSOR_NAME, cursor=self.cursor)
        self.cursor = outcome.cursor
        for run in outcome.runs:
            assert run.success, run
        return outcome


@pytest.fixture
def pipeline(sandbox, instance, settings, credentials):
    pipe = Pipeline(sandbox, instance, settings, credentials)
    pipe.resources = build_resources(settings, credentials)
    pipe.defs = build_definitions(settings, pipe.resources)
    return pipe


@pytest.fixture
def opportunities(pipeline):
    return Opportunities(pipeline)


@pytest.fixture
def path(pipeline):
    return OpportunityPath(pipeline)


__all__ = ["MAGIC", "MAGIC_ADDRESS", "SECRET"]
