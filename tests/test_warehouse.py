"""The warehouse module: atomic builds, frames, dialects, catalogue of SQL models."""
from __future__ import annotations

import threading

import pandas as pd
import pytest

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
