"""Dagster resources. The warehouse is chosen by environment: DuckDB file by default, PostgreSQL by URL."""

from typing import Optional

import dagster as dg

from warehouse import Warehouse, warehouse_url


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse every asset reads and writes. `url` defaults to CRM_ETL_WAREHOUSE_URL or data/warehouse.duckdb."""

    url: Optional[str] = None

    def get(self) -> Warehouse:
        return Warehouse(warehouse_url(self.url))


def warehouse_dialect() -> str:
    return "postgres" if warehouse_url().startswith("postgresql") else "duckdb"
