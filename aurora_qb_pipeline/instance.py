"""The local Dagster instance of the demo and the benchmark."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import dagster as dg


def prepare_dagster_home(home: Path, fresh: bool) -> Path:
    """Make ``home`` a Dagster home with the shipped instance settings (emptied first when
    ``fresh``); returns its absolute path."""
    if fresh and home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    template = resources.files("aurora_qb_pipeline") / "config" / "dagster.yaml"
    (home / "dagster.yaml").write_text(template.read_text())
    return home.resolve()


def open_instance(home: Path) -> dg.DagsterInstance:
    """The instance kept in ``home`` (as ``DAGSTER_HOME=home`` would give, without setting it)."""
    return dg.DagsterInstance.from_config(str(home))
