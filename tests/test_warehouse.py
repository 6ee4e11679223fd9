"""The warehouse module: atomic builds, frames, dialects, catalogue of SQL models."""
from __future__ import annotations

import threading

import pandas as pd
import pytest
import sqlalchemy as sa

from transforms import catalog
from warehouse import Warehouse, redact, split_statements


def test_build_table_replaces_content_and_leaves_no_building_table(duckdb_warehouse):
    wh = duckdb_warehouse
    assert wh.build_table("marts", "t", "select 1 as a union all select 2") == 2
    assert wh.build_table("marts", "t", "select 3 as a") == 1
    assert wh.query("select a from marts.t") == [{"a": 3}]
    assert not wh.table_exists("marts", "t__building")


def test_failed_build_keeps_previous_table(duckdb_warehouse):
    wh = duckdb_warehouse
    wh.build_table("marts", "t", "select 1 as a")
    with pytest.raises(Exception):
        wh.build_table("marts", "t", "select a from marts.no_such_table")
    assert wh.query("select a from marts.t") == [{"a": 1}]


def test_write_frame_round_trips_nulls_and_quotes(duckdb_warehouse):
    df = pd.DataFrame({"k": ["a", "b"], "v": ['x,"y', None], "n": [1.5, None]})
    assert duckdb_warehouse.write_frame("staging", "f", df) == 2
    rows = duckdb_warehouse.query("select * from staging.f order by k")
    assert rows == [{"k": "a", "v": 'x,"y', "n": 1.5}, {"k": "b", "v": None, "n": None}]


def _delta_case(wh):
    """A versioned table, then deltas: applied only on the version the table holds."""
    df = pd.DataFrame({"s": ["hubspot", "hubspot", "koban"], "i": ["1", "2", "1"], "e": ["P-a", "P-b", "P-a"],
                       "sources": [["hubspot", "koban"], ["hubspot"], ["hubspot", "koban"]]})
    assert wh.write_frame("core", "xw", df, version="v1") == 3
    assert wh.table_version("core", "xw") == "v1"
    rows = pd.DataFrame({"s": ["hubspot", "stripe"], "i": ["2", "9"], "e": ["P-a", "P-c"],
                         "sources": [["hubspot"], None]})
    gone = pd.DataFrame({"s": ["koban"], "i": ["1"]})
    # the table moved on (another writer, a full rebuild): nothing is applied, the caller writes it whole
    assert wh.apply_delta("core", "xw", ["s", "i"], rows, gone, expect_version="v0", version="v2") is None
    assert wh.row_count("core", "xw") == 3 and wh.table_version("core", "xw") == "v1"
    # a copy that drifted (a row lost by hand): the delta would not leave the source's row count, nothing changes
    assert wh.apply_delta("core", "xw", ["s", "i"], rows, gone, expect_version="v1", version="v2",
                          expect_rows=4) is None
    assert wh.row_count("core", "xw") == 3 and wh.table_version("core", "xw") == "v1"
    assert wh.apply_delta("core", "xw", ["s", "i"], rows, gone, expect_version="v1", version="v2",
                          expect_rows=3) == 2
    assert wh.table_version("core", "xw") == "v2"
    assert wh.query("select s, i, e, sources from core.xw order by s, i") == [
        {"s": "hubspot", "i": "1", "e": "P-a", "sources": "hubspot, koban"},
        {"s": "hubspot", "i": "2", "e": "P-a", "sources": "hubspot"},
        {"s": "stripe", "i": "9", "e": "P-c", "sources": None}]
    assert not [t for t in ("xw__delta_rows", "xw__delta_keys") if wh.table_exists("core", t)]
    # an unversioned rewrite forgets the version: no delta applies to a table written by someone else
    wh.write_frame("core", "xw", df)
    assert wh.table_version("core", "xw") is None
    assert wh.apply_delta("core", "xw", ["s", "i"], rows, gone, expect_version="v2", version="v3") is None
    assert wh.row_count("core", "xw") == 3


def _upsert_case(wh):
    """Rows upserted by key: created when missing, a row with the same key replaced, the others kept."""
    a = pd.DataFrame({"kind": ["contacts"], "h": ["1"], "used": [pd.Timestamp("2026-01-01", tz="UTC")]})
    b = pd.DataFrame({"kind": ["companies"], "h": ["1"], "used": [pd.Timestamp("2026-01-02", tz="UTC")]})
    assert wh.upsert_frame("core", "models", ["kind", "h"], a) == 1
    wh.upsert_frame("core", "models", ["kind", "h"], b)
    wh.upsert_frame("core", "models", ["kind", "h"], a.assign(used=pd.Timestamp("2026-02-01", tz="UTC")))
    got = wh.query_df("select kind, h, used from core.models order by kind")
    assert list(got.kind) == ["companies", "contacts"]
    assert [str(pd.Timestamp(u).date()) for u in got.used] == ["2026-01-02", "2026-02-01"]
    with pytest.raises(ValueError, match="has columns"):
        wh.upsert_frame("core", "models", ["kind", "h"], a.rename(columns={"used": "when"}))


