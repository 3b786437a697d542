"""deploy/ checked as far as this machine allows (it has no Docker engine): the production instance
file loads as Dagster reads it, with its Docker run launcher, on a real Postgres; it follows the
single-host instance file where both must agree; the compose file, the Dockerfile and the instance
file agree with each other and with the package (commands, variables, extras, paths)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import yaml
from dagster._utils.tags import TagConcurrencyLimitsCounter

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from aurora_qb_pipeline.defs.partitions import TRIGGER_TAG
from aurora_qb_pipeline.run_coordinator import tenant_tags
from aurora_qb_pipeline.settings import OPTIONAL_SECRET_VARIABLES, SECRET_VARIABLES, Settings
from aurora_qb_pipeline.tenants import TENANT_TAG

from .stack import BIN, DEPLOY, REPO_ROOT, compose

SINGLE_HOST = REPO_ROOT / "aurora_qb_pipeline" / "config" / "dagster.yaml"
# What the production file must take over from config/dagster.yaml unchanged (issue 7 owns those
# values): how often a dead run is retried, when a run is ended and its pool slots freed, the pool
# limits. Timeouts and poll intervals may differ: a container starts slower than a process.
SHARED = {
    "run_retries": None,  # every key
    "run_monitoring": ("enabled", "max_runtime_seconds", "free_slots_after_run_end_seconds",
                       "max_resume_run_attempts"),
    "concurrency.pools": None,
}
LIBPQ = {"PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD"}
WEBHOOK_VARIABLES = {"AURORA_QB_WEBHOOK_SECRET", "AURORA_QB_INBOX_URL"}  # issue 9's receiver
DOCKER = {"DAGSTER_CURRENT_IMAGE"}  # tells the Docker run launcher the image of the code location


def _deploy_config() -> dict:
    return yaml.safe_load((DEPLOY / "dagster.yaml").read_text())


def _section(config: dict, dotted: str) -> dict:
    for part in dotted.split("."):
        config = config.get(part) or {}
    return config


def _env_refs(node) -> set[str]:
    """Every ``{env: NAME}`` in a Dagster config tree."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(_env_refs(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_env_refs(v) for v in node)) if node else set()
    return set()


def test_the_production_instance_loads_on_postgres_with_its_docker_launcher(postgres, tmp_path, monkeypatch):
    database = postgres.create_database("dagster_config")
    for name, value in postgres.env(database).items():
        monkeypatch.setenv(name, value)
    shutil.copy(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_launcher).__name__ == "DockerRunLauncher"  # built without an engine
        assert type(instance.run_coordinator).__name__ == "TenantRunCoordinator"  # a QueuedRunCoordinator
        assert instance.run_monitoring_enabled and instance.run_retries_enabled
        concurrency = instance.get_concurrency_config()
        assert concurrency.pool_config.default_pool_limit == 1
        limits = concurrency.run_queue_config.tag_concurrency_limits
        assert concurrency.run_queue_config.max_concurrent_runs == 4

        # the tag limits do what deploy/dagster.yaml says, as the daemon's own counter applies them
        def run(trigger):  # tagged as the run coordinator tags it when it is submitted
            tags = {TRIGGER_TAG: trigger}
            return dg.DagsterRun(job_name="aurora_quickbase_sync", tags={**tags, **tenant_tags(tags)})

        counter = TagConcurrencyLimitsCounter(limits, [run("design_requests"), run("design_requests"),
                                                       run("daily_reconcile")])
        assert counter.is_blocked(run("design_requests"))  # at most 2 runs of one trigger
        assert counter.is_blocked(run("daily_reconcile"))  # one nightly reconcile at a time
        assert not counter.is_blocked(run("discovery"))  # the others still get slots
        assert not counter.is_blocked(dg.DagsterRun(job_name="aurora_quickbase_sync"))  # a manual run too

        # many tenants: one tenant's backlog holds at most 2 slots, the other tenants keep theirs
        def tenant_run(name):
            return dg.DagsterRun(job_name="aurora_quickbase_sync", tags={TENANT_TAG: name})

        counter = TagConcurrencyLimitsCounter(limits, [tenant_run("acme"), tenant_run("acme")])
        assert counter.is_blocked(tenant_run("acme"))
        assert not counter.is_blocked(tenant_run("globex"))


def test_the_production_instance_follows_the_single_host_one():
    deploy, single = _deploy_config(), yaml.safe_load(SINGLE_HOST.read_text())
    for dotted, keys in SHARED.items():
        reference, production = _section(single, dotted), _section(deploy, dotted)
        for key in keys or reference:
            if key in reference:
                assert production.get(key) == reference[key], (
                    f"deploy/dagster.yaml {dotted}.{key} is {production.get(key)!r}, "
                    f"config/dagster.yaml says {reference[key]!r}: keep them in step")
    assert deploy["run_retries"]["enabled"] and deploy["run_monitoring"]["enabled"]
    # no secret in the file: every connection value comes from the environment
    assert _env_refs(deploy["storage"]) == LIBPQ
    text = (DEPLOY / "dagster.yaml").read_text()
    assert all(value.startswith("{env:") for value in re.findall(r"^\s*password:\s*(.*)$", text, re.M))


