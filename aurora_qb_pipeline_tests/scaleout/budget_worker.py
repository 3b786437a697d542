"""What a host of the rate-budget test runs, in a module of its own so that the spawned processes
import only the clients and the settings (not Dagster, which the test module pulls in)."""

import os

from aurora_qb_pipeline.clients import AuroraClient
from aurora_qb_pipeline.settings import Settings

PG_VARIABLES = ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD")


def aurora_client(env: dict, url: str) -> AuroraClient:
    """An Aurora client of the sandbox in ``env`` whose rate budget is the Postgres bucket at ``url``."""
    settings = Settings.from_env(env, rate_limit_url=url)
    return AuroraClient(base_url=settings.aurora_base_url, tenant_id=env["AURORA_TENANT_ID"],
                        api_token=env["AURORA_API_TOKEN"], options=settings.client_options())


def hammer(env: dict, url: str, project_ids: list, repeats: int) -> None:
    """One host: the libpq variables in its own environment, as a deployment sets them; fetches
    every project ``repeats`` times."""
    os.environ.update({k: env[k] for k in PG_VARIABLES})
    client = aurora_client(env, url)
    try:
        for _ in range(repeats):
            for project_id in project_ids:
                client.get_project(project_id)
    finally:
        client.close()
