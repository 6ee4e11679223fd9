"""Splink 5 models (DuckDB backend) for the records deterministic rules cannot settle.

Comparisons and blocking rules are plain SQL on the `n_*` columns of the normalised tables.
No term-frequency adjustments: scores then depend only on the pair and the saved model, so an
incremental run scores a pair exactly as a full rebuild does.

A trained model is a Splink settings JSON (m/u parameters included). `load_model` reads it;
`train_*` estimates a new one (u by random sampling, m by EM) and is only called when asked."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import duckdb

from .config import MODELS_DIR
from .deterministic import _one_typo

log = logging.getLogger(__name__)

CONTACT_COLUMNS = [
    "n_first_name", "n_last_name", "n_email", "n_email_canon", "n_email_is_role", "n_email_domain", "n_email_is_free", "n_email_org", "n_phone",
    "n_mobile", "n_company", "n_company_ref", "n_city", "n_postcode", "n_job_title",
]
COMPANY_COLUMNS = ["source_system", "n_name", "n_siren", "n_domain", "n_phone", "n_address", "n_city", "n_postcode"]


def _level(sql: str, label: str, null: bool = False) -> dict[str, Any]:
    d = {"sql_condition": sql, "label_for_charts": label}
    if null:
        d["is_null_level"] = True
    return d


def _fixed_m(level: dict[str, Any], m: float) -> dict[str, Any]:
    """A level whose m training leaves alone (u is still learned): set where synthetic truth would teach it wrong."""
    level.update({"m_probability": m, "fix_m_probability": True})
    return level


def _jw(col: str, t: float) -> str:
    return f"jaro_winkler_similarity({col}_l, {col}_r) >= {t}"


def _jw_swapped(t: float) -> str:
    return (f"jaro_winkler_similarity(n_first_name_l, n_last_name_r) >= {t} AND "
            f"jaro_winkler_similarity(n_last_name_l, n_first_name_r) >= {t}")


# One record names no company but writes from a company domain that spells the other's company name
# ('esvergarage.eu' and "Esver Garage"): the same employer.
_COMPANY_IS_DOMAIN = ("coalesce((n_company_l IS NULL AND n_email_org_l = replace(n_company_r, ' ', '')) "
                      "OR (n_company_r IS NULL AND n_email_org_r = replace(n_company_l, ' ', '')), false)")
_ONE_COMPANY_MISSING = " AND (l.n_company IS NULL OR r.n_company IS NULL)"
_PHONES_L = ["n_phone_l", "n_mobile_l"]
_PHONES_R = ["n_phone_r", "n_mobile_r"]


def contact_settings() -> dict[str, Any]:
    any_phone_eq = " OR ".join(f"{a} = {b}" for a in _PHONES_L for b in _PHONES_R)
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "uid",
        "probability_two_random_records_match": 1e-5,
        "retain_matching_columns": False,
        "retain_intermediate_calculation_columns": False,
        "comparisons": [
            {
                "output_column_name": "name",
                "comparison_levels": [
                    _level("n_first_name_l IS NULL OR n_first_name_r IS NULL OR n_last_name_l IS NULL OR n_last_name_r IS NULL", "null", True),
                    _level("n_first_name_l = n_first_name_r AND n_last_name_l = n_last_name_r", "exact"),
                    _level("n_first_name_l = n_last_name_r AND n_last_name_l = n_first_name_r", "swapped"),
                    # one typo in one part, the other part exact (straight or swapped)
                    _level(f"(n_first_name_l = n_first_name_r AND {_one_typo('n_last_name_l', 'n_last_name_r')}) OR "
                           f"(n_last_name_l = n_last_name_r AND {_one_typo('n_first_name_l', 'n_first_name_r')}) OR "
                           f"(n_first_name_l = n_last_name_r AND {_one_typo('n_last_name_l', 'n_first_name_r')}) OR "
                           f"(n_last_name_l = n_first_name_r AND {_one_typo('n_first_name_l', 'n_last_name_r')})", "one typo"),
                    _level(f"{_jw('n_first_name', 0.92)} AND {_jw('n_last_name', 0.92)}", "jw>=0.92 both"),
                    _level(_jw_swapped(0.92), "swapped jw>=0.92 both"),
                    _level("n_last_name_l = n_last_name_r AND (starts_with(n_first_name_l, n_first_name_r) OR starts_with(n_first_name_r, n_first_name_l))", "last exact, first prefix"),
                    _level(f"({_jw('n_first_name', 0.85)} AND {_jw('n_last_name', 0.85)}) OR ({_jw_swapped(0.85)})", "jw>=0.85 both"),
                    _level("n_last_name_l = n_last_name_r", "last exact only"),
                    _level("n_first_name_l = n_first_name_r", "first exact only"),
                    _level("ELSE", "else"),
                ],
            },
            {
                "output_column_name": "email",
                "comparison_levels": [
                    _level("n_email_l IS NULL OR n_email_r IS NULL", "null", True),
                    _level("n_email_l = n_email_r AND NOT n_email_is_role_l", "exact personal"),
                    _level("n_email_l = n_email_r", "exact role mailbox"),
                    _level("n_email_canon_l = n_email_canon_r", "same mailbox (sub-address)"),
                    _level("n_email_domain_l = n_email_domain_r AND NOT n_email_is_free_l", "same company domain, other address"),
                    _level("ELSE", "else"),
                ],
            },
            {
                "output_column_name": "phone",
                "comparison_levels": [
                    _level("coalesce(n_phone_l, n_mobile_l) IS NULL OR coalesce(n_phone_r, n_mobile_r) IS NULL", "null", True),
                    _level(any_phone_eq, "exact"),
                    _level("ELSE", "else"),
                ],
            },
            {
                "output_column_name": "company",
                "comparison_levels": [
                    # company record ids of two different CRMs are not comparable (only the names count then), unless
                    # the pipeline gave both the resolved company (normalize: n_company_ref from company_entity_key)
                    _level(f"(n_company_l IS NULL OR n_company_r IS NULL) AND NOT coalesce(n_company_ref_l = n_company_ref_r, false) AND NOT {_COMPANY_IS_DOMAIN}", "null", True),
                    _level("n_company_ref_l = n_company_ref_r", "same company record or resolved company"),
                    _level("n_company_l = n_company_r", "exact"),
                    _level(_COMPANY_IS_DOMAIN, "company missing, named by the e-mail domain"),
                    _level(_jw("n_company", 0.9), "jw>=0.9"),
                    _level("ELSE", "else"),
                ],
            },
            {
                "output_column_name": "place",
                "comparison_levels": [
                    _level("(n_postcode_l IS NULL OR n_postcode_r IS NULL) AND (n_city_l IS NULL OR n_city_r IS NULL)", "null", True),
                    _level("n_postcode_l = n_postcode_r", "postcode exact"),
                    _level("n_city_l = n_city_r", "city exact"),
                    _level("ELSE", "else"),
                ],
            },
            {
                # Tells same-name colleagues apart. Titles are free text typed in each CRM and change with a
                # promotion, so a different title is weak evidence. Its m is set, not learned: how often a person's
                # two records disagree on the title is a fact about real CRMs that synthetic truth cannot teach.
                # Assumed: 3 in 10 (the bench generator changes 2 in 10 by default, 3 in 10 in its hard variant).
                "output_column_name": "job_title",
                "comparison_levels": [
                    _level("n_job_title_l IS NULL OR n_job_title_r IS NULL", "null", True),
                    _fixed_m(_level("n_job_title_l = n_job_title_r", "exact"), 0.7),
                    _fixed_m(_level("ELSE", "else"), 0.3),
                ],
            },
        ],
        # Every rule pairs a name clue with a context clue (or is a strong identifier on its own): a
        # name alone ("Jean Martin") makes blocks of thousands at 1M records and can never reach the
        # threshold without context anyway.
        "blocking_rules_to_generate_predictions": [
            {"blocking_rule": "l.n_email_canon = r.n_email_canon"},
            {"blocking_rule": "coalesce(l.n_mobile, l.n_phone) = coalesce(r.n_mobile, r.n_phone)"},
            {"blocking_rule": "l.n_last_name = r.n_last_name AND l.n_company = r.n_company"},
            {"blocking_rule": "l.n_first_name = r.n_first_name AND l.n_company = r.n_company"},
            {"blocking_rule": "l.n_first_name = r.n_last_name AND l.n_company = r.n_company"},
            {"blocking_rule": "l.n_last_name = r.n_first_name AND l.n_company = r.n_company"},
            {"blocking_rule": "l.n_last_name = r.n_last_name AND l.n_company_ref = r.n_company_ref"},
            {"blocking_rule": "l.n_first_name = r.n_first_name AND l.n_company_ref = r.n_company_ref"},
            # swapped first/last names, one company record (the rules above pair swapped names by company name only)
            {"blocking_rule": "l.n_first_name = r.n_last_name AND l.n_company_ref = r.n_company_ref"},
            {"blocking_rule": "l.n_last_name = r.n_first_name AND l.n_company_ref = r.n_company_ref"},
            # a typo in both parts (or in one part of a swapped name) leaves the initials: one company record
            {"blocking_rule": "left(l.n_first_name, 1) = left(r.n_first_name, 1) AND left(l.n_last_name, 1) = left(r.n_last_name, 1) AND l.n_company_ref = r.n_company_ref"},
            {"blocking_rule": "left(l.n_first_name, 1) = left(r.n_first_name, 1) AND left(l.n_last_name, 1) = left(r.n_last_name, 1) AND l.n_company = r.n_company"},
            # a company named on one side only by the other's e-mail domain (see _COMPANY_IS_DOMAIN)
            {"blocking_rule": "l.n_last_name = r.n_last_name AND l.n_email_org = replace(r.n_company, ' ', '') AND l.n_company IS NULL"},
            {"blocking_rule": "l.n_last_name = r.n_last_name AND r.n_email_org = replace(l.n_company, ' ', '') AND r.n_company IS NULL"},
            {"blocking_rule": "l.n_first_name = r.n_first_name AND l.n_email_org = replace(r.n_company, ' ', '') AND l.n_company IS NULL"},
            {"blocking_rule": "l.n_first_name = r.n_first_name AND r.n_email_org = replace(l.n_company, ' ', '') AND r.n_company IS NULL"},
            {"blocking_rule": "l.n_first_name = r.n_last_name AND l.n_email_org = replace(r.n_company, ' ', '') AND l.n_company IS NULL"},
            {"blocking_rule": "l.n_first_name = r.n_last_name AND r.n_email_org = replace(l.n_company, ' ', '') AND r.n_company IS NULL"},
            {"blocking_rule": "l.n_last_name = r.n_first_name AND l.n_email_org = replace(r.n_company, ' ', '') AND l.n_company IS NULL"},
            {"blocking_rule": "l.n_last_name = r.n_first_name AND r.n_email_org = replace(l.n_company, ' ', '') AND r.n_company IS NULL"},
            # one name exact, the other's initial (typos rarely hit the first letter), same place, and a
            # company missing on one side: two different companies score "else" and never reach the
            # threshold without an e-mail or phone (blocked above), and namesakes of one town were
            # 6.4M of the 7.7M pairs at 1M records (same edges at 0.9 without them, Splink 50 s -> 11 s)
            {"blocking_rule": "l.n_last_name = r.n_last_name AND left(l.n_first_name, 1) = left(r.n_first_name, 1) AND l.n_postcode = r.n_postcode" + _ONE_COMPANY_MISSING},
            {"blocking_rule": "l.n_first_name = r.n_last_name AND left(l.n_last_name, 1) = left(r.n_first_name, 1) AND l.n_postcode = r.n_postcode" + _ONE_COMPANY_MISSING},
            {"blocking_rule": "l.n_last_name = r.n_first_name AND left(l.n_first_name, 1) = left(r.n_last_name, 1) AND l.n_postcode = r.n_postcode" + _ONE_COMPANY_MISSING},
        ],
    }


def company_settings() -> dict[str, Any]:
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "uid",
        "probability_two_random_records_match": 1e-5,
        "retain_matching_columns": False,
        "retain_intermediate_calculation_columns": False,
        "comparisons": [
            {
                "output_column_name": "name",
                "comparison_levels": [
                    _level("n_name_l IS NULL OR n_name_r IS NULL", "null", True),
                    # the registry lists every legal unit, homonyms included: a name shared with it
                    # says less than a name shared by two of the seller's own systems
                    _level("n_name_l = n_name_r AND source_system_l <> 'registry' AND source_system_r <> 'registry'", "exact, own systems"),
                    _level("n_name_l = n_name_r", "exact, registry"),
                    _level(_jw("n_name", 0.95), "jw>=0.95"),
                    _level(_jw("n_name", 0.88), "jw>=0.88"),
                    _level("ELSE", "else"),
                ],
            },
            {
                "output_column_name": "siren",
                "comparison_levels": [
                    _level("n_siren_l IS NULL OR n_siren_r IS NULL", "null", True),
                    _level("n_siren_l = n_siren_r", "exact"),
                    _level("ELSE", "different SIREN"),
                ],
            },
            {
                "output_column_name": "domain",
                "comparison_levels": [
                    _level("n_domain_l IS NULL OR n_domain_r IS NULL", "null", True),
                    _level("n_domain_l = n_domain_r", "exact"),
                    _level("ELSE", "else"),
                ],
            },
            {
                "output_column_name": "phone",
                "comparison_levels": [
                    _level("n_phone_l IS NULL OR n_phone_r IS NULL", "null", True),
                    _level("n_phone_l = n_phone_r", "exact"),
                    _level("ELSE", "else"),
                ],
            },
            {
                "output_column_name": "address",
                "comparison_levels": [
                    _level("n_address_l IS NULL OR n_address_r IS NULL", "null", True),
                    _level("n_address_l = n_address_r", "exact"),
                    _level(_jw("n_address", 0.9), "jw>=0.9"),
                    _level("ELSE", "else"),
                ],
            },
            {
                "output_column_name": "place",
                "comparison_levels": [
                    _level("(n_postcode_l IS NULL OR n_postcode_r IS NULL) AND (n_city_l IS NULL OR n_city_r IS NULL)", "null", True),
                    _level("n_postcode_l = n_postcode_r", "postcode exact"),
                    _level("n_city_l = n_city_r", "city exact"),
                    _level("ELSE", "else"),
                ],
            },
        ],
        "blocking_rules_to_generate_predictions": [
            {"blocking_rule": "l.n_name = r.n_name"},
            {"blocking_rule": "l.n_domain = r.n_domain"},
            {"blocking_rule": "l.n_phone = r.n_phone"},
            {"blocking_rule": "l.n_address = r.n_address AND l.n_postcode = r.n_postcode"},
            # a typo leaves one of the first two words intact
            {"blocking_rule": "l.n_postcode = r.n_postcode AND split_part(l.n_name, ' ', 1) = split_part(r.n_name, ' ', 1) AND left(split_part(l.n_name, ' ', 2), 2) = left(split_part(r.n_name, ' ', 2), 2)"},
            {"blocking_rule": "l.n_postcode = r.n_postcode AND split_part(l.n_name, ' ', 2) = split_part(r.n_name, ' ', 2) AND split_part(l.n_name, ' ', 2) <> ''"},
        ],
    }


def default_model_path(kind: str) -> Path:
    return MODELS_DIR / f"{kind}.json"


def load_model(kind: str, path: Path | str | None = None) -> dict[str, Any]:
    return json.loads(Path(path or default_model_path(kind)).read_text())


def model_version(model: dict[str, Any]) -> str:
    return str(model.get("linker_uid") or "untrained")


def model_record(kind: str, cfg: Any, model: dict[str, Any]) -> dict[str, Any]:
    """What decides a resolution's links and golden records, as one row of core.identity_models: the trained
    Splink model (its JSON, parameters included), its blocking rules, the threshold and survivorship; keyed by a
    hash of them all. A crosswalk row's model_version and this row say how a merge was decided, and
    `crm-etl resolve --identity-model` resolves a file with it again."""
    import hashlib

    import splink

    model_json = json.dumps(model, sort_keys=True, default=str)
    config = cfg.model_dump_json(exclude={"model_path"})  # where the file was read from does not decide anything
    return {
        "kind": kind,
        "config_sha256": hashlib.sha256(f"{model_json}\n{config}\n{splink.__version__}".encode()).hexdigest(),
        "model_version": cfg.model_version or model_version(model),
        "match_threshold": float(cfg.match_threshold),
        "match_config": config,
        "blocking_rules": json.dumps(blocking_rules(model)),
        "model": model_json,
        "splink_version": splink.__version__,
    }


def _api(con: duckdb.DuckDBPyConnection):
    from splink import DuckDBAPI

    return DuckDBAPI(connection=con)


def _frame(con, db_api, table: str, columns: list[str], where: str = "TRUE"):
    """Register a projection of `table` (uid + matching columns) with Splink's DB API."""
    import itertools

    name = f"__splink_in_{next(_seq)}"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT uid, {', '.join(columns)} FROM {table} WHERE {where}")
    return db_api.register(name)


