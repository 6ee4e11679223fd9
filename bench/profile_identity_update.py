"""Where an incremental identity run spends its time, statement by statement: one run of `resolve_with_state`
against a copy of a state file, every SQL statement the identity code sends timed, printed as a table (slowest
first) with the total of the statements and the rest (Python: Splink's Linker, orchestration).

    .venv/bin/python bench/bench_identity_state.py -n 1000000 --change 0.01 --work /tmp/sb   # state + inputs
    .venv/bin/python bench/profile_identity_update.py /tmp/sb/contacts.base.duckdb /tmp/sb/in_1.parquet --runs 3

--runs N repeats the run (each from a fresh copy of the state) and prints each statement's median.
--stored-fingerprint runs edited identity code against a state built by the code before the edit (the code is part
of the state's fingerprint: without it, an edit makes the run a full rebuild).
--in-memory copies the state into an in-memory DuckDB database before the run (the copy not timed): what the update
would cost a long-lived process holding its whole state in memory, uncompressed. The `state_save` step is then not a
durable write: read the steps before it.
Statements Splink sends itself are not in the table: they are in the Python remainder and in the step timings.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class _TimedConnection:
    """A DuckDB connection whose execute() records (seconds, caller file:line, SQL)."""

    def __init__(self, con, log: list):
        self._con, self._log = con, log

    def __getattr__(self, name):
        return getattr(self._con, name)

    def execute(self, sql, *args, **kwargs):
        t0 = time.perf_counter()
        out = self._con.execute(sql, *args, **kwargs)
        caller = traceback.extract_stack(limit=3)[-2]
        self._log.append((time.perf_counter() - t0, f"{Path(caller.filename).name}:{caller.lineno}", " ".join(sql.split())))
        return out


def _in_memory(connect, copy_seconds: list):
    """A _connect that copies the state file into an in-memory database and answers with that instead."""
    def connect_in_memory(path):
        if not Path(path).exists():  # a full rebuild's new file: built on disk as the code does
            return connect(path)
        con = connect(":memory:")
        t0 = time.perf_counter()
        con.execute(f"ATTACH '{path}' AS state_file (READ_ONLY)")
        con.execute("COPY FROM DATABASE state_file TO memory")
        con.execute("DETACH state_file")
        copy_seconds.append(time.perf_counter() - t0)
        return con

    return connect_in_memory


def one_run(kind: str, state: Path, data, stored_fingerprint: bool,
            in_memory: bool = False) -> tuple[float, dict, list]:
    import duckdb
    from splink import DuckDBAPI

    import transforms.identity.splink_models as sm
    import transforms.identity.state as st

    log: list = []
    connect = st._connect
    copy_seconds: list = []
    opened = _in_memory(connect, copy_seconds) if in_memory else connect
    st._connect = lambda path: _TimedConnection(opened(path), log)
    sm_api = sm._api
    sm._api = lambda con: DuckDBAPI(connection=getattr(con, "_con", con))  # Splink takes the real connection
    fingerprint = st.fingerprint
    if stored_fingerprint:
        with duckdb.connect(str(state), read_only=True) as con:
            stored = con.execute("SELECT value FROM identity_state.meta WHERE key = 'fingerprint'").fetchone()[0]
        st.fingerprint = lambda *a, **k: stored
    try:
        t0 = time.perf_counter()
        with st.resolve_with_state(kind, data, path=state) as run:
            wall = time.perf_counter() - t0 - sum(copy_seconds)
            mode, timings = run.mode, run.timings
    finally:
        st._connect, sm._api, st.fingerprint = connect, sm_api, fingerprint
    if mode != "incremental":
        raise SystemExit(f"the run was {mode} ({run.reason}), not incremental"
                         + ("" if stored_fingerprint else ": edited code? try --stored-fingerprint"))
    return wall, timings, log


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("state", type=Path, help="a state file (copied: it is not changed)")
    ap.add_argument("input", type=Path, help="the whole input of the run (parquet)")
    ap.add_argument("--kind", default="contacts", choices=["contacts", "companies"])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--stored-fingerprint", action="store_true")
    ap.add_argument("--in-memory", action="store_true")
    a = ap.parse_args()

    import pyarrow.parquet as pq

    data = pq.read_table(a.input)
    walls, logs = [], []
    with tempfile.TemporaryDirectory(prefix="profile_identity_") as tmp:
        for _ in range(a.runs):
            state = Path(tmp) / f"{a.kind}.duckdb"
            shutil.copy(a.state, state)
            wall, timings, log = one_run(a.kind, state, data, a.stored_fingerprint, a.in_memory)
            walls.append(wall)
            logs.append(log)
            print(f"run: {wall:.2f} s, steps {({k: round(v, 2) for k, v in timings.items()})}")
    if len({len(log) for log in logs}) > 1:
        print("the runs sent different statements: medians of the first run's only")
        logs = logs[:1]
    rows = [(statistics.median(log[i][0] for log in logs), logs[0][i][1], logs[0][i][2]) for i in range(len(logs[0]))]
    total, wall = sum(r[0] for r in rows), statistics.median(walls)
    print(f"\nwall {wall:.2f} s (median of {len(walls)}); {len(rows)} statements {total:.2f} s; "
          f"the rest (Python, Splink's own statements) {wall - total:.2f} s\n")
    print("| ms | where | statement |\n|---|---|---|")
    for dt, where, sql in sorted(rows, reverse=True)[: a.top]:
        print(f"| {dt * 1000:.1f} | {where} | `{sql[:120]}` |")


if __name__ == "__main__":
    main()
