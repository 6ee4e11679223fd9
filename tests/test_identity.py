"""Identity resolution: deterministic rules, shared mailboxes, stable keys, incremental = full,
reversible thresholds, golden survivorship, and the quality floor on synthetic truth."""
from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from scale_people import generate_companies, generate_contacts  # noqa: E402

from transforms.identity import (  # noqa: E402
    CompaniesConfig,
    ContactsConfig,
    SurvivorshipConfig,
    resolve_companies,
    resolve_contacts,
    update_contacts,
)
from transforms.identity.evaluate import pairwise_scores  # noqa: E402


def _c(sid, first, last, email=None, phone=None, company=None, src="hubspot", updated="2026-01-01", **kw):
    row = dict(source_system=src, source_id=sid, first_name=first, last_name=last, email=email, phone=phone,
               mobile_phone=None, company_name=company, company_source_id=None, city="Paris", postcode="75001",
               job_title=None, updated_at=datetime.fromisoformat(updated))
    row.update(kw)
    return row


def _keys(res):
    cw = res.crosswalk_df()
    return {(r.source_system, r.source_id): r.entity_key for r in cw.itertuples()}, cw


def test_an_input_with_only_some_contract_columns_is_resolved():
    """A CRM export without job titles, phones or companies: the missing columns are read as empty."""
    df = pd.DataFrame({"source_system": ["hubspot", "koban", "koban"], "source_id": ["1", "1", "2"],
                       "last_name": ["Martin", "MARTIN", "Dupont"],
                       "email": ["j.martin@exemple.fr", "J.Martin@exemple.fr", None]})
    keys, _ = _keys(resolve_contacts(df))
    assert keys[("hubspot", "1")] == keys[("koban", "1")] != keys[("koban", "2")]
    companies = resolve_companies(pd.DataFrame({"source_system": ["hubspot", "stripe"], "source_id": ["1", "cus_1"],
                                                "name": ["ACME SAS", "Acme"], "siren": ["732829320", "732829320"]}))
    assert companies.crosswalk_df().entity_key.nunique() == 1


def test_same_email_links_and_role_mailbox_does_not_merge_people():
    df = pd.DataFrame([
        _c("1", "Jean", "Dupont", "Jean.Dupont@acme.fr"),
        _c("k1", "JEAN", "DUPONT", " jean.dupont@ACME.fr ", src="koban"),
        _c("2", "Marie", "Curie", "contact@acme.fr", phone="01 23 45 67 89", company="ACME SAS"),
        _c("3", "Paul", "Curie", "contact@acme.fr", phone="01 23 45 67 89", company="ACME SAS"),
        _c("4", "Anne", "Martin", "famille.martin@orange.fr", phone="06 12 34 56 78"),
        _c("5", "Luc", "Martin", "famille.martin@orange.fr", phone="06 12 34 56 78"),
    ])
    keys, cw = _keys(resolve_contacts(df))
    assert keys[("hubspot", "1")] == keys[("koban", "k1")]
    assert set(cw[cw.source_id.isin(["1", "k1"])].rule) == {"same_email"}
    assert keys[("hubspot", "2")] != keys[("hubspot", "3")]  # role mailbox, different first names
    assert keys[("hubspot", "4")] != keys[("hubspot", "5")]  # family mailbox, different first names
    assert set(cw.columns) >= {"source_system", "source_id", "entity_key", "rule", "match_probability", "model_version"}


def test_ugly_input_does_not_crash():
    df = pd.DataFrame([
        _c("1", "", None, "pas un email"),
        _c("2", "x" * 10_000, "😀", "a" * 10_000 + "@x.fr", phone="garbage"),
        _c("3", "'; DROP TABLE t;--", "O'Brien", "x'@y.fr", company="Ste \"Quote\" SAS"),
        _c("3", "dup id", "latest wins", None, updated="2026-05-01"),
    ])
    res = resolve_contacts(df)
    cw = res.crosswalk_df()
    assert len(cw) == 3  # duplicate (source_system, source_id): the latest version is kept
    assert set(cw.rule) == {"singleton"}
    assert res.golden_df().query("n_records == 1").shape[0] == 3


def test_entity_keys_stable_across_runs_and_input_order():
    df = generate_contacts(3000, seed=5)
    a, _ = _keys(resolve_contacts(df.drop(columns="person_key")))
    b, _ = _keys(resolve_contacts(df.drop(columns="person_key").sample(frac=1, random_state=1)))
    assert a == b


def test_golden_survivorship_recency_priority_and_source_columns():
    df = pd.DataFrame([
        _c("1", "Jean", "Dupont", "jean.dupont@acme.fr", job_title="Gérant", updated="2026-01-01"),
        _c("k1", "Jean", "Dupont", "jean.dupont@acme.fr", job_title="Directeur", src="koban", updated="2026-06-01"),
        _c("k2", "Jean", "Dupont", "jean.dupont@acme.fr", job_title=None, phone="01 23 45 67 89", src="koban",
           updated="2026-09-01"),
    ])
    g = resolve_contacts(df).golden_df()
    assert len(g) == 1
    row = g.iloc[0]
    assert row.job_title == "Directeur" and row.job_title_source == "koban"  # most recent non-null
    assert row.phone == "+33123456789"
    cfg = ContactsConfig(survivorship=SurvivorshipConfig(strategy="source_priority", source_priority=["hubspot", "koban"]))
    g2 = resolve_contacts(df, config=cfg).golden_df().iloc[0]
    assert g2.job_title == "Gérant" and g2.job_title_source == "hubspot"
    assert row.last_updated_at == pd.Timestamp("2026-09-01")
    # records that carry no date: the entity's last update is unknown, not 1970
    undated = resolve_contacts(df.assign(updated_at=None)).golden_df().iloc[0]
    assert pd.isna(undated.last_updated_at)


