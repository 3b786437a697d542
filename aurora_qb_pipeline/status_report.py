"""Where the integration stands, for ``aurora-qb status``: the last successful sync, runs queued or
in progress, events waiting in the webhook inbox, what is quarantined, held or refused, and
whether both APIs accept the configured credentials.

Each part is gathered on its own and a part that cannot be read says why (``error``) instead of
failing the whole report. The credentials check makes one cheap authenticated GET per API (the
first project with ``per_page=1``; the table's fields) with a short timeout and one retry; it
shows whether the credentials work, never their values (the clients redact them from errors).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Optional

from .clients import ApiError, AuroraClient, AuthenticationError, NotFoundError, QuickbaseClient
from .clients.http import RetrySettings
from .integration_log import DatabaseBusy, open_read_only, read_counts
from .settings import Settings

SYNC_JOBS = ("aurora_quickbase_sync", "quickbase_export_only")
TRIGGER_TAG = "aurora_qb/trigger"  # defs.partitions.TRIGGER_TAG, without importing Dagster definitions
CHECK_TIMEOUT_S = 10.0
AURORA_VARIABLES = ("AURORA_TENANT_ID", "AURORA_API_TOKEN")
QUICKBASE_VARIABLES = ("QB_REALM_HOSTNAME", "QB_USER_TOKEN", "QB_TABLE_ID")


@dataclass
class CredentialCheck:
    service: str
    ok: bool
    detail: str


@dataclass
class StatusReport:
    dagster_home: Optional[str]
    duckdb_file: str
    last_successful_sync: Optional[dict] = None
    last_failed_run: Optional[dict] = None
    runs_in_progress: list[dict] = field(default_factory=list)
    runs_error: Optional[str] = None
    webhook_inbox: dict[str, Any] = field(default_factory=dict)
    integration: dict[str, Any] = field(default_factory=dict)
    credentials: list[CredentialCheck] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """Every credential check passed (the exit status of ``aurora-qb status``)."""
        return all(c.ok for c in self.credentials)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _iso(timestamp: Optional[float]) -> Optional[str]:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat() if timestamp else None


def _run(record) -> dict[str, Any]:
    run = record.dagster_run
    return {"run_id": run.run_id, "job": run.job_name, "status": run.status.value,
            "trigger": run.tags.get(TRIGGER_TAG, "manual"), "created_at": record.create_timestamp.isoformat(),
            "started_at": _iso(record.start_time), "ended_at": _iso(record.end_time)}


def gather_runs(report: StatusReport, home: Optional[Path]) -> None:
    """Last successful and failed sync runs and the runs not finished, from the Dagster instance."""
    import dagster as dg

    if home is None or not (home / "dagster.yaml").exists():
        report.runs_error = "no Dagster home (set DAGSTER_HOME or pass --home)"
        return
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        def newest(statuses) -> Optional[dict]:
            found = [r for job in SYNC_JOBS for r in instance.get_run_records(
                dg.RunsFilter(job_name=job, statuses=statuses), limit=1)]
            return _run(max(found, key=lambda r: r.end_time or 0)) if found else None

        report.last_successful_sync = newest([dg.DagsterRunStatus.SUCCESS])
        report.last_failed_run = newest([dg.DagsterRunStatus.FAILURE])
        waiting = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
                   dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
        report.runs_in_progress = [_run(r) for r in instance.get_run_records(dg.RunsFilter(statuses=waiting),
                                                                             limit=50)]
    finally:
        instance.dispose()


def gather_inbox(report: StatusReport, settings: Settings) -> None:
    """Events received by the webhook receiver that the webhook sensor has not read yet."""
    from .webhooks.inbox import Inbox, display_url

    url = settings.inbox_database_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        report.webhook_inbox = {"url": display_url(url), "events": 0, "unread": 0,
                                "note": "no inbox yet (the webhook receiver has not run here)"}
        return
    inbox = Inbox(url, create=False)
    try:
        report.webhook_inbox = {"url": display_url(url), **inbox.summary()}
        report.webhook_inbox["newest_received_at"] = _iso(report.webhook_inbox.get("newest_received_at"))
    except Exception as exc:  # noqa: BLE001 - reported, the rest of the status goes on
        report.webhook_inbox = {"url": display_url(url), "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    finally:
        inbox.close()


def gather_integration(report: StatusReport, settings: Settings, wait_s: float) -> None:
    """Quarantined rows per asset, designs held and refused, designs synced, the last export."""
    try:
        with open_read_only(settings.duckdb_file, wait_s) as conn:
            if conn is None:
                report.integration = {"note": "no DuckDB file yet: nothing has been synced"}
                return
            report.integration = read_counts(conn, settings.hold_policy).as_json()
    except DatabaseBusy as exc:
        report.integration = {"error": str(exc)}


def _check(service: str, variables: tuple[str, ...], environ: Mapping[str, str], call) -> CredentialCheck:
    missing = [name for name in variables if not environ.get(name)]
    if missing:
        return CredentialCheck(service, False, f"not configured: {', '.join(missing)} not set")
    try:
        call()
    except AuthenticationError as exc:
        return CredentialCheck(service, False, f"refused ({exc.status}): check {exc.credential}")
    except NotFoundError as exc:
        return CredentialCheck(service, False, f"not found ({exc.status} on {exc.path}): check {' / '.join(variables)}")
    except ApiError as exc:
        return CredentialCheck(service, False, f"not reachable: {str(exc)[:200]}")
    return CredentialCheck(service, True, "accepted")


def check_credentials(settings: Settings, environ: Mapping[str, str]) -> list[CredentialCheck]:
    """One authenticated GET per API; what each answered (the values are never shown)."""
    options = settings.client_options(timeout_s=min(CHECK_TIMEOUT_S, settings.client_options().timeout_s),
                                      retry=RetrySettings(max_attempts=2, backoff_initial_s=0.5, backoff_max_s=2.0))

    def aurora() -> None:
        client = AuroraClient(base_url=settings.aurora_base_url, tenant_id=environ["AURORA_TENANT_ID"],
                              api_token=environ["AURORA_API_TOKEN"], options=options, per_page=1)
        try:
            next(client.pages("projects"))
        finally:
            client.close()

    def quickbase() -> None:
        client = QuickbaseClient(base_url=settings.quickbase_base_url, realm_hostname=environ["QB_REALM_HOSTNAME"],
                                 user_token=environ["QB_USER_TOKEN"], table_id=environ["QB_TABLE_ID"],
                                 app_id=settings.quickbase_app_id, options=options)
        try:
            client.get_fields()
        finally:
            client.close()

    return [_check("Aurora", AURORA_VARIABLES, environ, aurora),
            _check("Quickbase", QUICKBASE_VARIABLES, environ, quickbase)]


def gather(settings: Settings, environ: Mapping[str, str], home: Optional[Path], check_apis: bool = True,
           wait_s: float = 10.0) -> StatusReport:
    report = StatusReport(dagster_home=str(home) if home else None, duckdb_file=settings.duckdb_file)
    try:
        gather_runs(report, home)
    except Exception as exc:  # noqa: BLE001 - reported, the rest of the status goes on
        report.runs_error = f"{type(exc).__name__}: {str(exc)[:200]}"
    gather_inbox(report, settings)
    gather_integration(report, settings, wait_s)
    if check_apis:
        report.credentials = check_credentials(settings, environ)
    return report
