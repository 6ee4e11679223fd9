"""`crm-etl demo`: the whole pipeline against the sandbox vendors, into the embedded DuckDB warehouse."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import click

from . import main
from .runtime import prepare_environment


@main.command()
@click.option("--seed", default=42, show_default=True, help="Sandbox company seed.")
@click.option("--size", default="demo", show_default=True, help="Sandbox size: tiny, demo, small, large.")
@click.option("--keep/--fresh", default=False, show_default=True,
              help="--fresh (default) starts from an empty warehouse; --keep syncs incrementally into the existing one.")
@click.option("--verbose", is_flag=True, help="Print every Dagster event and dlt warning, not just the progress lines.")
def demo(seed: int, size: str, keep: bool, verbose: bool) -> None:
    """Generate the sandbox company, serve its vendor APIs on 127.0.0.1, run every asset, print a summary."""
    prepare_environment()
    if not verbose:
        # the run log in the Dagster instance keeps every event; the terminal shows the assets' progress lines,
        # and dlt's per-load notes (columns not seen yet, flattened names) only on --verbose
        os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
    started = time.monotonic()
    from warehouse import Warehouse, duckdb_file, warehouse_url

    url = warehouse_url()
    if url.startswith("duckdb:") and not keep:
        path = Path(duckdb_file(url))
        for p in (path, path.with_suffix(".duckdb.wal")):
            p.unlink(missing_ok=True)
        shutil.rmtree(Path(os.environ["DLT_DATA_DIR"]) / "pipelines", ignore_errors=True)

    import dagster as dg

    from sandbox.generator import generate_world
    from sandbox.pipeline_run import run_full_pipeline, sandbox_environment

    click.echo(f"Generating the sandbox company (seed {seed}, size {size})...")
    world = generate_world(seed=seed, size=size)
    files_dir = Path(os.environ.get("CRM_ETL_DATA_DIR", "data")) / "sandbox_files"
    with sandbox_environment(world, files_dir) as srv:
        for vendor in srv.apps:
            click.echo(f"  sandbox {vendor:<9} {srv.vendor_url(vendor)}")
        click.echo(f"  files             {files_dir} (cost inputs, Sirene stock)")
        result = run_full_pipeline(instance=dg.DagsterInstance.get(), echo=click.echo,
                                   log_level="DEBUG" if verbose else "INFO")
        requests_made = srv.stats().get("total")

    from .report import print_summary

    print_summary(Warehouse(url), result, echo=click.echo)
    click.echo(f"\nSandbox requests served: {requests_made}. Wall time: {time.monotonic() - started:.1f} s.")
    click.echo(
        "\nWhere to look next:\n"
        f"  - the warehouse: {url.replace('duckdb:///', '')} (schemas staging, core, quality, marts)\n"
        "  - the Dagster UI with this run's history: make dev, then http://127.0.0.1:3000\n"
        "  - the data dictionary: docs/data-dictionary.md"
    )
    if not result.success:
        raise SystemExit(1)
