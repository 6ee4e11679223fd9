"""The daily pipeline snapshot (marts.mart_pipeline_daily) as a day-partitioned asset: each partition is the state of
every open deal at the end of that day (UTC), replaced idempotently, so history accumulates and any range of days can
be backfilled (one run, one query per range). Thin: the SQL is transforms/marts/mart_pipeline_daily.sql, the
delete + insert is transforms.build.replace_pipeline_snapshot_days.

Wiring (pipelines/definitions.py): add `pipeline_snapshot_assets()` to the assets and exclude the unpartitioned SQL
model of the same table from `sql_model_assets` (exclude={..., ("marts", "mart_pipeline_daily")}).
"""

import datetime as dt
import os

import dagster as dg

from transforms.build import SNAPSHOT_MODEL, replace_pipeline_snapshot_days, snapshot_model

from .resources import WarehouseResource, warehouse_dialect
from .transform_assets import _description, column_schema

#: First snapshot day; CRM_ETL_PIPELINE_SNAPSHOT_START overrides it (days before the CRM history are empty anyway).
DEFAULT_START = "2024-01-01"


def pipeline_snapshot_partitions(start_date: "str | None" = None) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(
        start_date=start_date or os.environ.get("CRM_ETL_PIPELINE_SNAPSHOT_START", DEFAULT_START), timezone="UTC"
    )


def pipeline_snapshot_assets(start_date: "str | None" = None) -> list:
    """[marts/mart_pipeline_daily partitioned by day]."""
    model = snapshot_model()
    schema, table = SNAPSHOT_MODEL

    @dg.asset(
        key=dg.AssetKey([schema, table]),
        deps=[dg.AssetKey(list(d)) for d in sorted(model.deps)],
        partitions_def=pipeline_snapshot_partitions(start_date),
        # a backfill of many days is one run and one delete + insert over the range
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="marts",
        kinds={"sql", warehouse_dialect()},
        description=_description(schema, table, model.description()),
        metadata={**column_schema(schema, table), "partition_expr": "snapshot_date"},
    )
    def mart_pipeline_daily(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        window = context.partition_time_window
        first = window.start.date()
        last = window.end.date() - dt.timedelta(days=1)  # the window's end is exclusive
        rows = replace_pipeline_snapshot_days(warehouse.get(), first, last)
        context.log.info(f"{schema}.{table}: {rows} rows for {first}..{last}")
        return dg.MaterializeResult(metadata={"dagster/row_count": rows, "first_day": str(first), "last_day": str(last)})

    return [mart_pipeline_daily]