def test_golden_name_is_the_best_spelling_of_the_surviving_value():
    df = pd.DataFrame([
        _c("1", "Jérôme", "Lefèvre", "jerome.lefevre@acme.fr", city="Saint-Étienne", updated="2026-01-01"),
        # billing-style capitals, later: the same name, not a new one
        _c("s1", "JEROME", "LEFEVRE", "jerome.lefevre@acme.fr", src="stripe", city="ST ETIENNE", updated="2026-06-01"),
        _c("k1", "jerome", "Lefevre", "jerome.lefevre@acme.fr", src="koban", city="saint-etienne", updated="2026-03-01"),
    ])
    row = resolve_contacts(df).golden_df().iloc[0]
    assert (row.first_name, row.first_name_source) == ("Jérôme", "hubspot")
    assert (row.last_name, row.last_name_source) == ("Lefèvre", "hubspot")
    # a value that did change still follows recency: 'ST ETIENNE' is another value than 'Saint-Étienne'
    assert (row.city, row.city_source) == ("ST ETIENNE", "stripe")
    # the most recent spelling still wins among equally good ones
    later = df.assign(first_name=["Jerome", "JEROME", "Jerome"], updated_at=pd.to_datetime(
        ["2026-01-01", "2026-06-01", "2026-03-01"]))
    assert resolve_contacts(later).golden_df().iloc[0].first_name_source == "koban"


def _names(df, **kw):
    row = resolve_contacts(df, **kw).golden_df()
    assert len(row) == 1
    row = row.iloc[0]
    return row.first_name, row.last_name


@pytest.mark.parametrize("dates", ["none", "equal"])
def test_golden_name_tied_on_date_and_source_takes_the_value_most_records_hold(dates):
    """A CRM export whose records carry no date (or one date), from one source: recency and priority cannot
    decide, so the value most of the entity's records hold (case and accents aside) wins before the uid
    tie-break, field by field: the record that typed the names the wrong way round loses both."""
    updated = None if dates == "none" else datetime(2026, 3, 1)
    email = "jean.martin@exemple.fr"
    majority = [_c("1", "Jean", "Martin", email), _c("2", "Jean", "Martin", email)]
    for swapped_id in ("0", "3"):  # the swapped record with the lowest uid, then with the highest one
        df = pd.DataFrame(majority + [_c(swapped_id, "Martin", "Jean", email)]).assign(updated_at=updated)
        assert _names(df) == ("Jean", "Martin"), swapped_id
    # the vote counts the value folded (case and accents aside), then shows its best spelling
    email2 = "helene.lefevre@exemple.fr"
    df = pd.DataFrame([_c("1", "HELENE", "LEFEVRE", email2), _c("2", "helene", "lefevre", email2),
                       _c("3", "Hélène", "Lefèvre", email2), _c("4", "Lefèvre", "Hélène", email2),
                       _c("5", "Lefevre", "Helene", email2)]).assign(updated_at=updated)
    assert _names(df) == ("Hélène", "Lefèvre")
    # a non-name field votes on its value too: the phone two records hold over the highest uid's
    df = pd.DataFrame([_c("1", "Jean", "Martin", email, phone="01 23 45 67 89"),
                       _c("2", "Jean", "Martin", email, phone="01 23 45 67 89"),
                       _c("3", "Jean", "Martin", email, phone="06 11 22 33 44")]).assign(updated_at=updated)
    row = resolve_contacts(df).golden_df().iloc[0]
    assert row.phone == "+33123456789"
    # the most recent records tie: the vote among them counts every record of the entity, older ones too
    tied_top = pd.DataFrame([_c("1", "Jean", "Martin", email, updated="2026-01-01"),
                             _c("2", "Jean", "Martin", email, updated="2026-05-01"),
                             _c("3", "Martin", "Jean", email, updated="2026-05-01")])
    assert _names(tied_top) == ("Jean", "Martin")


def test_golden_majority_never_overrides_recency_or_source_priority():
    email = "jean.martin@exemple.fr"
    df = pd.DataFrame([_c("1", "Jean", "Martin", email, updated="2026-01-01"),
                       _c("2", "Jean", "Martin", email, updated="2026-02-01"),
                       _c("0", "Martin", "Jean", email, updated="2026-03-01")])
    assert _names(df) == ("Martin", "Jean")  # the most recent record's, though one against two
    # an undated record loses to any dated one, however many undated ones agree
    undated = df.assign(updated_at=[None, None, datetime(2026, 3, 1)])
    assert _names(undated) == ("Martin", "Jean")
    # source priority: the preferred source's value, though the other source's records outnumber it
    by_source = pd.DataFrame([_c("1", "Jean", "Martin", email, src="koban"), _c("2", "Jean", "Martin", email, src="koban"),
                              _c("0", "Martin", "Jean", email, src="hubspot")]).assign(updated_at=None)
    cfg = ContactsConfig(survivorship=SurvivorshipConfig(strategy="source_priority", source_priority=["hubspot", "koban"]))
    assert _names(by_source, config=cfg) == ("Martin", "Jean")