import itertools as _it

_seq = _it.count()


def train(
    con: duckdb.DuckDBPyConnection, table: str, kind: str, *, seed: int = 42, max_pairs: float = 3e6
) -> dict[str, Any]:
    """Unsupervised: u by random sampling, m by EM on two blocking passes (used by `--retrain` on
    a user's own data, where no truth exists). The shipped models come from `train_from_labels`."""
    from splink import Linker

    settings = contact_settings() if kind == "contacts" else company_settings()
    cols = CONTACT_COLUMNS if kind == "contacts" else COMPANY_COLUMNS
    db_api = _api(con)
    linker = Linker(_frame(con, db_api, table, cols), settings, log_level=logging.WARNING)
    if kind == "contacts":
        linker.training.estimate_probability_two_random_records_match(
            ["l.n_email = r.n_email AND NOT l.n_email_is_role"], recall=0.6
        )
        linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
        linker.training.estimate_parameters_using_expectation_maximisation("l.n_email = r.n_email", max_pairs=max_pairs, record_sample_proportion=1.0)
        linker.training.estimate_parameters_using_expectation_maximisation(
            "l.n_first_name = r.n_first_name AND l.n_last_name = r.n_last_name", max_pairs=max_pairs, record_sample_proportion=1.0
        )
    else:
        linker.training.estimate_probability_two_random_records_match(["l.n_siren = r.n_siren"], recall=0.5)
        linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
        linker.training.estimate_parameters_using_expectation_maximisation("l.n_name = r.n_name", max_pairs=max_pairs, record_sample_proportion=1.0)
        linker.training.estimate_parameters_using_expectation_maximisation("l.n_domain = r.n_domain", max_pairs=max_pairs, record_sample_proportion=1.0)
    return _floor_parameters(linker.misc.save_model_to_json())


