"""The production layout of deploy/ as separate processes on this machine: PostgreSQL, a gRPC code
server and the Dagster daemon, each started with the command deploy/docker-compose.yml gives its
service, and an instance from deploy/dagster.yaml.

Two things differ from the containers, and only these: the run launcher is Dagster's default one
(each run a subprocess of the code server, as there is no Docker engine here to start a container
per run), and hosts and ports are loopback ones. Everything else (Postgres storage read from the
PG variables, the queued run coordinator and its tag limits, the pools, run monitoring and run
retries) is the shipped file.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, TypeVar

import pytest
import yaml

from aurora_qb_pipeline.processes import stop_process_group

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
BIN = Path(sys.executable).parent
LOCATION = "aurora_qb_pipeline"
DEFAULT_LAUNCHER = {"module": "dagster._core.launcher", "class": "DefaultRunLauncher"}
# what a process needs from the test's own environment (nothing of Dagster or the pipeline)
BASE_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")

T = TypeVar("T")


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def service_command(service: str) -> list[str]:
    """The command deploy/docker-compose.yml runs for ``service``."""
    return list(compose()["services"][service]["command"])


def pipeline_variables() -> dict[str, str]:
    """The literal (not per-deployment) values the compose file gives the pipeline's services,
    such as the rate budget's URL."""
    env = compose()["x-pipeline-env"]
    return {k: str(v) for k, v in env.items() if not str(v).startswith("${") and not k.startswith("PG")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(probe: Callable[[], Optional[T]], timeout_s: float, what: str, detail: Callable[[], str] = str,
             interval_s: float = 0.25) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}\n{detail()}", pytrace=False)
        time.sleep(interval_s)


