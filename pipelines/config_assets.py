"""The sales model file as warehouse tables (staging.cfg_*), so SQL reads configuration like any other table."""

import os

import dagster as dg

from transforms.sales_model import load_sales_model

from .resources import WarehouseResource, warehouse_dialect

CONFIG_TABLES = ("cfg_settings", "cfg_segments", "cfg_activity_types", "cfg_stages", "cfg_fx_rates", "cfg_channels",
                 "cfg_rep_costs")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            dg.AssetKey(["staging", name]),
            group_name="config",
            kinds={"yaml", warehouse_dialect()},
            description=f"{name}: from the sales model file (sales_model.yaml, or CRM_ETL_SALES_MODEL).",
            skippable=False,
        )
        for name in CONFIG_TABLES
    ],
    name="sales_model_config",
)
def sales_model_config(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Validate the sales model file and write its tables; a broken file fails here, with file:line:column."""
    model = load_sales_model(os.environ.get("CRM_ETL_SALES_MODEL"))
    wh = warehouse.get()
    wh.ensure_schemas()
    frames = model.config_frames()
    for name in CONFIG_TABLES:
        rows = wh.write_frame("staging", name, frames[name])
        yield dg.MaterializeResult(asset_key=dg.AssetKey(["staging", name]), metadata={"dagster/row_count": rows})