# A level never (or almost never) seen among true or random pairs keeps this probability instead
# of 0/None: Splink refuses m = 0, and an unseen "different SIREN" must stay a strong veto, not vanish.
PROBABILITY_FLOOR = 1e-6


def _floor_parameters(model: dict[str, Any]) -> dict[str, Any]:
    for comp in model["comparisons"]:
        for lvl in comp["comparison_levels"]:
            if lvl.get("is_null_level"):
                continue
            for k in ("m_probability", "u_probability"):
                v = lvl.get(k)
                if v is None or v != v or v < PROBABILITY_FLOOR:
                    lvl[k] = PROBABILITY_FLOOR
    return model


def train_from_labels(
    con: duckdb.DuckDBPyConnection, table: str, kind: str, label_column: str, *, seed: int = 42,
    max_pairs: float = 5e6, prior: float | None = None,
) -> dict[str, Any]:
    """Supervised: u by random sampling, m from every pair of records sharing `label_column`
    (synthetic truth). `prior` = probability two random records match; default from the labels."""
    from splink import Linker

    settings = contact_settings() if kind == "contacts" else company_settings()
    cols = (CONTACT_COLUMNS if kind == "contacts" else COMPANY_COLUMNS) + [label_column]
    if prior is None:
        n, true_pairs = con.execute(
            f"SELECT sum(k), sum(k * (k - 1) / 2) FROM (SELECT count(*) AS k FROM {table} GROUP BY {label_column})"
        ).fetchone()
        prior = float(true_pairs) / (n * (n - 1) / 2)
    settings["probability_two_random_records_match"] = prior
    db_api = _api(con)
    linker = Linker(_frame(con, db_api, table, cols), settings, log_level=logging.WARNING)
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
    linker.training.estimate_m_from_label_column(label_column)
    return _floor_parameters(linker.misc.save_model_to_json())


