"""The two benchmark modes: the pipeline ticked as the daemon would (``incremental``), and the
original per-project script over the same clients (``naive``); and one mode run in this process."""

from __future__ import annotations

import argparse
import faulthandler
import json
import tempfile
import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

import dagster as dg

from ..clients import AuroraClient, PermanentApiError, QuickbaseClient
from ..definitions import build_definitions
from ..defs.aurora.staging import staging_key
from ..defs.partitions import DAILY_RECONCILE_TRIGGER, known_projects, range_tags
from ..defs.quickbase.assets import EXPORT_KEY
from ..defs.quickbase.line_items import LINE_ITEMS_KEY
from ..line_items import load_spec
from ..defs.resources import aurora_resource, build_resources, quickbase_resource
from ..instance import open_instance, prepare_dagster_home
from ..mapping import ResolvedMapping, encode_row, load_mapping, resolve_mapping
from ..runner import run_job, tick
from ..sandbox.launcher import Sandbox, start_sandbox
from ..schemas import export_row
from ..settings import Credentials, Settings
from ..transform import array_rows, design_row, project_address_row, proposal_row, summary_row
from .events import WebhookVariant, latency_figures, needed_requests, record_latencies
from .tables import create_declared_table
from .measure import Meter, Step, StepAction, default_timeout, max_rss_mb, measure_steps

MODES = ("incremental", "naive")
CHANGED_FRACTION = 0.01


def change_designs(sandbox: Sandbox, seed: int, into: Optional[dict[str, Any]] = None) -> StepAction:
    """Designers change 1% of the designs; accepted design requests are recorded for them. What
    changed, and when, goes into ``into`` (for the step's latency and needed requests)."""

    record = {} if into is None else into

    def run() -> dict[str, Any]:
        record["changed_at"] = time.time()
        changed = record["changed"] = sandbox.aurora.mutate(CHANGED_FRACTION, seed=seed + 1)
        time.sleep(0.01)  # later design requests must carry a later timestamp than the sensor's watermark
        return {"changed_designs": len(changed["changed_design_ids"]), "changed_projects": len(changed["project_ids"])}

    return run


def _asset_metadata(result: dg.ExecuteInProcessResult, asset: dg.AssetKey) -> dict[str, Any]:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == asset]
    return {k: v.value for k, v in events[-1].materialization.metadata.items()} if events else {}


def _partitions_staged(result: dg.ExecuteInProcessResult) -> int:
    """Projects a run staged: its materializations of aurora/project_addresses, one per partition
    (range runs and event runs alike)."""
    key = staging_key("project_addresses")
    return sum(1 for e in result.get_asset_materialization_events() if e.asset_key == key)


def runs_detail(runs: list[dg.ExecuteInProcessResult]) -> dict[str, Any]:
    exports = [_asset_metadata(r, EXPORT_KEY) for r in runs]
    items = [_asset_metadata(r, LINE_ITEMS_KEY) for r in runs]
    return {
        "export_upserts": sum(m.get("requests", 0) for m in exports),
        "line_item_requests": sum(m.get("requests", 0) for m in items),
        "line_items_sent": sum(m.get("sent", 0) for m in items),
        "ok": all(r.success for r in runs),
        "runs": len(runs),
        "projects_fetched": sum(_partitions_staged(r) for r in runs),
        "records_sent": sum(m.get("sent", 0) for m in exports),
        "records_unchanged_not_sent": sum(m.get("unchanged_since_last_export", 0) for m in exports),
    }