def test_golden_majority_incremental_equals_full_rebuild():
    """The vote counts within the entity: recomputing the entities an update touches picks the full rebuild's
    winners (here the added record turns a one-against-one tie, settled by uid, into a majority)."""
    email = "jean.martin@exemple.fr"
    base = pd.DataFrame([_c("1", "Jean", "Martin", email), _c("3", "Martin", "Jean", email),
                         _c("9", "Anne", "Durand", "anne.durand@exemple.fr")]).assign(updated_at=None)
    new = pd.DataFrame([_c("2", "Jean", "Martin", email)]).assign(updated_at=None)
    con = duckdb.connect()
    first = resolve_contacts(base, con=con)
    assert first.golden_df().query("n_records == 2")[["first_name", "last_name"]].values.tolist() == [["Martin", "Jean"]]
    inc = update_contacts(first, new).golden_df().drop(columns="sources")
    full = resolve_contacts(pd.concat([base, new]), con=con, prefix="full").golden_df().drop(columns="sources")
    pd.testing.assert_frame_equal(inc, full)
    assert full.query("n_records == 3")[["first_name", "last_name"]].values.tolist() == [["Jean", "Martin"]]


def test_incremental_equals_full_rebuild():
    df = generate_contacts(4000, seed=11).drop(columns="person_key")
    base, changes = df.iloc[:3800], df.iloc[3800:].copy()
    # a changed record too: someone's e-mail corrected
    changed = base.iloc[[10]].copy()
    changed["email"] = "new.address@exemple.fr"
    changed["updated_at"] = pd.Timestamp("2027-01-01")
    # and a newcomer with a clashing first name behind an existing personal address: the mailbox
    # becomes shared, so the existing records' same_email link must go (group-level rule)
    personal = base[base.email.notna() & ~base.email.str.lower().str.contains(r"^\s*(?:famille|contact|info|commercial|accueil|compta)")]
    pair = personal.groupby(personal.email.str.lower().str.strip()).filter(
        lambda g: len(g) == 2 and g.first_name.str.lower().nunique() == 1)
    intruder = pair.iloc[[0]].copy()
    intruder["source_id"], intruder["first_name"] = "intruder-1", "Zébulon"
    changes = pd.concat([changes, changed, intruder])
    con = duckdb.connect()
    first = resolve_contacts(base, con=con)
    inc = update_contacts(first, changes)
    inc_keys, _ = _keys(inc)
    full_input = pd.concat([base.drop(index=changed.index), changes])
    full = resolve_contacts(full_input, con=con, prefix="full")
    full_keys, _ = _keys(full)
    assert inc_keys == full_keys
    # only the touched components were re-clustered, yet every crosswalk row (rule and probability
    # included) is the full rebuild's
    cols = ["source_system", "source_id", "entity_key", "rule", "match_probability"]
    pd.testing.assert_frame_equal(inc.crosswalk_df()[cols], full.crosswalk_df()[cols])
    assert con.execute(f"SELECT count(*) FROM {inc.golden}").fetchone()[0] == con.execute(
        "SELECT count(*) FROM full_golden").fetchone()[0]
    # golden rows are recomputed only for touched entities, yet equal a full rebuild's
    cols = "* EXCLUDE (sources)"
    diff = con.execute(f"""SELECT count(*) FROM ((SELECT {cols} FROM {inc.golden} EXCEPT SELECT {cols} FROM full_golden)
                           UNION ALL (SELECT {cols} FROM full_golden EXCEPT SELECT {cols} FROM {inc.golden}))""").fetchone()[0]
    assert diff == 0


@pytest.mark.parametrize("kind", ["contacts", "companies"])
def test_incremental_candidate_search_finds_what_every_rule_finds(kind):
    """The existing records an update hands to Splink (blocking rules merged by the expressions they probe the
    table on) are exactly those some blocking rule, joined in both directions, pairs with a new record."""
    from transforms.identity import splink_models as sm

    gen, key = (generate_contacts, "person_key") if kind == "contacts" else (generate_companies, "company_key")
    res = (resolve_contacts if kind == "contacts" else resolve_companies)(gen(3000, seed=9).drop(columns=key))
    con, norm = res.con, res.normalized
    con.execute(f"CREATE TEMP TABLE new_rows AS SELECT * FROM {norm} USING SAMPLE 5 PERCENT (bernoulli, 4)")
    rules = [b["blocking_rule"] for b in sm.load_model(kind)["blocking_rules_to_generate_predictions"]]
    assert len(sm.candidate_sql(norm, "new_rows", rules).split(" UNION ALL ")) < 2 * len(rules)
    every = " UNION ".join(f"SELECT l.uid FROM {norm} l JOIN new_rows r ON {rule} "
                           f"UNION SELECT r.uid FROM new_rows l JOIN {norm} r ON {rule}" for rule in rules)
    got = {u for (u,) in con.execute(f"SELECT DISTINCT uid FROM ({sm.candidate_sql(norm, 'new_rows', rules)})").fetchall()}
    want = {u for (u,) in con.execute(every).fetchall()}
    assert got == want and len(want) > 100
    # the same records found through the stored 64-bit blocking keys an update probes instead of the wide table
    con.execute(f"CREATE TEMP TABLE keys AS {sm.blocking_keys_sql(rules, norm)}")
    keyed = {u for (u,) in con.execute(f"SELECT uid FROM ({sm.keyed_candidate_sql('keys', 'new_rows', rules)})").fetchall()}
    assert keyed == want


