"""`crm-etl resync SOURCE [--resource NAME ...] [--dry-run]`: the next sync of a source reads everything again.

Thin: the logic is pipelines.resync (and each connector's `resync_state_paths`). Prints state paths and resource
names, never credentials.
"""
from __future__ import annotations

import click

from . import main


@main.command("resync")
@click.argument("source")  # checked by pipelines.resync against the project's sources (its import is slow: not here)
@click.option("--resource", "resources", multiple=True, metavar="NAME",
              help="Only this resource of the source (repeatable), e.g. --resource contacts; default: all.")
@click.option("--dry-run", is_flag=True, help="Show what would be reset, change nothing.")
def resync(source: str, resources: tuple[str, ...], dry_run: bool) -> None:
    """Make the next sync of SOURCE (hubspot, koban or stripe) read everything again from the vendor, keeping the
    loaded data: the raw tables are merged into (primary keys: no duplicates), never emptied. Refused while a sync
    of SOURCE runs (on this machine, or on any machine loading into a PostgreSQL warehouse)."""
    from .runtime import prepare_environment

    prepare_environment()
    from pipelines.resync import ResyncError, resync as do_resync

    try:
        result = do_resync(source, resources or None, dry_run=dry_run)
    except ResyncError as exc:
        raise click.ClickException(str(exc)) from None
    if result.never_synced:
        click.echo(f"{source} was never synced here (no state in the working folder or the warehouse): its first "
                   "sync reads everything anyway. Nothing to reset.")
        return
    verb = "Would reset" if dry_run else "Reset"
    if result.reset:
        click.echo(f"{verb} the read position of {source} ({len(result.reset)} state entr"
                   f"{'y' if len(result.reset) == 1 else 'ies'}):")
        for path in result.reset:
            click.echo(f"  {source}.{path}")
    elif set(result.resources) - set(result.kept):
        click.echo(f"No read position to reset for {', '.join(r for r in result.resources if r not in result.kept)}: "
                   "never synced, or already reset (their next sync reads everything).")
    for name, why in result.kept.items():
        click.echo(f"Kept: {name}: {why}")
    if dry_run:
        click.echo("Dry run: nothing was reset.")
    else:
        click.echo(f"The next sync of {source} (`crm-etl run`, `crm-etl run --select 'group:raw_{source}'` or its "
                   "schedule) reads everything again and merges it into the raw tables; they stay as they are until then. If it "
                   "fails midway, the sync after it reads everything again.")
