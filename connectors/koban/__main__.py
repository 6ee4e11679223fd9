"""Run the Koban source alone: `python -m connectors.koban` (keys from SOURCES__KOBAN__API_KEY / USER_KEY).

Loads into a dlt destination (duckdb by default) and prints rows per table, requests sent and wall time.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import dlt

from connectors.koban import client_of, koban_source, settings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m connectors.koban", description=__doc__)
    ap.add_argument("--base-url", default=os.environ.get("SOURCES__KOBAN__BASE_URL", settings.DEFAULT_BASE_URL))
    ap.add_argument("--destination", default="duckdb")
    ap.add_argument("--duckdb-path", default=None, help="DuckDB file (duckdb destination); default <pipeline>.duckdb")
    ap.add_argument("--dataset", default="raw_koban")
    ap.add_argument("--pipeline-name", default="koban")
    ap.add_argument("--pipelines-dir", default=None)
    ap.add_argument("--objects", default=None, help="comma-separated tables (default: all)")
    ap.add_argument("--rate", type=float, default=settings.DEFAULT_RATE_LIMIT_CALLS, help="requests per second")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    api_key, user_key = os.environ.get("SOURCES__KOBAN__API_KEY"), os.environ.get("SOURCES__KOBAN__USER_KEY")
    if not api_key or not user_key:
        print("set SOURCES__KOBAN__API_KEY and SOURCES__KOBAN__USER_KEY", file=sys.stderr)
        return 2
    destination: object = args.destination
    if args.destination == "duckdb" and args.duckdb_path:
        destination = dlt.destinations.duckdb(args.duckdb_path)
    pipeline = dlt.pipeline(pipeline_name=args.pipeline_name, destination=destination, dataset_name=args.dataset,
                            pipelines_dir=args.pipelines_dir)
    started = time.monotonic()
    rate = max(args.rate, 0.1)
    calls, period = (int(rate), 1.0) if rate >= 1 else (1, 1.0 / rate)
    source = koban_source(api_key=api_key, user_key=user_key, base_url=args.base_url,
                          objects=args.objects.split(",") if args.objects else None,
                          rate_limit_calls=calls, rate_limit_period=period)
    pipeline.run(source)
    elapsed = time.monotonic() - started
    stats = client_of(source).stats
    with pipeline.sql_client() as client:
        print(f"{'table':40s} rows")
        for table in sorted(pipeline.default_schema.data_table_names()):
            try:
                rows = client.execute_sql(f"SELECT count(*) FROM {client.make_qualified_table_name(table)}")[0][0]
            except Exception:  # declared but never created (no data yet)
                continue
            print(f"{table:40s} {rows}")
    print(f"requests: {stats.total} ({dict(stats.by_kind)}), retries: {stats.retries}, re-passes: {stats.passes}; "
          f"wall time {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
