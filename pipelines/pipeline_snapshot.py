"""The daily pipeline snapshot (marts.mart_pipeline_daily) as a day-partitioned asset: each partition is the state of
every open deal at the end of that day (UTC), replaced idempotently, so history accumulates and any range of days can
be backfilled (one run, one query per range). Thin: the SQL is transforms/marts/mart_pipeline_daily.sql, the
delete + insert is transforms.build.replace_pipeline_snapshot_days.

A run that names no partition (a sync job, rebuild_marts, the demo's "everything" run) refreshes the last days up to
the data's as-of (transforms.build.refresh_pipeline_snapshot; the whole history the first time), so the marts that
read the snapshot are current after every sync. The `snapshot_pipeline_daily` schedule finalises each day just after
it ends.
"""

import datetime as dt
import os
import warnings

import dagster as dg

from transforms.build import SNAPSHOT_MODEL, refresh_pipeline_snapshot, replace_pipeline_snapshot_days, snapshot_model

from .resources import WarehouseResource, warehouse_dialect
from .transform_assets import _description, column_schema

#: First snapshot day; CRM_ETL_PIPELINE_SNAPSHOT_START overrides it (days before the CRM history are empty anyway).
DEFAULT_START = "2024-01-01"
SNAPSHOT_KEY = dg.AssetKey(list(SNAPSHOT_MODEL))


def pipeline_snapshot_partitions(start_date: "str | None" = None) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(
        start_date=start_date or os.environ.get("CRM_ETL_PIPELINE_SNAPSHOT_START", DEFAULT_START), timezone="UTC"
    )


def pipeline_snapshot_assets(start_date: "str | None" = None) -> list:
    """[marts/mart_pipeline_daily partitioned by day]."""
    model = snapshot_model()
    with warnings.catch_warnings():  # backfill_policy is marked beta; a single-run backfill is what we want
        warnings.simplefilter("ignore", dg.BetaWarning)
        return [_snapshot_asset(model, start_date)]


def _snapshot_asset(model, start_date: "str | None") -> dg.AssetsDefinition:
    schema, table = SNAPSHOT_MODEL

    @dg.asset(
        key=SNAPSHOT_KEY,
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
        wh = warehouse.get()
        if context.has_partition_key or context.has_partition_key_range:
            window = context.partition_time_window
            first = window.start.date()
            last = window.end.date() - dt.timedelta(days=1)  # the window's end is exclusive
            rows = replace_pipeline_snapshot_days(wh, first, last)
        else:
            first, last, rows = refresh_pipeline_snapshot(wh)
        days = f"{first}..{last}" if first else "every day of the history (first build)"
        context.log.info(f"{schema}.{table}: {rows} rows for {days}")
        return dg.MaterializeResult(metadata={"dagster/row_count": rows, "days": days})

    return mart_pipeline_daily


def pipeline_snapshot_job_and_schedule(snapshot_asset: dg.AssetsDefinition):
    """A job that snapshots one day (or a backfilled range) and rebuilds the marts reading the snapshot; its
    schedule runs at 00:30 UTC for the day that just ended."""
    job = dg.define_asset_job(
        "snapshot_pipeline_daily",
        selection=dg.AssetSelection.assets(snapshot_asset).downstream().materializable(),
        description="Snapshot the open pipeline at the end of a day (a partition) and rebuild the marts reading it.",
    )
    schedule = dg.build_schedule_from_partitioned_job(
        job, minute_of_hour=30, default_status=dg.DefaultScheduleStatus.STOPPED
    )
    return job, schedule