@dataclass
class Stack:
    """The processes of one deployment and what they share."""

    home: Path
    workspace: Path
    grpc_port: int
    base_env: dict[str, str]
    pg_env: dict[str, str]
    pipeline_env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def log_path(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def logs(self, lines: int = 40) -> str:
        parts = []
        for name in self.processes:
            text = self.log_path(name).read_text(errors="replace") if self.log_path(name).exists() else ""
            parts.append(f"--- {name} (last {lines} lines) ---\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts)

    @property
    def daemon_env(self) -> dict[str, str]:
        """Webserver, daemon and CLI: the instance (Postgres) only, no API credential."""
        return {**self.base_env, "DAGSTER_HOME": str(self.home), **self.pg_env}

    @property
    def code_env(self) -> dict[str, str]:
        """Code server and its run workers: the instance and the pipeline's variables."""
        return {**self.daemon_env, **self.pipeline_env}

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        command = [str(BIN / command[0]), *command[1:]]
        log = self.log_path(name).open("ab")
        process = subprocess.Popen(command, env=env, cwd=self.home, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        log.close()
        self.processes[name] = process
        return process

    def cli(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
        """Run a ``dagster`` command against this deployment, as an operator would."""
        result = subprocess.run([str(BIN / "dagster"), *args], env=self.daemon_env, cwd=self.home,
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            pytest.fail(f"dagster {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
                        f"\n{self.logs()}", pytrace=False)
        return result

    def stop(self) -> None:
        # the daemon first: it launches runs on the code server(s)
        for name in ("daemon", *(n for n in self.processes if n != "daemon")):
            process = self.processes.get(name)
            if process is not None:
                stop_process_group(process, grace_s=15.0)


def instance_config(grpc_port: int) -> dict:
    """deploy/dagster.yaml with the default run launcher (no Docker engine here)."""
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    config["run_launcher"] = DEFAULT_LAUNCHER
    return config


def workspace_config(grpc_port: int) -> dict:
    """deploy/workspace.yaml pointing at the loopback code server."""
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    server = workspace["load_from"][0]["grpc_server"]
    server.update({"host": "127.0.0.1", "port": grpc_port})
    return workspace


def _grpc_command(port: int) -> list[str]:
    command = service_command("code-server")
    command[command.index("-h") + 1] = "127.0.0.1"
    command[command.index("-p") + 1] = str(port)
    return command


def _daemon_command(workspace: Path) -> list[str]:
    command = service_command("daemon")
    command[command.index("-w") + 1] = str(workspace)
    return command


def _port_open(port: int) -> Optional[bool]:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return None


def _start_code_server(stack: Stack, name: str, port: int, env: dict[str, str]) -> None:
    """A gRPC code server as the compose file starts it, waited for until its health check passes."""
    stack.start(name, _grpc_command(port), env)
    wait_for(lambda: _port_open(port), 120, f"the gRPC code server {name} to listen", stack.logs)
    check = compose()["services"]["code-server"]["healthcheck"]["test"][1:]
    check[check.index("-p") + 1] = str(port)
    health = subprocess.run([str(BIN / check[0]), *check[1:]], env=stack.daemon_env, capture_output=True,
                            text=True, timeout=120)
    assert health.returncode == 0, f"{check}: {health.stdout}{health.stderr}\n{stack.logs()}"


@contextlib.contextmanager
def running_tenant_stack(home: Path, pg_env: dict[str, str], sandbox_env: dict[str, str], duckdb_file: Path,
                         tenants_file: Path, tenant_env: dict[str, dict[str, str]]):
    """Many tenants: one gRPC code server per tenant (``AURORA_QB_TENANT=<name>`` and the tenant's own
    variables each), the daemon, and a workspace with one code location per tenant
    (``aurora-qb tenants workspace --grpc-host``). ``stack.workspace``; locations ``aurora_qb_pipeline__<name>``."""
    from aurora_qb_pipeline.cli.tenants import workspace as tenants_workspace
    from aurora_qb_pipeline.tenants import load_tenants

    home.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in tenant_env}
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(0)))
    workspace = home / "workspace.yaml"
    spec = tenants_workspace(load_tenants(tenants_file), "127.0.0.1")
    for entry in spec["load_from"]:
        server = entry["grpc_server"]
        server["port"] = ports[server["location_name"].split("__", 1)[1]]
    workspace.write_text(yaml.safe_dump(spec))
    base_env = {k: os.environ[k] for k in BASE_VARIABLES if k in os.environ}
    pipeline_env = {**sandbox_env, **pipeline_variables(), "AURORA_QB_DUCKDB": str(duckdb_file),
                    "AURORA_QB_TENANTS_FILE": str(tenants_file)}
    pipeline_env.pop("AURORA_QB_AUTOMATION", None)
    stack = Stack(home, workspace, 0, base_env, pg_env, pipeline_env)
    try:
        for name, env in tenant_env.items():
            _start_code_server(stack, f"code-server-{name}", ports[name],
                               {**stack.code_env, **env, "AURORA_QB_TENANT": name})
        stack.start("daemon", _daemon_command(workspace), stack.daemon_env)
        yield stack
    finally:
        stack.stop()


@contextlib.contextmanager
def running_stack(home: Path, pg_env: dict[str, str], sandbox_env: dict[str, str], duckdb_file: Path):
    """Code server and daemon started as separate processes on a Postgres-backed instance."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(port)))
    workspace = home / "workspace.yaml"
    workspace.write_text(yaml.safe_dump(workspace_config(port)))
    base_env = {k: os.environ[k] for k in BASE_VARIABLES if k in os.environ}
    pipeline_env = {**sandbox_env, **pipeline_variables(), "AURORA_QB_DUCKDB": str(duckdb_file)}
    pipeline_env.pop("AURORA_QB_AUTOMATION", None)  # sensors stay stopped: the tests start what they use
    stack = Stack(home, workspace, port, base_env, pg_env, pipeline_env)
    try:
        stack.start("code-server", _grpc_command(port), stack.code_env)
        wait_for(lambda: _port_open(port), 120, "the gRPC code server to listen", stack.logs)
        # the compose file's health check of the code server
        check = compose()["services"]["code-server"]["healthcheck"]["test"][1:]
        check[check.index("-p") + 1] = str(port)
        health = subprocess.run([str(BIN / check[0]), *check[1:]], env=stack.daemon_env, capture_output=True,
                                text=True, timeout=120)
        assert health.returncode == 0, f"{check}: {health.stdout}{health.stderr}\n{stack.logs()}"
        stack.start("daemon", _daemon_command(workspace), stack.daemon_env)
        yield stack
    finally:
        stack.stop()
