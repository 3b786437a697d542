"""``quickbase/designs_table``: the Quickbase table as an observable asset downstream of the export,
where the lineage ends.

An observation is one query (``top`` 1, newest Date Modified first): how many records the table
holds and when one last changed, whoever changed it (the export, or someone in Quickbase). The data
version is that Date Modified and the count, so an edit in Quickbase shows as a change of the sink.
"""

import warnings

import dagster as dg
from dagster_duckdb import DuckDBResource

from ..aurora.source import SOURCES_GROUP
from ..resources import QuickbaseResource
from .assets import EXPORT_KEY

QUICKBASE_SINK_KEY = dg.AssetKey(["quickbase", "designs_table"])


def quickbase_designs_table(quickbase: QuickbaseResource, duckdb: DuckDBResource):
    """Observes the Quickbase table with one query. (``duckdb`` is not read: requiring it starts the
    run's worker record, which run monitoring needs for every run; see ``defs/run_worker.py``.)"""
    count, modified = quickbase.client.table_summary()
    yield dg.ObserveResult(
        metadata={"record_count": count, "last_modified": modified or ""},
        data_version=dg.DataVersion(f"{count}:{modified or ''}"),
    )


with warnings.catch_warnings():  # multi_observable_source_asset is marked beta
    warnings.simplefilter("ignore")
    quickbase_designs_table = dg.multi_observable_source_asset(
        specs=[dg.AssetSpec(
            QUICKBASE_SINK_KEY, deps=[EXPORT_KEY], group_name=SOURCES_GROUP, owners=["team:integrations"],
            kinds={"quickbase"},
            description="The Quickbase table the export upserts into, one record per Aurora design (merge field "
            "Aurora Design ID). Observed: record count and the newest Date Modified.",
        )],
        name="quickbase_designs_table",
    )(quickbase_designs_table)