class IncrementalMode:
    """The Dagster pipeline, ticked as the daemon would on a fresh instance."""

    def __init__(self, sandbox: Sandbox, workdir: Path, seed: int):
        home = prepare_dagster_home(workdir / "dagster_home", fresh=True)
        self.sandbox, self.seed = sandbox, seed
        self.instance = open_instance(home)
        line_items = create_declared_table(sandbox, load_spec(), str(sandbox.quickbase.table_id))
        settings, credentials = sandbox_settings(sandbox, workdir, dagster_home=home, line_items_table_id=line_items)
        self.defs = build_definitions(settings, build_resources(settings, credentials))
        self.cursor: Optional[str] = None  # the design-request sensor's
        self.polled_change: dict[str, Any] = {}  # what step 3 changed, and when
        self.events = WebhookVariant(sandbox, settings, self.defs, self.instance, seed, CHANGED_FRACTION, runs_detail)

    def _tick(self, sensor: str, cursor: Optional[str] = None) -> tuple[dict[str, Any], Optional[str]]:
        outcome = tick(self.defs, self.instance, sensor, cursor=cursor)
        detail = {**runs_detail(outcome.runs), "new_partitions": len(outcome.new_partitions)}
        if outcome.skip_reason:
            detail["skip_reason"] = outcome.skip_reason
        return detail, outcome.cursor

    def discovery(self) -> dict[str, Any]:
        return self._tick("project_discovery_sensor")[0]

    def design_requests(self) -> dict[str, Any]:
        detail, self.cursor = self._tick("design_request_sensor", self.cursor)
        return {**detail, "cursor": self.cursor}

    def design_requests_after_change(self) -> dict[str, Any]:
        """Step 3: the design-request (list) sensor's tick after 1% changed, with the latency from
        the change to each Quickbase record and what the changed designs need from Aurora."""
        detail = self.design_requests()
        changed = self.polled_change.get("changed", {})
        latencies = record_latencies(self.sandbox, changed.get("changed_design_ids", []),
                                     self.polled_change.get("changed_at", 0.0))
        return {**detail, **latency_figures(latencies), **needed_requests(self.sandbox, changed, resolution=False)}

    def full_reconcile(self) -> dict[str, Any]:
        """The daily reconcile's run over every project: its export also compares with what Quickbase holds."""
        keys = known_projects(self.instance)
        run = run_job(self.defs, self.instance, range_tags(keys[0], keys[-1], DAILY_RECONCILE_TRIGGER))
        drift = _asset_metadata(run, EXPORT_KEY).get("drift") or {}
        return {**runs_detail([run]), "drift": {k: drift.get(k) for k in ("missing", "edited", "unchanged", "requests")}}

    def steps(self) -> list[Step]:
        return [
            Step("full_sync", "1. full sync (discovery tick)", self.discovery),
            Step("first_scan", "   setup: first design-request tick, no cursor", self.design_requests),
            Step("rerun_unchanged", "2. rerun, nothing changed", parts=[
                Step("rerun_unchanged_discovery", "   2a. discovery tick", self.discovery),
                Step("rerun_unchanged_design_requests", "   2b. design-request tick", self.design_requests),
            ]),
            Step("rerun_1pct", "3. rerun after 1% changed (design-req. tick)", self.design_requests_after_change,
                 before=change_designs(self.sandbox, self.seed, self.polled_change)),
            Step("rerun_1pct_webhooks", "3b. rerun after 1% changed (webhooks)", self.events.run,
                 before=self.events.prepare),
            Step("full_reconcile", "   full reconcile (range run, all partitions)", self.full_reconcile),
        ]

    def close(self) -> None:
        self.events.close()
        self.instance.dispose()


def sandbox_settings(sandbox: Sandbox, workdir: Path, **overrides: Any) -> tuple[Settings, Credentials]:
    """Settings and credentials pointing at ``sandbox``, with the rate budget kept in ``workdir``."""
    env = sandbox.env()
    settings = Settings.from_env(env, rate_limit_db=workdir / "rate_limits.sqlite", **overrides)
    return settings, Credentials.from_env(env)


def design_export_row(project_id: str, address: dict, design: dict, summary: dict, proposal: Optional[dict]) -> dict:
    """One design's export row (the contract of schemas.py), joined in Python as the script would."""
    design_id = design["id"]
    arrays, _ = array_rows(project_id, design_id, summary)
    return export_row({
        "designs": design_row(project_id, design),
        "design_summaries": summary_row(project_id, design_id, summary, arrays),
        "latest_proposals": proposal_row(project_id, design_id, proposal) if proposal else None,
        "project_addresses": address,
    })


def naive_project_records(aurora: AuroraClient, mapping: ResolvedMapping, project_id: str) -> list[dict]:
    """The old script's requests for one project: designs, then each design's summary and default
    proposal, then the project. Records are encoded with the pipeline's mapping."""
    designs = aurora.list_designs(project_id)
    if not designs:
        return []
    fetched = [(d, aurora.get_design_summary(d["id"]), aurora.get_default_proposal(d["id"])) for d in designs]
    address = project_address_row(project_id, aurora.get_project(project_id))
    return [encode_row(mapping, design_export_row(project_id, address, *parts)).record for parts in fetched]


