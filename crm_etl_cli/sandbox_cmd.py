"""`crm-etl sandbox ...`: the local vendor stand-in (see sandbox/)."""
from __future__ import annotations

import click

from . import main


@main.group()
def sandbox() -> None:
    """The deterministic sandbox company and its vendor APIs."""
