"""Where the integration stands, for ``aurora-qb status``: the last successful sync, runs queued or
in progress, events waiting in the webhook inbox, what is quarantined, held or refused, and
whether both APIs accept the configured credentials.

Each part is gathered on its own and a part that cannot be read says why (``error``) instead of
failing the whole report. The credentials check makes one cheap authenticated GET per API (the
first project with ``per_page=1``; the table's fields) with a short timeout and one retry; it
shows whether the credentials work, never their values (the clients redact them from errors).

Many tenants (a tenants file): each run names its tenant (its ``aurora_qb/tenant`` tag); the report
covers one tenant (its runs, its DuckDB file, its credentials as the tenants file names them) or
every tenant of the file (all runs, the integration and the credentials per tenant).
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
from .tenants import TENANT_TAG, TenantConfig

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
    checked: bool = True  # False: nothing to check here (a partner application's tokens)


@dataclass
class StatusReport:
    dagster_home: Optional[str]
    duckdb_file: str
    tenant: Optional[str] = None  # the one tenant reported on (None: one tenant only, or every tenant)
    last_successful_sync: Optional[dict] = None
    last_failed_run: Optional[dict] = None
    runs_in_progress: list[dict] = field(default_factory=list)
    runs_error: Optional[str] = None
    webhook_inbox: dict[str, Any] = field(default_factory=dict)
    integration: dict[str, Any] = field(default_factory=dict)
    credentials: list[CredentialCheck] = field(default_factory=list)
    tenants: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Every tenant's integration (as ``integration``) when the report covers several tenants."""

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
            "trigger": run.tags.get(TRIGGER_TAG, "manual"), "tenant": run.tags.get(TENANT_TAG), "created_at": record.create_timestamp.isoformat(),
            "started_at": _iso(record.start_time), "ended_at": _iso(record.end_time)}


def gather_runs(report: StatusReport, home: Optional[Path], tenant: Optional[str] = None) -> None:
    """Last successful and failed sync runs and the runs not finished, from the Dagster instance
    (``tenant``'s only when given: the runs tagged with it)."""
    import dagster as dg

    if home is None or not (home / "dagster.yaml").exists():
        report.runs_error = "no Dagster home (set DAGSTER_HOME or pass --home)"
        return
    instance = dg.DagsterInstance.from_config(str(home))
    tags = {TENANT_TAG: tenant} if tenant else None
    try:
        def newest(statuses) -> Optional[dict]:
            found = [r for job in SYNC_JOBS for r in instance.get_run_records(
                dg.RunsFilter(job_name=job, statuses=statuses, tags=tags), limit=1)]
            return _run(max(found, key=lambda r: r.end_time or 0)) if found else None

        report.last_successful_sync = newest([dg.DagsterRunStatus.SUCCESS])
        report.last_failed_run = newest([dg.DagsterRunStatus.FAILURE])
        waiting = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
                   dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
        report.runs_in_progress = [_run(r) for r in instance.get_run_records(dg.RunsFilter(statuses=waiting, tags=tags),
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


def integration_of(settings: Settings, wait_s: float) -> dict[str, Any]:
    """Quarantined rows per asset, designs held and refused, designs synced, the last export."""
    try:
        with open_read_only(settings.duckdb_file, wait_s) as conn:
            if conn is None:
                return {"note": "no DuckDB file yet: nothing has been synced"}
            return read_counts(conn, settings.hold_policy).as_json()
    except DatabaseBusy as exc:
        return {"error": str(exc)}


def gather_integration(report: StatusReport, settings: Settings, wait_s: float) -> None:
    report.integration = integration_of(settings, wait_s)


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


def _tenant_environ(tenant: TenantConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` plus a tenant's credentials under the single-tenant names (as the tenants file names
    them), which the checks read."""
    view = {**environ, "AURORA_TENANT_ID": tenant.aurora_tenant_id}
    view["AURORA_API_TOKEN"] = environ.get(tenant.api_token_env or "", "")
    for variable, own in (("QB_TABLE_ID", tenant.quickbase_table_id_env),
                          ("QB_USER_TOKEN", tenant.quickbase_user_token_env)):
        if own:
            view[variable] = environ.get(own, "")
    return view


def check_credentials(settings: Settings, environ: Mapping[str, str]) -> list[CredentialCheck]:
    """One authenticated GET per API; what each answered (the values are never shown). A tenant's
    (``settings.tenant``) are the ones its entry of the tenants file names."""
    tenant = settings.tenant_config()
    label = f" ({tenant.name})" if tenant else ""
    if tenant is not None:
        environ = _tenant_environ(tenant, environ)
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

    if tenant is None:
        return [_check("Aurora", AURORA_VARIABLES, environ, aurora),
                _check("Quickbase", QUICKBASE_VARIABLES, environ, quickbase)]
    # the variables named as the operator set them (the tenant's own, where the file names one)
    quickbase_variables = ("QB_REALM_HOSTNAME", tenant.quickbase_user_token_env or "QB_USER_TOKEN",
                           tenant.quickbase_table_id_env or "QB_TABLE_ID")
    aurora_check = (CredentialCheck("Aurora" + label, True, "not checked here: partner application tokens", False)
                    if tenant.partner else _check("Aurora" + label, (str(tenant.api_token_env),), environ, aurora))
    return [aurora_check, _check("Quickbase" + label, quickbase_variables, environ, quickbase)]


def gather(settings: Settings, environ: Mapping[str, str], home: Optional[Path], check_apis: bool = True,
           wait_s: float = 10.0, tenants: Optional[list[Settings]] = None) -> StatusReport:
    """The report for ``settings`` (one tenant's when ``settings.tenant`` is set), or, with ``tenants``
    (the settings of each tenant), for every tenant: all runs, each tenant's integration and credentials."""
    report = StatusReport(dagster_home=str(home) if home else None, duckdb_file=settings.duckdb_file,
                          tenant=settings.tenant)
    try:
        gather_runs(report, home, settings.tenant)
    except Exception as exc:  # noqa: BLE001 - reported, the rest of the status goes on
        report.runs_error = f"{type(exc).__name__}: {str(exc)[:200]}"
    gather_inbox(report, settings)
    if tenants:
        report.tenants = {str(t.tenant): {"duckdb_file": t.duckdb_file, **integration_of(t, wait_s)} for t in tenants}
    else:
        gather_integration(report, settings, wait_s)
    if check_apis:
        report.credentials = [c for t in (tenants or [settings]) for c in check_credentials(t, environ)]
    return report