class NaiveMode:
    """The original script's approach over the same clients: sequential, per project, everything every run."""

    def __init__(self, sandbox: Sandbox, workdir: Path, seed: int):
        settings, credentials = sandbox_settings(sandbox, workdir)
        self.aurora: AuroraClient = aurora_resource(settings, credentials).client
        self.quickbase: QuickbaseClient = quickbase_resource(settings, credentials).client
        self.sandbox, self.seed = sandbox, seed

    def sync(self) -> dict[str, Any]:
        """One run of the script. Records Quickbase would refuse are sent anyway (it answers 207 with
        line errors), as the script did; a project whose fetch fails is logged and skipped."""
        mapping = resolve_mapping(load_mapping(), self.quickbase.get_fields())
        tally = {"projects_fetched": 0, "projects_posted": 0, "projects_without_designs": 0, "projects_failed": 0,
                 "records_sent": 0, "records_refused": 0}
        for project in self.aurora.iter_projects():
            tally["projects_fetched"] += 1
            try:
                records = naive_project_records(self.aurora, mapping, project["id"])
                if not records:
                    tally["projects_without_designs"] += 1
                    continue
                result = self.quickbase.upsert(records, mapping.merge_field_id)
            except PermanentApiError:
                tally["projects_failed"] += 1
                continue
            tally["projects_posted"] += 1
            tally["records_sent"] += len(records)
            tally["records_refused"] += len(result.line_errors)
        return tally

    def steps(self) -> list[Step]:
        return [
            Step("full_sync", "1. full sync", self.sync),
            Step("rerun_unchanged", "2. rerun, nothing changed", self.sync),
            Step("rerun_1pct", "3. rerun after 1% changed", self.sync, before=change_designs(self.sandbox, self.seed)),
        ]

    def close(self) -> None:
        for client in (self.aurora, self.quickbase):
            client.close()


MODE_CLASSES = {"incremental": IncrementalMode, "naive": NaiveMode}


def run_mode(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Start a sandbox, run one mode's steps, stop the sandbox; the figures as a dict."""
    if args.mode == "tenants":  # many tenants at once: a scenario of its own (bench/tenants.py)
        from .tenants import run_tenants_mode

        return run_tenants_mode(args, workdir)
    say = (lambda _: None) if args.quiet else (lambda text: print(text, flush=True))
    workdir.mkdir(parents=True, exist_ok=True)
    say(f"[{args.mode}] sandbox: {args.projects} projects, {args.designs} designs")
    sandbox = start_sandbox(projects=args.projects, designs_per_project=args.designs / args.projects,
                            seed=args.seed, time_scale=args.time_scale, latency_ms=args.latency_ms)
    try:
        tenant = sandbox.aurora.primary
        mode = MODE_CLASSES[args.mode](sandbox, workdir, args.seed)
        baseline_mb = max_rss_mb()
        profile = Path(f"{args.profile}.{args.mode}.pstats") if getattr(args, "profile", None) else None
        meter = Meter(sandbox, args.time_scale, say, profile=profile)
        try:
            steps = measure_steps(meter, mode.steps())
        finally:
            mode.close()
    finally:
        sandbox.stop()
    return {
        "mode": args.mode,
        "data": {"projects": len(tenant.projects), "designs": len(tenant.designs),
                 "projects_with_designs": sum(1 for p in tenant.projects if tenant.designs_of(p)),
                 "design_requests": len(tenant.design_requests)},
        "rss_after_setup_mb": baseline_mb,
        "max_rss_mb": max([baseline_mb, *(s.peak_rss_mb for s in steps)]),
        "rss_per_step": meter.rss.per_step,
        "steps": [asdict(s) for s in steps],
    }


def child_main(args: argparse.Namespace) -> int:
    """Entry of the subprocess that runs one mode; dumps every thread's stack if it overruns."""
    faulthandler.dump_traceback_later(args.timeout or default_timeout(args), exit=True)
    with nullcontext(args.workdir) if args.workdir else tempfile.TemporaryDirectory(prefix="aurora-qb-bench-") as tmp:
        figures = run_mode(args, Path(tmp))
    Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    return 0
