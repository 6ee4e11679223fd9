"""The one place that knows how to reach the warehouse.

DuckDB (a file, `data/warehouse.duckdb` by default) or PostgreSQL (`CRM_ETL_WAREHOUSE_URL=postgresql://...`).
Everything else asks this module for a `Warehouse` and runs SQL through it; nobody opens connections by hand.

DuckDB allows a single writing process and refuses a second in-process connection opened with a different
configuration, so DuckDB connections are never pooled: each `connect()` opens and closes the file. That lets dlt,
which opens the same file for its loads, run in between. A batch of builds (transforms.build.build_models) holds one
connection for its duration through `Warehouse.session()` instead: opening the file costs 0.1-0.25 s per statement.
"""
from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

DEFAULT_DUCKDB_PATH = Path("data") / "warehouse.duckdb"

#: Schemas of the layered model (DESIGN.md section 1). raw_* schemas belong to dlt.
LAYER_SCHEMAS = ("staging", "core", "quality", "marts")
#: Per schema, the version write_frame / apply_delta recorded for a table (identity tables written as deltas).
VERSIONS_TABLE = "_table_versions"


def warehouse_url(url: str | None = None) -> str:
    """The warehouse URL: the argument, else CRM_ETL_WAREHOUSE_URL, else the embedded DuckDB file."""
    url = url or os.environ.get("CRM_ETL_WAREHOUSE_URL")
    if url:
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://"):]
        return url
    data_dir = Path(os.environ.get("CRM_ETL_DATA_DIR", "data"))
    return f"duckdb:///{(data_dir / 'warehouse.duckdb').resolve()}"


def dlt_pipelines_dir() -> str:
    """Where dlt keeps each raw pipeline's working folder (state, schemas, load packages): DLT_DATA_DIR/pipelines,
    else CRM_ETL_DATA_DIR/dlt/pipelines (data/dlt/pipelines)."""
    base = Path(os.environ.get("DLT_DATA_DIR") or Path(os.environ.get("CRM_ETL_DATA_DIR", "data")) / "dlt")
    return str((base / "pipelines").resolve())


def duckdb_file(url: str) -> str:
    """The database file of a `duckdb:///path` URL (':memory:' when it names none)."""
    assert url.startswith("duckdb:"), url
    return url[len("duckdb:///"):] or ":memory:"


