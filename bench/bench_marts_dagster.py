"""Benchmark: the marts rebuilt through Dagster (orchestration included), the way the code location runs them.

    .venv/bin/python bench/bench_marts_dagster.py [--scale 1] [--postgres] [--snapshot-days 90] [--parallel-steps N]

Inputs from bench/scale_marts.py (100% = 1M contacts, 200k companies, 300k deals, 5M activities, 500k invoices).
Three runs of the real assets and blocking key checks (pipelines/), executed as the code location executes them
(pipelines.resources.run_executor: in process, or with --parallel-steps N on PostgreSQL N step processes side by
side), on a temporary Dagster instance:
  1. core + marts from the inputs; the pipeline snapshot is built for the last --snapshot-days days (the history a
     first run builds, limited as a backfill range would be);
  2. the marts alone rebuilt from core, as after a sync: the snapshot refreshes its last
     `pipeline_snapshot_refresh_days` (2) and keeps older days, every other mart is rebuilt whole;
  3. the same, once more (warm).
Prints per-run wall seconds, the slowest steps, and the process's peak RSS (DuckDB runs in it).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def bench_definitions() -> "dg.Definitions":
    """The real core and mart assets and their blocking key checks, on the warehouse of CRM_ETL_WAREHOUSE_URL, with
    the code location's executor (pipelines.resources.run_executor). Module level so that step processes can
    rebuild it (dagster.reconstructable)."""
    import dagster as dg

    from pipelines.key_checks import primary_key_checks
    from pipelines.pipeline_snapshot import SNAPSHOT_KEY, pipeline_snapshot_assets
    from pipelines.quality_checks import SCORECARD
    from pipelines.resources import WarehouseResource, run_executor
    from pipelines.transform_assets import sql_model_assets

    assets = sql_model_assets(("core", "marts"), exclude={SCORECARD, tuple(SNAPSHOT_KEY.path)}) + pipeline_snapshot_assets()
    checks = primary_key_checks(assets)
    return dg.Definitions(
        assets=assets, asset_checks=checks,
        jobs=[dg.define_asset_job("bench_marts", selection=dg.AssetSelection.all())],
        resources={"warehouse": WarehouseResource(url=os.environ["CRM_ETL_WAREHOUSE_URL"])},
        executor=run_executor(),
    )


_JOBS: dict = {}


def bench_job():
    # built once per process, as the code location's module-level `defs` is (rebuilding costs 0.3-0.7 s)
    if "job" not in _JOBS:
        _JOBS["job"] = bench_definitions().get_job_def("bench_marts")
    return _JOBS["job"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--postgres", action="store_true")
    ap.add_argument("--snapshot-days", type=int, default=90)
    ap.add_argument("--parallel-steps", type=int, default=None,
                    help="CRM_ETL_PARALLEL_STEPS for the run (PostgreSQL: N step processes side by side)")
    args = ap.parse_args()
    if args.parallel_steps is not None:
        os.environ["CRM_ETL_PARALLEL_STEPS"] = str(args.parallel_steps)

    import dagster as dg

    warnings.filterwarnings("ignore")
    from pg_scratch import scratch_database
    from scale_marts import generate

    from warehouse.connection import Warehouse

    scratch = contextlib.ExitStack()
    if args.postgres:
        url = scratch.enter_context(scratch_database("bench_marts_dg"))
    else:
        url = f"duckdb:///{scratch.enter_context(tempfile.TemporaryDirectory(prefix='bench_marts_dg_'))}/w.duckdb"
    os.environ["CRM_ETL_WAREHOUSE_URL"] = url  # read by the step processes too
    inst_dir = tempfile.mkdtemp(prefix="bench_marts_dg_home_")
    try:
        wh = Warehouse(url)
        generate(wh, args.scale)
        wh.execute("insert into staging.cfg_settings values ('pipeline_snapshot_from', "
                   f"cast(cast('2026-12-31' as date) - {args.snapshot_days} as text))")
        if args.postgres:
            wh.execute("analyze")
        wh.dispose()

        defs = bench_definitions()
        graph = defs.resolve_asset_graph()
        marts = dg.AssetSelection.groups("marts")  # data_quality_by_owner is the quality step's, not here
        # the core models the marts read (identity-only and enrichment-only core tables need inputs not generated)
        first = marts.upstream().required_multi_asset_neighbors() & (dg.AssetSelection.groups("core") | marts)
        # a persistent instance: the multiprocess executor (PostgreSQL) refuses an ephemeral one
        instance = dg.DagsterInstance.local_temp(inst_dir)
        job = dg.reconstructable(bench_job)
        runs = []
        for label, selection in (("1. core + marts (first run)", first), ("2. marts from core (after a sync)", marts),
                                 ("3. marts from core, again", marts)):
            t = time.perf_counter()
            result = dg.execute_job(job, instance, asset_selection=sorted(selection.resolve(graph)))
            wall = time.perf_counter() - t
            if not result.success:
                failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
                raise SystemExit(f"{label}: the run failed (steps {failed})")
            stats = instance.get_run_step_stats(result.run_id)
            steps = sorted(((s.end_time - s.start_time, s.step_key) for s in stats if s.end_time), reverse=True)
            runs.append((label, wall, len(stats), sum(d for d, _ in steps), steps[:6]))
            print(f"{label}: {wall:.1f} s", file=sys.stderr)
    finally:
        import shutil

        shutil.rmtree(inst_dir, ignore_errors=True)
        scratch.close()  # the DuckDB folder or the PostgreSQL database, gone
    engine = "PostgreSQL" if args.postgres else "DuckDB"
    print(f"\n{engine}, scale {args.scale:.0%}, snapshot {args.snapshot_days} days on the first run, "
          f"load {os.getloadavg()[0]:.1f}, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB "
          f"(step processes: {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:,.0f} MiB)\n")
    print("| run | wall (s) | steps | sum of step times (s) | slowest steps (s) |")
    print("|---|---:|---:|---:|---|")
    for label, wall, n, summed, top in runs:
        slow = ", ".join(f"{k} {d:.1f}" for d, k in top)
        print(f"| {label} | {wall:.1f} | {n} | {summed:.1f} | {slow} |")


if __name__ == "__main__":
    main()