def _split_top(sql: str, sep: str) -> list[str]:
    """`sql` split at `sep` (case-insensitive) outside parentheses and quotes."""
    out, depth, i, start, quote, low, s = [], 0, 0, 0, None, sql.lower(), sep.lower()
    while i < len(sql):
        c = sql[i]
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif depth == 0 and low.startswith(s, i):
            out.append(sql[start:i])
            i += len(s)
            start = i
            continue
        i += 1
    out.append(sql[start:])
    return [p.strip() for p in out]


def _strip_parens(e: str) -> str:
    e = e.strip()
    while e.startswith("(") and e.endswith(")"):
        depth = 0
        for j, c in enumerate(e):
            depth += (c == "(") - (c == ")")
            if depth == 0 and j < len(e) - 1:
                return e  # "(a) AND (b)": the outer parentheses are not one group
        e = e[1:-1].strip()
    return e


def _canonical_rule(rule: str):
    """A blocking rule as a set of conjuncts, each a set of OR-ed terms, an equality as the set of its two sides:
    two rules with the same canonical form pair the same records."""
    def term(t: str):
        t = _strip_parens(t)
        sides = _split_top(t, "=")
        if len(sides) == 2 and not sides[0].endswith(("<", ">", "!")):
            return frozenset(" ".join(x.split()) for x in sides)
        return " ".join(t.split())
    return frozenset(frozenset(term(t) for t in _split_top(_strip_parens(c), " OR "))
                     for c in _split_top(_strip_parens(rule), " AND "))


