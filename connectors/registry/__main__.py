"""Run the registry source alone.

    python -m connectors.registry load-stock --unites StockUniteLegale_utf8.parquet \
        --etablissements StockEtablissement_utf8.parquet [--as-of 2026-10-31] [--naf-labels naf.csv]
    python -m connectors.registry lookup --siren 404833048 --siret ... --search "Acme Conseil,75008" \
        [--wanted-file sirens.txt] [--max-age-days 30]

Loads into a dlt destination (DuckDB by default) and prints rows per table, requests sent and wall time.
`lookup` reads what the dataset already holds (`lookups` and `stock_companies` fetch dates) as its cache, so
running it twice asks nothing the second time.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Any, Dict, List

import dlt

from connectors.registry import client_of, registry_source, settings


def _pipeline(args: argparse.Namespace) -> dlt.Pipeline:
    destination: object = args.destination
    if args.destination == "duckdb" and args.duckdb_path:
        destination = dlt.destinations.duckdb(args.duckdb_path)
    return dlt.pipeline(pipeline_name=args.pipeline_name, destination=destination, dataset_name=args.dataset,
                        pipelines_dir=args.pipelines_dir)


def _cached(pipeline: dlt.Pipeline) -> Dict[str, Any]:
    """{key: latest fetch} from the loaded tables (none yet: empty)."""
    out: Dict[str, Any] = {}
    try:
        with pipeline.sql_client() as client:
            for table, key in (("lookups", "lookup_key"), ("stock_companies", "siren")):
                try:
                    rows = client.execute_sql(
                        f"select {key}, max(fetched_at) from {client.make_qualified_table_name(table)} group by 1")
                except Exception:  # table not loaded yet
                    continue
                for k, ts in rows:
                    if k not in out or ts > out[k]:
                        out[k] = ts
    except Exception:
        pass
    return out


def _print_counts(pipeline: dlt.Pipeline) -> None:
    with pipeline.sql_client() as client:
        print(f"{'table':30s} rows")
        for table in sorted(pipeline.default_schema.data_table_names()):
            try:
                rows = client.execute_sql(f"SELECT count(*) FROM {client.make_qualified_table_name(table)}")[0][0]
            except Exception:
                continue
            print(f"{table:30s} {rows}")


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m connectors.registry", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--destination", default="duckdb")
    ap.add_argument("--duckdb-path", default=None, help="DuckDB file (duckdb destination)")
    ap.add_argument("--dataset", default="raw_registry")
    ap.add_argument("--pipeline-name", default="registry")
    ap.add_argument("--pipelines-dir", default=None)
    ap.add_argument("--quiet", action="store_true")
    sub = ap.add_subparsers(dest="command", required=True)
    st = sub.add_parser("load-stock", help="load the Sirene stock files (no API call)")
    st.add_argument("--unites", required=True, help="StockUniteLegale file (.csv, .zip or .parquet)")
    st.add_argument("--etablissements", required=True, help="StockEtablissement file (.csv, .zip or .parquet)")
    st.add_argument("--as-of", default=None, help="the stock's date (default: the file's modification time)")
    st.add_argument("--naf-labels", default=None, help="CSV code,label of NAF codes")
    st.add_argument("--legal-form-labels", default=None, help="CSV code,label of catégories juridiques")
    lk = sub.add_parser("lookup", help="look companies up through the API (only missing or stale ones)")
    lk.add_argument("--base-url", default=os.environ.get("SOURCES__REGISTRY__BASE_URL", settings.DEFAULT_BASE_URL))
    lk.add_argument("--siren", action="append", default=[])
    lk.add_argument("--siret", action="append", default=[])
    lk.add_argument("--vat", action="append", default=[])
    lk.add_argument("--search", action="append", default=[], metavar="NAME,POSTCODE")
    lk.add_argument("--wanted-file", default=None, help="one SIREN / SIRET per line")
    lk.add_argument("--max-age-days", type=float, default=settings.DEFAULT_MAX_AGE_DAYS)
    lk.add_argument("--rate", type=float, default=settings.RATE_LIMIT_PER_SECOND, help="requests per second")
    args = ap.parse_args(argv)

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    pipeline = _pipeline(args)
    started = time.monotonic()
    if args.command == "load-stock":
        source = registry_source(stock_unites=args.unites, stock_etablissements=args.etablissements,
                                 stock_as_of=args.as_of, naf_labels_file=args.naf_labels,
                                 legal_form_labels_file=args.legal_form_labels)
        pipeline.run(source.with_resources("stock_companies", "code_labels"))
    else:
        wanted: List[Dict[str, Any]] = [{"siren": s} for s in args.siren] + [{"siret": s} for s in args.siret]
        wanted += [{"vat": v} for v in args.vat]
        for item in args.search:
            name, _, postcode = item.rpartition(",") if "," in item else (item, "", "")
            wanted.append({"name": name, "postcode": postcode or None})
        if args.wanted_file:
            with open(args.wanted_file, encoding="utf-8") as fh:
                for line in fh:
                    v = line.strip().replace(" ", "")
                    if v:
                        wanted.append({"siret": v} if len(v) == 14 else {"siren": v})
        if not wanted:
            print("nothing to look up: give --siren / --siret / --vat / --search / --wanted-file", file=sys.stderr)
            return 2
        source = registry_source(wanted=wanted, cached=_cached(pipeline), base_url=args.base_url,
                                 max_age_days=args.max_age_days, rate_limit_per_second=args.rate)
        pipeline.run(source)
        stats = client_of(source).stats
        print(f"requests: {stats.total} ({dict(stats.by_kind)}), retries: {stats.retries}")
    _print_counts(pipeline)
    print(f"wall time {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