def test_raising_threshold_splits_clusters():
    df = generate_contacts(3000, seed=2, variant="hard").drop(columns="person_key")
    low = resolve_contacts(df, config=ContactsConfig(match_threshold=0.9))
    high = resolve_contacts(df, config=ContactsConfig(match_threshold=0.99999))
    assert high.counts["entities"] > low.counts["entities"]
    # every high-threshold cluster sits inside one low-threshold cluster (splits only)
    lk, _ = _keys(low)
    hk, _ = _keys(high)
    by_high: dict[str, set[str]] = {}
    for rec, key in hk.items():
        by_high.setdefault(key, set()).add(lk[rec])
    assert all(len(v) == 1 for v in by_high.values())


def test_company_rules():
    df = pd.DataFrame([
        dict(source_system="hubspot", source_id="101", name="ACME SAS", siren=None, siret="732 829 320 00074",
             domain="https://www.acme.fr", vat_number=None, metadata_crm_company_id=None, email=None),
        dict(source_system="registry", source_id="732829320", name="ACME", siren="732829320", siret=None,
             domain=None, vat_number=None, metadata_crm_company_id=None, email=None),
        dict(source_system="stripe", source_id="cus_1", name="Acme", siren=None, siret=None, domain=None,
             vat_number=None, metadata_crm_company_id="101", email="billing@acme.fr"),
        dict(source_system="stripe", source_id="cus_2", name="ACME", siren=None, siret=None, domain=None,
             vat_number="FR44732829320", metadata_crm_company_id=None, email=None),
        dict(source_system="koban", source_id="k1", name="Acme S.A.S.", siren=None, siret=None, domain="acme.fr",
             vat_number=None, metadata_crm_company_id=None, email=None),
        dict(source_system="registry", source_id="552100554", name="ACME", siren="552100554", siret=None,
             domain=None, vat_number=None, metadata_crm_company_id=None, email=None),
    ])
    keys, cw = _keys(resolve_companies(df))
    acme = {keys[k] for k in [("hubspot", "101"), ("registry", "732829320"), ("stripe", "cus_1"),
                             ("stripe", "cus_2"), ("koban", "k1")]}
    assert len(acme) == 1
    assert keys[("registry", "552100554")] not in acme  # same name, another SIREN
    rules = dict(zip(cw.source_id, cw.rule))
    assert rules["cus_1"] == "stripe_metadata" and rules["cus_2"] == "stripe_tax_id"
    assert rules["k1"] == "domain_and_name" and rules["732829320"] == "same_siren"


def _quality(kind, n, variant, seed=3, blank=(), **kw):
    gen = generate_contacts if kind == "contacts" else generate_companies
    key = "person_key" if kind == "contacts" else "company_key"
    df = gen(n, seed=seed, variant=variant, **kw)
    for column in blank:  # a field nobody fills in this CRM
        df[column] = None
    con = duckdb.connect()
    con.register("truth", df[["source_system", "source_id", key]])
    res = (resolve_contacts if kind == "contacts" else resolve_companies)(df.drop(columns=key), con=con)
    return pairwise_scores(con, res.crosswalk, "truth", key)


# The floors issue 4 asks for, on the synthetic sets of 8,000 records (seed 3; the bench uses seed 7), names as
# common as in France. Measured (contacts model v5): contacts P 1.0000 / R 0.9979 default, P 1.0000 / R 0.9937 hard;
# companies P 0.9996 / R 0.9967 default, P 0.9992 / R 0.9928 hard. Other seeds: bench/results_identity.md.
@pytest.mark.parametrize("variant", ["default", "hard"])
def test_contacts_quality_floor(variant):
    s = _quality("contacts", 8000, variant)
    assert s["precision"] >= 0.995 and s["recall"] >= 0.98, s


# A CRM where nobody types job titles (the model weighs a title match and a clash): precision must not rest on them.
# Measured, hard variant, titles all blank: P 1.0000 / R 0.9911 on seed 3 (with titles 1.0000 / 0.9937); seeds 3 5 7
# 11 13: P unchanged, R 0.9908-0.9959 (bench/results_identity.md).
def test_contacts_quality_without_job_titles():
    s = _quality("contacts", 8000, "hard", blank=["job_title"])
    assert s["precision"] >= 0.995 and s["recall"] >= 0.98, s


# The homonym stress test: names drawn as skewed as Zipf's law makes them (Jean for 14% of people, Martin for 9%), so
# that colleagues of one company share a full name over a hundred times as often as in France, and only the e-mail,
# phone or job title tells them apart. Measured on seed 3: P 0.9988 / R 0.9971 default, P 0.9971 / R 0.9933 hard
# (seed 11 falls to P 0.9927: bench/results_identity.md). Same floor, one seed.
@pytest.mark.parametrize("variant", ["default", "hard"])
def test_contacts_quality_with_common_homonyms(variant):
    s = _quality("contacts", 8000, variant, names="skewed")
    assert s["precision"] >= 0.995 and s["recall"] >= 0.98, s


