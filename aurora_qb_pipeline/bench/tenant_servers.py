"""Where each benchmark tenant's Aurora API is served: its own sandbox server process (the
default), or the benchmark's one in-process sandbox shared by every tenant (``--tenant-servers
shared``, the old setup, kept to show the difference).

Why a process per tenant: real Aurora serves every tenant from its own fleet, so one tenant's
traffic never slows another's answers. The sandbox is a Python (uvicorn, asyncio) server: one
process answers on one CPU at a time, so with every tenant behind one process the tenants would
queue behind each other in the *sandbox*, a benchmark artifact the pipeline can do nothing about.
Each tenant's server process enforces exactly what the shared one does (its key 90 requests a
minute scaled by ``--time-scale``, 429 with Retry-After beyond; the same latency), and its
request log is read over the sandbox's own admin route (``GET/DELETE /_sandbox/requests``).

Both kinds answer the same small interface (:class:`TenantServer`): the tenant's URL, key and
data sizes, its request log, and the CPU the server has used (so the report can show what the
sandbox cost).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional, Protocol

import psutil
import requests

from ..api_facts import AURORA_RATE_LIMIT
from ..sandbox.common import ADMIN_PREFIX, SandboxConfig, ServerThread
from ..sandbox.launcher import Sandbox

START_TIMEOUT_S = 120.0
ADMIN_TIMEOUT_S = 60.0


class TenantServer(Protocol):
    url: str
    tenant_id: str
    token: str
    projects: int
    designs: int

    def entries(self) -> list[Any]:
        """This tenant's logged Aurora requests (``.ts``, ``.status``, ``.method``, ``.path``)."""

    def clear(self) -> None:
        """Forget the log (before a measured step)."""

    def cpu_s(self) -> Optional[float]:
        """CPU the server has used so far (None: shared with other work, not separable)."""

    def stop(self) -> None: ...


@dataclass
class SharedTenant:
    """A tenant of the benchmark's in-process sandbox (every tenant behind one server)."""

    sandbox: Sandbox
    tenant_id: str
    token: str
    projects: int
    designs: int

    @property
    def url(self) -> str:
        return self.sandbox.aurora_url

    def entries(self) -> list[Any]:
        return [e for e in self.sandbox.aurora.log.entries() if f"/tenants/{self.tenant_id}/" in e.path]

    def clear(self) -> None:
        self.sandbox.aurora.log.clear()

    def cpu_s(self) -> Optional[float]:
        return None

    def stop(self) -> None:
        pass


class OwnProcessTenant:
    """One tenant's Aurora sandbox in a server process of its own (``python -m ...tenant_servers``)."""

    def __init__(self, workdir: Path, name: str, spec: dict[str, Any]):
        self.name, self._ready = name, workdir / f"{name}.server.json"
        self._ready.unlink(missing_ok=True)
        job = workdir / f"{name}.server.job.json"
        job.write_text(json.dumps({**spec, "ready": str(self._ready)}))
        self._log = (workdir / f"{name}.server.log").open("w")
        self._http: Optional[requests.Session] = None
        # stdin stays open while the benchmark runs: the server ends when it closes (benchmark gone)
        self.process = subprocess.Popen([sys.executable, "-m", "aurora_qb_pipeline.bench.tenant_servers", str(job)],
                                        stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, deadline: float) -> "OwnProcessTenant":
        while not self._ready.exists():
            if self.process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"tenant {self.name}'s sandbox server did not start (see {self._log.name})")
            time.sleep(0.05)
        info = json.loads(self._ready.read_text())
        self.url, self.tenant_id, self.token = info["url"], info["tenant_id"], info["token"]
        self.projects, self.designs = info["projects"], info["designs"]
        self._http = requests.Session()
        self._http.trust_env = False  # loopback: no proxy from the environment
        self._ps = psutil.Process(self.process.pid)
        return self

    def entries(self) -> list[Any]:
        answer = self._http.get(f"{self.url}{ADMIN_PREFIX}/requests", timeout=ADMIN_TIMEOUT_S)
        answer.raise_for_status()
        return [SimpleNamespace(**e) for e in answer.json()]

    def clear(self) -> None:
        self._http.delete(f"{self.url}{ADMIN_PREFIX}/requests", timeout=ADMIN_TIMEOUT_S).raise_for_status()

    def cpu_s(self) -> Optional[float]:
        times = self._ps.cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def start_tenant_servers(kind: str, sandbox: Sandbox, workdir: Path, specs: dict[str, dict[str, Any]]
                         ) -> dict[str, TenantServer]:
    """One server per tenant (``kind`` 'own') or the shared sandbox's tenants (``kind`` 'shared');
    ``specs``: name -> seed, projects, designs_per_project, time_scale, latency_ms."""
    from ..sandbox.aurora import generate_tenant

    servers: dict[str, Any] = {}
    try:
        for name, spec in specs.items():
            if kind == "own":  # all start at once, then each is waited for
                servers[name] = OwnProcessTenant(workdir, name, spec)
            else:
                tenant = generate_tenant(spec["seed"], spec["projects"], spec["designs_per_project"])
                sandbox.aurora.add_tenant(tenant)
                servers[name] = SharedTenant(sandbox, tenant.tenant_id, tenant.token, len(tenant.projects),
                                             len(tenant.designs))
        deadline = time.time() + START_TIMEOUT_S
        for server in servers.values():
            if isinstance(server, OwnProcessTenant):
                server.wait_ready(deadline)
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    return servers


def serve(job_path: str) -> int:
    """The server process: one generated tenant behind the Aurora emulator, until stdin closes."""
    from ..sandbox.aurora import AuroraState, create_app, generate_tenant

    spec = json.loads(Path(job_path).read_text())
    config = SandboxConfig(rate_limit=AURORA_RATE_LIMIT.requests, rate_window_s=AURORA_RATE_LIMIT.window_s,
                           time_scale=spec["time_scale"], latency_ms=spec["latency_ms"],
                           latency_jitter_ms=spec["latency_ms"] / 3, seed=spec["seed"])
    tenant = generate_tenant(spec["seed"], spec["projects"], spec["designs_per_project"])
    state = AuroraState([tenant], config)
    server = ServerThread(create_app(state)).start()
    ready = Path(spec["ready"])
    info = {"url": server.url, "tenant_id": tenant.tenant_id, "token": tenant.token,
            "projects": len(tenant.projects), "designs": len(tenant.designs), "pid": os.getpid()}
    ready.with_suffix(".tmp").write_text(json.dumps(info))
    ready.with_suffix(".tmp").rename(ready)
    try:
        sys.stdin.read()  # until the benchmark closes our stdin (or dies)
    finally:
        state.close()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1]))
