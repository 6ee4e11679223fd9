"""Run the HubSpot source alone: `python -m connectors.hubspot --base-url URL --token-env VAR`.

Loads into a dlt destination (duckdb by default) and prints rows per table, requests sent and wall time.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import dlt

from connectors.hubspot import client_of, hubspot_source
from connectors.hubspot import settings


def _custom(values: list[str]) -> dict:
    """--custom contacts=lead_source,tier --custom companies=all"""
    out: dict = {}
    for item in values:
        obj, _, names = item.partition("=")
        out[obj] = "all" if names == "all" else [n for n in names.split(",") if n]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m connectors.hubspot", description=__doc__)
    ap.add_argument("--base-url", default=os.environ.get("SOURCES__HUBSPOT__BASE_URL", settings.DEFAULT_BASE_URL))
    ap.add_argument("--token-env", default="SOURCES__HUBSPOT__ACCESS_TOKEN",
                    help="name of the environment variable holding the access token")
    ap.add_argument("--api-version", default=settings.DEFAULT_API_VERSION, help='"2026-03" (default) or "v3"')
    ap.add_argument("--destination", default="duckdb")
    ap.add_argument("--duckdb-path", default=None, help="DuckDB file (duckdb destination); default <pipeline>.duckdb")
    ap.add_argument("--dataset", default="raw_hubspot")
    ap.add_argument("--pipeline-name", default="hubspot")
    ap.add_argument("--pipelines-dir", default=None)
    ap.add_argument("--objects", default=None, help="comma-separated object types (default: all)")
    ap.add_argument("--custom", action="append", default=[], metavar="OBJECT=NAMES",
                    help="opt-in custom properties, e.g. contacts=lead_source,tier or companies=all")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = os.environ.get(args.token_env)
    if not token:
        print(f"environment variable {args.token_env} is not set", file=sys.stderr)
        return 2
    destination: object = args.destination
    if args.destination == "duckdb" and args.duckdb_path:
        destination = dlt.destinations.duckdb(args.duckdb_path)
    pipeline = dlt.pipeline(pipeline_name=args.pipeline_name, destination=destination, dataset_name=args.dataset,
                            pipelines_dir=args.pipelines_dir)
    started = time.monotonic()
    source = hubspot_source(
        access_token=token, base_url=args.base_url, api_version=args.api_version,
        objects=args.objects.split(",") if args.objects else None, custom_properties=_custom(args.custom) or None,
    )
    pipeline.run(source)
    elapsed = time.monotonic() - started
    stats = client_of(source).stats
    with pipeline.sql_client() as client:
        tables = sorted(t for t in pipeline.default_schema.data_table_names())
        print(f"{'table':40s} rows")
        for table in tables:
            try:
                rows = client.execute_sql(f"SELECT count(*) FROM {client.make_qualified_table_name(table)}")[0][0]
            except Exception:  # a table declared but never created (no data yet)
                continue
            print(f"{table:40s} {rows}")
    print(f"requests: {stats.total} ({dict(stats.by_kind)}), retries: {stats.retries}; wall time {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
