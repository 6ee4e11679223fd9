"""The SQL models: one SELECT per table, in transforms/<schema>/<table>.sql.

A model's dependencies are the tables its SQL reads, found by parsing it (sqlglot), the way dbt's `ref` works
but without templating: a newcomer reads plain SQL. Where DuckDB and PostgreSQL need different SQL, a
`<table>.postgres.sql` (or `.duckdb.sql`) file beside the portable one overrides it for that dialect.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp

TRANSFORMS_DIR = Path(__file__).resolve().parent
SQL_LAYERS = ("staging", "core", "quality", "marts")


@dataclass(frozen=True)
class SqlModel:
    schema: str
    name: str
    path: Path

    @property
    def key(self) -> tuple[str, str]:
        return (self.schema, self.name)

    def sql(self, dialect: str = "duckdb") -> str:
        override = self.path.with_name(f"{self.name}.{dialect}.sql")
        return (override if override.exists() else self.path).read_text()

    @functools.cached_property
    def indexes(self) -> tuple[tuple[str, ...], ...]:
        """Indexes the readers of this table need on PostgreSQL, from `-- indexes: (a, b); (c)` lines of the
        leading comment block (DuckDB ignores them)."""
        return self._header_column_lists("indexes")

    @functools.cached_property
    def unique_indexes(self) -> tuple[tuple[str, ...], ...]:
        """Unique indexes on PostgreSQL, from `-- unique: (a, b)` lines: the database then refuses a duplicated key
        when rows are inserted, and the blocking key check reads that guarantee instead of counting distinct keys
        (pipelines/key_checks.py). For tables that grow by inserts (the partitioned snapshot)."""
        return self._header_column_lists("unique")

    def _header_column_lists(self, label: str) -> tuple[tuple[str, ...], ...]:
        found = []
        for line in self.path.read_text().splitlines():
            if not line.startswith("--"):
                break
            m = re.match(rf"--\s*{label}:\s*(.*)$", line)
            if m:
                for group in re.findall(r"\(([^)]*)\)", m.group(1)):
                    cols = tuple(c.strip() for c in group.split(",") if c.strip())
                    if cols:
                        found.append(cols)
        return tuple(found)

    def description(self) -> str:
        """The leading `--` comment block of the SQL file."""
        lines = []
        for line in self.path.read_text().splitlines():
            if not line.startswith("--"):
                break
            if re.match(r"--\s*(indexes|unique):", line):
                continue
            lines.append(line[2:].strip())
        return "\n".join(lines).strip()

    @functools.cached_property
    def deps(self) -> frozenset[tuple[str, str]]:
        """(schema, table) pairs read by this model, CTE names excluded."""
        tree = sqlglot.parse_one(self.path.read_text(), read="duckdb")
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        found = set()
        for table in tree.find_all(exp.Table):
            if not isinstance(table.this, exp.Identifier):
                # a table function in FROM (generate_series(...) AS g(d), range(...)): reads no table
                continue
            if table.db:
                found.add((table.db, table.name))
            elif table.name not in ctes:
                raise ValueError(f"{self.path}: table {table.name!r} must be schema-qualified")
        found.discard(self.key)
        return frozenset(found)


def discover(layers: tuple[str, ...] = SQL_LAYERS) -> list[SqlModel]:
    models = []
    for layer in layers:
        for path in sorted((TRANSFORMS_DIR / layer).glob("*.sql")):
            if path.name.count(".") > 1:  # dialect override
                continue
            models.append(SqlModel(layer, path.stem, path))
    return models


def topo_order(models: list[SqlModel]) -> list[SqlModel]:
    """Models ordered so each comes after the models it reads."""
    by_key = {m.key: m for m in models}
    done: set[tuple[str, str]] = set()
    order: list[SqlModel] = []

    def visit(m: SqlModel, stack: tuple = ()) -> None:
        if m.key in done:
            return
        if m.key in stack:
            raise ValueError(f"dependency cycle: {' -> '.join('.'.join(k) for k in stack + (m.key,))}")
        for dep in sorted(m.deps):
            if dep in by_key:
                visit(by_key[dep], stack + (m.key,))
        done.add(m.key)
        order.append(m)

    for m in models:
        visit(m)
    return order
