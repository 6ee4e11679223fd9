"""What the running pipeline has already loaded, as dlt's schema records it (no query to the warehouse).

A table the normaliser has seen rows for carries dlt's "seen-data" mark in the pipeline schema (restored from
the destination with the state when the working folder is lost). A connector uses it to skip work that only
matters once a table holds rows, e.g. tombstones that clear old rows: the first full sync then costs nothing more.
"""
from __future__ import annotations

from typing import Optional, Set

import dlt


def tables_with_data() -> Optional[Set[str]]:
    """Names of the tables of the current source's schema that have received rows; None when called outside a
    pipeline run (e.g. a source iterated by hand): then any table may hold rows."""
    try:
        schema = dlt.current.source_schema()
    except Exception:  # not inside a pipeline's extract step
        return None
    return {t["name"] for t in schema.data_tables(seen_data_only=True)}