def redact(url: str) -> str:
    """The URL with any password replaced, for logs and errors."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


class _DeltaDoesNotAddUp(Exception):
    """apply_delta: the table would not have the expected row count; raised to roll the change back."""


@dataclass
class Warehouse:
    """A handle on the warehouse: dialect, SQL execution, atomic builds, the dlt destination."""

    url: str = field(default_factory=warehouse_url)

    def __post_init__(self) -> None:
        self.url = warehouse_url(self.url)
        if self.url.startswith("duckdb:"):
            self.dialect = "duckdb"
            path = self.duckdb_path
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._engine: Engine = sa.create_engine(self.url, poolclass=NullPool)
            # Timestamps are compared and truncated in UTC whatever the machine's zone (set per session,
            # not as an open-time config, so dlt can open the same file in this process).
            # DuckDB's progress bar goes to stdout even when it is not a terminal (a Dagster compute log, a pipe):
            # off, like every connection this project opens (identity.state._connect, core.resolve)
            sa.event.listen(self._engine, "connect", lambda dbapi_conn, _: dbapi_conn.execute(
                "set TimeZone = 'UTC'; set enable_progress_bar = false"))
        elif self.url.startswith("postgresql"):
            self.dialect = "postgres"
            self._engine = sa.create_engine(
                self.url, pool_pre_ping=True, pool_size=2, max_overflow=4,
                connect_args={"options": "-c timezone=UTC"},  # date_trunc & co. in UTC, as on DuckDB
            )
        else:
            raise ValueError(
                f"Unsupported warehouse URL {redact(self.url)!r}: use duckdb:///path/to/file.duckdb "
                "or postgresql://user@host:port/dbname (CRM_ETL_WAREHOUSE_URL)."
            )

    # -- identity -------------------------------------------------------------------------------------------
    @property
    def duckdb_path(self) -> str:
        return duckdb_file(self.url)

    def __repr__(self) -> str:  # never print a password
        return f"Warehouse({redact(self.url)!r})"

    @property
    def engine(self) -> Engine:
        return self._engine

    def dispose(self) -> None:
        self._engine.dispose()

    # -- execution ------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def session(self) -> Iterator["Warehouse"]:
        """Reuse one connection for every statement run through this handle until the block ends.

        Opening a DuckDB file costs 0.1-0.25 s, which dominates a rebuild of many small models; inside a session
        each `connect()` is still its own transaction (so `build_table` stays atomic per table), only the
        connection is shared. Nested sessions reuse the outer one. The file is released when the block ends,
        so dlt can open it again afterwards.

        On DuckDB the database's memory is capped for the session (CRM_ETL_DUCKDB_MEMORY_LIMIT, default 1GB;
        DuckDB's own default is 80% of RAM, and a long-lived connection keeps its buffer pool): bigger sorts and
        joins spill to a temporary directory beside the file instead of growing the process.
        """
        if getattr(self, "_pinned", None) is not None:
            yield self
            return
        self._pinned = self._engine.connect()
        if self.dialect == "duckdb":
            limit = os.environ.get("CRM_ETL_DUCKDB_MEMORY_LIMIT", "1GB")
            if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", limit, re.I):
                raise ValueError(f"CRM_ETL_DUCKDB_MEMORY_LIMIT={limit!r}: expected a size such as 1GB or 1536MB")
            self._pinned.exec_driver_sql(f"set memory_limit = '{limit}'")
            # a built table's row order means nothing: DuckDB may then write results as they come, without
            # holding them back to keep the input order (less memory, no spilling)
            self._pinned.exec_driver_sql("set preserve_insertion_order = false")
            self._pinned.commit()
        try:
            yield self
        finally:
            pinned, self._pinned = self._pinned, None
            pinned.close()

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection inside one transaction (committed on success, rolled back on error)."""
        pinned = getattr(self, "_pinned", None)
        if pinned is None:
            with self._engine.begin() as conn:
                yield conn
        elif pinned.in_transaction():  # a connect() inside a connect() of the same session joins its transaction
            yield pinned
        else:
            with pinned.begin():
                yield pinned

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        with self.connect() as conn:
            conn.execute(sa.text(sql), params or {})

    def _raw(self, sql: str) -> str:
        """SQL text for exec_driver_sql: psycopg2 reads `%` as a parameter marker, so it is doubled there."""
        return sql.replace("%", "%%") if self.dialect == "postgres" else sql

    def execute_script(self, sql: str) -> None:
        """Several `;`-separated statements in one transaction."""
        statements = split_statements(sql)
        with self.connect() as conn:
            for stmt in statements:
                conn.exec_driver_sql(self._raw(stmt))

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with self.connect() as conn:
            result = conn.execute(sa.text(sql), params or {})
            return [dict(row._mapping) for row in result]

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        with self.connect() as conn:
            return conn.execute(sa.text(sql), params or {}).scalar()

    def query_df(self, sql: str, params: dict[str, Any] | None = None):
        import pandas as pd

        with self.connect() as conn:
            return pd.read_sql_query(sa.text(sql), conn, params=params or {})

    def query_arrow(self, sql: str):
        """A query's result as an Arrow table, typed as the warehouse types it: DuckDB hands it over directly;
        PostgreSQL through ADBC's driver (libpq, COPY in binary, straight into Arrow: 1M identity input rows in
        1.65 s, 7.6-9.9 s through pandas' read_sql; bench/bench_warehouse_read.py), on a connection of its own;
        NUMERIC comes as its exact text, JSON as text. Inside an open transaction of a session (which the read must
        see) it goes through pandas on the session's connection."""
        if self.dialect == "duckdb":
            with self.connect() as conn:
                return conn.connection.driver_connection.execute(sql).to_arrow_table()
        pinned = getattr(self, "_pinned", None)
        if pinned is not None and pinned.in_transaction():
            import pyarrow as pa

            return pa.Table.from_pandas(self.query_df(sql), preserve_index=False)
        return _postgres_query_arrow(self.url, sql)

    # -- catalogue ------------------------------------------------------------------------------------------
    def table_exists(self, schema: str, table: str) -> bool:
        return bool(
            self.scalar(
                "select count(*) from information_schema.tables where table_schema = :s and table_name = :t",
                {"s": schema, "t": table},
            )
        )

    def columns(self, schema: str, table: str) -> list[str]:
        rows = self.query(
            "select column_name from information_schema.columns where table_schema = :s and table_name = :t "
            "order by ordinal_position",
            {"s": schema, "t": table},
        )
        return [r["column_name"] for r in rows]

    def row_count(self, schema: str, table: str) -> int:
        return int(self.scalar(f"select count(*) from {qualify(schema, table)}"))

    def ensure_schemas(self, schemas: Sequence[str] = LAYER_SCHEMAS) -> None:
        with self.connect() as conn:
            for schema in schemas:
                conn.exec_driver_sql(f"create schema if not exists {quote_ident(schema)}")
            if "staging" in schemas:
                from . import functions

                functions.install(conn, self.dialect)

    # -- atomic builds --------------------------------------------------------------------------------------
    def build_table(
        self, schema: str, table: str, select_sql: str, *, pre_sql: Sequence[str] = (),
        indexes: Sequence[Sequence[str]] = (), unique_indexes: Sequence[Sequence[str]] = (),
    ) -> int:
        """Build `schema.table` from `select_sql` atomically and return its row count.

        The new content is written to `<table>__building`, then swapped in by a drop + rename inside one
        transaction, so a reader sees the old table or the new one, never a missing or half-filled one.
        On PostgreSQL the swap takes a brief exclusive lock; readers queue behind it and then read the new
        table. `pre_sql` statements (e.g. temp helpers) run in the same transaction before the build.
        `indexes` and `unique_indexes` (column lists) are created on PostgreSQL before the swap, and the table is
        ANALYZEd there so the next models get good plans; DuckDB joins by hashing and needs neither.
        """
        target = qualify(schema, table)
        building = qualify(schema, f"{table}__building")
        with self.connect() as conn:
            conn.exec_driver_sql(f"create schema if not exists {quote_ident(schema)}")
            if self.dialect == "postgres":
                # big sorts and hashes in memory (the default 4 MB spills them to disk); no JIT, whose
                # compile time exceeds the gain on these one-off statements. Both end with the transaction.
                conn.exec_driver_sql("set local work_mem = '256MB'")
                conn.exec_driver_sql("set local jit = off")
            for stmt in pre_sql:
                conn.exec_driver_sql(self._raw(stmt))
            conn.exec_driver_sql(f"drop table if exists {building}")
            conn.exec_driver_sql(self._raw(f"create table {building} as {select_sql.strip().rstrip(';')}"))
            count = conn.exec_driver_sql(f"select count(*) from {building}").scalar()
            index_names = []
            if self.dialect == "postgres":
                for name, unique, cols in _index_specs(table, indexes, unique_indexes):
                    # built under a temporary name (the old table's index still holds the final one), renamed
                    # after the swap
                    tmp = name.replace(f"{table}__", f"{table}__building_", 1)
                    conn.exec_driver_sql(_index_ddl(tmp, building, unique, cols))
                    index_names.append((tmp, name))
                conn.exec_driver_sql(f"analyze {building}")
            conn.exec_driver_sql(f"drop table if exists {target}")
            conn.exec_driver_sql(f"alter table {building} rename to {quote_ident(table)}")
            for tmp, final in index_names:
                conn.exec_driver_sql(f"alter index {qualify(schema, tmp)} rename to {quote_ident(final)}")
        return int(count)

    def ensure_indexes(self, conn, schema: str, table: str, indexes: Sequence[Sequence[str]] = (),
                       unique_indexes: Sequence[Sequence[str]] = ()) -> None:
        """Give an existing table (built by an older version, then grown by inserts) the indexes its model asks for
        now, and drop the ones build_table named that it no longer asks for (PostgreSQL; inside `conn`'s
        transaction, so a duplicated key fails the whole change)."""
        if self.dialect != "postgres":
            return
        wanted = _index_specs(table, indexes, unique_indexes)
        names = {name for name, _, _ in wanted}
        existing = [r[0] for r in conn.execute(
            sa.text("select indexname from pg_indexes where schemaname = :s and tablename = :t"),
            {"s": schema, "t": table})]
        for name in existing:
            if re.fullmatch(rf"{re.escape(table)}__(ix|ux)\d+", name) and name not in names:
                conn.exec_driver_sql(f"drop index {qualify(schema, name)}")
        for name, unique, cols in wanted:
            conn.exec_driver_sql(_index_ddl(name, qualify(schema, table), unique, cols, if_not_exists=True))

    def write_frame(self, schema: str, table: str, frame, version: str | None = None) -> int:
        """Replace `schema.table` with a pandas or Arrow frame, atomically (build, then swap).

        Fast paths: DuckDB scans the frame in place; PostgreSQL gets it through COPY. Used for the small
        Python-built tables (sales-model config, identity crosswalks, golden records). `version`: recorded with
        the table (see table_version) in the same transaction, so that a later apply_delta knows what it holds.
        """
        arrow = _warehouse_arrow(frame)
        target, building = qualify(schema, table), qualify(schema, f"{table}__building")
        with self.connect() as conn:
            conn.exec_driver_sql(f"create schema if not exists {quote_ident(schema)}")
            conn.exec_driver_sql(f"drop table if exists {building}")
            self._stage(conn, building, arrow)
            conn.exec_driver_sql(f"drop table if exists {target}")
            conn.exec_driver_sql(f"alter table {building} rename to {quote_ident(table)}")
            self._set_version(conn, schema, table, version)
        return arrow.num_rows

    def table_version(self, schema: str, table: str) -> str | None:
        """The version write_frame or apply_delta last recorded for `schema.table` (None: none, or the table is gone)."""
        if not (self.table_exists(schema, VERSIONS_TABLE) and self.table_exists(schema, table)):
            return None
        return self.scalar(f"select version from {qualify(schema, VERSIONS_TABLE)} where table_name = :t", {"t": table})

    def apply_delta(self, schema: str, table: str, keys: Sequence[str], rows, deleted, *, expect_version: str,
                    version: str, expect_rows: int | None = None) -> int | None:
        """Change `schema.table` in one transaction: the rows whose `keys` are in `deleted` (a frame of key
        columns) or in `rows` are removed, then `rows` inserted. Only if the table still holds `expect_version`
        (else nothing is touched and None is returned: the caller writes the table whole); records `version`.
        `expect_rows`: the row count the table must have afterwards (the source's), else the change is rolled back
        and None returned: a copy that drifted is rewritten, never patched into a wrong state.
        Returns the number of rows inserted. Readers see the table before or after, never in between."""
        rows, deleted = _warehouse_arrow(rows), _warehouse_arrow(deleted)
        target = qualify(schema, table)
        try:
            with self.connect() as conn:
                if not (self._exists(conn, schema, VERSIONS_TABLE) and self._exists(conn, schema, table)):
                    return None
                if self.dialect == "postgres":
                    # a concurrent swap (write_frame) commits before or after this change, not between the version
                    # read and the delete (READ COMMITTED would let the delete hit the new table)
                    conn.exec_driver_sql(f"lock table {target} in share row exclusive mode")
                held = conn.execute(
                    sa.text(f"select version from {qualify(schema, VERSIONS_TABLE)} where table_name = :t"),
                    {"t": table}).scalar()
                if held != expect_version:
                    return None
                if not self._replace_by_key(conn, schema, table, keys, rows, deleted):
                    return None  # the table's shape changed: written whole
                if expect_rows is not None and \
                        conn.exec_driver_sql(f"select count(*) from {target}").scalar() != expect_rows:
                    raise _DeltaDoesNotAddUp  # rolls the transaction back
                self._set_version(conn, schema, table, version)
        except _DeltaDoesNotAddUp:
            return None
        return rows.num_rows

    def upsert_frame(self, schema: str, table: str, keys: Sequence[str], frame) -> int:
        """Insert the rows of a frame into `schema.table`, replacing those with the same `keys`, in one transaction
        (the table is created from the frame when missing). For small bookkeeping tables written by concurrent runs
        (core.identity_models): no run rewrites, and so loses, another's rows."""
        arrow = _warehouse_arrow(frame)
        with self.connect() as conn:
            conn.exec_driver_sql(f"create schema if not exists {quote_ident(schema)}")
            if not self._exists(conn, schema, table):
                self._stage(conn, qualify(schema, table), arrow)
                return arrow.num_rows
            if self.dialect == "postgres":
                conn.exec_driver_sql(f"lock table {qualify(schema, table)} in share row exclusive mode")
            if not self._replace_by_key(conn, schema, table, keys, arrow, arrow.select(list(keys))):
                raise ValueError(f"{schema}.{table} has columns {self._columns(conn, schema, table)}, "
                                 f"the rows {arrow.schema.names}")
        return arrow.num_rows

    def _replace_by_key(self, conn, schema: str, table: str, keys: Sequence[str], rows, deleted) -> bool:
        """In the caller's transaction: delete the rows of `schema.table` whose keys are in `deleted` or `rows`, then
        insert `rows` (Arrow, the table's columns in its order; else nothing is done and False returned)."""
        cols = self._columns(conn, schema, table)
        if [f.name for f in rows.schema] != cols:
            return False
        target, key_list = qualify(schema, table), ", ".join(quote_ident(k) for k in keys)
        stage_rows, stage_del = f"{table}__delta_rows", f"{table}__delta_keys"
        self._stage(conn, stage_rows, rows, temp=True)
        self._stage(conn, stage_del, deleted.select(list(keys)), temp=True)
        match = " and ".join(f"t.{quote_ident(k)} = d.{quote_ident(k)}" for k in keys)
        conn.exec_driver_sql(
            f"""delete from {target} t using (select {key_list} from {stage_del}
                                               union select {key_list} from {stage_rows}) d where {match}""")
        col_list = ", ".join(quote_ident(c) for c in cols)
        conn.exec_driver_sql(f"insert into {target} ({col_list}) select {col_list} from {stage_rows}")
        for t in (stage_rows, stage_del):
            conn.exec_driver_sql(f"drop table {t}")
        return True

    def _exists(self, conn, schema: str, table: str) -> bool:
        return bool(conn.execute(sa.text(
            "select count(*) from information_schema.tables where table_schema = :s and table_name = :t"),
            {"s": schema, "t": table}).scalar())

    def _columns(self, conn, schema: str, table: str) -> list[str]:
        return [r[0] for r in conn.execute(sa.text(
            "select column_name from information_schema.columns where table_schema = :s and table_name = :t "
            "order by ordinal_position"), {"s": schema, "t": table}).fetchall()]

    def _stage(self, conn, target: str, arrow, temp: bool = False) -> None:
        """CREATE [TEMP] TABLE `target` holding an Arrow frame (DuckDB scans it in place; PostgreSQL: COPY)."""
        if self.dialect == "duckdb":
            raw = conn.connection.driver_connection
            raw.register("_crm_etl_frame", arrow)
            try:
                raw.execute(f"create {'temp ' if temp else ''}table {target} as select * from _crm_etl_frame")
            finally:
                raw.unregister("_crm_etl_frame")
        else:
            _copy_arrow_to_postgres(conn, target, arrow, temp=temp)

    def _set_version(self, conn, schema: str, table: str, version: str | None) -> None:
        """Record (or, with None, forget) the version of `schema.table`, in the caller's transaction."""
        versions = qualify(schema, VERSIONS_TABLE)
        if version is None and not self._exists(conn, schema, VERSIONS_TABLE):
            return
        conn.exec_driver_sql(f"create table if not exists {versions} (table_name text primary key, version text not null)")
        conn.execute(sa.text(f"delete from {versions} where table_name = :t"), {"t": table})
        if version is not None:
            conn.execute(sa.text(f"insert into {versions} values (:t, :v)"), {"t": table, "v": version})

    # -- dlt ------------------------------------------------------------------------------------------------
    def prune_dlt_state(self, dataset: str, pipeline_name: str, keep: int) -> int:
        """Delete all but the `keep` newest versions of a dlt pipeline's state in `<dataset>._dlt_pipeline_state`;
        returns how many were deleted. dlt adds a version (the whole state, compressed) with every load that
        changed it and never removes one: a connector whose state names each object it loaded (Stripe's content
        hashes: ~34 bytes per object) grows the table by the whole state at every sync, ~3 GB a year at 10,000
        objects synced hourly (dlt #2186: 20 GB in a month). dlt restores only the newest version whose load
        completed (`_dlt_loads.status = 0`, highest load id); only versions of completed loads are deleted, the
        newest `keep` of them kept (a version whose load is still pending stays: it becomes the state once loaded;
        a load listed twice in `_dlt_loads`, a load step killed after its first insert, counts once)."""
        if keep < 1:
            raise ValueError("keep at least the newest state version")
        state, loads = qualify(dataset, "_dlt_pipeline_state"), qualify(dataset, "_dlt_loads")
        with self.connect() as conn:
            if not (self._exists(conn, dataset, "_dlt_pipeline_state") and self._exists(conn, dataset, "_dlt_loads")):
                return 0
            result = conn.execute(sa.text(
                f"""delete from {state} where pipeline_name = :p and _dlt_load_id in (
                        select distinct l.load_id from {state} s join {loads} l on l.load_id = s._dlt_load_id
                        where s.pipeline_name = :p and l.status = 0
                        order by l.load_id desc offset :keep)
                    returning version"""), {"p": pipeline_name, "keep": keep})
            return len(result.fetchall())  # (DuckDB's driver gives no rowcount)

    def dlt_destination(self):
        """The dlt destination that loads raw_<source> datasets into this same warehouse."""
        import dlt

        if self.dialect == "duckdb":
            return dlt.destinations.duckdb(credentials=self.duckdb_path)
        from dlt.destinations.impl.postgres.configuration import PostgresCredentials

        credentials = PostgresCredentials()
        credentials.parse_native_representation(self.url)
        if credentials.password is None:
            # trust / peer / .pgpass authentication: dlt insists on a password field, an empty one is sent as none
            credentials.password = ""
        return dlt.destinations.postgres(credentials=credentials)


