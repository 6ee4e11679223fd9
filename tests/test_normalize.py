"""Normalisation: ugly real-world forms, and the SQL face agreeing with the library face."""
from __future__ import annotations

import random

import duckdb
import pandas as pd
import pytest

from transforms import normalize as n


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  Jean.Dupont@Exemple.FR ", "jean.dupont@exemple.fr"),
        ("mailto:Marie@acme.fr", "marie@acme.fr"),
        ("<paul@acme.fr>", "paul@acme.fr"),
        ("zoé@exemple.fr", "zoé@exemple.fr"),
        ("pas un email", None),
        ("jean@@acme.fr", None),
        ("jean@acme", None),
        ("jean..dupont@acme.fr", None),
        ("x@localhost", None),
        ("", None),
        (None, None),
        (float("nan"), None),
        ("a" * 10_000 + "@x.fr", None),
        ("'; DROP TABLE contacts;--@x.fr", None),
        ("😀@exemple.fr", "😀@exemple.fr"),  # valid SMTPUTF8 per email-validator
    ],
)
def test_normalize_email(raw, expected):
    assert n.normalize_email(raw) == expected


def test_role_and_free_mail():
    assert n.is_role_mailbox("contact@acme.fr")
    assert n.is_role_mailbox("commercial@acme.fr")
    assert n.is_role_mailbox("info.paris@acme.fr")
    assert not n.is_role_mailbox("jean.dupont@acme.fr")
    assert not n.is_role_mailbox(None)
    for d in ["gmail.com", "orange.fr", "free.fr", "hotmail.fr", "yahoo.fr", "laposte.net", "wanadoo.fr", "sfr.fr"]:
        assert n.is_free_mail("x@" + d)
    assert not n.is_free_mail("x@acme.fr")


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("01 23 45 67 89", "+33123456789"),
        ("01.23.45.67.89", "+33123456789"),
        ("+33 (0)6 12 34 56 78", "+33612345678"),
        ("0033 6 12 34 56 78", "+33612345678"),
        ("+33612345678", "+33612345678"),
        ("06-12-34-56-78", "+33612345678"),
        ("+41 22 123 45 67", "+41221234567"),
        # overseas departments dial the national format under their own country code
        ("02 62 46 89 05", "+262262468905"),  # Réunion
        ("0692 12 34 56", "+262692123456"),  # Réunion mobile
        ("05 90 83 54 81", "+590590835481"),  # Guadeloupe
        ("05 94 12 34 56", "+594594123456"),  # Guyane
        ("06 96 12 34 56", "+596696123456"),  # Martinique mobile
        ("+33 2 62 46 89 05", None),  # not a metropolitan number, and +33 says it is one
        ("garbage", None),
        ("123", None),
        ("", None),
        (None, None),
        ("0" * 10_000, None),
    ],
)
def test_normalize_phone(raw, expected):
    assert n.normalize_phone(raw) == expected


def test_phone_region_is_configurable():
    assert n.normalize_phone("022 123 45 67", "CH") == "+41221234567"
    assert n.normalize_phone("022 123 45 67", "FR") != "+41221234567"


@pytest.mark.parametrize(
    "first, last, fkey, lkey",
    [
        ("  Jean-Pierre ", "de la Fontaine", "jeanpierre", "fontaine"),
        ("JEAN PIERRE", "Delafontaine", "jeanpierre", "delafontaine"),
        ("Hélène", "D'Artagnan", "helene", "artagnan"),
        ("hélène", "d’Artagnan", "helene", "artagnan"),
        ("Zoé 😀", "LE GALL", "zoe", "gall"),
        ("Œdipe", "Le", "oedipe", "le"),
        ("", "", None, None),
        (None, None, None, None),
        ("'; DROP TABLE x;--", "O'Brien", "droptablex", "obrien"),
    ],
)
def test_name_keys(first, last, fkey, lkey):
    assert n.first_name_key(first) == fkey
    assert n.last_name_key(last) == lkey


@pytest.mark.parametrize(
    "raw, key",
    [
        ("Boulangerie Dupont S.A.R.L.", "boulangerie dupont"),
        ("SAS ACME", "acme"),
        ("ACME SAS", "acme"),
        ("Sté Générale de Transports", "generale de transports"),
        ("Société Générale de Transports SA", "generale de transports"),
        ("EURL Müller & Fils", "muller fils"),
        ("SARL", None),
        ("", None),
    ],
)
def test_company_name_key(raw, key):
    assert n.company_name_key(raw) == key


def test_registry_ids():
    assert n.normalize_siren("732 829 320") == "732829320"
    assert n.normalize_siren("732829321") is None  # bad Luhn
    assert n.normalize_siret("732 829 320 00074") == "73282932000074"
    assert n.siren_from_siret("73282932000074") == "732829320"
    assert n.vat_from_siren("732829320") == "FR44732829320"
    assert n.normalize_vat("fr 44 732829320") == "FR44732829320"
    assert n.normalize_vat("FR00732829320") is None
    assert n.siren_from_vat("FR44732829320") == "732829320"
    assert n.best_siren(None, "73282932000074", None) == "732829320"
    assert n.best_siren("garbage", None, "FR44732829320") == "732829320"
    # La Poste's SIRET exception (not Luhn) is accepted by stdnum
    assert n.normalize_siret("35600000000048") == "35600000000048"


def test_domain():
    assert n.normalize_domain("https://www.Exemple.fr/contact?x=1") == "exemple.fr"
    assert n.normalize_domain("exemple.fr:8080") == "exemple.fr"
    assert n.normalize_domain("not a domain") is None


