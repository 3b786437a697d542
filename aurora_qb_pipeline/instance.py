"""The local Dagster instance of the demo and the benchmark."""

from __future__ import annotations

import json
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
    (home / "dagster.yaml").write_text(template.read_text() + lean_event_log(home.resolve()))
    return home.resolve()


def lean_event_log(home: Path) -> str:
    """The ``event_log_storage`` lines naming :class:`..event_log.LeanSqliteEventLogStorage` for ``home``
    (Dagster's own SQLite layout, ``history/runs``; see that module for why)."""
    return ("\n# Dagster's SQLite event log with engines kept per file and one planned event per asset for\n"
            "# a range run (aurora_qb_pipeline/event_log.py)\n"
            "event_log_storage:\n  module: aurora_qb_pipeline.event_log\n  class: LeanSqliteEventLogStorage\n"
            f"  config:\n    base_dir: {json.dumps(str(home / 'history' / 'runs'))}\n")


def open_instance(home: Path) -> dg.DagsterInstance:
    """The instance kept in ``home`` (as ``DAGSTER_HOME=home`` would give, without setting it)."""
    return dg.DagsterInstance.from_config(str(home))
