"""Benchmark: the identity resolution's input read out of the warehouse (Warehouse.query_arrow), which every identity
run pays in full, incremental or not. N generated contacts (bench/scale_people.py) in the identity input's shape are
written to a fresh PostgreSQL database (dropped afterwards) and a DuckDB file, then read back as Arrow: through
query_arrow (PostgreSQL: ADBC's driver; DuckDB: its own Arrow export) and, for comparison, through pandas'
read_sql as query_arrow read PostgreSQL before. Prints a markdown table (best of --repeat).

    .venv/bin/python bench/bench_warehouse_read.py -n 1000000 --repeat 3

PostgreSQL: CRM_ETL_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/postgres); without it reachable, the
PostgreSQL rows are skipped.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

PG_ADMIN_URL = os.environ.get("CRM_ETL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
QUERY = "select * from staging.identity_input"


def _best(fn, repeat: int) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = fn().num_rows
        best = min(best, time.perf_counter() - t0)
    return best, rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()

    import pyarrow as pa
    import sqlalchemy as sa

    from scale_people import generate_contacts
    from warehouse import Warehouse

    frame = generate_contacts(a.n, seed=7).drop(columns="person_key")
    frame["updated_at"] = frame["updated_at"].dt.tz_localize("UTC")
    data = pa.Table.from_pandas(frame, preserve_index=False)
    results: list[tuple[str, str, float, int]] = []

    with tempfile.TemporaryDirectory(prefix="bench_warehouse_read_") as tmp:
        duck = Warehouse(f"duckdb:///{Path(tmp) / 'warehouse.duckdb'}")
        duck.ensure_schemas()
        duck.write_frame("staging", "identity_input", data)
        results.append(("DuckDB", "query_arrow (Arrow export)", *_best(lambda: duck.query_arrow(QUERY), a.repeat)))
        duck.dispose()

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"crm_etl_bench_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'create database "{name}"')
    except sa.exc.OperationalError as exc:
        print(f"PostgreSQL not reachable at {PG_ADMIN_URL.split('@')[-1]}: its rows skipped ({type(exc).__name__})")
        name = None
    if name:
        try:
            pg = Warehouse(sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False))
            pg.ensure_schemas()
            pg.write_frame("staging", "identity_input", data)
            results.append(("PostgreSQL", "query_arrow (ADBC, binary COPY)", *_best(lambda: pg.query_arrow(QUERY), a.repeat)))
            results.append(("PostgreSQL", "pandas read_sql -> Arrow (before)", *_best(
                lambda: pa.Table.from_pandas(pg.query_df(QUERY), preserve_index=False), a.repeat)))
            pg.dispose()
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql("select pg_terminate_backend(pid) from pg_stat_activity "
                                     "where datname = %s and pid <> pg_backend_pid()", (name,))
                conn.exec_driver_sql(f'drop database if exists "{name}"')
    admin.dispose()

    print(f"\nidentity input read, {a.n:,} contacts x {data.num_columns} columns, best of {a.repeat}\n")
    print("| warehouse | read | seconds | rows |\n|---|---|---|---|")
    for engine, how, seconds, rows in results:
        print(f"| {engine} | {how} | {seconds:.2f} | {rows:,} |")


if __name__ == "__main__":
    main()
