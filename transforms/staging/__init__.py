"""Staging: vendor-neutral, typed tables fed by every enabled source.

Each source maps its raw tables into the shared model in `transforms/staging/<source>/<table>.sql` (a SELECT
producing the columns of warehouse/dictionary/staging.yaml). `staging.<table>` is the UNION ALL of those parts,
each cast to the dictionary's types, so the contract is enforced in one place and a second CRM (Koban next to
HubSpot in a migration year) lands in the same tables with its own `source_system`.

A part whose raw tables do not exist yet (source not loaded, or a vendor object with no records so dlt never
created the table) is skipped and reported; a staging table with no part is built empty, with its columns.

dlt only creates the columns and tables it has seen values for: a custom property nobody filled, or a child table
with no rows, is absent. A part declares such things in its header, and they read as NULL / empty when absent:

    -- optional columns: raw_hubspot.companies(tier, siren)
    -- optional table: raw_hubspot.owners__teams(_dlt_parent_id, _dlt_list_idx, id, name, primary)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import re

import sqlglot
from sqlglot import exp

from warehouse.dictionary import load_dictionary

STAGING_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class StagingPart:
    source: str
    table: str
    path: Path

    def sql(self, dialect: str) -> str:
        override = self.path.with_name(f"{self.table}.{dialect}.sql")
        return (override if override.exists() else self.path).read_text()

    def optional(self) -> tuple[dict[tuple[str, str], list[str]], dict[tuple[str, str], list[str]]]:
        """({table: optional columns}, {optional table: its columns}) declared in the header."""
        cols: dict[tuple[str, str], list[str]] = {}
        tables: dict[tuple[str, str], list[str]] = {}
        for line in self.path.read_text().splitlines():
            m = _OPTIONAL.match(line)
            if m:
                target = tables if m.group(1) == "table" else cols
                names = [c.strip() for c in m.group(4).split(",") if c.strip()]
                target[(m.group(2), m.group(3))] = names
        return cols, tables

    def resolved_sql(self, dialect: str, table_exists, columns_of) -> tuple[str | None, list[str]]:
        """The part's SQL with absent optional columns/tables stood in for, or None if a required table is absent."""
        opt_cols, opt_tables = self.optional()
        sql = self.sql(dialect)
        missing = [f"{s}.{t}" for s, t in sorted(self.deps) if (s, t) not in opt_tables and not table_exists(s, t)]
        if missing:
            return None, [f"{self.source}: skipped, raw table(s) not loaded yet: {', '.join(missing)}"]
        notes = []
        for (schema, table), cols in opt_tables.items():
            if not table_exists(schema, table):
                nulls = ", ".join(f'cast(null as text) as "{c}"' for c in cols)
                sql = replace_table(sql, schema, table, f"(select {nulls} where 1 = 0)")
                notes.append(f"{self.source}: {schema}.{table} absent, read as empty")
        # An optional table that exists may still lack some of its declared columns: those read as null too.
        declared = dict(opt_cols)
        for key, cols in opt_tables.items():
            declared[key] = list(dict.fromkeys(declared.get(key, []) + cols))
        for (schema, table), cols in declared.items():
            if not table_exists(schema, table):
                continue
            present = set(columns_of(schema, table))
            absent = [c for c in cols if c not in present]
            if absent:
                extra = ", ".join(f'cast(null as text) as "{c}"' for c in absent)
                sql = replace_table(sql, schema, table, f"(select *, {extra} from {schema}.{table})")
                notes.append(f"{self.source}: {schema}.{table} has no {', '.join(absent)} yet, read as null")
        return sql, notes

    @property
    def deps(self) -> frozenset[tuple[str, str]]:
        tree = sqlglot.parse_one(self.path.read_text(), read="duckdb")
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        found = set()
        for t in tree.find_all(exp.Table):
            if t.db:
                found.add((t.db, t.name))
            elif t.name not in ctes:
                raise ValueError(f"{self.path}: table {t.name!r} must be schema-qualified")
        return frozenset(found)


_OPTIONAL = re.compile(r"^--\s*optional (columns|table):\s*(\w+)\.(\w+)\s*\(([^)]*)\)")


_NOT_ALIASES = {"where", "union", "left", "right", "inner", "outer", "full", "cross", "join", "on", "group", "order",
                "limit", "having", "window", "using", "natural", "lateral", "except", "intersect"}


def replace_table(sql: str, schema: str, table: str, replacement: str) -> str:
    """Put `replacement` (a parenthesised subquery) where the table is read, keeping or adding an alias
    (PostgreSQL requires one on a subquery in FROM). Comment lines are left alone."""
    pattern = re.compile(rf"\b{re.escape(schema)}\.{re.escape(table)}(?!\w)(\s+(?:as\s+)?(\w+))?", re.IGNORECASE)

    def sub(m: re.Match) -> str:
        alias = m.group(2)
        if alias and alias.lower() not in _NOT_ALIASES:
            return f"{replacement}{m.group(1)}"
        return f"{replacement} as {table}{m.group(1) or ''}"

    return "\n".join(line if line.lstrip().startswith("--") else pattern.sub(sub, line) for line in sql.split("\n"))


def staging_tables() -> dict[str, dict]:
    """Staging tables of the contract (dictionary), excluding the cfg_* tables built from the sales model."""
    return {t: doc for t, doc in load_dictionary()["staging"].items() if not t.startswith("cfg_")}


def parts(sources: Iterable[str] | None = None) -> dict[str, list[StagingPart]]:
    """{staging table: [parts]} for the given sources (default: every source folder present)."""
    wanted = set(sources) if sources is not None else None
    out: dict[str, list[StagingPart]] = {t: [] for t in staging_tables()}
    for folder in sorted(p for p in STAGING_DIR.iterdir() if p.is_dir() and not p.name.startswith("_")):
        if wanted is not None and folder.name not in wanted:
            continue
        for path in sorted(folder.glob("*.sql")):
            if path.name.count(".") > 1:
                continue
            if path.stem not in out:
                raise ValueError(f"{path}: staging.{path.stem} is not in warehouse/dictionary/staging.yaml")
            out[path.stem].append(StagingPart(folder.name, path.stem, path))
    return out


def union_sql(
    table: str,
    table_parts: list[StagingPart],
    dialect: str,
    table_exists: Callable[[str, str], bool],
    columns_of: Callable[[str, str], list[str]],
) -> tuple[str, list[str]]:
    """The SELECT building staging.<table>, and notes on parts skipped or read with stand-ins."""
    columns = staging_tables()[table]["columns"]
    selects, skipped = [], []
    for part in table_parts:
        sql, notes = part.resolved_sql(dialect, table_exists, columns_of)
        skipped += notes
        if sql is None:
            continue
        # A column the contract gained after this part was written reads as NULL (and is reported), so adding a
        # column for one source does not break the others.
        provided = set(sqlglot.parse_one(part.path.read_text(), read="duckdb").named_selects)
        absent = [name for name in columns if name not in provided]
        if absent:
            skipped.append(f"{part.source}: does not provide {', '.join(absent)} (null)")
        casts = ", ".join(
            f"cast({name if name in provided else 'null'} as {spec['type']}) as {name}" for name, spec in columns.items()
        )
        selects.append(f"select {casts} from (\n{sql.strip().rstrip(';')}\n) as {part.source}_part")
    if not selects:
        nulls = ", ".join(f"cast(null as {spec['type']}) as {name}" for name, spec in columns.items())
        return f"select {nulls} where 1 = 0", skipped
    return "\nunion all\n".join(selects), skipped
