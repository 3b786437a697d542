"""Many Aurora tenants: the tenants file and the per-tenant names (issue 13).

One deployment can sync several Aurora tenants into Quickbase. The optional tenants file
(``AURORA_QB_TENANTS_FILE``, YAML) lists them::

    tenants:
      - name: acme                          # a slug: asset key prefix, pool, partitions, DuckDB file
        aurora_tenant_id: 0f3c...           # the tenant's id in Aurora
        api_token_env: AURORA_API_TOKEN_ACME  # the NAME of the variable holding its API key
      - name: globex
        aurora_tenant_id: 7a21...
        partner: true                       # the partner application's key, temporary tokens per tenant
        quickbase_table_id_env: QB_TABLE_ID_GLOBEX  # optional: its own designs table
        quickbase_opportunities_table_id_env: QB_OPPORTUNITIES_TABLE_ID_GLOBEX  # optional: its own opportunities
        quickbase_app_id: bq7xy2abc          # optional: the app of its own site-survey tables

The file never holds a secret value: credentials are named by their environment variable and read
by Dagster at run time (``dg.EnvVar``). Every problem of the file is reported at once.

Each tenant is its own Dagster code location (``Settings.tenant`` set, e.g. ``AURORA_QB_TENANT``
per code server), so a tenant whose configuration or code fails never holds the others.
:class:`TenantNames` derives every name that must differ between tenants from the tenant's name;
without a tenant (``TenantNames(None)``) every name is the single-tenant one.

Plain Python: no Dagster import (``defs/tenancy.py`` applies the names to the definitions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

TENANT_TAG = "aurora_qb/tenant"
"""Run tag naming the tenant of every run a tenant's code location launches (tag concurrency limits
can hold per tenant: ``applyLimitPerUniqueValue``)."""
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
"""A tenant name: lower case letters, digits and underscores, a letter first (an asset key part, a
pool and partitions name, a file name and a Python identifier alike)."""
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
DEFAULT_PARTITIONS = "aurora_projects"
DEFAULT_POOL = "duckdb"
DEFAULT_LOCATION = "aurora_qb_pipeline"


class TenantsFileError(ValueError):
    """The tenants file cannot be used; ``problems`` lists every one found."""

    def __init__(self, path: Path, problems: list[str]):
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))


class TenantConfig(BaseModel):
    """One Aurora tenant of the deployment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, description="Slug naming the tenant's assets, pool, partitions, files.")
    aurora_tenant_id: str = Field(min_length=1, description="The tenant's id in Aurora.")
    api_token_env: Optional[str] = Field(
        None, pattern=ENV_NAME_PATTERN, description="Name of the environment variable holding its Aurora API key."
    )
    partner: bool = Field(False, description="Use the partner application key (temporary tokens per tenant).")
    quickbase_table_id_env: Optional[str] = Field(
        None, pattern=ENV_NAME_PATTERN, description="Variable holding its designs table id (default QB_TABLE_ID)."
    )
    quickbase_user_token_env: Optional[str] = Field(
        None, pattern=ENV_NAME_PATTERN, description="Variable holding its Quickbase user token (default QB_USER_TOKEN)."
    )
    quickbase_opportunities_table_id_env: Optional[str] = Field(
        None, pattern=ENV_NAME_PATTERN,
        description="Variable holding its opportunities table id (default QB_OPPORTUNITIES_TABLE_ID).",
    )
    quickbase_app_id: Optional[str] = Field(
        None, min_length=1, description="The Quickbase app its site-survey tables are in (an id, not a secret; "
        "default QB_APP_ID). Tenants sharing an app would share those tables.",
    )

    @field_validator("aurora_tenant_id")
    @classmethod
    def _stripped(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @model_validator(mode="after")
    def _one_credential(self) -> "TenantConfig":
        if bool(self.api_token_env) == bool(self.partner):
            raise ValueError("give exactly one credential: api_token_env (the NAME of a variable) or partner: true")
        return self


class TenantsFile(BaseModel):
    """The whole file: at least one tenant, names and Aurora tenant ids unique."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenants: list[TenantConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "TenantsFile":
        problems = []
        for attribute in ("name", "aurora_tenant_id"):
            values = [getattr(t, attribute) for t in self.tenants]
            twice = sorted({v for v in values if values.count(v) > 1})
            if twice:
                problems.append(f"{attribute} must be unique; given more than once: {', '.join(twice)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def get(self, name: str) -> TenantConfig:
        for tenant in self.tenants:
            if tenant.name == name:
                return tenant
        raise KeyError(f"tenant {name!r} is not in the tenants file (it has: "
                       f"{', '.join(t.name for t in self.tenants)})")

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tenants]


def _where(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(file)"


def parse_tenants(text: str, path: Path = Path("<tenants>")) -> TenantsFile:
    """The tenants file from its YAML text; :class:`TenantsFileError` lists every problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TenantsFileError(path, [f"not valid YAML: {exc}"]) from None
    if isinstance(data, list):  # a bare list of tenants is accepted too
        data = {"tenants": data}
    try:
        return TenantsFile.model_validate(data if data is not None else {})
    except ValidationError as exc:
        # the input of a refused value is never echoed (a pasted secret stays out of logs)
        raise TenantsFileError(path, [f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors()]) from None


def load_tenants(path: Path) -> TenantsFile:
    path = Path(path)
    if not path.is_file():
        raise TenantsFileError(path, ["file not found"])
    return parse_tenants(path.read_text(), path)


@dataclass(frozen=True)
class TenantNames:
    """Every name that differs between tenants, from the tenant's name (None: the single-tenant names)."""

    tenant: Optional[str] = None

    def __post_init__(self) -> None:
        if self.tenant is not None and not re.match(NAME_PATTERN, self.tenant):
            raise ValueError(f"not a tenant name: {self.tenant!r} (pattern {NAME_PATTERN})")

    def key_path(self, *parts: str) -> list[str]:
        """An asset key's path: ``[tenant, *parts]`` (``parts`` alone without a tenant)."""
        return [self.tenant, *parts] if self.tenant else list(parts)

    def _suffixed(self, base: str) -> str:
        return f"{base}__{self.tenant}" if self.tenant else base

    @property
    def partitions(self) -> str:
        """The projects' dynamic partitions (instance-wide, hence one set per tenant)."""
        return self._suffixed(DEFAULT_PARTITIONS)

    @property
    def pool(self) -> str:
        """The DuckDB writer pool (limit 1 per pool: each tenant's file has its own writer)."""
        return self._suffixed(DEFAULT_POOL)

    @property
    def location(self) -> str:
        """The code location's name in a workspace."""
        return f"{DEFAULT_LOCATION}__{self.tenant}" if self.tenant else DEFAULT_LOCATION

    @property
    def run_tags(self) -> dict[str, str]:
        return {TENANT_TAG: self.tenant} if self.tenant else {}

    def file(self, path: Path) -> Path:
        """A per-tenant file beside ``path``: ``aurora_qb.duckdb`` -> ``aurora_qb__acme.duckdb``."""
        path = Path(path)
        return path.with_name(f"{path.stem}__{self.tenant}{path.suffix}") if self.tenant else path

    @classmethod
    def of_key_path(cls, path: list[str] | tuple[str, ...]) -> "TenantNames":
        """The names of the location an asset key belongs to: every asset of the pipeline has a two-part
        key (``aurora/designs``), so a third part in front is the tenant."""
        return cls(path[0] if len(path) > 2 else None)
