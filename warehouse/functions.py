"""Portable SQL helpers: the same function names on DuckDB (macros) and PostgreSQL (functions).

Vendors send numbers, dates and booleans as text, sometimes malformed ("abc" as an amount, "2024-02-31" as a date).
A plain CAST would fail the whole staging build on one bad value, so staging SQL casts through these helpers,
which return NULL for a value that does not parse; the quality checks then report the record. DuckDB has
TRY_CAST; PostgreSQL gets small PL/pgSQL functions catching the cast error. Both live in the `staging` schema.

    staging.safe_ts(text)     -> timestamptz   ISO-8601 text, or epoch milliseconds / seconds as digits
    (PostgreSQL versions take text: pass text columns, or cast with ::text.)
    staging.safe_num(text)    -> numeric(18,2) amounts ("1234.5", " 12 ")
    staging.safe_double(text) -> double        probabilities, durations
    staging.safe_int(text)    -> integer       counts ("12", "12.0")
    staging.safe_bool(text)   -> boolean       true/false/1/0/yes/no (any case)
"""
from __future__ import annotations

DUCKDB = r"""
create or replace macro staging.safe_ts(x) as (
  case
    when regexp_full_match(trim(cast(x as varchar)), '[0-9]{12,13}') then make_timestamptz(cast(trim(cast(x as varchar)) as bigint) * 1000)
    when regexp_full_match(trim(cast(x as varchar)), '[0-9]{9,10}') then make_timestamptz(cast(trim(cast(x as varchar)) as bigint) * 1000000)
    else try_cast(nullif(trim(cast(x as varchar)), '') as timestamptz)
  end);
create or replace macro staging.safe_num(x) as try_cast(nullif(trim(cast(x as varchar)), '') as decimal(18,2));
create or replace macro staging.safe_double(x) as try_cast(nullif(trim(cast(x as varchar)), '') as double);
create or replace macro staging.safe_int(x) as cast(round(try_cast(nullif(trim(cast(x as varchar)), '') as double)) as integer);
create or replace macro staging.safe_bool(x) as (
  case lower(trim(cast(x as varchar)))
    when 'true' then true when '1' then true when 'yes' then true when 't' then true
    when 'false' then false when '0' then false when 'no' then false when 'f' then false
  end);
"""

POSTGRES = r"""
create or replace function staging.safe_ts(x text) returns timestamptz language plpgsql immutable as $$
declare t text := nullif(trim(x::text), '');
begin
  if t ~ '^[0-9]{12,13}$' then return to_timestamp(t::bigint / 1000.0); end if;
  if t ~ '^[0-9]{9,10}$' then return to_timestamp(t::bigint); end if;
  return t::timestamptz;
exception when others then return null;
end $$;
create or replace function staging.safe_num(x text) returns numeric(18,2) language plpgsql immutable as $$
begin return nullif(trim(x::text), '')::numeric(18,2); exception when others then return null; end $$;
create or replace function staging.safe_double(x text) returns double precision language plpgsql immutable as $$
begin return nullif(trim(x::text), '')::double precision; exception when others then return null; end $$;
create or replace function staging.safe_int(x text) returns integer language plpgsql immutable as $$
begin return round(nullif(trim(x::text), '')::double precision)::integer; exception when others then return null; end $$;
create or replace function staging.safe_bool(x text) returns boolean language plpgsql immutable as $$
begin
  return case lower(trim(x::text))
    when 'true' then true when '1' then true when 'yes' then true when 't' then true
    when 'false' then false when '0' then false when 'no' then false when 'f' then false end;
end $$;
"""


def install(conn, dialect: str) -> None:
    """Create or replace the helpers (idempotent); `conn` is a SQLAlchemy connection in a transaction."""
    from .connection import split_statements

    if dialect == "duckdb":
        for stmt in split_statements(DUCKDB):
            conn.exec_driver_sql(stmt)
    else:
        # $$-quoted bodies contain semicolons: send the script whole (psycopg2 runs several statements).
        conn.exec_driver_sql(POSTGRES)
