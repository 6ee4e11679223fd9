"""The Dagster code location: `dagster dev -w workspace.yaml` or `dg dev` load `defs` from here.

Thin by design: assets wrap connectors (connectors/) and transforms (transforms/); checks guard what they sit on.
"""

import os

import dagster as dg
from dagster_dlt import DagsterDltResource

from .config_assets import sales_model_config
from .identity_assets import identity_resolution
from .ingest import raw_assets, resync_job, sync_job_and_schedule
from .key_checks import primary_key_checks
from .pipeline_snapshot import SNAPSHOT_KEY, pipeline_snapshot_assets, pipeline_snapshot_job_and_schedule
from .quality_checks import SCORECARD, build_quality_checks, freshness_policies, quality_table_specs
from transforms.sales_model import load_sales_model

from .resources import WarehouseResource, run_executor
from .resync import RESYNC_SOURCES
from .sensors import inputs_folder_sensor
from .sources import enabled_sources
from .transform_assets import sql_model_assets, staging_assets


def build_definitions() -> dg.Definitions:
    sales_model = load_sales_model(os.environ.get("CRM_ETL_SALES_MODEL"))
    freshness = freshness_policies(sales_model)
    sources = enabled_sources()
    raw = {spec.name: raw_assets(spec, freshness.get(spec.name)) for spec in sources}
    snapshot = pipeline_snapshot_assets()  # mart_pipeline_daily, partitioned by day
    transforms = (
        [sales_model_config, identity_resolution]
        + staging_assets(sources)
        + sql_model_assets(exclude={SCORECARD, tuple(SNAPSHOT_KEY.path)})
        + snapshot
    )
    assets = list(raw.values()) + transforms + quality_table_specs(sales_model)

    table_assets = [a for a in assets if isinstance(a, dg.AssetsDefinition)]
    checks = primary_key_checks(table_assets) + build_quality_checks(sales_model, assets=assets)

    jobs, schedules, sensors = [], [], []
    for spec in sources:
        job, schedule = sync_job_and_schedule(spec, raw[spec.name])
        jobs.append(job)
        schedules.append(schedule)
        if spec.name == "inputs":
            sensors.append(inputs_folder_sensor(job))
        if spec.name in RESYNC_SOURCES:
            jobs.append(resync_job(spec))
    snapshot_job, snapshot_schedule = pipeline_snapshot_job_and_schedule(snapshot[0])
    jobs.append(snapshot_job)
    schedules.append(snapshot_schedule)
    jobs.append(dg.define_asset_job("rebuild_marts", selection=dg.AssetSelection.groups("config", "staging", "core", "quality", "marts").materializable()))

    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources={"warehouse": WarehouseResource(), "dlt": DagsterDltResource()},
        executor=run_executor(),
    )


defs = build_definitions()