def _swap_sides(rule: str) -> str:
    import re

    return re.sub(r"(?<![\w.])([lr])\.", lambda m: ("r." if m.group(1) == "l" else "l."), rule)


def candidate_joins(rules: list[str]) -> list[tuple[str, bool]]:
    """(rule, both directions?) for finding the existing records a blocking rule pairs with new ones: a rule
    equal to itself with l and r swapped needs one direction; of a rule and its mirror (l.a = r.b vs
    l.b = r.a) one is enough, in both directions. Same candidates, about half the joins."""
    canon = [_canonical_rule(r) for r in rules]
    out, seen = [], set()
    for r, c in zip(rules, canon):
        if c in seen:
            continue
        mirror = _canonical_rule(_swap_sides(r))
        seen |= {c, mirror}
        out.append((r, mirror != c))
    return out


def _refs(e: str) -> tuple[bool, bool]:
    import re

    return bool(re.search(r"(?<![\w.])l\.", e)), bool(re.search(r"(?<![\w.])r\.", e))


def _alias(e: str, l: str, r: str) -> str:
    import re

    return re.sub(r"(?<![\w.])([lr])\.", lambda m: f"{l if m.group(1) == 'l' else r}.", e)


def _probe_groups(rules: list[str]) -> tuple[dict[tuple, list[tuple[tuple[str, ...], list[str], str]]], list[str]]:
    """The candidate joins of `rules` (see candidate_sql), grouped by what they probe the existing table on:
    ({(probe expressions over `o`, probe filters over `o`, canonical residual): [(build expressions over `n`, build
    filters over `n`, residual SQL over `o` and `b`)]}, [rules with no equality to join on, as joins])."""
    groups: dict[tuple, list[tuple[tuple[str, ...], list[str], str]]] = {}
    plain = []
    for rule, both in candidate_joins(rules):
        eq, lf, rf, resid = [], [], [], []
        for c in (_strip_parens(c) for c in _split_top(_strip_parens(rule), " AND ")):
            hl, hr = _refs(c)
            sides = _split_top(c, "=")
            if hl and hr and len(sides) == 2 and not sides[0].endswith(("<", ">", "!")):
                (al, ar), (bl, br) = _refs(sides[0]), _refs(sides[1])
                if al and not ar and br and not bl:
                    eq.append((sides[0], sides[1]))
                    continue
                if ar and not al and bl and not br:
                    eq.append((sides[1], sides[0]))
                    continue
            (lf if hl and not hr else rf if hr and not hl else resid).append(c)
        if not eq:  # no equality to join on: the rule as it is
            plain.append(f"SELECT l.uid FROM {{table}} l JOIN {{new_rows}} r ON {rule}")
            if both:
                plain.append(f"SELECT r.uid FROM {{new_rows}} l JOIN {{table}} r ON {rule}")
            continue
        for old_is_l in ((True, False) if both else (True,)):
            o, n = ("l", "r") if old_is_l else ("r", "l")
            amap = {o: "o", n: "n"}  # the table's row is o, the new row n (b once in the build union)
            probe = tuple(_alias(x if old_is_l else y, amap["l"], amap["r"]) for x, y in eq)
            build = tuple(_alias(y if old_is_l else x, amap["l"], amap["r"]) for x, y in eq)
            pf = frozenset(_alias(f, amap["l"], amap["r"]) for f in (lf if old_is_l else rf))
            bf = [_alias(f, amap["l"], amap["r"]) for f in (rf if old_is_l else lf)]
            res = _canonical_rule(" AND ".join(_alias(x, amap["l"].replace("n", "b"), amap["r"].replace("n", "b"))
                                              for x in resid)) if resid else frozenset()
            res_sql = " AND ".join(f"({_alias(x, amap['l'].replace('n', 'b'), amap['r'].replace('n', 'b'))})" for x in resid)
            groups.setdefault((probe, pf, res), []).append((build, bf, res_sql))
    return groups, plain


