"""The data dictionary: warehouse/dictionary/<schema>.yaml, one source of truth for table and column docs."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

DICTIONARY_DIR = Path(__file__).resolve().parent / "dictionary"


@functools.lru_cache(maxsize=1)
def load_dictionary() -> dict[str, dict[str, dict[str, Any]]]:
    """{schema: {table: {grain, description, primary_key, columns: {name: {type, description}}}}}."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(DICTIONARY_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text()) or {}
        for schema, tables in doc.items():
            out.setdefault(schema, {}).update(tables or {})
    return out


def table_doc(schema: str, table: str) -> dict[str, Any] | None:
    return load_dictionary().get(schema, {}).get(table)
