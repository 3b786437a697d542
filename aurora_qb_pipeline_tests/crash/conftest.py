"""Fixtures of the crash tests: a fault-free sync to compare with, and sandboxes of the same seed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aurora_qb_pipeline.definitions import build_definitions
from aurora_qb_pipeline.defs.partitions import range_tags
from aurora_qb_pipeline.defs.resources import build_resources
from aurora_qb_pipeline.instance import open_instance
from aurora_qb_pipeline.runner import run_job
from aurora_qb_pipeline.sandbox.launcher import Sandbox, start_sandbox
from aurora_qb_pipeline.settings import Credentials

from .run_sync import settings_for
from .support import MAX_RECORDS, PROJECTS, SEED, TIME_SCALE, add_projects, new_home, quickbase_snapshot


def pytest_addoption(parser):
    parser.addoption("--shipped-monitoring", action="store_true", default=False,
                     help="crash tests under the daemon: use the shipped run-monitoring intervals (slow; "
                          "measures recovery as deployed) instead of 1-second ones")


def crash_sandbox() -> Sandbox:
    return start_sandbox(projects=PROJECTS, seed=SEED, time_scale=TIME_SCALE)


def sync_in_process(home: Path, sandbox: Sandbox):
    """The whole sync in this process, as the demo runs it (``runner.run_job``: recovery first)."""
    settings = settings_for(home, sandbox.env(), MAX_RECORDS)
    keys = add_projects(home, sandbox)
    instance = open_instance(home)
    try:
        defs = build_definitions(settings, build_resources(settings, Credentials.from_env(sandbox.env())))
        return run_job(defs, instance, range_tags(keys[0], keys[-1], "crash_test"))
    finally:
        instance.dispose()


@dataclass(frozen=True)
class Reference:
    """What a fault-free sync of the crash tests' tenant leaves in Quickbase."""

    records: dict[str, dict[int, Any]]


@pytest.fixture(scope="package")
def reference(tmp_path_factory) -> Reference:
    with crash_sandbox() as sandbox:
        home = new_home(tmp_path_factory.mktemp("reference"))
        assert sync_in_process(home, sandbox).success
        records = quickbase_snapshot(sandbox)
    assert len(records) > 3 * MAX_RECORDS, "the tenant should need several upsert batches"
    return Reference(records)
