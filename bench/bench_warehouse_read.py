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
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

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

    from pg_scratch import scratch_database
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

    with scratch_database("crm_etl_bench_read", missing_ok=True) as url:
        if url:
            pg = Warehouse(url)
            pg.ensure_schemas()
            pg.write_frame("staging", "identity_input", data)
            results.append(("PostgreSQL", "query_arrow (ADBC, binary COPY)", *_best(lambda: pg.query_arrow(QUERY), a.repeat)))
            results.append(("PostgreSQL", "pandas read_sql -> Arrow (before)", *_best(
                lambda: pa.Table.from_pandas(pg.query_df(QUERY), preserve_index=False), a.repeat)))
            pg.dispose()

    print(f"\nidentity input read, {a.n:,} contacts x {data.num_columns} columns, best of {a.repeat}\n")
    print("| warehouse | read | seconds | rows |\n|---|---|---|---|")
    for engine, how, seconds, rows in results:
        print(f"| {engine} | {how} | {seconds:.2f} | {rows:,} |")


if __name__ == "__main__":
    main()