def quote_ident(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"Refusing unsafe SQL identifier {name!r}")
    return f'"{name}"'


def qualify(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def split_statements(sql: str) -> list[str]:
    """Split a script on `;` outside quotes and comments (enough for our own SQL files)."""
    out, buf, quote, i = [], [], None, 0
    while i < len(sql):
        ch = sql[i]
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
            buf.append(ch)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = len(sql) if end < 0 else end
            continue
        elif ch == ";":
            stmt = "".join(buf).strip()
            if stmt:
                out.append(stmt)
            buf = []
        else:
            buf.append(ch)
        i += 1
    stmt = "".join(buf).strip()
    if stmt:
        out.append(stmt)
    return out


_PG_TYPES = {
    "int8": "smallint", "int16": "smallint", "int32": "integer", "int64": "bigint",
    "uint8": "smallint", "uint16": "integer", "uint32": "bigint", "uint64": "numeric",
    "float": "real", "double": "double precision", "bool": "boolean", "string": "text", "large_string": "text",
    "date32[day]": "date",
}


def _pg_type(arrow_type) -> str:
    import pyarrow as pa

    if pa.types.is_timestamp(arrow_type):
        return "timestamptz" if arrow_type.tz else "timestamp"
    if pa.types.is_decimal(arrow_type):
        return f"numeric({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_null(arrow_type):
        return "text"
    return _PG_TYPES.get(str(arrow_type), "text")


def _warehouse_arrow(frame):
    """A pandas or Arrow frame as the Arrow table both warehouses store the same way. A column with no value at
    all has Arrow type null, which DuckDB would make INTEGER: made text. A list column (e.g. the source systems of
    a golden record) becomes comma-separated text (PostgreSQL's COPY has no list type, and BI tools read text
    better)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arrow = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    for i, f in enumerate(arrow.schema):
        if pa.types.is_null(f.type):
            arrow = arrow.set_column(i, f.name, pa.nulls(arrow.num_rows, pa.string()))
        elif pa.types.is_list(f.type) or pa.types.is_large_list(f.type):
            as_text = pc.binary_join(pc.cast(arrow.column(i), pa.list_(pa.string())), ", ")
            arrow = arrow.set_column(i, f.name, as_text)
    return arrow


def libpq_uri(url: str) -> str:
    """The libpq connection URI of a SQLAlchemy PostgreSQL URL (`postgresql[+driver]://...`): user, password and
    database percent-encoded whatever they hold (libpq refuses a raw space; SQLAlchemy's rendering leaves it), an
    IPv6 host bracketed, query parameters kept (sslmode, a socket `host=/path`...; SQLAlchemy's repeated `host=h:p`
    of several servers given to libpq as its `host` and `port` lists), and the session in UTC as the SQLAlchemy
    engine's: `-c timezone=UTC` after the URL's own `options` (the later setting wins)."""
    from urllib.parse import quote, urlencode

    u = sa.engine.make_url(url)
    auth = ""
    if u.username is not None:
        auth = quote(u.username, safe="") + (":" + quote(u.password, safe="") if u.password is not None else "") + "@"
    host = f"[{u.host}]" if u.host and ":" in u.host else (u.host or "")
    where = f"{auth}{host}{f':{u.port}' if u.port else ''}/{quote(u.database or '', safe='')}"
    query = {k: list(v) if isinstance(v, tuple) else [v] for k, v in u.query.items()}
    hosts = query.get("host", [])
    if len(hosts) > 1:  # several servers: libpq lists them in one host and one port parameter
        pairs = [h.rsplit(":", 1) if ":" in h and not h.startswith("/") else [h, ""] for h in hosts]
        query["host"] = [",".join(h for h, _ in pairs)]
        if any(p for _, p in pairs):
            query["port"] = [",".join(p for _, p in pairs)]
    query["options"] = [" ".join([*query.get("options", []), "-c timezone=UTC"])]
    return f"postgresql://{where}?" + urlencode({k: v[-1] for k, v in query.items()}, quote_via=quote)


def _postgres_query_arrow(url: str, sql: str):
    """`sql` run on PostgreSQL through ADBC (adbc-driver-postgresql) on a connection of its own, in UTC."""
    import adbc_driver_manager
    import adbc_driver_postgresql.dbapi as adbc
    import pyarrow as pa

    # ADBC runs it as COPY (<sql>) TO STDOUT: one statement, without its semicolon and comments
    statements = split_statements(sql)
    if len(statements) != 1:
        raise ValueError(f"query_arrow runs one query, got {len(statements)} statements")
    try:
        conn = adbc.connect(libpq_uri(url))
    except adbc_driver_manager.Error as exc:
        # libpq may quote a part of the URI it could not read: never the password in a log
        password = sa.engine.make_url(url).password
        message = str(exc)
        if password:  # (the URI holds it percent-encoded, which libpq always decodes: it has no reason to quote it)
            from urllib.parse import quote, quote_plus

            for form in (password, quote(password, safe=""), quote_plus(password)):
                message = message.replace(form, "***")
        raise ConnectionError(f"PostgreSQL at {redact(url)}: {message}") from None
    with conn, conn.cursor() as cursor:
        cursor.execute(statements[0])
        table = cursor.fetch_arrow_table()
    for i, field in enumerate(table.schema):
        if not isinstance(field.type, pa.BaseExtensionType) or field.type.extension_name == "arrow.uuid":
            continue  # plain Arrow types, and UUIDs (DuckDB reads arrow.uuid as UUID)
        if not pa.types.is_string(field.type.storage_type) and not pa.types.is_large_string(field.type.storage_type):
            raise ValueError(f"column {field.name!r}: PostgreSQL type {getattr(field.type, 'type_name', field.type)} "
                             "has no Arrow form here: cast it in the query (::text)")
        # NUMERIC's exact text, JSON: their text, which every reader (DuckDB, pandas) takes
        col = table.column(i)
        table = table.set_column(i, pa.field(field.name, field.type.storage_type),
                                 pa.chunked_array([c.storage for c in col.chunks], type=field.type.storage_type))
    return table


def _copy_arrow_to_postgres(conn: Connection, target: str, arrow, temp: bool = False) -> None:
    """CREATE TABLE + COPY FROM a CSV rendering of the frame (psycopg2's copy_expert)."""
    import io

    import pyarrow.csv as pacsv

    cols = ", ".join(f"{quote_ident(f.name)} {_pg_type(f.type)}" for f in arrow.schema)
    conn.exec_driver_sql(f"create {'temp ' if temp else ''}table {target} ({cols})")
    if arrow.num_rows == 0:
        return
    buf = io.BytesIO()
    pacsv.write_csv(arrow, buf, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    buf.seek(0)
    cursor = conn.connection.driver_connection.cursor()
    cursor.copy_expert(f"copy {target} from stdin with (format csv, null '')", buf)


def _index_specs(table: str, indexes: Sequence[Sequence[str]],
                 unique_indexes: Sequence[Sequence[str]]) -> list[tuple[str, bool, Sequence[str]]]:
    """[(index name, unique, columns)]: the names every build and upgrade of `table` gives its indexes."""
    return ([(f"{table}__ux{n}", True, cols) for n, cols in enumerate(unique_indexes)]
            + [(f"{table}__ix{n}", False, cols) for n, cols in enumerate(indexes)])


def _index_ddl(name: str, target: str, unique: bool, cols: Sequence[str], if_not_exists: bool = False) -> str:
    return (f"create {'unique ' if unique else ''}index {'if not exists ' if if_not_exists else ''}"
            f"{quote_ident(name)} on {target} ({', '.join(quote_ident(c) for c in cols)})")