def candidate_sql(table: str, new_rows: str, rules: list[str]) -> str:
    """SELECT of the uids of `table` that some blocking rule pairs with a row of `new_rows` (either side).

    Each rule direction is a join whose probe side scans the whole table: directions that probe the table on
    the same expressions (after the rule's equalities are split into the table's and the new rows' sides) with the
    same filters on the table and the same residual condition share one join, its build side the union of their
    new-row keys ("last name + company" serves l.last = r.last and l.first = r.last). Same uids as one join per
    rule and direction."""
    groups, plain = _probe_groups(rules)
    parts = [p.replace("{table}", table).replace("{new_rows}", new_rows) for p in plain]
    for (probe, pf, _), members in groups.items():
        build = " UNION ALL ".join(
            f"SELECT n.*, {', '.join(f'{e} AS __k{i}' for i, e in enumerate(b))} FROM {new_rows} n"
            + (f" WHERE {' AND '.join(f'({f})' for f in bf)}" if bf else "")
            for b, bf, _ in members)
        on = " AND ".join(f"{p} = b.__k{i}" for i, p in enumerate(probe))
        where = [f"({f})" for f in sorted(pf)] + ([members[0][2]] if members[0][2] else [])
        parts.append(f"SELECT o.uid FROM {table} o JOIN ({build}) b ON {on}" + (f" WHERE {' AND '.join(where)}" if where else ""))
    return " UNION ALL ".join(parts)


def _key(exprs: tuple[str, ...], filters: list[str] | frozenset[str]) -> str:
    """One 64-bit key for a tuple of blocking expressions: NULL when any is NULL (an equality with NULL pairs nothing)
    or a filter fails."""
    cond = [f"({e}) IS NOT NULL" for e in exprs] + [f"coalesce(({f}), false)" for f in sorted(filters)]
    return f"CASE WHEN {' AND '.join(cond)} THEN hash({', '.join(exprs)}) END"


