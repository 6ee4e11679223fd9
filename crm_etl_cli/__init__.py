"""The `crm-etl` command line: what users do outside the Dagster UI.

Each sub-command lives in its own module and is registered here, so the
top-level import stays cheap (heavy imports happen inside the commands).
"""
from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """crm-etl: CRM, billing and registry data into trustworthy sales marts."""


def _register() -> None:
    from . import bi_cmd, demo_cmd, forget_cmd, resolve_cmd, resync_cmd, run_cmd, sandbox_cmd  # noqa: F401  (each registers its sub-commands)


_register()
