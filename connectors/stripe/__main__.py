"""Run the Stripe source alone: `python -m connectors.stripe [--destination duckdb] [--full-refresh]`.

Credentials and options come from dlt config (SOURCES__STRIPE__SECRET_KEY, SOURCES__STRIPE__BASE_URL, ...).
Prints the load info and the request counts.
"""
from __future__ import annotations

import argparse
import logging
import time

import dlt

from connectors.stripe import context_of, stripe_source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connectors.stripe", description=__doc__.splitlines()[0])
    parser.add_argument("--destination", default="duckdb", help="dlt destination (default duckdb)")
    parser.add_argument("--dataset", default="raw_stripe")
    parser.add_argument("--pipeline-name", default="stripe")
    parser.add_argument("--full-refresh", action="store_true", help="ignore the events watermark, re-scan lists")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    pipeline = dlt.pipeline(pipeline_name=args.pipeline_name, destination=args.destination,
                            dataset_name=args.dataset)
    source = stripe_source(full_refresh=args.full_refresh)
    started = time.monotonic()
    info = pipeline.run(source)
    print(info)
    ctx = context_of(source)
    stats = ctx.client.stats
    print(f"stripe: {ctx.plan().mode} sync, {stats.total} requests ({dict(stats.by_kind)}, {stats.retries} retries) "
          f"in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
