"""The local Dagster instance of the demo and the benchmark."""

from __future__ import annotations

import json
import os
import shutil
from importlib import resources
from pathlib import Path
from typing import MutableMapping, Optional

import dagster as dg

EVENT_BATCH_VARIABLE = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = 1000
"""Asset events Dagster hands to the event log storage at once (``store_event_batch``) for one
multi-partition output: a range run's materializations of one asset, per partition. Dagster reads
``DAGSTER_EVENT_BATCH_SIZE`` in the process that executes the run, at every event; 0 or unset
stores every event alone. Buffered events are held in memory until written, so the size bounds
that (1,000 events of a few kB each)."""


def batch_asset_events(environ: Optional[MutableMapping[str, str]] = None) -> MutableMapping[str, str]:
    """Set ``DAGSTER_EVENT_BATCH_SIZE`` (:data:`EVENT_BATCH_SIZE`) in ``environ`` (``os.environ``:
    this process and the processes it starts) unless it is set already; returns ``environ``.
    Called at run time by the CLI (demo, benchmark, ``dagster dev`` of the demo and the ``.env`` of
    ``aurora-qb sandbox``); ``deploy/`` sets it in the containers' environment."""
    target = os.environ if environ is None else environ
    target.setdefault(EVENT_BATCH_VARIABLE, str(EVENT_BATCH_SIZE))
    return target


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
