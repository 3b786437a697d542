"""Staging as a function of an explicit set of Aurora projects.

Dagster runs a partitioned asset over one partition or one contiguous *range* of them (run tags
``dagster/partition`` or ``dagster/asset_partition_range_start/end``; a backfill with
``BackfillPolicy.single_run()`` still splits a scattered selection into one run per range), so a
webhook tick touching 25 scattered projects cannot be one run of the partitioned assets. What
the staging does is therefore written once, for any list of projects:

* :func:`addresses_rows`, :func:`designs_rows`, :func:`proposals_rows`,
  :func:`summaries_and_arrays_rows`: fetch and validate one table's rows (plain functions over
  the Aurora client; bad input becomes quarantine rows, never an exception);
* :func:`stage_projects`: all five tables for ``project_ids``, then written to DuckDB in ONE
  transaction (staged rows replaced project by project, quarantine and notes replaced, designs
  moved from another project released): a run killed in the middle leaves the previous rows.

The partitioned staging assets (range runs: discovery, the daily reconcile, the UI) call the
table functions with their partition keys and hand the rows to the atomic DuckDB IO manager; the
event path (``aurora/changed_projects``, ``defs/aurora/changed.py``) calls :func:`stage_projects`
with the projects of a tick.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
import logging
from typing import Any, Callable, Optional, Sequence

import pandas as pd
import sqlalchemy as sa
from dagster_duckdb import DuckDBResource

from ...clients import AuroraClient
from ...raw_payloads import replace_raw_in
from ...schemas import DesignArrays, Designs, DesignSummaries, LatestProposals, ProjectAddresses
from ...store import (
    ensure_staging_table,
    ensure_tables,
    ops_transaction,
    release_moved_designs_in,
    replace_project_rows_in,
    replace_quarantine_in,
)
from ...transform import design_rows, project_address_row, proposal_row
from ...validation import Validated, summaries_and_arrays, validate_rows
from .raw_staging import design_raw, designs_raw, note_deletions, pricing_rows, project_raw
from .staging import (
    MAX_QUARANTINE_FRACTION,
    ApiStatsDelta,
    describe_design,
    describe_project,
    design_keys,
    fetch_each,
    read_each,
)


_log = logging.getLogger(__name__)


@dataclass
class TableRows:
    """One staging table's rows for a set of projects: the valid rows, the quarantined ones
    (validation rejects and fetch failures), the repairs, and what the Aurora client did."""

    name: str
    schema: type
    key_column: str
    checked: Validated
    failures: list[dict] = field(default_factory=list)
    api: dict[str, float] = field(default_factory=dict)
    raw_kind: Optional[str] = None  # the kind of Aurora answer kept as JSON (raw_payloads.py)
    raw: list[tuple] = field(default_factory=list)  # (project id, object id, payload)

    @property
    def valid(self) -> pd.DataFrame:
        return self.checked.valid

    @property
    def rejected(self) -> list[dict]:
        return [*self.checked.rejected, *self.failures]

    @property
    def quarantine_fraction(self) -> float:
        total = len(self.valid) + len(self.rejected)
        return len(self.rejected) / total if total else 0.0

    @property
    def passed(self) -> bool:
        return self.quarantine_fraction <= MAX_QUARANTINE_FRACTION

    def per_project(self, project_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """{project: {valid_rows, quarantined_rows, repaired_values}} for every one of ``project_ids``
        (zeros included: a project with no designs staged nothing, and that is worth showing)."""
        valid = Counter(self.valid["project_id"]) if len(self.valid) else Counter()
        rejected = Counter(row.get("project_id") for row in self.rejected)
        notes = Counter(note.get("project_id") for note in self.checked.notes)
        return {pid: {"valid_rows": int(valid[pid]), "quarantined_rows": rejected[pid], "repaired_values": notes[pid]}
                for pid in project_ids}

    def totals(self) -> dict[str, float]:
        return {"valid_rows": len(self.valid), "quarantined_rows": len(self.rejected),
                "repaired_values": len(self.checked.notes), "fraction": round(self.quarantine_fraction, 4)}


def _table(name, schema, key_column, client: AuroraClient, items, fetch, describe, to_rows,
           raw: Optional[tuple[str, Callable]] = None) -> TableRows:
    stats = ApiStatsDelta(client)
    found, failures = fetch_each(client, items, fetch, describe)
    fetched = read_each(found, to_rows, describe)
    checked = validate_rows(schema, fetched.rows, key_column)
    table = TableRows(name, schema, key_column, checked, [*failures, *fetched.failures], stats())
    if raw is not None:
        table.raw_kind = raw[0]
        table.raw = [row for item, answer in found if answer is not None for row in raw[1](item, answer)]
    return table


def addresses_rows(client: AuroraClient, project_ids: Sequence[str],
                   fetch: Optional[Callable[[str], Any]] = None) -> TableRows:
    """``project_addresses``: one ``GET /projects/{id}`` per project, or the project taken from the
    list pages by ``fetch`` (:func:`.raw_staging.project_fetcher`)."""
    return _table("project_addresses", ProjectAddresses, "project_id", client, list(project_ids),
                  fetch or client.get_project, describe_project,
                  lambda pid, project: [project_address_row(pid, project)], raw=("project", project_raw))


def designs_rows(client: AuroraClient, project_ids: Sequence[str]) -> TableRows:
    """``designs``: the design list of each project."""
    return _table("designs", Designs, "design_id", client, list(project_ids), client.list_designs,
                  describe_project, design_rows, raw=("design", designs_raw))


def proposals_rows(client: AuroraClient, designs: pd.DataFrame) -> TableRows:
    """``latest_proposals``: the default proposal of each design (none: no row)."""
    return _table(
        "latest_proposals", LatestProposals, "design_id", client, design_keys(designs),
        lambda key: client.get_default_proposal(key[1]), describe_design,
        lambda key, proposal: [proposal_row(key[0], key[1], proposal)] if proposal is not None else [],
        raw=("proposal", design_raw),
    )


def summaries_and_arrays_rows(client: AuroraClient, designs: pd.DataFrame) -> tuple[TableRows, TableRows]:
    """``design_summaries`` and ``design_arrays``: each design's summary, fetched once."""
    stats = ApiStatsDelta(client)
    found, failures = fetch_each(client, design_keys(designs), lambda k: client.get_design_summary(k[1]),
                                 describe_design)
    summaries, arrays = summaries_and_arrays(found)
    raw = [row for key, answer in found for row in design_raw(key, answer)]
    return (TableRows("design_summaries", DesignSummaries, "design_id", summaries, failures, stats(),
                      raw_kind="summary", raw=raw),
            TableRows("design_arrays", DesignArrays, "design_id", arrays))


