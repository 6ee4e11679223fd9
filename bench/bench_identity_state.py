"""Identity between pipeline runs (transforms.identity.state): a full run into a state file, then, each from a
copy of that same state, a run with no change, runs with a share of new + changed records, and a run with a
share of the records deleted; each run in a fresh subprocess (its own peak RSS), its input read as Arrow as
the pipeline passes it.

    .venv/bin/python bench/bench_identity_state.py --kind contacts -n 1000000 --change 0.001 0.01 0.1 --delete 0.01
    .venv/bin/python bench/bench_identity_state.py -n 100000 --verify   # + a full rebuild of every input: same result?
    .venv/bin/python bench/bench_identity_state.py -n 1000000 --change --delete --chain 12   # the steady state

--chain N: N successive updates of --chain-share new + changed records on one state (each run from the one
before, as a scheduled sync does), after the runs from the full run's copy: what a state costs once it has lived
(its dead rows and small appended row groups; state._connect, MAX_REPLACED_SHARE).

Prints a markdown table: wall and CPU seconds of the resolution (CPU of all threads), the warehouse write the asset
then does (into a DuckDB warehouse file as the full run's asset left it: none / delta / full, seconds), peak RSS, the
1-min load average, the ratio to the full run, and the time per step. --verify also compares the warehouse's tables
after the write with those of a full rebuild.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def _changed(df, share: float, seed: int, n_new: int, tag: str = ""):
    """`df` with the first rows replaced by a later version (e-mail or job title edited), `share` of it in all
    counting `n_new` records appended later. `tag` makes the edited e-mails unlike those of another call (a chain of
    updates would otherwise give records of different runs one address, and merge them)."""
    import numpy as np
    import pandas as pd

    out = df.copy()
    n = max(int(len(df) * share) - n_new, 0)
    rng = np.random.default_rng(seed)
    idx = rng.choice(out.index, size=n, replace=False)
    half = idx[: n // 2]
    out.loc[half, "email"] = [f"edited.{tag}{i}@exemple.fr" for i in range(len(half))]
    col = "job_title" if "job_title" in out else "city"
    out.loc[idx[n // 2:], col] = "Edited"
    out.loc[idx, "updated_at"] = pd.Timestamp("2027-06-01")
    return out


def _one_run(kind: str, state: str, parquet: str, full: bool, warehouse: str) -> dict:
    """One pipeline run in this process: read the input, resolve against the state, then write the crosswalk and
    golden records to the DuckDB warehouse file `warehouse` as the asset does (nothing, the delta, or whole)."""
    import pyarrow.parquet as pq

    from pipelines.identity_assets import publish_identity_table
    from transforms.identity.state import resolve_with_state
    from warehouse import Warehouse

    wh = Warehouse(f"duckdb:///{warehouse}")
    data = pq.read_table(parquet)
    t0, c0 = time.perf_counter(), time.process_time()
    with resolve_with_state(kind, data, path=state, full_rebuild=full) as run:
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        res = run.resolution
        t1, c1 = time.perf_counter(), time.process_time()
        prefix = "contact" if kind == "contacts" else "company"
        writes = [publish_identity_table(wh, run, f"{prefix}_{which}", which)["warehouse_write"]
                  for which in ("crosswalk", "golden")]
        read_wall, read_cpu = time.perf_counter() - t1, time.process_time() - c1
        records = res.con.execute(f"SELECT count(*) FROM {res.crosswalk}").fetchone()[0]
        # a digest of the result, to compare an incremental run with a full rebuild of the same input
        digest = res.con.execute(
            f"""SELECT (SELECT sum(hash(source_system, source_id, entity_key, rule, round(match_probability, 9)))
                        FROM {res.crosswalk}),
                       (SELECT sum(hash(g)) FROM (SELECT * EXCLUDE (sources) FROM {res.golden}) g)"""
        ).fetchone()
    return {"mode": run.mode, "reason": run.reason, "new": run.new, "changed": run.changed, "deleted": run.deleted,
            "records": records, "wall": wall, "cpu": cpu, "read_wall": read_wall, "read_cpu": read_cpu,
            "write": "/".join(w.split(" ")[0] for w in writes),
            "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "load": os.getloadavg()[0],
            "timings": {k: round(v, 2) for k, v in run.timings.items()}, "digest": [str(d) for d in digest]}


def _warehouse_digest(path: Path) -> list[str]:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        tables = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'core' "
                                            "AND table_name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY 1").fetchall()]
        # as the state's digest: the golden records' source list aside (its order is not part of the result)
        return [str(con.execute(
            f"SELECT count(*), sum(hash(source_system, source_id, entity_key, rule, round(match_probability, 9))) "
            f"FROM core.{t}" if "crosswalk" in t else
            f"SELECT count(*), sum(hash(g)) FROM (SELECT * EXCLUDE (sources) FROM core.{t}) g").fetchone())
            for t in tables]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", default="contacts", choices=["contacts", "companies"])
    ap.add_argument("-n", type=int, default=100_000)
    ap.add_argument("--change", type=float, nargs="*", default=[0.001, 0.01, 0.1])
    ap.add_argument("--delete", type=float, nargs="*", default=[0.01])
    ap.add_argument("--verify", action="store_true", help="also rebuild every input in full and compare the results")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--names", default="france", choices=["france", "skewed"],
                    help="contacts: how often names recur (scale_people.NAMES)")
    ap.add_argument("--run", nargs=4, help=argparse.SUPPRESS)  # state parquet full|incremental warehouse
    ap.add_argument("--chain", type=int, default=0, help="then N successive updates on one state (steady state)")
    ap.add_argument("--chain-share", type=float, default=0.01, help="new + changed share of each chained update")
    ap.add_argument("--work", help="keep the inputs and states in this folder (default: a temporary one, removed)")
    a = ap.parse_args()
    if a.run:
        print(json.dumps(_one_run(a.kind, a.run[0], a.run[1], a.run[2] == "full", a.run[3])))
        return

    from scale_people import generate_companies, generate_contacts

    gen = generate_contacts if a.kind == "contacts" else generate_companies
    key = "person_key" if a.kind == "contacts" else "company_key"
    work = Path(a.work or tempfile.mkdtemp(prefix="bench_identity_state_"))
    work.mkdir(parents=True, exist_ok=True)
    inputs: list[tuple[str, Path]] = []

    def save(label: str, df) -> None:
        p = work / f"in_{len(inputs)}.parquet"
        if not p.exists():
            df.reset_index(drop=True).to_parquet(p)
        inputs.append((label, p))

    total = gen(int(a.n * (1 + max(a.change or [0]) / 2 + a.chain * a.chain_share / 2)) + 1, seed=a.seed,
                **({"names": a.names} if a.kind == "contacts" else {})).drop(columns=key).reset_index(drop=True)
    base = total.iloc[: a.n]
    save("no change", base)
    for share in a.change:
        n_new = int(a.n * share / 2)
        save(f"{share:.1%} new or changed", _changed(total.iloc[: a.n + n_new], share, a.seed, n_new))
    for share in a.delete:
        import numpy as np

        gone = np.random.default_rng(a.seed + 1).choice(len(base), size=int(len(base) * share), replace=False)
        save(f"{share:.1%} deleted", base.drop(index=base.index[gone]))
    chained: list[Path] = []
    if a.chain:
        import pandas as pd

        n_new, cur = int(a.n * a.chain_share / 2), base
        extra = total.iloc[a.n + int(a.n * max(a.change or [0]) / 2) + 1:]
        for i in range(a.chain):
            p = work / f"chain_{i}.parquet"
            if not p.exists():  # each input = the one before + n_new records, share of it new or changed
                cur = _changed(pd.concat([cur, extra.iloc[i * n_new:(i + 1) * n_new]], ignore_index=True),
                               a.chain_share, a.seed + 100 + i, n_new, tag=f"{i}.")
                cur.to_parquet(p)
            chained.append(p)
    del total, base

    def run(state: Path, parquet: Path, full: bool, warehouse: Path) -> dict:
        p = subprocess.run([sys.executable, __file__, "--kind", a.kind, "--run", str(state), str(parquet),
                            "full" if full else "incremental", str(warehouse)], capture_output=True, text=True)
        if p.returncode:
            raise SystemExit(f"run failed:\n{p.stderr[-3000:]}")
        out = json.loads(p.stdout.strip().splitlines()[-1])
        print(f"  {out['mode']}: {out['wall']:.1f} s wall, {out['cpu']:.1f} CPU s, {out['rss_mib']:.0f} MiB, "
              f"warehouse write {out['write']} {out['read_wall']:.1f} s, "
              f"load {out['load']:.1f}; {out['timings']}", file=sys.stderr)
        return out

    rows = []
    try:
        snap, wh_snap, wh = (work / f"{a.kind}.base.duckdb", work / "warehouse.base.duckdb",
                             work / "warehouse.duckdb")

        def fresh(path: Path, source: Path | None = None) -> Path:
            for f in (path, Path(f"{path}.wal")):
                f.unlink(missing_ok=True)
            if source:
                shutil.copy(source, path)
                # the copy's pages on disk before the timed run: its first commit would otherwise pay for writing
                # back the whole copied file (~0.18 s at 1M), which a state or warehouse written by an earlier run
                # long ago does not cost
                os.sync()
            return path

        print("full run (state written)", file=sys.stderr)
        first = run(work / f"{a.kind}.first.duckdb", inputs[0][1], True, fresh(wh))
        shutil.copy(work / f"{a.kind}.first.duckdb", snap)
        shutil.copy(wh, wh_snap)  # the warehouse as the full run's asset left it
        rows.append(("full (first run, state written)", first, None))
        for label, parquet in inputs:
            # every run starts from the same state and the same warehouse
            state = fresh(work / f"{a.kind}.duckdb", snap)
            print(label, file=sys.stderr)
            out = run(state, parquet, False, fresh(wh, wh_snap))
            ref = None
            if a.verify and out["mode"] != "full":
                print(f"  {label}: full rebuild of the same input", file=sys.stderr)
                ref = run(work / f"{a.kind}.ref.duckdb", parquet, True, fresh(work / "warehouse.ref.duckdb"))
                (work / f"{a.kind}.ref.duckdb").unlink()
                # the warehouse the delta was written into holds the full rebuild's tables
                ref["digest"] = ref["digest"] + _warehouse_digest(work / "warehouse.ref.duckdb")
                out["digest"] = out["digest"] + _warehouse_digest(wh)
            rows.append((label, out, ref))
        size = snap.stat().st_size / 2**20
        chain_rows = []
        if chained:
            state, whc = fresh(work / f"{a.kind}.chain.duckdb", snap), fresh(work / "warehouse.chain.duckdb", wh_snap)
            for i, parquet in enumerate(chained):
                print(f"chained update {i + 1}", file=sys.stderr)
                out = run(state, parquet, False, whc)
                out["size_mib"] = state.stat().st_size / 2**20
                chain_rows.append(out)
            if a.verify:
                print("  last chained input: full rebuild", file=sys.stderr)
                ref = run(work / f"{a.kind}.ref.duckdb", chained[-1], True, fresh(work / "warehouse.ref.duckdb"))
                (work / f"{a.kind}.ref.duckdb").unlink()
                chain_rows[-1]["same"] = (ref["digest"] + _warehouse_digest(work / "warehouse.ref.duckdb")
                                          == chain_rows[-1]["digest"] + _warehouse_digest(whc))
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    full_wall, full_cpu = first["wall"], first["cpu"]
    print(f"\n{a.kind}, n = {a.n:,}, state file {size:.0f} MiB\n")
    print("| run | mode | new / changed / deleted | wall s | CPU s | wall / full | CPU / full | warehouse write (s) | "
          "peak RSS MiB | load 1 min | same as full rebuild | steps (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, r, ref in rows:
        same = "" if ref is None else ("yes" if ref["digest"] == r["digest"] else "**NO**")
        print(f"| {label} | {r['mode']} | {r['new']:,} / {r['changed']:,} / {r['deleted']:,} | {r['wall']:.1f} | "
              f"{r['cpu']:.1f} | {r['wall'] / full_wall:.1%} | {r['cpu'] / full_cpu:.1%} | {r['write']} {r['read_wall']:.1f} | "
              f"{r['rss_mib']:,.0f} | {r['load']:.1f} | {same} | {r['timings']} |")

    if chain_rows:
        import statistics

        walls = [r["wall"] for r in chain_rows]
        print(f"\n{len(chain_rows)} successive updates of {a.chain_share:.1%} new or changed records on one state\n")
        print("| update | mode | new / changed / deleted | wall s | CPU s | wall / full | state save s | state file MiB | "
              "load 1 min | same as full rebuild |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for i, r in enumerate(chain_rows, 1):
            same = {True: "yes", False: "**NO**"}.get(r.get("same"), "")
            print(f"| {i} | {r['mode']} | {r['new']:,} / {r['changed']:,} / {r['deleted']:,} | {r['wall']:.1f} | "
                  f"{r['cpu']:.1f} | {r['wall'] / full_wall:.1%} | {r['timings'].get('state_save', 0):.2f} | "
                  f"{r['size_mib']:,.0f} | {r['load']:.1f} | {same} |")
        print(f"\nmean {statistics.mean(walls):.1f} s ({statistics.mean(walls) / full_wall:.1%} of full), median "
              f"{statistics.median(walls):.1f} s ({statistics.median(walls) / full_wall:.1%}), max {max(walls):.1f} s "
              f"({max(walls) / full_wall:.1%})")


if __name__ == "__main__":
    main()
