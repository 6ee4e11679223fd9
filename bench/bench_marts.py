"""Benchmark: rebuild the core facts and every mart from generated inputs (bench/scale_marts.py) at 10%, 30%, 100%
of 1,000,000 contacts / 200,000 companies / 300,000 deals / 5,000,000 activities / 500,000 invoices, on DuckDB and,
with --postgres, on PostgreSQL. Prints a markdown table of per-model seconds (and, on DuckDB, the process's CPU
seconds: the machine is shared), the marts-only subtotal (marts rebuilt from core), the core subtotal, the total,
rows and peak RSS.

    .venv/bin/python bench/bench_marts.py [--scales 0.1,0.3,1] [--postgres] [--snapshot-days N] [--repeat 2]
        [--out bench/results_marts.md]

The machine is shared: --repeat N runs each engine x scale N times (fresh process and data each time) and reports
every total, with the per-model times of the fastest run. The table is printed and written to --out.

Each scale runs in a fresh child process so the peak RSS is that run's (client process: DuckDB runs in it; for
PostgreSQL the server's memory is not counted). --snapshot-days limits mart_pipeline_daily to the last N days
(cfg_settings pipeline_snapshot_from), the way the partitioned pipeline builds it; 0 = the whole history.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

MARTS = ["mart_win_rate", "mart_cac", "mart_effort_per_target", "mart_marketing_to_sales", "mart_average_basket",
         "mart_pipeline_daily", "mart_weighted_pipeline", "mart_stage_velocity", "mart_forecast_accuracy",
         "mart_rep_scorecard", "mart_flash"]


def run_one(engine: str, scale: float, snapshot_days: int) -> dict:
    from pg_scratch import scratch_database
    from scale_marts import generate
    from transforms.build import build_models
    from warehouse.connection import Warehouse

    scratch = contextlib.ExitStack()
    if engine == "duckdb":
        url = f"duckdb:///{scratch.enter_context(tempfile.TemporaryDirectory(prefix='bench_marts_'))}/w.duckdb"
    else:
        url = scratch.enter_context(scratch_database("bench_marts"))
    wh = Warehouse(url)
    try:
        t = time.perf_counter()
        generate(wh, scale)
        if snapshot_days:
            wh.execute("insert into staging.cfg_settings values ('pipeline_snapshot_from', "
                       f"cast(cast('2026-12-31' as date) - {snapshot_days} as text))")
        if engine == "postgres":
            wh.execute("analyze")
        gen_s = time.perf_counter() - t
        timings: dict[str, float] = {}
        cpu = _CpuPerModel()
        t = time.perf_counter()
        with cpu:
            counts = build_models(wh, only=MARTS + ["dim_rep"], timings=timings)
        total = time.perf_counter() - t
    finally:
        wh.dispose()
        scratch.close()  # the DuckDB folder or the PostgreSQL database, gone
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"engine": engine, "scale": scale, "generate_s": gen_s, "total_s": total, "timings": timings,
            "cpu": cpu.seconds, "counts": counts, "peak_rss_mib": peak_mib, "load": os.getloadavg()[0]}


class _CpuPerModel(logging.Handler):
    """This process's CPU seconds per model (all DuckDB threads; PostgreSQL works in its server, so there it is
    only the client's share), read at each "built <model>" log record of transforms.build."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seconds: dict[str, float] = {}
        self._last = 0.0

    def __enter__(self):
        self._logger = logging.getLogger("transforms.build")
        self._level = self._logger.level
        self._logger.setLevel(logging.INFO)
        self._logger.addHandler(self)
        self._last = time.process_time()
        return self

    def __exit__(self, *exc):
        self._logger.removeHandler(self)
        self._logger.setLevel(self._level)

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("built ") and record.args:
            now = time.process_time()
            self.seconds[str(record.args[0])] = now - self._last
            self._last = now


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", default="0.1,0.3,1")
    ap.add_argument("--postgres", action="store_true", help="also run on PostgreSQL at 127.0.0.1:5432")
    ap.add_argument("--snapshot-days", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--postgres-only", action="store_true", help="only PostgreSQL")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results_marts.md"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        engine, scale = args.child.split(":")
        print(json.dumps(run_one(engine, float(scale), args.snapshot_days)))
        return
    engines = ["postgres"] if args.postgres_only else ["duckdb"] + (["postgres"] if args.postgres else [])
    results = []
    for engine in engines:
        for scale in [float(s) for s in args.scales.split(",")]:
            runs = []
            for _ in range(args.repeat):
                out = subprocess.run([sys.executable, __file__, "--child", f"{engine}:{scale}", "--snapshot-days",
                                      str(args.snapshot_days)], capture_output=True, text=True, cwd=ROOT,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
                if out.returncode:
                    print(out.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"{engine} at {scale:.0%} failed")
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(f"{engine} {scale:.0%}: {runs[-1]['total_s']:.1f} s (load {runs[-1]['load']:.1f})", file=sys.stderr)
            best = min(runs, key=lambda r: r["total_s"])
            best["all_totals"] = [r["total_s"] for r in runs]
            best["loads"] = [r["load"] for r in runs]
            best["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
            results.append(best)
    cols = [f"{r['engine']} {r['scale']:.0%}" for r in results]
    lines = ["| model | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]

    def cell(r, keys):
        wall = sum(r["timings"][k] for k in keys)
        cpu = sum(r["cpu"].get(k, 0.0) for k in keys)
        return f"{wall:.2f} s" + (f" (CPU {cpu:.1f} s)" if r["engine"] == "duckdb" else "")

    keys = list(results[0]["timings"])
    for key in keys:
        cells = [cell(r, [key]) + f", {r['counts'][key]:,} rows" for r in results]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    marts = [k for k in keys if k.startswith("marts.")]
    core = [k for k in keys if not k.startswith("marts.")]
    lines.append("| **marts only (rebuilt from core)** | " + " | ".join(f"**{cell(r, marts)}**" for r in results) + " |")
    lines.append("| core only | " + " | ".join(cell(r, core) for r in results) + " |")
    if len({r["engine"] for r in results}) == 1 and len(results) > 1:
        lo, hi = results[0], results[-1]
        growth = lambda ks: sum(hi["timings"][k] for k in ks) / max(sum(lo["timings"][k] for k in ks), 1e-9)
        lines.append(f"| growth {lo['scale']:.0%} -> {hi['scale']:.0%} (marts / core / total) | "
                     + " | ".join([""] * (len(results) - 1)
                                  + [f"x{growth(marts):.1f} / x{growth(core):.1f} / x{hi['total_s'] / lo['total_s']:.1f}"])
                     + " |")
    lines.append("| **total rebuild core + marts (fastest run)** | " + " | ".join(f"**{r['total_s']:.1f} s**" for r in results) + " |")
    lines.append("| every run's total | " + " | ".join(" / ".join(f"{t:.1f} s" for t in r["all_totals"]) for r in results) + " |")
    lines.append("| machine load (1 min) at each run's end | " + " | ".join(" / ".join(f"{x:.1f}" for x in r["loads"]) for r in results) + " |")
    lines.append("| input generation (not in total) | " + " | ".join(f"{r['generate_s']:.1f} s" for r in results) + " |")
    lines.append("| peak RSS (client process) | " + " | ".join(f"{r['peak_rss_mib']:,.0f} MiB" for r in results) + " |")
    table = "\n".join(lines)
    print(table)
    cmd = " ".join(["bench/bench_marts.py"] + sys.argv[1:])
    Path(args.out).write_text(
        "# Marts rebuild benchmark\n\n"
        f"`.venv/bin/python {cmd}`, {os.cpu_count()} CPUs shared with other jobs. Whole core + marts rebuild "
        "(build_models, one connection), per-model seconds of the fastest run; inputs from bench/scale_marts.py "
        "(100% = 1M contacts, 200k companies, 300k deals, 5M activities, 500k invoices)"
        + (f"; mart_pipeline_daily limited to the last {args.snapshot_days} days" if args.snapshot_days else "")
        + ".\n\n" + table + "\n")


if __name__ == "__main__":
    main()
