"""Write one partition of a small staged table through the pipeline's DuckDB IO manager:
``python -m aurora_qb_pipeline_tests.crash.atomic_write DB VALUE [--kill-after-delete]``.
With ``--kill-after-delete`` the process SIGKILLs itself between the delete of the partition's
old rows and the insert of the new ones."""

import sys
import warnings

import dagster as dg
import pandas as pd

from aurora_qb_pipeline.defs.storage import AtomicDuckDBPandasIOManager

from .run_sync import KillAfterDeleteClient, KillAfterDeleteIOManager

TABLE = "toy"
PARTITIONS = dg.StaticPartitionsDefinition(["p1", "p2"])


class ToyConfig(dg.Config):
    value: str


@dg.asset(name=TABLE, partitions_def=PARTITIONS, metadata={"partition_expr": "project_id"})
def toy(context: dg.AssetExecutionContext, config: ToyConfig) -> pd.DataFrame:
    return pd.DataFrame({"project_id": [context.partition_key] * 3, "value": [config.value] * 3})


def main() -> int:
    warnings.filterwarnings("ignore")
    database, value, *flags = sys.argv[1:]
    manager_class = KillAfterDeleteIOManager if "--kill-after-delete" in flags else AtomicDuckDBPandasIOManager
    KillAfterDeleteClient.table = TABLE
    result = dg.materialize(
        [toy], partition_key="p1", resources={"io_manager": manager_class(database=database, schema="staging")},
        run_config={"ops": {TABLE: {"config": {"value": value}}}},
    )
    return 0 if result.success else 1


if __name__ == "__main__":
    raise SystemExit(main())
