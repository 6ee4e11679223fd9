"""Dagster resources. The warehouse is chosen by environment: DuckDB file by default, PostgreSQL by URL."""

import logging
import os
from typing import Optional

import dagster as dg

from warehouse import Warehouse, warehouse_url

from .check_steps import QUALITY_STEP_TAG

log = logging.getLogger(__name__)


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse every asset reads and writes. `url` defaults to CRM_ETL_WAREHOUSE_URL or data/warehouse.duckdb."""

    url: Optional[str] = None

    def get(self) -> Warehouse:
        return Warehouse(warehouse_url(self.url))


def warehouse_dialect() -> str:
    return "postgres" if warehouse_url().startswith("postgresql") else "duckdb"


def run_executor() -> dg.ExecutorDefinition:
    """The executor of every job of the code location: every step in the run's own process, unless
    CRM_ETL_PARALLEL_STEPS=N (N > 1) on PostgreSQL asks for N step processes side by side.

    In process by default, on both warehouses: DuckDB allows one writing process, and on PostgreSQL a step process
    costs more than it saves on a small machine (PostgreSQL marts rebuilt at 10% of the benchmark size on this
    2-core machine: 6.2 s in process, 11.1 s with two forked step processes; `bench/bench_marts_dagster.py --scale
    0.1 --postgres [--parallel-steps 2]`). A PostgreSQL server with cores to spare runs independent steps side by
    side with CRM_ETL_PARALLEL_STEPS; their processes are forked from a server that has imported the code location
    (a fresh interpreter spends ~3 s importing Dagster, dlt and this project)."""
    raw = os.environ.get("CRM_ETL_PARALLEL_STEPS") or "1"
    try:
        parallel = int(raw)
    except ValueError:
        log.warning("CRM_ETL_PARALLEL_STEPS=%r is not a whole number: steps run in the run's process", raw)
        parallel = 1
    if parallel <= 1 or warehouse_dialect() == "duckdb":
        return dg.in_process_executor
    return dg.multiprocess_executor.configured({
        "max_concurrent": parallel,
        "start_method": {"forkserver": {"preload_modules": ["pipelines.definitions"]}},
        # the quality steps rebuild one shared scorecard table: one at a time (pipelines/quality_checks.py)
        "tag_concurrency_limits": [{"key": QUALITY_STEP_TAG, "limit": 1}],
    })
