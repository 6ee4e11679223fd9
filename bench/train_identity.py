"""Train the shipped Splink models from synthetic truth (run once, offline; the pipeline never retrains
unless asked). Reproducible: same seeds, same JSON.

    .venv/bin/python bench/train_identity.py            # writes transforms/identity/models/{contacts,companies}.json
    .venv/bin/python bench/train_identity.py --kind contacts --n 20000

u-probabilities come from random record pairs, m-probabilities from every pair of records that the
generator says are the same person / company (`estimate_m_from_label_column`), on a mix of the
default and the hard variant so both kinds of dirt are represented. The prior (probability that two
random records match) is the one of the training set.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

SEEDS = {"default": 101, "hard": 202}
# The models learn from the homonym stress world (scale_people.NAMES "skewed"), as they always have: chance agreements
# on a name are more frequent there, so a name agreement weighs less than French names would let it.
NAMES = "skewed"
# bumped when a kind's comparisons or blocking rules change (contacts v3: "one typo" name level, company named by the
# e-mail domain; v4: swapped names and both initials blocked under one company record; v5: the resolved company
# compared across CRMs (company_entity_key), job title)
VERSIONS = {"contacts": "v5", "companies": "v2"}


def labelled_frame(kind: str, n: int):
    import pandas as pd

    from scale_people import generate_companies, generate_contacts

    gen = generate_contacts if kind == "contacts" else generate_companies
    key = "person_key" if kind == "contacts" else "company_key"
    parts = []
    for variant, seed in SEEDS.items():
        df = gen(n, seed=seed, variant=variant, **({"names": NAMES} if kind == "contacts" else {}))
        # two independent worlds: keep their ids and truth keys apart
        df["source_id"] = variant[0] + df["source_id"].astype(str)
        df[key] = variant[0] + df[key].astype(str)
        parts.append(df)
    df = pd.concat(parts, ignore_index=True).rename(columns={key: "truth_label"})
    return df


def train_kind(kind: str, n: int, out: Path) -> dict:
    import duckdb

    from transforms.identity import splink_models
    from transforms.identity.core import _normalise, _prepare

    con = duckdb.connect()
    df = labelled_frame(kind, n)
    _prepare(con, df, kind, "train_input")
    _normalise(con, kind, "train_input", "train_normalized", "FR")
    model = splink_models.train_from_labels(con, "train_normalized", kind, "truth_label")
    model["linker_uid"] = f"{kind}-labels-{VERSIONS[kind]}-n{n}"
    out.write_text(json.dumps(model, indent=1, sort_keys=False) + "\n")
    return model


def main() -> None:
    from transforms.identity.config import MODELS_DIR

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["contacts", "companies"], nargs="*", default=["contacts", "companies"])
    ap.add_argument("--n", type=int, default=20_000, help="records per variant")
    ap.add_argument("--out-dir", type=Path, default=MODELS_DIR)
    a = ap.parse_args()
    for kind in a.kind:
        model = train_kind(kind, a.n, a.out_dir / f"{kind}.json")
        print(f"{kind}: prior {model['probability_two_random_records_match']:.3g} -> {a.out_dir / f'{kind}.json'}")


if __name__ == "__main__":
    main()
