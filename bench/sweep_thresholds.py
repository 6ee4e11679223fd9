"""Pairwise precision / recall of one kind at several Splink match thresholds, over seeds and both variants of the
synthetic sets (8,000 records), to choose a threshold on evidence:

    .venv/bin/python bench/sweep_thresholds.py --kind companies --thresholds 0.9 0.95
    .venv/bin/python bench/sweep_thresholds.py --kind contacts --thresholds 0.9 0.95 0.98

Prints a markdown table: one row per seed and variant, "P / R" per threshold.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", default="companies", choices=["contacts", "companies"])
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.9, 0.95])
    ap.add_argument("--seeds", type=int, nargs="+", default=[3, 5, 7, 11, 13])
    ap.add_argument("-n", type=int, default=8000)
    a = ap.parse_args()

    import duckdb

    from scale_people import generate_companies, generate_contacts
    from transforms.identity.config import CompaniesConfig, ContactsConfig
    from transforms.identity.core import resolve
    from transforms.identity.evaluate import pairwise_scores

    gen, key, config = ((generate_contacts, "person_key", ContactsConfig) if a.kind == "contacts"
                        else (generate_companies, "company_key", CompaniesConfig))
    print(f"{a.kind}, {a.n:,} records, P / R\n")
    print("| seed | variant | " + " | ".join(f"threshold {t}" for t in a.thresholds) + " |")
    print("|---|---|" + "---|" * len(a.thresholds))
    for seed in a.seeds:
        for variant in ("default", "hard"):
            df = gen(a.n, seed=seed, variant=variant)
            cells = []
            for t in a.thresholds:
                con = duckdb.connect()
                con.register("truth", df[["source_system", "source_id", key]])
                res = resolve(a.kind, df.drop(columns=key), con=con, config=config(match_threshold=t), passthrough=[])
                s = pairwise_scores(con, res.crosswalk, "truth", key)
                cells.append(f"{s['precision']:.4f} / {s['recall']:.4f}")
            print(f"| {seed} | {variant} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