@dataclass
class StagedProjects:
    """What :func:`stage_projects` staged: the projects and each table's rows, in staging order."""

    project_ids: list[str]
    tables: list[TableRows]
    moved_designs: list[tuple] = field(default_factory=list)  # (design id, old project id)

    def table(self, name: str) -> TableRows:
        return next(t for t in self.tables if t.name == name)

    @property
    def api(self) -> dict[str, float]:
        summed: Counter = Counter()
        for table in self.tables:
            summed.update(table.api)
        return {k: round(v, 3) for k, v in summed.items()}


def fetch_projects(client: AuroraClient, project_ids: Sequence[str]) -> list[TableRows]:
    """The five staging tables' rows for ``project_ids`` (nothing written)."""
    designs = designs_rows(client, project_ids)
    return [addresses_rows(client, project_ids), designs, proposals_rows(client, designs.valid),
            *summaries_and_arrays_rows(client, designs.valid)]


def write_projects(duckdb: DuckDBResource, project_ids: Sequence[str], tables: Sequence[TableRows],
                   run_id: str, pricing: Optional[list[tuple]] = None) -> list[tuple]:
    """Replace the staged rows, quarantine and notes of ``project_ids`` in every table of ``tables``
    (and their raw pricing, unless ``pricing`` is None: pricing off) in one transaction, releasing
    designs that moved here from another project first. Returns the moved designs [(design id, old project id)]."""
    ensure_tables(duckdb)
    for table in tables:
        ensure_staging_table(duckdb, table.name, table.schema)
    moved: list[tuple] = []
    with ops_transaction(duckdb) as conn:
        for table in tables:
            if table.name == "designs":
                mine = [*table.valid["design_id"], *(r.get("design_id") for r in table.rejected if r.get("design_id"))]
                moved = release_moved_designs_in(conn, project_ids, mine)
        for table in tables:
            replace_project_rows_in(conn, table.name, project_ids, table.valid)
            replace_quarantine_in(conn, table.name, project_ids, table.rejected, table.key_column, run_id,
                                  table.checked.notes)
            if table.raw_kind:
                replace_raw_in(conn, table.raw_kind, project_ids, table.raw)
        if pricing is not None:
            replace_raw_in(conn, "pricing", project_ids, pricing)
    return moved


def stage_projects(project_ids: Sequence[str], client: AuroraClient, duckdb: DuckDBResource,
                   run_id: str, fetch_pricing: bool = False, log: Any = None) -> StagedProjects:
    """Fetch, validate and quarantine the five staging tables of exactly ``project_ids`` and write
    them in one DuckDB transaction (see the module docstring); with ``fetch_pricing``, each staged
    design's pricing too, as the range path's summaries step does (``raw_staging.pricing_rows``:
    a key not provisioned for it switches it off with one line on ``log``). Bad input is
    quarantined; an authentication error or a transient error that outlived the client's retries is raised."""
    ids = list(dict.fromkeys(project_ids))
    tables = fetch_projects(client, ids)
    for table in tables[:2]:  # addresses and designs: what Aurora deleted (deletions.py)
        note_deletions(_log, duckdb, client, ids, table)
    designs = next(t for t in tables if t.name == "designs").valid
    pricing = pricing_rows(log or _log, client, design_keys(designs), fetch_pricing)
    moved = write_projects(duckdb, ids, tables, run_id, pricing)
    return StagedProjects(ids, tables, moved)


def teach_design_projects(log, inbox, designs: pd.DataFrame) -> None:
    """Tell the webhook inbox (``webhooks.inbox.Inbox``) the project of every design just staged,
    so the webhook sensor resolves a simulation event for one of them without asking Aurora.
    Best effort: the inbox is an accelerator here, so a failure is logged and staging goes on."""
    if not len(designs):
        return
    try:
        inbox.remember_designs(dict(zip(designs["design_id"], designs["project_id"])), overwrite=True)
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        log.warning(f"could not record the designs' projects in the webhook inbox ({type(exc).__name__}); "
                    "webhook events about them will look their project up in Aurora")
