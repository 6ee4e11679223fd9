"""Identity benchmark: quality (pairwise precision/recall vs known truth) and scale, as a markdown table.

    .venv/bin/python bench/bench_identity.py                       # 100k, 300k, 1M contacts + 200k companies
    .venv/bin/python bench/bench_identity.py --contacts 100000 --companies 0 --quality-only
    .venv/bin/python bench/bench_identity.py --case contacts:8000:hard:0.0 --seed 3 --blank job_title  # no titles
Each case runs in a fresh subprocess so its peak RSS is its own.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def run_case(kind: str, n: int, variant: str, incremental: float, seed: int, names: str = "france",
             blank: tuple[str, ...] = ()) -> dict:
    import duckdb
    import pandas as pd

    from scale_people import generate_companies, generate_contacts
    from transforms.identity.core import resolve, update
    from transforms.identity.evaluate import pairwise_scores

    gen = generate_contacts if kind == "contacts" else generate_companies
    key = "person_key" if kind == "contacts" else "company_key"
    t0 = time.perf_counter()
    df = gen(n, seed=seed, variant=variant, **({"names": names} if kind == "contacts" else {}))
    for column in blank:  # a field nobody fills in this CRM
        df[column] = None
    gen_s = time.perf_counter() - t0
    con = duckdb.connect()
    con.register("truth", df[["source_system", "source_id", key]])
    inp = df.drop(columns=key)
    n_inc = int(len(inp) * incremental)
    base, changes = (inp.iloc[: len(inp) - n_inc], inp.iloc[len(inp) - n_inc:]) if n_inc else (inp, None)
    t0, c0 = time.perf_counter(), time.process_time()
    res = resolve(kind, inp if changes is None else base, con=con, passthrough=[])
    full_s, full_cpu = time.perf_counter() - t0, time.process_time() - c0
    label = f"{variant}, {names} names" if kind == "contacts" and names != "france" else variant
    label += "".join(f", no {column}" for column in blank)
    out = {"kind": kind, "n": len(inp), "variant": label, "generate_s": round(gen_s, 1), "full_s": round(full_s, 1), "full_cpu_s": round(full_cpu, 1),
           "steps": {k: round(v, 1) for k, v in res.timings.items()}, "entities": res.counts["entities"]}
    if changes is not None:
        t0, c0 = time.perf_counter(), time.process_time()
        res = update(res, changes, passthrough=[])
        out["incremental_s"] = round(time.perf_counter() - t0, 1)
        out["incremental_cpu_s"] = round(time.process_time() - c0, 1)
        out["incremental_n"] = len(changes)
        out["incremental_steps"] = {k: round(v, 1) for k, v in res.timings.items()}
    out.update({k: v for k, v in pairwise_scores(con, res.crosswalk, "truth", key).items()})
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, nargs="*", default=[100_000, 300_000, 1_000_000])
    ap.add_argument("--companies", type=int, nargs="*", default=[200_000])
    ap.add_argument("--quality-n", type=int, default=20_000)
    ap.add_argument("--incremental", type=float, default=0.01)
    ap.add_argument("--quality-only", action="store_true")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--names", default="france", choices=["france", "skewed"],
                    help="contacts: how often names recur (scale_people.NAMES; skewed: the homonym stress test)")
    ap.add_argument("--blank", nargs="*", default=[], metavar="COLUMN",
                    help="empty these input columns in every case (a field the CRM never holds), e.g. job_title")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.case:
        kind, n, variant, inc = a.case.split(":")
        print(json.dumps(run_case(kind, int(n), variant, float(inc), a.seed, a.names, tuple(a.blank))))
        return
    cases = []
    for kind in ("contacts", "companies"):
        for variant in ("default", "hard"):
            cases.append((kind, a.quality_n, variant, 0.0))
    if not a.quality_only:
        cases += [("contacts", n, "default", a.incremental) for n in a.contacts if n]
        cases += [("companies", n, "default", a.incremental) for n in a.companies if n]
    rows = []
    for kind, n, variant, inc in cases:
        p = subprocess.run([sys.executable, __file__, "--case", f"{kind}:{n}:{variant}:{inc}", "--seed", str(a.seed),
                            "--names", a.names, "--blank", *a.blank], capture_output=True, text=True)
        if p.returncode:
            print(f"{kind} {n} {variant}: FAILED\n{p.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(p.stdout.strip().splitlines()[-1]))
        print(rows[-1], file=sys.stderr)
    # wall-clock times vary with the other jobs on a shared machine; CPU seconds (all threads) less so
    print("| entity | records | variant | precision | recall | full run (s) | full CPU (s) | incremental 1% (s) | incr. CPU (s) | incr./full | peak RSS (MiB) | steps (s) | incremental steps (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['incremental_s'] / r['full_s']:.1%}" if r.get("incremental_s") is not None else ""
        print(f"| {r['kind']} | {r['n']:,} | {r['variant']} | {r['precision']:.4f} | {r['recall']:.4f} | {r['full_s']} | "
              f"{r['full_cpu_s']} | {r.get('incremental_s', '')} | {r.get('incremental_cpu_s', '')} | {ratio} | "
              f"{r['peak_rss_mib']} | {r['steps']} | {r.get('incremental_steps', '')} |")


if __name__ == "__main__":
    main()