@pytest.mark.parametrize("variant", ["default", "hard"])
def test_companies_quality_floor(variant):
    s = _quality("companies", 8000, variant)
    assert s["precision"] >= 0.998 and s["recall"] >= 0.99, s


def _co(sid, name, src="hubspot", **kw):
    row = dict(source_system=src, source_id=sid, name=name, siren=None, siret=None, vat_number=None, domain=None,
               phone=None, address=None, postcode=None, city=None, metadata_crm_company_id=None, email=None)
    row.update(kw)
    return row


def test_company_name_used_once_per_own_system_links():
    """unique_name: a Stripe customer known only by its name (free-mail address) joins the one CRM
    company of that name; not when the CRM holds two companies of that name, nor when an identifier
    contradicts; the registry (every legal unit, homonyms included) never links on the name alone."""
    df = pd.DataFrame([
        _co("1", "Boulangerie Kerlan SARL", postcode="29000"),
        _co("cus_1", "BOULANGERIE KERLAN", src="stripe", email="kerlan@gmail.com"),
        _co("123456782", "BOULANGERIE KERLAN", src="registry", siren="123456782", postcode="75001"),
        _co("2", "Garage Morin", postcode="69002"),
        _co("3", "Garage Morin", postcode="13001"),
        _co("cus_2", "Garage Morin", src="stripe", email="garage.morin@gmail.com"),
        _co("4", "Optique Lanvil", postcode="44000"),
        _co("k4", "Optique Lanvil", src="koban", postcode="35000"),
    ])
    keys, cw = _keys(resolve_companies(df))
    assert keys[("hubspot", "1")] == keys[("stripe", "cus_1")]
    assert dict(zip(cw.source_id, cw.rule))["cus_1"] == "unique_name"
    assert keys[("registry", "123456782")] != keys[("hubspot", "1")]  # registry homonym, other town
    assert len({keys[("hubspot", "2")], keys[("hubspot", "3")], keys[("stripe", "cus_2")]}) == 3
    assert keys[("hubspot", "4")] != keys[("koban", "k4")]  # two postcodes: two shops


def test_company_name_typo_links_only_a_lone_neighbour():
    """name_typo: one edit apart in one postcode, when neither spelling exists in the other system;
    a Koban spelling that the CRM also holds exactly is another company, not a typo."""
    df = pd.DataFrame([
        _co("1", "Menuiserie Vilardou", postcode="75015"),
        _co("k1", "Menuisrie Vilardou", src="koban", postcode="75015"),
        _co("2", "Conseil Giraud", postcode="56000"),
        _co("3", "Conseil Girard", postcode="56000"),
        _co("k3", "Conseil Girard", src="koban", postcode="56000"),
    ])
    keys, cw = _keys(resolve_companies(df))
    assert keys[("hubspot", "1")] == keys[("koban", "k1")]
    assert dict(zip(cw.source_id, cw.rule))["k1"] == "name_typo"
    assert keys[("hubspot", "2")] != keys[("hubspot", "3")]
    assert keys[("hubspot", "2")] != keys[("koban", "k3")]


def test_contact_one_edit_names_share_a_mailbox_but_a_family_does_not():
    """'Jean' typed 'Jemn' behind the same personal address is one person (Jaro-Winkler 0.87 used
    to call the mailbox shared); Jean and Anne behind a family address stay two, Lina and Nina too."""
    df = pd.DataFrame([
        _c("1", "Jean", "Moreau", "jean.moreau@paysagesardesgal.eu", company="Paysages Ardesgal"),
        _c("2", "Jemn", "Moreau", "jean.moreau@paysagesardesgal.eu", company="Paysages Ardesgal", src="koban"),
        _c("3", "Jean", "Gall", "famille.gall137@laposte.net"),
        _c("4", "Anne", "Gall", "famille.gall137@laposte.net"),
        # a family-name typo on its first letter ('Le Goff' typed 'le noff'), same mailbox: one person
        _c("5", "Marion", "Le Goff", "marion.legoff@immobilierecautou.eu", company="Immobilier Ecautou"),
        _c("6", "Marion", "le noff", "MARION.LEGOFF@IMMOBILIERECAUTOU.EU", src="koban"),
        # ...but a first name that differs on its first letter behind one family address: sisters; and behind a
        # plain shared mailbox with one record's names swapped (whichever record comes first in a pair)
        _c("7", "Lina", "Morec", "famille.morec54@gmail.com"),
        _c("8", "Nina", "Morec", "famille.morec54@gmail.com"),
        _c("a1", "Morec", "Lina", "morec77@gmail.com"),
        _c("a2", "Nina", "Morec", "morec77@gmail.com"),
        _c("b1", "Lina", "Morec", "morec88@gmail.com"),
        _c("b2", "Morec", "Nina", "morec88@gmail.com"),
    ])
    keys, cw = _keys(resolve_contacts(df))
    assert keys[("hubspot", "1")] == keys[("koban", "2")]
    assert keys[("hubspot", "3")] != keys[("hubspot", "4")]
    assert keys[("hubspot", "5")] == keys[("koban", "6")]
    assert keys[("hubspot", "7")] != keys[("hubspot", "8")]
    assert keys[("hubspot", "a1")] != keys[("hubspot", "a2")]
    assert keys[("hubspot", "b1")] != keys[("hubspot", "b2")]


