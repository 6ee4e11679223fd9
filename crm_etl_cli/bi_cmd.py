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
@click.option("--with-core", is_flag=True,
              help="Also read core: resolved people and companies and sales ops' working lists (contacts likely gone, "
                   "lead hand-off, tier suggestions, registry review). Personal data: for a sales-ops role, not a "
                   "dashboard's. Without it, a role that had core loses it.")
def bi_role(role: str, password_env: str | None, with_core: bool) -> None:
    """Create or refresh the BI role: reads marts and quality (and core with --with-core), no writes (PostgreSQL)."""
    from warehouse import Warehouse
    from warehouse.grants import setup_bi_role

    password = None
    if password_env:
        password = os.environ.get(password_env)
        if password is None:
            raise click.UsageError(f"environment variable {password_env} is not set")
    for stmt in setup_bi_role(Warehouse(), role, password, with_core=with_core):
        click.echo(stmt)