UGLY = [
    None, "", " ", "x" * 10_000, "'; DROP TABLE t;--", "😀", "Jean-Pierre", "de la Fontaine", "D'Artagnan",
    "LE GALL", "Hélène", "Œdipe", "O'Brien", "Ste ACME S.A.S.", "Société Générale", "van der Berg",
]


def _contacts_frame(rng: random.Random, n_rows: int) -> pd.DataFrame:
    emails = ["Jean.Dupont@Exemple.FR", "mailto:a@b.fr", "zoé@exemple.fr", "x@localhost", "bad", "a@b", "contact@acme.fr",
              "x'y@z.fr", "a" * 300 + "@x.fr", None, "", "é@é.fr", "jean..x@y.fr", "<p@q.fr>", "UPPER@CASE.COM"]
    phones = ["01 23 45 67 89", "+33 (0)6 12 34 56 78", "0033780123456", "+41 22 123 45 67", "garbage", "07 00 00 00 00",
              "08 00 12 34 56", "04 00 12 34 56", "02 62 12 34 56", "0590 83 54 81", "06 94 12 34 56",
              "+262 692 12 34 56", None, "", "0" * 500]
    for _ in range(300):
        d = "0" + str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(8))
        phones.append(rng.choice([d, "+33" + d[1:], " ".join([d[i:i + 2] for i in range(0, 10, 2)])]))
    rows = []
    for i in range(n_rows):
        rows.append({
            "source_system": "hubspot", "source_id": str(i),
            "first_name": rng.choice(UGLY), "last_name": rng.choice(UGLY), "email": rng.choice(emails),
            "phone": rng.choice(phones), "mobile_phone": rng.choice(phones), "company_name": rng.choice(UGLY),
            "city": rng.choice(UGLY), "postcode": rng.choice(["75001", " 69 002", None, "😀"]),
        })
    return pd.DataFrame(rows)


def test_sql_face_agrees_with_library_face():
    df = _contacts_frame(random.Random(7), 2000)
    con = duckdb.connect()
    con.register("inp", df)
    n.normalize_contacts_sql(con, "inp", "out")
    out = con.execute("SELECT * FROM out ORDER BY CAST(source_id AS INT)").df()
    assert len(out) == len(df)
    for (_, src), (_, got) in zip(df.iterrows(), out.iterrows()):
        def same(a, b):
            return (a is None and (b is None or pd.isna(b))) or a == b
        assert same(n.normalize_email(src.email), got.n_email), src.email
        assert same(n.normalize_phone(src.phone), got.n_phone), src.phone
        assert same(n.normalize_phone(src.mobile_phone), got.n_mobile), src.mobile_phone
        assert same(n.first_name_key(src.first_name), got.n_first_name), src.first_name
        assert same(n.last_name_key(src.last_name), got.n_last_name), src.last_name
        assert same(n.company_name_key(src.company_name), got.n_company), src.company_name
        email = n.normalize_email(src.email)
        assert bool(got.n_email_is_role) == n.is_role_mailbox(email)


def test_companies_sql_ids_and_domain():
    df = pd.DataFrame({
        "source_system": ["hubspot", "stripe", "registry", "koban"],
        "source_id": ["1", "cus_1", "732829320", "k1"],
        "name": ["ACME SAS", "Acme", "ACME", "Société X"],
        "siren": [None, None, "732829320", "garbage"],
        "siret": ["732 829 320 00074", None, None, None],
        "vat_number": [None, "FR44732829320", None, None],
        "domain": ["https://www.acme.fr", None, None, None],
        "email": [None, "billing@acme.fr", None, "x@gmail.com"],
        "phone": ["01 23 45 67 89", None, None, "n/a"],
    })
    con = duckdb.connect()
    con.register("inp", df)
    n.normalize_companies_sql(con, "inp", "out")
    out = con.execute("SELECT source_id, n_siren, n_vat, n_domain, n_name, n_phone FROM out ORDER BY source_id").df()
    got = {r.source_id: r for r in out.itertuples()}
    assert got["1"].n_siren == got["cus_1"].n_siren == got["732829320"].n_siren == "732829320"
    assert got["1"].n_vat == "FR44732829320"
    assert got["1"].n_domain == got["cus_1"].n_domain == "acme.fr"
    assert pd.isna(got["k1"].n_domain)  # free mail is not a company domain
    assert pd.isna(got["k1"].n_siren)
    assert got["1"].n_name == got["732829320"].n_name == "acme"
    assert got["1"].n_phone == "+33123456789"


def test_job_title_key():
    """Titles compare folded, initials' dots dropped; placeholders ('N/A', 'nc', '-'), symbols and emoji are no title;
    a 10,000-character title is clipped, not refused."""
    titles = ["D.A.F.", "N/A", "  Directeur   Commercial ", "-", "nc", "🚀", "Non renseigné", "x" * 10_000, None]
    df = pd.DataFrame({"source_system": "hubspot", "source_id": [str(i) for i in range(len(titles))],
                       "first_name": "Jean", "last_name": "Martin", "job_title": titles})
    con = duckdb.connect()
    con.register("inp", df)
    n.normalize_contacts_sql(con, "inp", "out")
    got = [r[0] for r in con.execute("SELECT n_job_title FROM out ORDER BY CAST(source_id AS INT)").fetchall()]
    assert got[:7] == ["daf", None, "directeur commercial", None, None, None, None]
    assert got[7].startswith("xxx") and len(got[7]) < 10_000 and got[8] is None