def _split_residual(res_sql: str) -> tuple[str, str] | None:
    """A residual condition over the existing row `o` and the new row `b` written as one OR of one-sided terms,
    such as (o.n_company IS NULL OR b.n_company IS NULL), as (the `o` terms, the `b` terms rewritten over `n`);
    None if it is not of that form."""
    import re

    conj = _split_top(_strip_parens(res_sql), " AND ")
    if len(conj) != 1:
        return None
    o_terms, b_terms = [], []
    for t in _split_top(_strip_parens(conj[0]), " OR "):
        ho, hb = bool(re.search(r"(?<![\w.])o\.", t)), bool(re.search(r"(?<![\w.])b\.", t))
        if ho == hb:
            return None
        (o_terms if ho else b_terms).append(f"({t})")
    if not o_terms or not b_terms:
        return None
    return " OR ".join(o_terms), re.sub(r"(?<![\w.])b\.", "n.", " OR ".join(b_terms))


def _key_plan(rules: list[str]) -> list[tuple[str, list[str]]] | None:
    """For blocking_keys_sql and keyed_candidate_sql: [(key column over `o`, [its build keys over `n`])]. A join's
    residual "o-side OR new-side" becomes two columns: the key where the table's side holds, matched by every new
    key, and the key whatever it, matched by the keys of new rows where their side holds. None: a rule that has
    no equality to key on."""
    groups, plain = _probe_groups(rules)
    if plain:
        return None
    plan = []
    for (probe, pf, _), members in groups.items():
        split = _split_residual(members[0][2]) if members[0][2] else None
        if split is None:  # no residual, or one not split here: not checked (a few more candidates, still all)
            plan.append((_key(probe, pf), [_key(b, bf) for b, bf, _ in members]))
            continue
        o_side, b_side = split
        plan.append((_key(probe, pf | {o_side}), [_key(b, bf) for b, bf, _ in members]))
        plan.append((_key(probe, pf), [_key(b, [*bf, b_side]) for b, bf, _ in members]))
    return plan


def blocking_keys_sql(rules: list[str], source: str) -> str | None:
    """SELECT uid, k0, k1, ... FROM `source`: per record, the 64-bit hash of what each candidate join (see
    candidate_sql) probes the existing records on. The identity state keeps them (`{prefix}_blocking_keys`) so that
    an update finds its candidates in one scan of a narrow integer table instead of evaluating the blocking
    expressions over every normalised row (at 1M contacts: 12 joins over the wide table, 0.8 s, vs 0.2 s). None
    when a rule has no equality to key on (the update then uses candidate_sql)."""
    plan = _key_plan(rules)
    if plan is None:
        return None
    return f"SELECT o.uid, {', '.join(f'{k} AS k{i}' for i, (k, _) in enumerate(plan))} FROM {source} o"


def keyed_candidate_sql(keys: str, new_rows: str, rules: list[str]) -> str:
    """The uids of `keys` (a blocking_keys_sql table) with a key equal to a new row's key for the same join: every
    uid candidate_sql finds (a 64-bit hash may collide: then a few more, which Splink's own blocking leaves
    unpaired)."""
    plan = _key_plan(rules)
    assert plan is not None
    conds = []
    for i, (_, build) in enumerate(plan):
        union = " UNION ALL ".join(f"SELECT {b} AS k FROM {new_rows} n" for b in build)
        conds.append(f"o.k{i} IN (SELECT k FROM ({union}) WHERE k IS NOT NULL)")
    return f"SELECT o.uid FROM {keys} o WHERE {' OR '.join(conds)}"


def blocking_rules(model: dict[str, Any]) -> list[str]:
    return [br["blocking_rule"] if isinstance(br, dict) else br for br in model["blocking_rules_to_generate_predictions"]]


def update_blocking_keys(con: duckdb.DuckDBPyConnection, model: dict[str, Any], keys: str, table: str,
                         new_uids: str | None = None, new_rows: str | None = None) -> str | None:
    """Keep `keys` (blocking_keys_sql of the model's rules) in step with the normalised `table`: built from it
    when missing (or when no update is given), else the touched records' keys replaced by those of `new_rows`.
    Returns `keys`, or None when the rules cannot be keyed."""
    rules = blocking_rules(model)
    if blocking_keys_sql(rules, table) is None:
        return None
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary",
                         [keys.split(".")[-1]]).fetchone()[0]
    if not exists or new_uids is None:
        con.execute(f"CREATE OR REPLACE TABLE {keys} AS {blocking_keys_sql(rules, table)}")
        return keys
    con.execute(f"DELETE FROM {keys} WHERE uid IN (SELECT uid FROM {new_uids})")
    con.execute(f"INSERT INTO {keys} {blocking_keys_sql(rules, new_rows or table)}")
    return keys


