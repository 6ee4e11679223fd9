"""What Splink's own incremental matching costs on a state's records: N records taken as new, the others as the known
set, scored as Splink documents incremental linkage (predict_between(known, new) + predict_within(new)), with the
project's trained contacts or companies model. Scoring only: no normalisation, deterministic rules, clustering,
golden records or durable write, which an identity update also does. Prints each repeat's seconds and pair count.

    .venv/bin/python bench/bench_identity_state.py -n 1000000 --change 0.01 --work /tmp/sb   # a state
    .venv/bin/python bench/splink_incremental_baseline.py /tmp/sb/contacts.base.duckdb --new 10000 --repeat 3
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("state", type=Path, help="a state file (copied: Splink writes its tables beside the records)")
    ap.add_argument("--kind", default="contacts", choices=["contacts", "companies"])
    ap.add_argument("--new", type=int, default=10_000, help="records taken as new (a random sample)")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()

    import duckdb
    from splink import Linker

    import transforms.identity.splink_models as sm
    from transforms.identity.config import CompaniesConfig, ContactsConfig

    model = sm.load_model(a.kind)
    threshold = (ContactsConfig() if a.kind == "contacts" else CompaniesConfig()).match_threshold
    cols = sm.CONTACT_COLUMNS if a.kind == "contacts" else sm.COMPANY_COLUMNS
    proj = ", ".join(["uid", *cols])
    with tempfile.TemporaryDirectory(prefix="splink_baseline_") as tmp:
        state = Path(tmp) / "state.duckdb"
        shutil.copy(a.state, state)
        con = duckdb.connect(str(state))
        con.execute("SET enable_progress_bar = false")
        table = f"identity_{a.kind}_normalized"
        con.execute(f"CREATE TEMP TABLE new_rows AS SELECT {proj} FROM {table} USING SAMPLE {a.new} ROWS (reservoir, 7)")
        con.execute(f"CREATE TEMP VIEW known_rows AS SELECT {proj} FROM {table} WHERE uid NOT IN (SELECT uid FROM new_rows)")
        known = con.execute("SELECT count(*) FROM known_rows").fetchone()[0]
        print(f"{a.kind}: {a.new:,} new records against {known:,} known, threshold {threshold}")
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            api = sm._api(con)
            known_df, new_df = api.register("known_rows"), api.register("new_rows")
            # validate_settings=False as the project's update does (the full run validated them)
            linker = Linker(new_df, model, log_level=logging.WARNING, validate_settings=False)
            parts = [linker.inference.predict_between(known_df, new_df, threshold_match_probability=threshold,
                                                      warning_mode="never"),
                     linker.inference.predict_within(new_df, threshold_match_probability=threshold,
                                                     warning_mode="never")]
            seconds = time.perf_counter() - t0
            pairs = sum(con.execute(f"SELECT count(*) FROM {p.physical_name}").fetchone()[0] for p in parts)
            print(f"  Linker + predict_between + predict_within: {seconds:.2f} s, {pairs:,} pairs")
            for p in parts:
                p.drop_table_from_database_and_remove_from_cache()
        con.close()


if __name__ == "__main__":
    main()
