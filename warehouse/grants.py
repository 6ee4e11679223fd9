"""The read-only role BI tools connect as (PostgreSQL): it reads `marts` and `quality`, nothing else (`core` too
for a sales-ops role, with_core).

- USAGE on those schemas and SELECT on their tables, present and future (default privileges: the atomic
  build-then-swap recreates tables, and a swapped-in table must be readable at once, with no gap);
- nothing on raw_* or staging, nor on core (where the personal data lives) unless with_core, and no way to write;
- quality.quarantine (raw vendor payloads) and quality.value_checks (every e-mail and phone seen) hold personal data
  and are taken back from the role.
DuckDB has no roles: BI tools open the file read-only (`duckdb -readonly`, or `read_only=True`).
"""
from __future__ import annotations

import re

from .connection import Warehouse, quote_ident

BI_SCHEMAS = ("marts", "quality")
PERSONAL_DATA_TABLES = (("quality", "quarantine"), ("quality", "value_checks"))
DEFAULT_ROLE = "crm_etl_bi"


def setup_bi_role(wh: Warehouse, role: str = DEFAULT_ROLE, password: str | None = None,
                  with_core: bool = False) -> list[str]:
    """Create (or update) the BI role and its grants; idempotent. Returns the statements run (password hidden).

    with_core: the role also reads `core`, the resolved people and companies with sales ops' working lists (contacts
    likely gone, the lead hand-off list, tier suggestions, the registry review list): personal data, for a sales-ops
    role rather than a dashboard's. Without it, a role that had core loses it."""
    if wh.dialect != "postgres":
        raise ValueError("BI roles are a PostgreSQL feature; with DuckDB, open the file read-only instead.")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", role):
        raise ValueError(f"role name {role!r}: use lower-case letters, digits and underscores")
    r = quote_ident(role)
    wh.ensure_schemas()
    exists = wh.scalar("select count(*) from pg_roles where rolname = :r", {"r": role})
    statements = [
        f"create role {r} login nosuperuser nocreatedb nocreaterole noinherit" if not exists else f"alter role {r} login",
    ]
    for schema in (*BI_SCHEMAS, *(["core"] if with_core else [])):
        s = quote_ident(schema)
        statements += [
            f"grant usage on schema {s} to {r}",
            f"grant select on all tables in schema {s} to {r}",
            f"alter default privileges in schema {s} grant select on tables to {r}",
        ]
    if not with_core and wh.scalar("select count(*) from pg_namespace where nspname = 'core'"):
        statements += [
            f"alter default privileges in schema core revoke select on tables from {r}",
            f"revoke select on all tables in schema core from {r}",
            f"revoke usage on schema core from {r}",
        ]
    for schema, table in PERSONAL_DATA_TABLES:
        if wh.table_exists(schema, table):
            statements.append(f"revoke all on {quote_ident(schema)}.{quote_ident(table)} from {r}")
    with wh.connect() as conn:
        for stmt in statements:
            conn.exec_driver_sql(stmt)
        if password is not None:
            # the password goes as a bound literal through the driver's quoting, never into logs
            quoted = conn.exec_driver_sql("select quote_literal(%(p)s)", {"p": password}).scalar()
            conn.exec_driver_sql(f"alter role {r} password {quoted}".replace("%", "%%"))
            statements.append(f"alter role {r} password '***'")
    return statements
