"""The same hand-made world on PostgreSQL gives the same marts as on DuckDB, cell by cell."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from marts_world import load_world, world
from test_marts import MY_MARTS
from transforms.build import build_models
from warehouse.connection import Warehouse
from warehouse.dictionary import load_dictionary

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CORE = ["fct_deals", "fct_activities", "fct_invoices", "dim_rep", "dim_company", "fct_deal_stages",
        "fct_acquisition_effort", "stage_calibration", "deal_state_periods"]


@pytest.fixture(scope="module")
def pg_url():
    name = f"crm_marts_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'create database "{name}"')
    except sa.exc.OperationalError as exc:  # pragma: no cover - no server
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'drop database if exists "{name}" with (force)')
    admin.dispose()


def _norm(v):
    """One representation per value so both engines compare equal when they mean the same thing."""
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.timezone.utc).replace(tzinfo=None) if v.tzinfo else v
    if isinstance(v, float):
        return round(v, 6)
    return v


def _sorted(rows: list[tuple]) -> list[tuple]:
    # sorted here, not by ORDER BY: the two engines collate text differently
    return sorted(rows, key=lambda r: tuple((x is None, str(x)) for x in r))


def _table(wh: Warehouse, schema: str, name: str) -> list[tuple]:
    cols = list(load_dictionary()[schema][name]["columns"])
    got = wh.query(f"select {', '.join(cols)} from {schema}.{name}")
    return _sorted([tuple(_norm(r[c]) for c in cols) for r in got])


@pytest.fixture(scope="module")
def both(pg_url, tmp_path_factory):
    duck = Warehouse(f"duckdb:///{tmp_path_factory.mktemp('marts_pg') / 'w.duckdb'}")
    pg = Warehouse(pg_url)
    for wh in (duck, pg):
        load_world(wh, world())
        build_models(wh, only=MY_MARTS + ["dim_rep"])
    yield duck, pg
    duck.dispose()
    pg.dispose()


@pytest.mark.parametrize("schema,name", [("marts", m) for m in MY_MARTS] + [("core", c) for c in CORE])
def test_postgres_equals_duckdb(both, schema, name):
    duck, pg = both
    d, p = _table(duck, schema, name), _table(pg, schema, name)
    assert d, f"{schema}.{name} is empty: the comparison would prove nothing"
    assert d == p


def test_postgres_snapshot_partition_equals_duckdb(both):
    import datetime as dt

    from transforms.build import replace_pipeline_snapshot_days

    duck, pg = both
    before = _table(pg, "marts", "mart_pipeline_daily")
    # replacing a month of partitions on PostgreSQL gives back exactly the full rebuild (and DuckDB's)
    assert replace_pipeline_snapshot_days(pg, dt.date(2026, 2, 1), dt.date(2026, 2, 28)) > 0
    assert _table(pg, "marts", "mart_pipeline_daily") == before == _table(duck, "marts", "mart_pipeline_daily")
    ix = pg.scalar("select count(*) from pg_indexes where schemaname = 'marts' and tablename = 'mart_pipeline_daily'")
    assert ix == 1  # the unique (snapshot_date, deal_key) index of the -- unique: header, under its final name


def test_postgres_snapshot_refuses_a_duplicated_key_and_its_key_check_reads_that(both):
    """The snapshot grows by inserts; on PostgreSQL its unique index (the `-- unique:` header) refuses a second row
    for a day and deal, so its blocking key check counts rows and null keys without a distinct count over every
    snapshot row. The same check on a table without such an index still finds duplicates."""
    from pipelines.key_checks import evaluate_key_check

    _, pg = both
    key = ["snapshot_date", "deal_key"]
    result = evaluate_key_check(pg, "marts", "mart_pipeline_daily", key)
    assert result.passed and result.metadata["duplicates_prevented_by"].value == "mart_pipeline_daily__ux0"
    assert result.metadata["total_rows"].value == pg.scalar("select count(*) from marts.mart_pipeline_daily") > 0
    with pytest.raises(sa.exc.IntegrityError, match="mart_pipeline_daily__ux0"):
        pg.execute("insert into marts.mart_pipeline_daily select * from marts.mart_pipeline_daily limit 1")

    pg.execute("create table marts.snapshot_copy as select * from marts.mart_pipeline_daily")
    pg.execute("insert into marts.snapshot_copy select * from marts.mart_pipeline_daily limit 1")
    copy = evaluate_key_check(pg, "marts", "snapshot_copy", key)
    assert not copy.passed and copy.metadata["duplicate_rows"].value == 1
    assert "duplicates_prevented_by" not in copy.metadata
    pg.execute("drop table marts.snapshot_copy")


def test_postgres_snapshot_built_before_the_unique_index_gets_it_at_its_next_partition(both):
    """An upgraded warehouse: the snapshot was built with the plain (snapshot_date) index. Its next partition adds
    the unique index and drops the plain one; a partial unique index never stands in for the key check."""
    from pipelines.key_checks import enforcing_unique_index
    from transforms.build import replace_pipeline_snapshot_days

    _, pg = both
    pg.execute("drop index marts.mart_pipeline_daily__ux0")
    pg.execute("create index mart_pipeline_daily__ix0 on marts.mart_pipeline_daily (snapshot_date)")
    pg.execute("create unique index snapshot_partial on marts.mart_pipeline_daily (snapshot_date, deal_key) "
               "where snapshot_date > date '2100-01-01'")
    assert enforcing_unique_index(pg, "marts", "mart_pipeline_daily", ["snapshot_date", "deal_key"]) is None
    pg.execute("drop index marts.snapshot_partial")

    assert replace_pipeline_snapshot_days(pg, dt.date(2026, 2, 1)) > 0
    names = {r["indexname"] for r in pg.query(
        "select indexname from pg_indexes where schemaname = 'marts' and tablename = 'mart_pipeline_daily'")}
    assert names == {"mart_pipeline_daily__ux0"}
    assert enforcing_unique_index(pg, "marts", "mart_pipeline_daily", ["snapshot_date", "deal_key"]) == "mart_pipeline_daily__ux0"
