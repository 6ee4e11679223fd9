"""Run the inputs source alone: `python -m connectors.inputs --folder DIR [--reps a@x.fr,b@x.fr]`.

Loads into a dlt destination (DuckDB by default) and prints rows per table; a malformed file prints every
`file:line: reason` and exits with status 1 (nothing loaded).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

import dlt

from connectors.inputs import InputFileError, inputs_source


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m connectors.inputs", description=__doc__)
    ap.add_argument("--folder", default=os.environ.get("SOURCES__INPUTS__FOLDER"))
    ap.add_argument("--reps", default=None, help="comma-separated rep emails to check rep_costs against")
    ap.add_argument("--destination", default="duckdb")
    ap.add_argument("--duckdb-path", default=None)
    ap.add_argument("--dataset", default="raw_inputs")
    ap.add_argument("--pipeline-name", default="inputs")
    ap.add_argument("--pipelines-dir", default=None)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.folder:
        print("no folder: pass --folder or set SOURCES__INPUTS__FOLDER", file=sys.stderr)
        return 2
    destination: object = args.destination
    if args.destination == "duckdb" and args.duckdb_path:
        destination = dlt.destinations.duckdb(args.duckdb_path)
    pipeline = dlt.pipeline(pipeline_name=args.pipeline_name, destination=destination, dataset_name=args.dataset,
                            pipelines_dir=args.pipelines_dir)
    reps = [r.strip() for r in args.reps.split(",") if r.strip()] if args.reps else None
    try:
        pipeline.run(inputs_source(folder=args.folder, known_reps=reps))
    except Exception as exc:  # dlt wraps the resource's error
        cause = exc
        while cause is not None and not isinstance(cause, InputFileError):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        print(str(cause), file=sys.stderr)
        return 1
    with pipeline.sql_client() as client:
        for table in sorted(pipeline.default_schema.data_table_names()):
            try:
                n = client.execute_sql(f"SELECT count(*) FROM {client.make_qualified_table_name(table)}")[0][0]
            except Exception:
                continue
            print(f"{table:20s} {n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