def test_apply_delta_on_the_version_written(duckdb_warehouse):
    _delta_case(duckdb_warehouse)
    _upsert_case(duckdb_warehouse)


@pytest.mark.postgres
def test_postgres_apply_delta_on_the_version_written(postgres_warehouse):
    _delta_case(postgres_warehouse)
    _upsert_case(postgres_warehouse)


@pytest.mark.postgres
def test_postgres_build_and_frame(postgres_warehouse):
    wh = postgres_warehouse
    assert wh.build_table("marts", "t", "select 1 as a") == 1
    df = pd.DataFrame({"k": ["a", "b"], "v": ['x,"y', None], "sources": [["hubspot", "koban"], None]})
    wh.write_frame("staging", "f", df)
    assert wh.query("select * from staging.f order by k") == [
        {"k": "a", "v": 'x,"y', "sources": "hubspot, koban"}, {"k": "b", "v": None, "sources": None}]


@pytest.mark.postgres
def test_postgres_reader_never_sees_a_missing_or_partial_table(postgres_warehouse):
    """A BI query running during rebuilds sees the old table or the new one, never an error or half a table."""
    wh = postgres_warehouse
    wh.build_table("marts", "t", "select g as a from generate_series(1, 20000) g")
    errors, counts, stop = [], set(), threading.Event()

    def reader():
        reader_wh = Warehouse(wh.url)
        while not stop.is_set():
            try:
                counts.add(reader_wh.scalar("select count(*) from marts.t"))
            except Exception as exc:  # noqa: BLE001 - any failure is what the test looks for
                errors.append(repr(exc))
        reader_wh.dispose()

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(15):
        n = 20000 if i % 2 else 30000
        wh.build_table("marts", "t", f"select g as a from generate_series(1, {n}) g")
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert counts <= {20000, 30000}


