"""Contact (person) resolution: see core.resolve."""
from __future__ import annotations

from typing import Any

import duckdb

from .config import ContactsConfig
from .core import Resolution, resolve, update


def resolve_contacts(data: Any, *, con: duckdb.DuckDBPyConnection | None = None, config: ContactsConfig | None = None,
                     prefix: str = "identity_contacts", **kw) -> Resolution:
    """Crosswalk + golden records for contacts. `data`: table name in `con`, DuckDB relation,
    pandas or Arrow frame in the contacts input contract."""
    return resolve("contacts", data, con=con, config=config or ContactsConfig(), prefix=prefix, **kw)


def update_contacts(previous: Resolution, changes: Any, **kw) -> Resolution:
    return update(previous, changes, **kw)
