"""`crm-etl bi-role`: the read-only PostgreSQL role for BI tools."""
from __future__ import annotations

import os

import click

from . import main


@main.command("bi-role")
@click.option("--role", default=lambda: os.environ.get("CRM_ETL_BI_ROLE", "crm_etl_bi"), show_default="crm_etl_bi",
              help="Role name (or CRM_ETL_BI_ROLE).")
@click.option("--password-env", default=None, metavar="VAR",
              help="Name of an environment variable holding the role's password (never pass it on the command line).")
def bi_role(role: str, password_env: str | None) -> None:
    """Create or refresh the BI role: reads marts and quality, nothing else, no writes (PostgreSQL warehouse)."""
    from warehouse import Warehouse
    from warehouse.grants import setup_bi_role

    password = None
    if password_env:
        password = os.environ.get(password_env)
        if password is None:
            raise click.UsageError(f"environment variable {password_env} is not set")
    for stmt in setup_bi_role(Warehouse(), role, password):
        click.echo(stmt)
