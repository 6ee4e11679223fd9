"""Run the whole pipeline against the sandbox company: the demo's and the end-to-end tests' shared path.

Everything real: vendor APIs over HTTP on 127.0.0.1, files on disk, Dagster executing every asset and check.
The Sirene stock is loaded first (the bulk path), so the registry look-ups that follow ask the API only for what
the stock does not hold, as a production deployment would.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from sandbox.files import write_vendor_files
from sandbox.server import SandboxServer

STOCK_SELECTION = "key:raw_registry/stock_companies"


@contextlib.contextmanager
def sandbox_environment(world: Any, files_dir: str | Path, **server_options: Any) -> Iterator[SandboxServer]:
    """Serve the world and write its files; the process environment points every connector at them meanwhile."""
    before = dict(os.environ)
    try:
        os.environ.update(write_vendor_files(world, files_dir))
        with SandboxServer(world, port=0, **server_options) as srv:
            for env in srv.connection_info().values():
                os.environ.update(env)
            yield srv
    finally:
        os.environ.clear()
        os.environ.update(before)


def materialize(selection: str | None = None, instance=None, echo: Callable[[str], None] = print,
                log_level: str = "DEBUG"):
    """Execute every asset and check (or a selection) in this process, recorded in `instance`; the console shows
    the run's events from `log_level` up (the instance keeps them all)."""
    import dagster as dg

    from pipelines.definitions import build_definitions

    defs = build_definitions()
    job = defs.resolve_implicit_global_asset_job_def()
    kwargs = {}
    if selection:
        kwargs["asset_selection"] = list(dg.AssetSelection.from_string(selection).resolve(defs.resolve_asset_graph()))
    return job.execute_in_process(instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=False,
                                  run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
                                  **kwargs)


_JOBS: dict[str, Any] = {}


def everything_job():
    """Every asset and check of the code location as one job, built once per process. Reconstructable
    (`dagster.reconstructable(everything_job)`), so a run can use the code location's executor: with
    CRM_ETL_PARALLEL_STEPS on PostgreSQL, step processes rebuild the job through this function."""
    if "everything" not in _JOBS:
        import dagster as dg

        from pipelines.definitions import build_definitions

        # built from the environment of now (pipelines.definitions.defs keeps the one of its import)
        merged = dg.Definitions.merge(build_definitions(), dg.Definitions(jobs=[dg.define_asset_job("everything")]))
        _JOBS["everything"] = merged.resolve_job_def("everything")
    return _JOBS["everything"]


def execute_with_code_location_executor(selection: str | None, instance):
    """Execute every asset (or a selection) with the executor the code location declares, as the Dagster daemon
    would (materialize() always runs in process). `instance` must be persistent (step processes write to it)."""
    import dagster as dg

    kwargs = {}
    if selection:
        graph = everything_job().asset_layer.asset_graph
        kwargs["asset_selection"] = list(dg.AssetSelection.from_string(selection).resolve(graph))
    return dg.execute_job(dg.reconstructable(everything_job), instance, **kwargs)


def run_full_pipeline(instance=None, echo: Callable[[str], None] = print, log_level: str = "DEBUG"):
    """The Sirene stock first, then everything; returns the second run's result."""
    echo("Loading the Sirene stock file (bulk registry path)...")
    first = materialize(STOCK_SELECTION, instance, echo, log_level)
    if not first.success:
        return first
    echo("Syncing every source and building every table (progress in the Dagster run log)...")
    return materialize(None, instance, echo, log_level)
