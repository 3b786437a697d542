"""Resource wiring from the environment.

Secrets (tenant id, tokens, realm, table id) are passed as ``dg.EnvVar`` so Dagster reads
them at run time and never shows or stores their values. Everything else has a production
default; the sandbox launcher only changes base URLs and the time scale.

| variable | meaning | default |
| --- | --- | --- |
| AURORA_TENANT_ID, AURORA_API_TOKEN | Aurora credentials | required |
| QB_REALM_HOSTNAME, QB_USER_TOKEN, QB_TABLE_ID | Quickbase credentials and table | required |
| QB_APP_ID | Quickbase app (optional, for table properties) | unset |
| AURORA_BASE_URL | Aurora API root | https://api.aurorasolar.com |
| QB_BASE_URL | Quickbase API root (without /v1) | https://api.quickbase.com |
| AURORA_QB_DUCKDB | DuckDB file | $DAGSTER_HOME/aurora_qb.duckdb, else ./aurora_qb.duckdb |
| AURORA_QB_TIME_SCALE | shrinks rate windows and backoff (sandbox only) | 1 |
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import dagster as dg
from dagster_duckdb import DuckDBResource
from dagster_duckdb_pandas import DuckDBPandasIOManager

from .resources import AuroraClient, QuickbaseClient
from .storage import STAGING_SCHEMA

AURORA_PROD_URL = "https://api.aurorasolar.com"
QB_PROD_URL = "https://api.quickbase.com"


def duckdb_path() -> str:
    explicit = os.environ.get("AURORA_QB_DUCKDB")
    if explicit:
        return explicit
    home = os.environ.get("DAGSTER_HOME")
    return str(Path(home) / "aurora_qb.duckdb") if home else "aurora_qb.duckdb"


def time_scale() -> float:
    return float(os.environ.get("AURORA_QB_TIME_SCALE", "1"))


def client_timing(scale: float) -> dict[str, Any]:
    """Backoff and timeouts shrunk with the sandbox's time scale (1 = production)."""
    return {
        "backoff_initial_s": 1.0 * scale,
        "backoff_max_s": max(60.0 * scale, 0.05),
        "timeout_s": 30.0 if scale >= 1 else max(2.0, 30.0 * scale),
    }


def storage_resources(path: str) -> dict[str, Any]:
    return {
        "duckdb": DuckDBResource(database=path),
        "io_manager": DuckDBPandasIOManager(database=path, schema=STAGING_SCHEMA),
    }


def build_resources(path: Optional[str] = None, scale: Optional[float] = None) -> dict[str, Any]:
    scale = time_scale() if scale is None else scale
    timing = client_timing(scale)
    app_id = os.environ.get("QB_APP_ID")
    return {
        "aurora": AuroraClient(
            base_url=os.environ.get("AURORA_BASE_URL", AURORA_PROD_URL),
            tenant_id=dg.EnvVar("AURORA_TENANT_ID"),
            api_token=dg.EnvVar("AURORA_API_TOKEN"),
            rate_window_s=60.0 * scale,
            **timing,
        ),
        "quickbase": QuickbaseClient(
            base_url=os.environ.get("QB_BASE_URL", QB_PROD_URL),
            realm_hostname=dg.EnvVar("QB_REALM_HOSTNAME"),
            user_token=dg.EnvVar("QB_USER_TOKEN"),
            table_id=dg.EnvVar("QB_TABLE_ID"),
            app_id=app_id,
            rate_window_s=10.0 * scale,
            **timing,
        ),
        **storage_resources(path or duckdb_path()),
    }
