"""Company resolution: see core.resolve."""
from __future__ import annotations

from typing import Any

import duckdb

from .config import CompaniesConfig
from .core import Resolution, resolve, update


def resolve_companies(data: Any, *, con: duckdb.DuckDBPyConnection | None = None, config: CompaniesConfig | None = None,
                     prefix: str = "identity_companies", **kw) -> Resolution:
    """Crosswalk + golden records for companies. `data`: table name in `con`, DuckDB relation,
    pandas or Arrow frame in the companies input contract."""
    return resolve("companies", data, con=con, config=config or CompaniesConfig(), prefix=prefix, **kw)


def update_companies(previous: Resolution, changes: Any, **kw) -> Resolution:
    return update(previous, changes, **kw)