def test_compose_dockerfile_and_instance_agree():
    services = compose()["services"]
    assert set(services) == {"postgres", "code-server", "webserver", "daemon", "webhooks"}
    # every command is a program the package installs
    for name, service in services.items():
        if "command" in service:
            assert (BIN / service["command"][0]).exists(), (name, service["command"])
    workspace_path = "/opt/dagster/app/deploy/workspace.yaml"
    for name in ("webserver", "daemon"):
        assert services[name]["command"][-1] == workspace_path

    dockerfile = (DEPLOY / "Dockerfile").read_text()
    # the image's default command is the code server's, which the Postgres tests run
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1)
    assert yaml.safe_load(cmd) == services["code-server"]["command"]
    assert f"COPY deploy/workspace.yaml {workspace_path}" in dockerfile
    assert "COPY deploy/dagster.yaml ${DAGSTER_HOME}/dagster.yaml" in dockerfile
    extras = re.search(r"pip install '\.\[([a-z,]+)\]'", dockerfile).group(1).split(",")
    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras) <= set(declared) and {"postgres", "docker"} <= set(extras)
    allowed = {line[1:].rstrip("/") for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
               if line.startswith("!")}
    for line in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M):
        for source in line.split():
            assert (REPO_ROOT / source).exists(), source
            assert source.rstrip("/") in allowed, f"{source} is left out of the build context"

    # the run launcher passes each variable by name from the daemon: the daemon must have them all,
    # and the code server (whose environment the run worker mirrors) too
    passed = set(_deploy_config()["run_launcher"]["config"]["env_vars"])
    for name in ("daemon", "code-server"):
        missing = passed - set(services[name]["environment"])
        assert not missing, f"{name} lacks {sorted(missing)}"
    # the instance file's variables reach every service that loads the instance
    for name in ("webserver", "daemon", "code-server"):
        assert _env_refs(_deploy_config()) <= set(services[name]["environment"]), name
    # every variable given to the pipeline is one it reads
    known = set(Settings.variables()) | set(SECRET_VARIABLES) | set(OPTIONAL_SECRET_VARIABLES) | LIBPQ | WEBHOOK_VARIABLES | DOCKER
    for name in ("code-server", "daemon", "webhooks"):
        unknown = set(services[name]["environment"]) - known
        assert not unknown, f"{name}: {sorted(unknown)} are read by nothing"
    # no secret value in the compose file: each comes from deploy/.env (env.example names them)
    example = (DEPLOY / "env.example").read_text()
    for secret in (*SECRET_VARIABLES, "POSTGRES_PASSWORD", "AURORA_QB_WEBHOOK_SECRET"):
        assert re.search(rf"^{secret}=$", example, re.M), secret
    for secret in OPTIONAL_SECRET_VARIABLES:
        assert re.search(rf"^{secret}=$", example, re.M), secret
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            # required where they are needed (the receiver cannot start without the webhook secret)
            required = (*SECRET_VARIABLES, "PGPASSWORD", "POSTGRES_PASSWORD") + (
                ("AURORA_QB_WEBHOOK_SECRET",) if name == "webhooks" else ())
            if key in required:
                assert str(value).startswith("${") and ":?" in str(value), (key, value)
            elif key in (*OPTIONAL_SECRET_VARIABLES, "AURORA_QB_WEBHOOK_SECRET"):  # optional: empty is off
                assert str(value) == f"${{{key}:-}}", (key, value)


def test_the_webhook_service_command_is_one_the_cli_accepts():
    """The compose file's receiver service runs ``aurora-qb webhooks serve`` with options it has."""
    command = compose()["services"]["webhooks"]["command"]
    assert command[:3] == ["aurora-qb", "webhooks", "serve"], command
    probe = subprocess.run([str(BIN / "aurora-qb"), "webhooks", "serve", "--help"], capture_output=True, text=True,
                           timeout=60)
    assert probe.returncode == 0, probe.stderr
    for option in (part for part in command if part.startswith("--")):
        assert option in probe.stdout, option


def test_the_workspace_points_at_the_code_server_service():
    server = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())["load_from"][0]["grpc_server"]
    code_server = compose()["services"]["code-server"]["command"]
    assert server["host"] == "code-server"
    assert str(server["port"]) == code_server[code_server.index("-p") + 1]
    assert Path(REPO_ROOT / "workspace.yaml").exists()  # the single-host workspace stays as it is
