"""The Dagster code location: what a data engineer sees in the UI, and that the real CLI loads it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def defs():
    from pipelines.definitions import build_definitions

    d = build_definitions()
    dg.Definitions.validate_loadable(d)
    return d


def test_every_source_is_its_own_group_with_a_job_and_a_schedule(defs):
    graph = defs.resolve_asset_graph()
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    for source in ("hubspot", "koban", "stripe", "registry", "inputs"):
        assert f"raw_{source}" in groups
        assert defs.resolve_job_def(f"sync_{source}")
        schedule = defs.resolve_schedule_def(f"sync_{source}_schedule")
        assert schedule.execution_timezone == "Europe/Paris"
    assert {"config", "staging", "core", "quality", "marts"} <= groups
    assert defs.resolve_sensor_def("inputs_folder_changed")


def test_pipeline_snapshot_is_partitioned_by_day_with_its_daily_job(defs):
    graph = defs.resolve_asset_graph()
    key = dg.AssetKey(["marts", "mart_pipeline_daily"])
    partitions = graph.get(key).partitions_def
    assert isinstance(partitions, dg.DailyPartitionsDefinition) and partitions.timezone == "UTC"
    # the marts reading the snapshot are rebuilt by the same job, which a backfill of a range runs once
    job = defs.resolve_job_def("snapshot_pipeline_daily")
    assert job.partitions_def == partitions
    assert {dg.AssetKey(["marts", "mart_weighted_pipeline"]), dg.AssetKey(["marts", "mart_forecast_accuracy"])} <= set(
        job.asset_layer.executable_asset_keys
    )
    schedule = defs.resolve_schedule_def("snapshot_pipeline_daily_schedule")
    assert schedule.job_name == "snapshot_pipeline_daily"
    # a sync still refreshes the snapshot (its recent days), so the weighted pipeline is current after every sync
    assert key in defs.resolve_job_def("sync_hubspot").asset_layer.executable_asset_keys


def test_lineage_runs_from_raw_to_marts(defs):
    graph = defs.resolve_asset_graph()
    win_rate = dg.AssetKey(["marts", "mart_win_rate"])
    upstream = graph.get(win_rate).parent_keys
    assert dg.AssetKey(["core", "fct_deals"]) in upstream
    # walk back to the raw HubSpot deals
    seen, stack = set(), [win_rate]
    while stack:
        key = stack.pop()
        if key in seen:
            continue
        seen.add(key)
        stack.extend(graph.get(key).parent_keys)
    assert dg.AssetKey(["raw_hubspot", "deals"]) in seen
    assert dg.AssetKey(["raw_koban", "deals"]) in seen


def test_every_table_asset_has_a_description_and_documented_columns(defs):
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if key.path[0] in ("staging", "core", "marts") and node.is_materializable:
            assert node.description, f"{key.to_user_string()} has no description"


def test_blocking_checks_guard_staging(defs):
    graph = defs.resolve_asset_graph()
    specs = {k: graph.get_check_spec(k) for k in graph.asset_check_keys}
    key_check = dg.AssetCheckKey(dg.AssetKey(["staging", "deals"]), "primary_key_unique_not_null")
    assert specs[key_check].blocking
    quality = [s for k, s in specs.items() if k.name.startswith("quality_")]
    assert any(s.blocking for s in quality) and any(not s.blocking for s in quality)


def test_raw_assets_carry_freshness_policies(defs):
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey(["raw_hubspot", "contacts"]))
    assert node.freshness_policy is not None


@pytest.mark.slow
def test_dagster_cli_validates_the_workspace(tmp_path):
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "All code locations passed validation" in proc.stdout + proc.stderr


def test_key_check_blocks_downstream_of_a_duplicated_key_and_says_which(tmp_path):
    from pipelines.key_checks import primary_key_checks
    from pipelines.resources import WarehouseResource
    from warehouse import Warehouse

    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    wh = Warehouse(url)
    wh.ensure_schemas(("staging",))
    wh.execute("create table staging.deals as select * from (values ('hubspot', 'd1'), ('hubspot', 'd1'), "
               "('hubspot', 'd2')) v(source_system, deal_id)")
    wh.execute("create table staging.owners as select * from (values ('hubspot', 'o1')) v(source_system, owner_id)")
    wh.dispose()

    @dg.asset(key=["staging", "deals"])
    def deals() -> None:
        return None

    @dg.asset(key=["staging", "owners"])
    def owners() -> None:
        return None

    @dg.asset(deps=[deals], key=["core", "after_deals"])
    def after_deals() -> None:
        return None

    @dg.asset(deps=[owners], key=["core", "after_owners"])
    def after_owners() -> None:
        return None

    checks = primary_key_checks([deals, owners])
    result = dg.materialize([deals, owners, after_deals, after_owners, *checks],
                            resources={"warehouse": WarehouseResource(url=url)}, raise_on_error=False)
    evals = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
    assert evals["owners"].passed and not evals["deals"].passed
    assert evals["deals"].metadata["duplicate_rows"].value == 1
    assert "d1" in str(evals["deals"].metadata["sample_duplicates"].value)
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    # stopped by the blocking check; here both staging keys are checked in one step, so the broken one also holds
    # back after_owners (conservative: those core tables keep their last good content)
    assert dg.AssetKey(["core", "after_deals"]) not in materialized
    assert dg.AssetKey(["core", "after_owners"]) not in materialized


def test_every_check_step_is_a_defined_check_never_a_dagster_split(defs):
    """A multi-asset check over tables that depend on each other is split by Dagster into numbered steps whose
    numbering follows Python's string hashing: each step process of a multiprocess run numbered them differently
    from the run and evaluated other tables' checks (some not built yet). Checks are grouped by depth instead
    (pipelines/check_steps.py), so every step of every job is an asset or a check step the code defines."""
    from dagster._core.execution.api import create_execution_plan

    defined = {c.node_def.name for c in defs.asset_checks} | {
        a.node_def.name for a in defs.assets if isinstance(a, dg.AssetsDefinition) and a.is_executable}
    # jobs of plain ops (resync_<source>): their steps are the ops the code names
    defined |= {node.name for job in defs.jobs if isinstance(job, dg.JobDefinition) for node in job.graph.nodes}
    for job in defs.jobs:
        plan = create_execution_plan(defs.get_job_def(job.name))
        steps = {s.key for s in plan.get_steps_to_execute_in_topo_order()}
        assert steps <= defined, f"{job.name}: steps Dagster split off: {sorted(steps - defined)}"


def test_run_executor_is_in_process_unless_parallel_steps_are_asked_on_postgres(monkeypatch):
    from pipelines.resources import run_executor

    monkeypatch.setenv("CRM_ETL_WAREHOUSE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    monkeypatch.delenv("CRM_ETL_PARALLEL_STEPS", raising=False)
    assert run_executor() is dg.in_process_executor
    monkeypatch.setenv("CRM_ETL_PARALLEL_STEPS", "3")
    parallel = run_executor()
    assert parallel is not dg.in_process_executor and parallel.name == "multiprocess"
    monkeypatch.setenv("CRM_ETL_PARALLEL_STEPS", "two")  # a typo keeps the code location loadable
    assert run_executor() is dg.in_process_executor
    monkeypatch.setenv("CRM_ETL_PARALLEL_STEPS", "3")
    monkeypatch.setenv("CRM_ETL_WAREHOUSE_URL", "duckdb:///w.duckdb")  # one writing process: never parallel
    assert run_executor() is dg.in_process_executor


def test_quality_steps_carry_the_tag_that_runs_them_one_at_a_time(defs):
    """Each quality step rebuilds the same scorecard table: with parallel steps the executor's tag limit keeps two
    of them from running side by side."""
    from pipelines.quality_checks import QUALITY_STEP_TAG

    quality = [c for c in defs.asset_checks if c.node_def.name.startswith("quality_rules")]
    assert len(quality) >= 2
    assert all(QUALITY_STEP_TAG in c.node_def.tags for c in quality)
