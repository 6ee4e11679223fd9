"""`crm-etl run`: materialise assets from the command line, recorded in the Dagster instance like UI runs."""
from __future__ import annotations

from typing import Callable

import click

from . import main
from .runtime import prepare_environment


def materialize_all(selection: str | None = None, echo: Callable[[str], None] = print):
    """Run every asset (or an asset selection string) with its checks, in this process, on the local instance."""
    import dagster as dg

    from sandbox.pipeline_run import materialize

    echo("Running the pipeline (progress is in the Dagster run log; `make dev` shows it)...")
    return materialize(selection, dg.DagsterInstance.get(), echo)


@main.command()
@click.option("--select", "selection", default=None, help='Asset selection, e.g. "group:marts" or "key:marts/mart_win_rate+".')
def run(selection: str | None) -> None:
    """Materialise assets (all by default) against the configured sources and warehouse."""
    prepare_environment()
    from warehouse import Warehouse, warehouse_url

    from .report import print_summary

    result = materialize_all(selection, echo=click.echo)
    print_summary(Warehouse(warehouse_url()), result, echo=click.echo)
    if not result.success:
        raise SystemExit(1)