@pytest.mark.parametrize("a, b, ok", [
    # masculine and feminine forms: two people
    *((a, b, False) for a, b in [
        ("Louis", "Louise"), ("Michel", "Michèle"), ("Michel", "Michelle"), ("Daniel", "Danielle"), ("Paul", "Pauline"),
        ("Paul", "Paule"), ("Paul", "Paulette"), ("Jean", "Jeanne"), ("Jean", "Jeannine"), ("Denis", "Denise"),
        ("François", "Françoise"), ("Simon", "Simone"), ("Yves", "Yvette"), ("Yvon", "Yvonne"),
        ("Gabriel", "Gabrielle"), ("Emmanuel", "Emmanuelle"), ("Joël", "Joëlle"), ("Pascal", "Pascale"),
        ("Laurent", "Laurence"), ("Martin", "Martine"), ("Christian", "Christiane"), ("Frédéric", "Frédérique"),
        ("Eric", "Erica"), ("Karim", "Karima"), ("Mario", "Maria"), ("André", "Andrée"), ("Stéphane", "Stéphanie"),
        ("Louise", "Louis")]),
    # one person: an initial, a compound first name, a typo, a doubled last letter, a name and its short form
    *((a, b, True) for a, b in [
        ("J", "Jean"), ("Jean", "Jean-Pierre"), ("Jean", "Jean Pierre"), ("Marie", "Marie-Claude"), ("Jean", "Jemn"),
        ("Christian", "Christain"), ("Sophie", "Sophi"), ("Antoine", "Antoinee"), ("Pierre", "Pierr"),
        ("Louise", "Louise"), ("Thomas", None)]),
])
def test_first_names_masculine_and_feminine_forms_are_not_compatible(a, b, ok):
    from transforms.identity.deterministic import _first_ok
    from transforms.normalize import first_name_key

    sql = f"SELECT {_first_ok('a', 'b')} FROM (SELECT ?::VARCHAR AS a, ?::VARCHAR AS b)"
    assert duckdb.connect().execute(sql, [first_name_key(a), first_name_key(b)]).fetchone()[0] is ok


def test_couple_with_a_masculine_and_feminine_first_name_is_two_people():
    """Louis and Louise Durand share a landline and a town, each with a personal address: Splink scores the pair
    0.9995, the names veto it (the masculine and feminine forms of one name are two people), as behind a family
    mailbox. An initial, a compound first name, a typo and swapped names in the same table still link, behind one
    address or on Splink's score."""
    home, mrs, lil, par, bdx, brest, lyon, sxb = ({"city": c, "postcode": p} for c, p in [
        ("Rennes", "35000"), ("Marseille", "13008"), ("Lille", "59000"), ("Paris", "75011"), ("Bordeaux", "33000"),
        ("Brest", "29200"), ("Lyon", "69002"), ("Strasbourg", "67000")])
    df = pd.DataFrame([
        _c("1", "Louis", "Durand", "louis.durand@orange.fr", phone="02 99 12 34 56", **home),
        _c("2", "Louise", "Durand", "louise.durand@orange.fr", phone="02 99 12 34 56", **home),
        _c("3", "Michel", "Faure", "michel.faure@free.fr", phone="04 91 22 33 44", **mrs),
        _c("4", "Michèle", "Faure", "michele.faure@free.fr", phone="04 91 22 33 44", **mrs),
        _c("5", "Daniel", "Roche", "daniel.roche@gmail.com", phone="03 20 11 22 33", **lil),
        _c("6", "Danielle", "Roche", "danielle.roche@gmail.com", phone="03 20 11 22 33", **lil),
        _c("7", "Paul", "Blanc", "paul.blanc@gmail.com", phone="01 45 67 89 10", **par),
        _c("8", "Pauline", "Blanc", "pauline.blanc@gmail.com", phone="01 45 67 89 10", **par),
        _c("9", "Laurent", "Giraud", "laurent.giraud@laposte.net", phone="05 56 44 33 22", **bdx),
        _c("10", "Laurence", "Giraud", "laurence.giraud@laposte.net", phone="05 56 44 33 22", **bdx),
        # behind one family mailbox and landline
        _c("11", "Yvon", "Lambert", "famille.lambert@free.fr", phone="02 98 76 54 32", **brest),
        _c("12", "Yvonne", "Lambert", "famille.lambert@free.fr", phone="02 98 76 54 32", **brest),
        # one person each: an initial, a compound first name, a typo, swapped names
        _c("20", "Jean", "Dupuis", "jean.dupuis@orange.fr", phone="02 99 55 66 77", **home),
        _c("21", "J", "Dupuis", "jean.dupuis@orange.fr", src="koban", **home),
        _c("22", "Jean", "Roux", "jp.roux@gmail.com", phone="04 72 11 22 33", **lyon),
        _c("23", "Jean-Pierre", "Roux", "jp.roux@gmail.com", src="koban", **lyon),
        _c("24", "Christian", "Mercier", "christian.mercier@free.fr", phone="03 88 12 12 12", **sxb),
        _c("25", "Christain", "Mercier", "christian.mercier@free.fr", src="koban", **sxb),
        _c("26", "Mercier", "Christian", "christian.mercier@free.fr", src="stripe", **sxb),
        # the same without a shared address: Splink's pairs, through the veto
        _c("30", "Marc", "Leroy", "marc.leroy@orange.fr", phone="02 40 11 22 33", mobile_phone="06 11 22 33 44",
           **home),
        _c("31", "M", "Leroy", None, phone="02 40 11 22 33", mobile_phone="06 11 22 33 44", src="koban", **home),
        _c("32", "Jean", "Vidal", "jean.vidal@gmail.com", mobile_phone="06 22 33 44 55", **home),
        _c("33", "Jean-Marc", "Vidal", "jm.vidal@orange.fr", mobile_phone="06 22 33 44 55", src="koban", **home),
        _c("34", "Pascal", "Meunier", "pascal.meunier@free.fr", mobile_phone="06 33 44 55 66", **home),
        _c("35", "Pacsal", "Meunier", None, mobile_phone="06 33 44 55 66", src="koban", **home),
        _c("36", "Meunier", "Pascal", "pascal.meunier@gmail.com", mobile_phone="06 33 44 55 66", src="stripe", **home),
    ])
    keys, _ = _keys(resolve_contacts(df))
    k = {sid: key for (_, sid), key in keys.items()}
    for masc, fem in [("1", "2"), ("3", "4"), ("5", "6"), ("7", "8"), ("9", "10"), ("11", "12")]:
        assert k[masc] != k[fem], (masc, fem)
    assert k["20"] == k["21"]
    assert k["22"] == k["23"]
    assert k["24"] == k["25"] == k["26"]
    assert k["30"] == k["31"]
    assert k["32"] == k["33"]
    assert k["34"] == k["35"] == k["36"]


