"""Start both sandbox servers together and describe them as the pipeline's environment.

Used by the tests (in-process threads), the demo and the benchmark::

    with start_sandbox(projects=50, time_scale=0.05) as sandbox:
        env = sandbox.env()  # the variables that point the pipeline at this sandbox

:meth:`Sandbox.env` is the whole contract with the pipeline: the pipeline side builds its
settings and resources from it (the sandbox imports nothing of the pipeline but ``api_facts``).
``aurora-qb sandbox`` runs the same thing in the foreground for ``dagster dev`` sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..api_facts import AURORA_RATE_LIMIT, QUICKBASE_RATE_LIMIT
from .aurora import AuroraState
from .aurora import create_app as create_aurora_app
from .common import SandboxConfig, ServerThread
from .quickbase import QuickbaseState
from .quickbase import create_app as create_quickbase_app
from .aurora.synthetic import generate_tenant
from .synthetic import MODULE_CATALOGUE

# One catalogue module is missing from the Quickbase choice list on purpose: designs using it
# show how the export handles a value the table does not offer (logged, retried next run).
MISSING_CHOICE = MODULE_CATALOGUE[-1]


@dataclass
class Sandbox:
    aurora: AuroraState
    quickbase: QuickbaseState
    aurora_server: ServerThread
    quickbase_server: ServerThread
    time_scale: float

    @property
    def aurora_url(self) -> str:
        return self.aurora_server.url

    @property
    def quickbase_url(self) -> str:
        return self.quickbase_server.url

    def env(self) -> dict[str, str]:
        """Environment variables that point the pipeline at this sandbox."""
        tenant = self.aurora.primary
        return {
            "AURORA_BASE_URL": self.aurora_url,
            "AURORA_TENANT_ID": tenant.tenant_id,
            "AURORA_API_TOKEN": tenant.token,
            "QB_BASE_URL": self.quickbase_url,
            "QB_REALM_HOSTNAME": self.quickbase.realm,
            "QB_USER_TOKEN": str(self.quickbase.token),
            "QB_TABLE_ID": str(self.quickbase.table_id),
            "QB_APP_ID": str(self.quickbase.app_id),
            **({"QB_OPPORTUNITIES_TABLE_ID": str(self.quickbase.opportunities_table_id)}
               if self.quickbase.opportunities_table_id else {}),
            "AURORA_QB_TIME_SCALE": repr(self.time_scale),
        }

    def add_tenant(self, seed: int, projects: int, designs_per_project: float = 2.5,
                   messy_fraction: float = 0.15) -> dict[str, str]:
        """One more Aurora tenant (its own API key, rate-limited on its own like every key) and its own
        designs table in the Quickbase app: ``{"tenant_id", "api_token", "table_id"}`` (many tenants)."""
        tenant = generate_tenant(seed, projects, designs_per_project, messy_fraction)
        self.aurora.add_tenant(tenant)
        table = self.quickbase.add_design_table(str(self.quickbase.app_id),
                                                [m for m in MODULE_CATALOGUE if m != MISSING_CHOICE],
                                                name=f"Aurora Designs {tenant.tenant_id[:8]}")
        return {"tenant_id": tenant.tenant_id, "api_token": tenant.token, "table_id": str(table.id)}

    def configure(self, **settings: Any) -> None:
        """Change latency/fault settings of both servers at once (e.g. fault_5xx_rate=0.2)."""
        self.aurora.config.update(settings)
        self.quickbase.config.update(settings)

    def secrets(self) -> list[str]:
        env = self.env()
        return [env[k] for k in ("AURORA_TENANT_ID", "AURORA_API_TOKEN", "QB_USER_TOKEN", "QB_REALM_HOSTNAME")]

    def stop(self) -> None:
        self.aurora.close()  # webhook deliveries in flight end with the sandbox
        self.aurora_server.stop()
        self.quickbase_server.stop()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_sandbox(
    projects: int = 20,
    designs_per_project: float = 2.5,
    seed: int = 0,
    time_scale: float = 1.0,
    latency_ms: float = 0.0,
    messy_fraction: float = 0.15,
    aurora_port: int = 0,
    quickbase_port: int = 0,
) -> Sandbox:
    """Generate a tenant and a Quickbase table, and serve both on loopback ports."""
    common = dict(time_scale=time_scale, latency_ms=latency_ms, latency_jitter_ms=latency_ms / 3, seed=seed)
    aurora = AuroraState.generate(
        seed=seed,
        projects=projects,
        designs_per_project=designs_per_project,
        messy_fraction=messy_fraction,
        config=SandboxConfig(rate_limit=AURORA_RATE_LIMIT.requests, rate_window_s=AURORA_RATE_LIMIT.window_s, **common),
    )
    quickbase = QuickbaseState.with_design_table(
        [m for m in MODULE_CATALOGUE if m != MISSING_CHOICE],
        seed=seed,
        opportunities=True,  # the app also holds the Opportunities table (issue 14)
        config=SandboxConfig(rate_limit=QUICKBASE_RATE_LIMIT.requests, rate_window_s=QUICKBASE_RATE_LIMIT.window_s,
                              **common),
    )
    aurora_server = ServerThread(create_aurora_app(aurora), port=aurora_port).start()
    quickbase_server = ServerThread(create_quickbase_app(quickbase), port=quickbase_port).start()
    return Sandbox(aurora, quickbase, aurora_server, quickbase_server, time_scale)

