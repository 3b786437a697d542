"""``aurora/tenant``: Aurora as an observable source asset, where the lineage starts.

An observation is one request: the first page of the tenant's projects (newest first). It
records the newest project (id, name, created) and, since Aurora's list answers carry no total,
the project count when the first page is the only one, else how many projects the pipeline
knows (the ``aurora_projects`` partitions) and how many of the first page it does not know yet
(discovery's backlog). The data version is the newest project's id, so a new project shows as a
change of the source. The staging assets depend on it (``defs/catalog.py``).
"""

import warnings

import dagster as dg
from dagster_duckdb import DuckDBResource

from ..partitions import known_projects
from ..tenancy import names_of_asset
from ..resources import AuroraResource

AURORA_SOURCE_KEY = dg.AssetKey(["aurora", "tenant"])
SOURCES_GROUP = "sources_and_sinks"


def aurora_tenant(context, aurora: AuroraResource, duckdb: DuckDBResource):
    """Observes the Aurora tenant with one paged request. (``duckdb`` is not read: requiring it starts
    the run's worker record, which run monitoring needs for every run; see ``defs/run_worker.py``.)"""
    client = aurora.client
    page = next(client.pages("projects"))
    known = set(known_projects(context.instance, names_of_asset(context).partitions))
    newest = page.items[0] if page.items else {}
    metadata = {
        "newest_project_id": str(newest.get("id") or ""),
        "newest_project_name": str(newest.get("name") or ""),
        "newest_project_created_at": str(newest.get("created_at") or ""),
        "projects_on_first_page": len(page.items),
        "projects_known": len(known),
        "first_page_projects_not_yet_known": sum(1 for p in page.items if p.get("id") not in known),
    }
    if page.last:
        metadata["project_count"] = len(page.items)
    yield dg.ObserveResult(metadata=metadata,  # its one asset: the tenant's key in a tenant's location
                           data_version=dg.DataVersion(str(newest.get("id") or "empty")))


with warnings.catch_warnings():  # multi_observable_source_asset is marked beta
    warnings.simplefilter("ignore")
    aurora_tenant = dg.multi_observable_source_asset(
        specs=[dg.AssetSpec(
            AURORA_SOURCE_KEY, group_name=SOURCES_GROUP, owners=["team:integrations"], kinds={"aurora"},
            description="The Aurora tenant's projects, read through the Aurora Sync API (GET /tenants/{id}/projects): "
            "where every staged table comes from. Observed: newest project, project count, discovery backlog.",
        )],
        name="aurora_tenant",
    )(aurora_tenant)