def test_contact_company_named_by_the_other_record_email_domain():
    """One record has no company but writes from esvergarage.eu, the other works at "Esver Garage"
    and has no e-mail: same name, same employer. Another employer's domain does not count."""
    df = pd.DataFrame([
        _c("1", "Eric", "Martin", "eric.martin@esvergarage.eu", postcode=None, city=None),
        _c("2", "Eric", "Martin", None, company="Esver Garage", src="koban", city="Nîmes", postcode="30000"),
        _c("3", "Eric", "Martin", "eric.martin@transportsvilot.fr", postcode=None, city=None),
    ])
    keys, _ = _keys(resolve_contacts(df))
    assert keys[("hubspot", "1")] == keys[("koban", "2")]
    assert keys[("hubspot", "3")] != keys[("koban", "2")]


def test_shared_mailbox_same_name_different_companies_not_merged():
    """Household members behind one family address and phone: no rule links them on that alone, and
    two namesakes working for different companies in different towns stay apart."""
    df = pd.DataFrame([
        _c("1", "Jean", "Gall", "famille.gall137@laposte.net", phone="06 12 34 56 78", company="Onlan Menuiserie"),
        _c("2", "Jean", "Gall", "famille.gall137@laposte.net", phone="06 12 34 56 78", company="Transports Villot",
           city="Saint-Étienne", postcode="42000"),
        _c("3", "Anne", "Gall", "famille.gall137@laposte.net", phone="06 12 34 56 78", company="Transports Villot"),
    ])
    keys, _ = _keys(resolve_contacts(df))
    assert len({keys[("hubspot", i)] for i in "123"}) == 3


def test_two_addresses_of_one_company_domain_are_two_people():
    """A third record without e-mail must not chain two colleagues sharing a name into one person."""
    df = pd.DataFrame([
        _c("1", "Marie", "Bernard", "marie.bernard@esver.fr", company="Restaurant Esver"),
        _c("2", "Marie", "Bernard", "marie.bernard1834@esver.fr", company="Restaurant Esver"),
        _c("3", "Marie", "Bernard", None, company="Restaurant Esver"),
    ])
    keys, _ = _keys(resolve_contacts(df))
    assert keys[("hubspot", "1")] != keys[("hubspot", "2")]


def _world_quality(kind):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from world_frames import world_companies, world_contacts

    from sandbox.generator import generate_world

    world = generate_world(42, size="demo")
    df, truth = (world_contacts if kind == "contacts" else world_companies)(world)
    con = duckdb.connect()
    con.register("truth", truth)
    res = (resolve_contacts if kind == "contacts" else resolve_companies)(df, con=con)
    key = "person_key" if kind == "contacts" else "company_key"
    return pairwise_scores(con, res.crosswalk, "truth", key), df


def test_sandbox_world_contacts_quality():
    s, df = _world_quality("contacts")
    assert set(df.source_system) == {"hubspot", "koban"}
    assert s["true_pairs"] > 100
    assert s["precision"] >= 0.995 and s["recall"] >= 0.98, s


def test_sandbox_world_companies_quality():
    s, df = _world_quality("companies")
    assert set(df.source_system) == {"hubspot", "koban", "stripe", "registry"}
    # measured P 1.0000 / R 1.0000 (the three extra pairs of a Stripe-only "Groupe Martin" sharing a CRM
    # company's name and domain from another town are gone: domain_and_name refuses two postcodes)
    assert s["precision"] >= 0.998 and s["recall"] >= 0.99, s


# The sandbox world's harder variant (3x the duplicated people and companies, 4x the shared mailboxes, half the
# companies in Koban too), resolved in the pipeline's order: companies first, then the contacts with the company
# crosswalk's key of their CRM company (company_entity_key), not the world's true company.
HARDER_WORLD = dict(person_dup_share=0.25, company_dup_share=0.15, shared_mailbox_share=0.08, koban_share=0.5)