@pytest.mark.parametrize("dialect", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_query_arrow_keeps_text_nulls_types_and_instants(dialect, request):
    """What the identity resolution reads (query_arrow; on PostgreSQL through ADBC): the same typed table from both
    warehouses: an empty string is not a NULL, quotes / SQL / emoji / 10,000-character text come back as written,
    timestamps keep their instant in UTC, booleans and numbers their type; a trailing semicolon or comment does not
    break the read; inside an open transaction the read sees its uncommitted rows."""
    import pyarrow as pa

    wh = request.getfixturevalue(f"{dialect}_warehouse")
    if dialect == "postgres":  # a password libpq must receive percent-encoded (trust auth ignores its value)
        wh = Warehouse(sa.engine.make_url(wh.url).set(password="p@ss w:rd/+%é").render_as_string(hide_password=False))
    text = ["Zoë 😀 O'Brien\"; DROP TABLE x;--", "", None, "x" * 10_000]
    df = pd.DataFrame({
        "k": [1, 2, 3, 4], "s": text,
        "ts": pd.to_datetime(["2026-03-01T10:00:00+02:00", None, "2026-12-31T23:59:59Z", "1999-01-01T00:00:00Z"],
                             utc=True, format="ISO8601"),
        "b": pd.array([True, False, None, True], dtype="boolean"), "f": [1.5, None, -2.25, 0.0]})
    wh.write_frame("staging", "q", df)
    got = wh.query_arrow("select k, s, ts, b, f from staging.q order by k; -- the input query")
    types = {f.name: f.type for f in got.schema}
    assert types["k"] == pa.int64() and types["s"] == pa.string() and types["b"] == pa.bool_()
    assert types["f"] == pa.float64() and types["ts"] in (pa.timestamp("us", "UTC"), pa.timestamp("us", "Etc/UTC"))
    assert got.column("k").to_pylist() == [1, 2, 3, 4]
    assert got.column("s").to_pylist() == text
    assert [None if t is None else t.isoformat() for t in got.column("ts").to_pylist()] == [
        "2026-03-01T08:00:00+00:00", None, "2026-12-31T23:59:59+00:00", "1999-01-01T00:00:00+00:00"]
    assert got.column("b").to_pylist() == [True, False, None, True]
    assert got.column("f").to_pylist() == [1.5, None, -2.25, 0.0]
    with wh.session():
        with wh.connect() as conn:
            conn.exec_driver_sql("create table staging.uncommitted (a integer)")
            conn.exec_driver_sql("insert into staging.uncommitted values (7)")
            assert wh.query_arrow("select a from staging.uncommitted").column("a").to_pylist() == [7]
            conn.rollback()
    wh.dispose()


def test_libpq_uri_carries_every_part_of_the_url_as_libpq_reads_it():
    """The URI ADBC's PostgreSQL driver gets: what psycopg2 (libpq's own parser) reads from it is what SQLAlchemy
    read from the URL, whatever the password holds; sessions in UTC after the URL's own options."""
    from psycopg2.extensions import parse_dsn

    from warehouse.connection import libpq_uri

    password = "p@ss w:rd/?#&=%+é'\""
    url = sa.engine.make_url("postgresql+psycopg2://bob@corp.example:5433/sales db").set(
        password=password, query={"sslmode": "require", "options": "-c statement_timeout=5000"})
    dsn = parse_dsn(libpq_uri(str(url.render_as_string(hide_password=False))))
    assert dsn == {"user": "bob", "password": password, "host": "corp.example", "port": "5433", "dbname": "sales db",
                   "sslmode": "require", "options": "-c statement_timeout=5000 -c timezone=UTC"}
    assert parse_dsn(libpq_uri("postgresql://u@/crm?host=/var/run/postgresql"))["host"] == "/var/run/postgresql"
    several = parse_dsn(libpq_uri("postgresql://u@/crm?host=db1:5432&host=db2:5433"))
    assert (several["host"], several["port"]) == ("db1,db2", "5432,5433")
    assert parse_dsn(libpq_uri("postgresql://u@[::1]:5432/crm"))["host"] == "::1"


def test_redact_hides_passwords():
    assert redact("postgresql://bi:s3cret@db:5432/w") == "postgresql://bi:***@db:5432/w"
    wh = Warehouse("postgresql://bi:s3cret@127.0.0.1:5432/w")  # no connection is opened here
    assert "s3cret" not in repr(wh)


def test_unsupported_url_is_a_clear_error():
    with pytest.raises(ValueError, match="CRM_ETL_WAREHOUSE_URL"):
        Warehouse("mysql://x@y/z")


def test_split_statements_respects_quotes_and_comments():
    assert split_statements("select ';' as a; -- a; comment\nselect 2;") == ["select ';' as a", "select 2"]


def test_sql_models_are_schema_qualified_and_acyclic():
    models = catalog.discover()
    ordered = catalog.topo_order(models)
    assert len(ordered) == len(models)
    position = {m.key: i for i, m in enumerate(ordered)}
    for m in models:
        for dep in m.deps:
            if dep in position:
                assert position[dep] < position[m.key], f"{m.key} built before {dep}"


@pytest.mark.parametrize("dialect", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_prune_dlt_state_keeps_the_newest_versions_and_dlt_restores_the_newest(dialect, request, tmp_path):
    """dlt adds a version of the pipeline's state (whole, compressed) to _dlt_pipeline_state with every load that
    changed it and never removes one; prune_dlt_state keeps the newest `keep`. A pipeline whose working folder is
    lost restores the newest from the warehouse, as before the prune."""
    import shutil

    import dlt

    wh = Warehouse(request.getfixturevalue("postgres_url")) if dialect == "postgres" else \
        Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")

    @dlt.source(name="demo")
    def demo(n: int):
        @dlt.resource(write_disposition="merge", primary_key="id")
        def items():
            dlt.current.resource_state()["last"] = n  # the state changes with every run
            yield {"id": n % 2, "n": n}
        return items

    def pipeline():
        return dlt.pipeline("prune_demo", destination=wh.dlt_destination(), dataset_name="raw_demo",
                            pipelines_dir=str(tmp_path / "dlt"))

    for n in range(5):
        pipeline().run(demo(n))
    versions = "select version from raw_demo._dlt_pipeline_state order by version"
    assert [r["version"] for r in wh.query(versions)] == [1, 2, 3, 4, 5]
    assert wh.prune_dlt_state("raw_demo", "prune_demo", keep=2) == 3
    assert [r["version"] for r in wh.query(versions)] == [4, 5]
    assert wh.prune_dlt_state("raw_demo", "prune_demo", keep=2) == 0
    # a version whose load is still pending (no completed _dlt_loads row) stays; the newest completed load, listed
    # twice in _dlt_loads (a load step killed after its first insert), still counts once
    with wh.connect() as conn:
        conn.exec_driver_sql(
            "insert into raw_demo._dlt_pipeline_state select version + 1, engine_version, pipeline_name, state, "
            "created_at, version_hash || 'x', '9999999999.0', _dlt_id || 'x' from raw_demo._dlt_pipeline_state "
            "where version = 5")
        conn.exec_driver_sql("insert into raw_demo._dlt_loads select * from raw_demo._dlt_loads where load_id = "
                             "(select _dlt_load_id from raw_demo._dlt_pipeline_state where version = 5)")
    assert wh.prune_dlt_state("raw_demo", "prune_demo", keep=1) == 1
    assert [r["version"] for r in wh.query(versions)] == [5, 6]
    assert wh.prune_dlt_state("raw_demo", "other_pipeline", keep=1) == 0  # another pipeline's versions: none here
    assert wh.prune_dlt_state("raw_nothing", "prune_demo", keep=1) == 0  # never loaded: nothing to prune

    shutil.rmtree(tmp_path / "dlt")  # the working folder lost (a new worker): the state comes from the warehouse
    restored = pipeline()
    restored.sync_destination()
    assert restored.state["sources"]["demo"]["resources"]["items"]["last"] == 4
    wh.dispose()