def predict_edges(
    con: duckdb.DuckDBPyConnection,
    table: str,
    kind: str,
    model: dict[str, Any],
    threshold: float,
    out_table: str,
    new_uids: str | None = None,
    new_rows: str | None = None,
    keys: str | None = None,
) -> str:
    """Scored pairs at or above `threshold` -> out_table(uid_l, uid_r, rule, match_probability).

    With `new_uids`, only pairs touching those records: new x existing (predict_between) plus
    new x new (predict_within), so existing entities are not compared again. `new_rows`: optional
    table already holding those records' rows (else they are read from `table`); `keys`: the blocking keys of
    `table`'s records (update_blocking_keys), where the existing records a new one can pair with are looked up."""
    from splink import Linker

    cols = CONTACT_COLUMNS if kind == "contacts" else COMPANY_COLUMNS
    db_api = _api(con)
    if new_uids is None:
        linker = Linker(_frame(con, db_api, table, cols), model, log_level=logging.WARNING)
        parts = [linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")]
    else:
        proj = ", ".join(["uid", *cols])
        # only the columns Splink and the veto read: the normalised table is wide
        con.execute(f"""CREATE OR REPLACE TEMP TABLE __splink_new_rows AS SELECT {proj} FROM {new_rows or table}
                        WHERE uid IN (SELECT uid FROM {new_uids})""")
        if not con.execute("SELECT count(*) FROM __splink_new_rows").fetchone()[0]:  # deletions only
            con.execute(f"CREATE OR REPLACE TEMP TABLE {out_table} (uid_l VARCHAR, uid_r VARCHAR, rule VARCHAR, match_probability DOUBLE)")
            return out_table
        new = _frame(con, db_api, "__splink_new_rows", cols)
        # Existing records that no blocking rule pairs with a new one can produce no pair: leave them
        # out (same pairs, but Splink then blocks a few thousand records instead of the whole table).
        rules = blocking_rules(model)
        cand = keyed_candidate_sql(keys, "__splink_new_rows", rules) if keys else candidate_sql(table, "__splink_new_rows", rules)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE __splink_old_cand AS
                        SELECT DISTINCT uid FROM ({cand}) WHERE uid NOT IN (SELECT uid FROM {new_uids})""")
        # every row a pair can touch, once: the frames and the name veto below read this, not the table
        con.execute(f"""CREATE OR REPLACE TEMP TABLE __splink_rows AS SELECT * FROM __splink_new_rows
                        UNION ALL SELECT {proj} FROM {table} WHERE uid IN (SELECT uid FROM __splink_old_cand)""")
        table = "__splink_rows"
        # the model's settings were validated against these columns by the full run (validation: ~0.1-0.4 s)
        linker = Linker(new, model, log_level=logging.WARNING, validate_settings=False)
        # One prediction, every touched row (new and candidates) x the new rows, instead of predict_within(new) +
        # predict_between(candidates, new): one Splink pipeline to generate and run (0.73 -> 0.48 s at 1M, 1%).
        # A pair of two new rows then comes in both orders and each new row with itself: the self-pairs are
        # dropped below and the two orders score alike, as the old x new pairs already rely on (the model's
        # comparisons are symmetric and its blocking rules come with their mirrors), then GROUP BY keeps one.
        parts = [linker.inference.predict_between(_frame(con, db_api, table, cols), new,
                                                  threshold_match_probability=threshold, warning_mode="never")]
    union = " UNION ALL ".join(
        f"SELECT least(uid_l, uid_r) AS uid_l, greatest(uid_l, uid_r) AS uid_r, match_probability FROM {p.physical_name}"
        + (" WHERE uid_l <> uid_r" if new_uids is not None else "")
        for p in parts
    )
    if kind == "contacts":
        # Hard veto whatever the score: two clashing first names are two people, even behind one
        # shared mailbox and phone (the model cannot learn this from rare households).
        from .deterministic import NAMES_COMPATIBLE

        union = f"""SELECT p.* FROM ({union}) p JOIN {table} l ON l.uid = p.uid_l JOIN {table} r ON r.uid = p.uid_r
                    WHERE {NAMES_COMPATIBLE}"""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {out_table} AS SELECT uid_l, uid_r, 'splink' AS rule, max(match_probability)::DOUBLE AS match_probability FROM ({union}) GROUP BY ALL"
    )
    for p in parts:
        p.drop_table_from_database_and_remove_from_cache()
    return out_table