def test_sandbox_world_harder_variant_through_resolved_companies():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from world_frames import world_companies, world_contacts

    from sandbox.generator import generate_world

    world = generate_world(42, size="demo", **HARDER_WORLD)
    con = duckdb.connect()
    companies, company_truth = world_companies(world)
    con.register("company_truth", company_truth)
    firms = resolve_companies(companies, con=con)
    c = pairwise_scores(con, firms.crosswalk, "company_truth", "company_key")
    # measured P 1.0000 / R 1.0000 (1,710 true pairs; default world 1,384)
    assert c["true_pairs"] > 1500 and c["precision"] >= 0.998 and c["recall"] >= 0.99, c
    contacts, truth = world_contacts(world)
    con.register("contacts_in", contacts)
    keyed = con.execute(
        f"""SELECT c.*, x.entity_key AS company_entity_key FROM contacts_in c LEFT JOIN {firms.crosswalk} x
            ON x.source_system = c.source_system AND x.source_id = CAST(c.company_source_id AS VARCHAR)"""
    ).to_arrow_table()
    assert keyed["company_entity_key"].null_count < 0.1 * keyed.num_rows
    con.register("truth", truth)
    people = resolve_contacts(keyed, con=con)
    s = pairwise_scores(con, people.crosswalk, "truth", "person_key")
    # measured P 1.0000 / R 0.9982 (1,125 true pairs; default world 535)
    assert s["true_pairs"] > 1000 and s["precision"] >= 0.995 and s["recall"] >= 0.98, s


def test_quality_sanity_floor():
    """Smaller run of the same guards (fast feedback)."""
    c = _quality("contacts", 3000, "default")
    assert c["precision"] >= 0.99 and c["recall"] >= 0.95, c
    k = _quality("companies", 3000, "default")
    assert k["precision"] >= 0.995 and k["recall"] >= 0.9, k


def test_rare_name_two_companies_in_one_place_proves_nothing():
    """A rare name borne in one town by records of two companies (or two employers' mail domains) is two
    people's: the record naming no company is not the bridge between them."""
    filler = [_c(f"f{i}", f"Prenom{i}", f"Nom{i}") for i in range(400)]
    df = pd.DataFrame(filler + [
        _c("a1", "Christine", "Fontaine", "christine.fontaine@restaurantmichel.eu", company="Restaurant Michel"),
        _c("a2", "Christine", "Fontaine", "christine.fontaine@restaurantmichel.eu", src="koban"),
        _c("b", "Christine", "Fontaine", "christinefontaine7@laposte.net", company="Electricite Vergrey"),
        _c("c1", "Ysolde", "Kerbrat", "ysolde.kerbrat@conseildufour.eu", company="Conseil Dufour"),
        _c("c2", "Ysolde", "Kerbrat", "ysolde.kerbrat@solutionsautard.fr"),
    ])
    keys, cw = _keys(resolve_contacts(df))
    assert keys[("hubspot", "a1")] == keys[("koban", "a2")] != keys[("hubspot", "b")]
    assert keys[("hubspot", "c1")] != keys[("hubspot", "c2")]


def test_job_title_decides_a_twice_typed_name_under_one_company():
    """A name typed wrong twice under one company record, no town, no e-mail or phone in common: the shared title
    makes them one person, a different one two ('D.A.F.' and 'daf' are one title)."""
    nowhere = dict(city=None, postcode=None)
    df = pd.DataFrame([
        _c("1", "Charlotte", "Martin", "charlotte.martin@atelierpetit.eu", company="Atelier Petit", company_source_id="C1",
           job_title="D.A.F.", **nowhere),
        _c("2", "Chralotte", "Matrin", None, company_source_id="C1", job_title="daf", **nowhere),
        _c("3", "Sebastien", "Durand", "sebastien.durand@atelierpetit.eu", company="Atelier Petit", company_source_id="C1",
           job_title="Comptable", **nowhere),
        _c("4", "Sebastein", "Duarnd", None, company_source_id="C1", job_title="Technicien", **nowhere),
    ])
    keys, _ = _keys(resolve_contacts(df))
    assert keys[("hubspot", "1")] == keys[("hubspot", "2")]
    assert keys[("hubspot", "3")] != keys[("hubspot", "4")]


def test_swapped_or_twice_typed_name_of_one_company_record_is_compared():
    """Swapped first/last names, or a typo in both parts, under one CRM company record (the company's name
    missing on one side): blocked by the company record, so Splink scores the pair."""
    df = pd.DataFrame([
        _c("1", "Marie", "Robert", "marie.robert@negoceeaulanbou.eu", company="Négoce Eaulanbou", company_source_id="C1"),
        _c("2", "ROBERT", "Marie", None, company_source_id="C1"),
        _c("3", "Charlotte", "Martin", "charlotte.martin@atelierpetit.eu", company="Atelier Petit", company_source_id="C2"),
        _c("4", "Chralotte", "Matrin", None, company_source_id="C2"),
    ])
    keys, _ = _keys(resolve_contacts(df))
    assert keys[("hubspot", "1")] == keys[("hubspot", "2")]
    assert keys[("hubspot", "3")] == keys[("hubspot", "4")]
