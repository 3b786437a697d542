"""The two-way parts per tenant (issue 13): which Quickbase tables a tenant's opportunities and site
surveys use, checked when its code location loads, and the receiver's per-tenant button routes.

Plain Python: no Dagster import.

A tenant's opportunities table is named by ``quickbase_opportunities_table_id_env`` in the tenants
file (default ``QB_OPPORTUNITIES_TABLE_ID``), the app of its site-survey tables by
``quickbase_app_id`` (default ``QB_APP_ID``). Two tenants must not share either: each tenant's
sensor would act on every record of the shared table (an opportunity would become a project in
both Aurora tenants; a survey would be sent with the wrong tenant's token). With one tenant in the
file the shared defaults are fine. :func:`check_not_shared` refuses a sharing location at load,
naming the tenants and the setting to give each.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from .settings import OPPORTUNITIES_TABLE_VARIABLE
from .tenants import TenantConfig, TenantsFile


def opportunities_variable(tenant: Optional[TenantConfig]) -> str:
    """The variable holding ``tenant``'s opportunities table id."""
    return (tenant.quickbase_opportunities_table_id_env if tenant else None) or OPPORTUNITIES_TABLE_VARIABLE


def sharing(tenants: TenantsFile, name: str, value_of: Callable[[TenantConfig], Any]) -> list[str]:
    """The tenants (``name`` among them) whose ``value_of`` equals ``name``'s, when more than one."""
    mine = value_of(tenants.get(name))
    same = [t.name for t in tenants.tenants if value_of(t) == mine]
    return same if len(same) > 1 else []


def check_not_shared(tenants: Optional[TenantsFile], name: Optional[str], what: str,
                     value_of: Callable[[TenantConfig], Any], setting: str) -> None:
    """ValueError when tenant ``name`` shares ``what`` with another tenant of the file."""
    if tenants is None or name is None:
        return
    same = sharing(tenants, name, value_of)
    if same:
        raise ValueError(f"tenants {', '.join(same)} share {what}: each tenant's sensor would act on the other's "
                         f"records. Give each tenant its own `{setting}` in the tenants file (README \"Many tenants\").")


def button_routes_for_tenants(tenants: TenantsFile, environ: dict[str, str], store_url: str,
                              secrets: list[str]) -> list[Any]:
    """The receiver's button routes of every tenant whose opportunities table variable is set:
    ``/tenants/<name>/quickbase/opportunities/...``, each queuing into that tenant's store."""
    from .opportunities.buttons import button_routes
    from .opportunities.store import OpportunityStore

    routes: list[Any] = []
    for tenant in tenants.tenants:
        table = (environ.get(opportunities_variable(tenant)) or "").strip()
        if table:
            routes += button_routes(OpportunityStore(store_url, tenant=tenant.name), table, secrets)
    return routes
