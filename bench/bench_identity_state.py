"""Identity between pipeline runs (transforms.identity.state): full run into a state file, then a run with no
change, then runs with a share of new + changed records, against the former in-memory full resolution.

    .venv/bin/python bench/bench_identity_state.py --kind contacts -n 100000 --change 0.01
Prints a markdown table (wall and CPU seconds per run, 1-min load average beside them).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def _changed(df, share: float, seed: int, n_new: int):
    """`df` with the first rows replaced by a later version (e-mail or job title edited), `share` of it in all
    counting `n_new` records appended later."""
    import numpy as np
    import pandas as pd

    out = df.copy()
    n = max(int(len(df) * share) - n_new, 0)
    rng = np.random.default_rng(seed)
    idx = rng.choice(out.index, size=n, replace=False)
    half = idx[: n // 2]
    out.loc[half, "email"] = [f"edited.{i}@exemple.fr" for i in range(len(half))]
    col = "job_title" if "job_title" in out else "city"
    out.loc[idx[n // 2:], col] = "Edited"
    out.loc[idx, "updated_at"] = pd.Timestamp("2027-06-01")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", default="contacts", choices=["contacts", "companies"])
    ap.add_argument("-n", type=int, default=100_000)
    ap.add_argument("--change", type=float, nargs="*", default=[0.01])
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()

    from scale_people import generate_companies, generate_contacts
    from transforms.identity.core import resolve
    from transforms.identity.state import resolve_with_state

    gen = generate_contacts if a.kind == "contacts" else generate_companies
    key = "person_key" if a.kind == "contacts" else "company_key"
    total = gen(int(a.n * (1 + max(a.change) / 2)) + 1, seed=a.seed).drop(columns=key).reset_index(drop=True)
    base = total.iloc[: a.n]
    work = Path(tempfile.mkdtemp(prefix="bench_identity_state_"))
    path = work / f"{a.kind}.duckdb"
    rows = []

    def timed(label, fn):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        rows.append((label, time.perf_counter() - t0, time.process_time() - c0, os.getloadavg()[0], out))

    def state_run(data, **kw):
        with resolve_with_state(a.kind, data, path=path, **kw) as run:
            run.resolution.crosswalk_df()  # what the asset then reads and writes to the warehouse
            return f"{run.mode}: {run.new} new, {run.changed} changed ({run.reason})"

    def in_memory():
        res = resolve(a.kind, base)
        res.crosswalk_df()
        return f"{res.counts['records']} records, {res.counts['entities']} entities"

    try:
        timed("before: in-memory full resolve (no state)", in_memory)
        timed("state: first run (full, written to the file)", lambda: state_run(base))
        timed("state: no change", lambda: state_run(base))
        for share in a.change:
            n_new = int(a.n * share / 2)
            data = _changed(total.iloc[: a.n + n_new], share, a.seed, n_new)
            timed(f"state: {share:.1%} new or changed (incremental)", lambda: state_run(data))
            timed(f"state: same input, full_rebuild", lambda: state_run(data, full_rebuild=True))
            timed(f"state: back to the base (deletions: full)", lambda: state_run(base))
        size = path.stat().st_size / 2**20
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{a.kind}, n = {a.n}, state file {size:.0f} MiB\n")
    print("| run | wall s | CPU s | load 1 min | result |\n|---|---|---|---|---|")
    for label, wall, cpu, load, out in rows:
        print(f"| {label} | {wall:.1f} | {cpu:.1f} | {load:.1f} | {out} |")


if __name__ == "__main__":
    main()
