"""The Dagster code location: `dagster dev -w workspace.yaml` or `dg dev` load `defs` from here.

Thin by design: assets wrap connectors (connectors/) and transforms (transforms/); checks guard what they sit on.
"""

import dagster as dg
from dagster_dlt import DagsterDltResource

from .config_assets import sales_model_config
from .identity_assets import identity_resolution
from .ingest import raw_assets, sync_job_and_schedule
from .key_checks import primary_key_checks
from .resources import WarehouseResource, warehouse_dialect
from .sources import enabled_sources
from .transform_assets import sql_model_assets, staging_assets


def build_definitions() -> dg.Definitions:
    sources = enabled_sources()
    raw = {spec.name: raw_assets(spec) for spec in sources}
    transforms = [sales_model_config, identity_resolution] + staging_assets([s.name for s in sources]) + sql_model_assets()
    assets = list(raw.values()) + transforms

    asset_keys = {k for a in assets for k in a.keys}
    checks = primary_key_checks(asset_keys)

    jobs, schedules = [], []
    for spec in sources:
        job, schedule = sync_job_and_schedule(spec, raw[spec.name])
        jobs.append(job)
        schedules.append(schedule)
    jobs.append(dg.define_asset_job("rebuild_marts", selection=dg.AssetSelection.groups("staging", "core", "quality", "marts")))

    # DuckDB allows one writing process: run steps in the run's own process. PostgreSQL takes parallel steps.
    executor = dg.in_process_executor if warehouse_dialect() == "duckdb" else dg.multiprocess_executor.configured({"max_concurrent": 2})
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        schedules=schedules,
        resources={"warehouse": WarehouseResource(), "dlt": DagsterDltResource()},
        executor=executor,
    )


defs = build_definitions()
