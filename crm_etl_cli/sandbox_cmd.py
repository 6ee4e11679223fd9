"""`crm-etl sandbox ...`: the local vendor stand-in (see sandbox/)."""
from __future__ import annotations

import signal

import click

from . import main


@main.group()
def sandbox() -> None:
    """The deterministic sandbox company and its vendor APIs."""


SIZE_CHOICES = ["tiny", "demo", "small", "large"]


@sandbox.command()
@click.option("--seed", type=int, default=42, show_default=True, help="World seed (same seed, same company).")
@click.option("--size", type=click.Choice(SIZE_CHOICES), default="demo", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (keep it local).")
@click.option("--port", type=int, default=8765, show_default=True, help="0 picks a free port.")
@click.option("--hubspot-token", default=None, help="Bearer token to accept [default: sandbox-hubspot-<seed>].")
@click.option("--hubspot-rate-limit", type=int, default=190, show_default=True, help="Requests per 10 s.")
@click.option("--hubspot-daily-limit", type=int, default=650_000, show_default=True, help="Requests per day.")
@click.option("--hubspot-search-rate-limit", type=int, default=5, show_default=True, help="Searches per second.")
@click.option("--rate-limit-storm", type=int, default=0, metavar="N", help="Fault: the next N requests get a 429.")
@click.option("--server-errors", type=int, default=0, metavar="N", help="Fault: the next N requests get a 5xx.")
@click.option("--delay-ms", type=int, default=0, metavar="MS", help="Fault: answer every request after MS ms.")
@click.option("--malformed-record", type=click.Choice(["bad_date", "bad_id"]), default=None,
              help="Fault: serve one contact with a broken createdate or id.")
@click.option("--update-during-paging", type=int, default=None, metavar="K",
              help="Fault: after K contact list pages, modify a record already served.")
@click.option("--files", "files_dir", default=None, metavar="DIR",
              help="Also write the company's files (cost inputs, Sirene stock) into DIR and print their env vars.")
@click.option("--verbose", is_flag=True, help="Log every request to stderr.")
def serve(seed: int, size: str, host: str, port: int, hubspot_token: str | None, hubspot_rate_limit: int,
          hubspot_daily_limit: int, hubspot_search_rate_limit: int, rate_limit_storm: int, server_errors: int,
          delay_ms: int, malformed_record: str | None, update_during_paging: int | None, files_dir: str | None,
          verbose: bool) -> None:
    """Generate the sandbox company and serve its vendor APIs until Ctrl-C."""
    from sandbox.generator import generate_world
    from sandbox.server import SandboxServer

    click.echo(f"Generating the sandbox company (seed {seed}, size {size})...", err=True)
    world = generate_world(seed=seed, size=size)
    faults = {"rate_limit_storm": rate_limit_storm, "server_errors": server_errors, "delay_ms": delay_ms,
              "malformed_record": malformed_record, "update_during_paging": update_during_paging}
    hubspot = {"rate_limit_max": hubspot_rate_limit, "daily_limit": hubspot_daily_limit,
               "search_rate_limit": hubspot_search_rate_limit}
    if hubspot_token:
        hubspot["token"] = hubspot_token
    try:
        server = SandboxServer(world, host=host, port=port, faults=faults, verbose=verbose, hubspot=hubspot)
        server.start()
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from exc
    store = getattr(world, "hubspot", None)
    if store is not None:
        counts = ", ".join(f"{len(v)} {k}" for k, v in store.objects.items())
        click.echo(f"HubSpot store: {counts}")
    exports = []
    if files_dir:
        from sandbox.files import write_vendor_files

        file_env = write_vendor_files(world, files_dir)
        click.echo(f"{'files':<9} {files_dir}   (cost inputs, Sirene stock)")
        exports += [f"{k}={v}" for k, v in file_env.items()]
    for name, info in server.connection_info().items():
        token = next((v for k, v in info.items() if k.endswith("TOKEN") or k.endswith("KEY")), None)
        click.echo(f"{name:<9} {server.vendor_url(name)}" + (f"   token: {token}" if token else ""))
        exports += [f"{k}={v}" for k, v in info.items()]
    click.echo(f"{'admin':<9} {server.base_url}/_sandbox   (stats, faults, advance, reset-limits)")
    if exports:
        click.echo("export " + " ".join(exports))
    active = {k: v for k, v in faults.items() if v}
    if active:
        click.echo(f"faults on: {active}")
    # Ctrl-C (and a plain `kill`) stop the server cleanly, even when started from a parent that ignores SIGINT
    # (Python then installs no KeyboardInterrupt handler of its own: pytest-xdist workers, nohup, some supervisors)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:  # from the "Serving" line on, Ctrl-C stops the server cleanly
        click.echo("Serving; Ctrl-C to stop.")
        server.wait()
    except KeyboardInterrupt:
        click.echo("Stopping.", err=True)
    finally:
        server.stop()
