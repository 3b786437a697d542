"""`dagster dev` against the sandbox, shared by the UI tests of this folder.

The sandbox servers run in the pytest process; `dagster dev` (webserver, daemon, code server,
run and step workers) runs in its own process group and reaches them over loopback. Sensors
and the schedule stay stopped, so the only runs are the ones a test launches.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import pytest
import requests
from dagster_graphql import DagsterGraphQLClient

from aurora_qb_pipeline.processes import stop_process_group
from aurora_qb_pipeline.sandbox.launcher import Sandbox, start_sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTANCE_TEMPLATE = REPO_ROOT / "aurora_qb_pipeline" / "config" / "dagster.yaml"
STARTUP_TIMEOUT_S = 90.0
SHUTDOWN_GRACE_S = 15.0
LOG_TAIL_LINES = 60

T = TypeVar("T")

WORKSPACE_QUERY = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { name repositories { name } }
          ... on PythonError { message causes { message } }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""


def wait_for(probe: Callable[[], Optional[T]], timeout_s: float, interval_s: float = 0.25) -> Optional[T]:
    """Call ``probe`` until it returns something other than None, or ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value is not None or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)


def poll(probe: Callable[[], Optional[T]], timeout_s: float, what: str,
         detail: Callable[[], str] = str, interval_s: float = 0.25) -> T:
    """:func:`wait_for`, failing the test with ``what`` and ``detail()`` on timeout."""
    value = wait_for(probe, timeout_s, interval_s)
    if value is None:
        pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}\n{detail()}", pytrace=False)
    return value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DagsterDev:
    """A running `dagster dev` and the sandbox it talks to."""

    process: subprocess.Popen
    port: int
    log_path: Path
    sandbox: Sandbox
    location_name: str = ""
    repository_name: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def client(self) -> DagsterGraphQLClient:
        return DagsterGraphQLClient("127.0.0.1", port_number=self.port, timeout=30)

    @property
    def repository_selector(self) -> dict[str, str]:
        return {"repositoryLocationName": self.location_name, "repositoryName": self.repository_name}

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last {lines} lines of `dagster dev` output ({self.log_path}) ---\n{tail}"

    def graphql(self, query: str, **variables: Any) -> dict:
        """POST a query; fail with the errors and the server log if GraphQL reports any."""
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=30)
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code != 200 or body.get("errors") or "data" not in body:
            pytest.fail(f"GraphQL request failed ({response.status_code}): {body.get('errors') or response.text[:2000]}"
                        f"\n{self.log_tail()}", pytrace=False)
        return body["data"]

    def _loaded_location(self) -> Optional[tuple[str, str]]:
        """(location, repository) once the single code location has loaded; None while starting."""
        if self.process.poll() is not None:
            pytest.fail(f"`dagster dev` exited with code {self.process.returncode} during startup\n"
                        f"{self.log_tail()}", pytrace=False)
        try:
            requests.get(f"{self.url}/server_info", timeout=2).raise_for_status()
        except requests.RequestException:
            return None
        workspace = self.graphql(WORKSPACE_QUERY)["workspaceOrError"]
        entries = workspace.get("locationEntries") or []
        if not entries or any(e["loadStatus"] != "LOADED" for e in entries):
            return None
        assert len(entries) == 1, f"expected one code location, got {[e['name'] for e in entries]}"
        location = entries[0]["locationOrLoadError"]
        if location["__typename"] != "RepositoryLocation":
            causes = "".join(f"\ncaused by: {cause['message']}" for cause in location["causes"])
            pytest.fail(f"code location {entries[0]['name']} failed to load: {location['message']}{causes}\n"
                        f"{self.log_tail()}", pytrace=False)
        return location["name"], location["repositories"][0]["name"]

    def wait_until_ready(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        self.location_name, self.repository_name = poll(
            self._loaded_location, timeout_s, f"`dagster dev` on {self.url} to load the code location",
            self.log_tail, interval_s=0.5,
        )

    def stop(self) -> None:
        """SIGTERM the whole process group, give it time to shut down, then SIGKILL what is left."""
        survivors = stop_process_group(self.process, grace_s=SHUTDOWN_GRACE_S)
        assert not survivors, f"`dagster dev` left processes behind: {survivors}"


def dagster_dev_env(sandbox: Sandbox, home: Path) -> dict[str, str]:
    env = {**os.environ, **sandbox.env()}
    env.update(
        DAGSTER_HOME=str(home),
        AURORA_QB_DUCKDB=str(home / "aurora_qb.duckdb"),
        AURORA_QB_AUTOMATION="",  # sensors and schedule stopped: no runs but the tests' own
        PYTHONUNBUFFERED="1",
    )
    return env


def start_dagster_dev(port: int, env: dict[str, str], log) -> subprocess.Popen:
    """`dagster dev` in a new session (its own process group, so teardown reaches every child).

    A child inherits an *ignored* SIGINT (pytest started in the background by a non-interactive
    shell), and Dagster maps SIGTERM onto its SIGINT handler, so it would ignore both: with a
    Python handler installed here meanwhile, the child starts with SIGINT at its default."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", str(REPO_ROOT / "workspace.yaml"),
             "-p", str(port), "-h", "127.0.0.1"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if previous is not None:  # None: a handler not set from Python, which cannot be put back
            signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="package")
def dagster_dev(tmp_path_factory):
    """The sandbox (6 projects) plus `dagster dev` on a free port, ready to answer GraphQL.
    Package scope: both UI modules share one server, which takes most of their time to start."""
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(INSTANCE_TEMPLATE, home / "dagster.yaml")
    log_path = home / "dagster_dev.log"
    port = free_port()
    with start_sandbox(projects=6, time_scale=0.01) as sandbox, open(log_path, "wb") as log:
        server = DagsterDev(start_dagster_dev(port, dagster_dev_env(sandbox, home), log), port, log_path, sandbox)
        try:
            server.wait_until_ready()
            yield server
        finally:
            server.stop()
