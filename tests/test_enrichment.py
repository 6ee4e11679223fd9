"""Registry enrichment, contact flags, lead scores and tier suggestions (core SQL models) on a hand-made world.

Every expected value below is worked out by hand from the rows written here. Points (sales model): page view 1,
e-mail open 2, click 5, form 20; hand-off threshold 60; name-match gate 0.8; tier medians need 2 companies.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from marts_world import load_world
from transforms import normalize
from transforms.build import build_models
from warehouse.connection import Warehouse
from warehouse.dictionary import load_dictionary

CORE_DIR = Path(__file__).resolve().parent.parent / "transforms" / "core"
MODELS = ["company_registry_match", "company_enrichment", "dim_company", "contact_flags", "lead_scores",
          "tier_suggestions"]

S1, S2, S3, S4, S5 = "552100554", "542051180", "443061841", "380129866", "401483300"  # Luhn-valid SIRENs
S6, S6_TYPO = "127191005", "127191006"  # valid; the same with its last digit mistyped (fails the Luhn check)
SIRET5 = "40148330000018"
UTC = dt.timezone.utc


def _company(cid, name, **kw):
    row = {"source_system": "hubspot", "company_id": cid, "name": name, "updated_at": "2026-03-01",
           "created_at": "2025-01-01", "is_deleted": False}
    row.update(kw)
    return row


def _contact(cid, email, company_id, views=0, opens=0, clicks=0, forms=0, system="hubspot", **kw):
    row = {"source_system": system, "contact_id": cid, "email": email, "company_id": company_id,
           "page_views": views, "email_opens": opens, "email_clicks": clicks, "form_submissions": forms,
           "hard_bounced": False, "lifecycle_stage": "lead", "updated_at": "2026-03-01", "created_at": "2025-06-01",
           "is_deleted": False}
    row.update(kw)
    return row


def world() -> dict[str, list[dict]]:
    companies = [
        # E1: SIREN typed; typed NAF and headcount disagree with the registry
        _company("c1", "Atelier Lumen", siren=S1, naf_code="7022Z", headcount=45, domain="atelier-lumen.fr",
                 address="12 rue de la Paix", postcode="75011", city="Paris"),
        # E2: no identifier; the only candidate shares 2 of 3 name words (0.67 < 0.8)
        _company("c2", "Boulangerie Martin", postcode="69001", city="Lyon"),
        # E3: no identifier; candidate "DUPONT ET FILS" = same words once legal forms are left out; ceased
        _company("c3", "Dupont & Fils SARL", postcode="75 002", domain="dupont-fils.fr"),
        # E4: a SIREN that fails its check digit, no candidate
        _company("c4", "Ghost Corp", siren="123456789", postcode="13001"),
        # E5: SIRET only
        _company("c5", "Cinq Conseil", siret=SIRET5, postcode="33000"),
        # tiers: two Argent companies, one Or, two Bronze (B1 also has a Koban record)
        _company("a1", "Argent Un", tier="Argent"),
        _company("a2", "Argent Deux", tier="Argent"),
        _company("o1", "Or Un", tier="Or"),
        _company("b1", "Bronze Un", tier="Bronze"),
        _company("b2", "Bronze Deux", tier="Bronze"),
        {"source_system": "koban", "company_id": "kb1", "name": "Bronze Un", "updated_at": "2026-01-01",
         "is_deleted": False},
    ]
    entity = {"c1": "E1", "c2": "E2", "c3": "E3", "c4": "E4", "c5": "E5", "a1": "A1", "a2": "A2", "o1": "O1",
              "b1": "B1", "b2": "B2"}
    crosswalk = [{"source_system": "hubspot", "source_id": k, "entity_key": v, "rule": "singleton",
                  "match_probability": 1.0, "model_version": "t"} for k, v in entity.items()]
    crosswalk.append({"source_system": "koban", "source_id": "kb1", "entity_key": "B1", "rule": "same_siren",
                      "match_probability": 1.0, "model_version": "t"})
    # E6: an older record holds the valid SIREN; the latest one a typo of it that fails the check digit
    companies += [_company("c6old", "Transports Six", siren=S6, updated_at="2026-01-01"),
                  _company("c6", "Transports Six", siren=S6_TYPO, updated_at="2026-03-01")]
    crosswalk += [{"source_system": "hubspot", "source_id": k, "entity_key": "E6", "rule": "same_name",
                   "match_probability": 1.0, "model_version": "t"} for k in ("c6old", "c6")]
    # a NAF code typed on a company the registry does not enrich: its label still shows
    for row in companies:
        if row["company_id"] == "a1":
            row["naf_code"] = "6311Z"
        if row["company_id"] == "a2":  # a code the labels do not know: no empty label row
            row["naf_code"] = "9999Z"
    # a record deleted in the CRM (merged into c1 there): identity leaves it out, so must dim_company
    companies.append(_company("c7", "Atelier Lumen SAS", siren=S1, domain="atelier-lumen.fr", is_deleted=True))
    # a company known only from billing: its golden record holds its address
    crosswalk.append({"source_system": "stripe", "source_id": "cus_9", "entity_key": "E9", "rule": "singleton",
                      "match_probability": 1.0, "model_version": "t"})
    golden = [{"entity_key": "E9", "n_records": 1, "sources": "[stripe]", "name": "Cabinet Noël",
               "name_source": "stripe", "domain": "cabinet-noel.fr", "domain_source": "stripe", "postcode": "66000",
               "postcode_source": "stripe", "city": "Perpignan", "city_source": "stripe"},
              # the identity step keeps valid SIRENs only (python-stdnum): E6's is the older record's
              {"entity_key": "E6", "n_records": 2, "sources": "[hubspot]", "name": "Transports Six",
               "name_source": "hubspot", "siren": S6, "siren_source": "hubspot"}]
    registry = [
        {"siren": S1, "siret_head_office": S1 + "00011", "legal_name": "ATELIER LUMEN", "naf_code": "62.01Z",
         "naf_label": "Programmation informatique", "headcount_band": "21", "legal_form_code": "5710",
         "legal_form_label": "SAS, société par actions simplifiée", "category": "PME", "created_on": "2010-05-04",
         "is_ceased": False, "address": "12 RUE DE LA PAIX", "postcode": "75011", "city": "PARIS",
         "fetched_at": "2026-03-02", "source": "api"},
        {"siren": S2, "legal_name": "BOULANGERIE PATISSERIE MARTIN", "naf_code": "10.71C", "postcode": "69001",
         "city": "LYON", "is_ceased": False, "fetched_at": "2026-03-02", "source": "api"},
        {"siren": S3, "legal_name": "DUPONT ET FILS", "naf_code": "43.22A", "postcode": "75002", "city": "PARIS",
         "is_ceased": True, "ceased_on": "2025-06-30", "created_on": "1998-01-15", "fetched_at": "2026-03-03",
         "source": "stock"},
        {"siren": S6, "legal_name": "TRANSPORTS SIX", "naf_code": "49.41A", "naf_label": "Transports routiers de fret",
         "postcode": "69007", "city": "LYON", "is_ceased": False, "fetched_at": "2026-03-02", "source": "api"},
        {"siren": S5, "legal_name": "CINQ CONSEIL", "naf_code": "70.22Z", "headcount_band": "03", "postcode": "33000",
         "city": "BORDEAUX", "is_ceased": False, "fetched_at": "2026-03-04", "source": "api"},
    ]
    candidates = [
        {"query_key": "name:BOULANGERIE MARTIN|69001", "query_name": "Boulangerie Martin", "query_postcode": "69001",
         "rank": 1, "siren": S2, "score": 66.0, "total_results": 1, "legal_name": "BOULANGERIE PATISSERIE MARTIN",
         "postcode": "69001", "city": "LYON", "is_ceased": False, "fetched_at": "2026-03-02"},
        {"query_key": "name:DUPONT FILS SARL|75002", "query_name": "Dupont & Fils SARL", "query_postcode": "75002",
         "rank": 1, "siren": S3, "score": 100.0, "total_results": 2, "legal_name": "DUPONT ET FILS",
         "postcode": "75002", "city": "PARIS", "is_ceased": True, "fetched_at": "2026-03-03"},
        {"query_key": "name:DUPONT FILS SARL|75002", "query_name": "Dupont & Fils SARL", "query_postcode": "75002",
         "rank": 2, "siren": S4, "score": 50.0, "total_results": 2, "legal_name": "DUPONT IMMOBILIER",
         "postcode": "75002", "city": "PARIS", "is_ceased": False, "fetched_at": "2026-03-03"},
    ]
    contacts = [
        _contact("ct1", "alice@atelier-lumen.fr", "c1", views=10, opens=5, clicks=2, forms=1),  # 50
        _contact("ct2", "bob@atelier-lumen.fr", "c1", hard_bounced=True),
        _contact("ct3", "carol@gmail.com", "c1"),
        _contact("ct4", "dave@oldname.fr", "c1"),
        _contact("ct9", "remi@paris.atelier-lumen.fr", "c1"),
        _contact("ct5", "eve@dupont-fils.fr", "c3"),
        # exactly at the threshold: 20 + 5x2 + 2x5 + 1x20 = 60; the CRM handed her to sales on 10 Feb
        _contact("ct6", "fanny@argent-deux.fr", "a2", views=20, opens=5, clicks=2, forms=1, lifecycle_stage="sql"),
        # one point short: 19 + 10 + 10 + 20 = 59
        _contact("ct7", "gus@argent-un.fr", "a1", views=19, opens=5, clicks=2, forms=1),
        # one person, two CRMs: 30 page views (HubSpot) + 2 forms (Koban) = 70
        _contact("ct8", "hugo@bronze-un.fr", "b1", views=30),
        _contact("kct8", "hugo@bronze-un.fr", "kb1", forms=2, system="koban", updated_at="2026-01-01"),
        _contact("ct10", "ines@bronze-deux.fr", "b2", views=5),
        _contact("ct11", "jo@or-un.fr", "o1", views=100),
        {**_contact("ct12", "gone@atelier-lumen.fr", "c1", hard_bounced=True), "is_deleted": True},
        _contact("ct13", "kim@atelier-lumen.fr", "c7", views=3),  # her company record was deleted (merged)
        # one person, three records: the freshest has no e-mail; the next freshest's is the golden one (not the
        # greatest string, old.lea@...)
        _contact("ct14", None, "o1", updated_at="2026-03-01"),
        _contact("kct14", "lea@or-un.fr", None, system="koban", updated_at="2026-02-01"),
        _contact("kct14b", "old.lea@or-un.fr", None, system="koban", updated_at="2026-01-01"),
    ]
    contact_xw = [
        {"source_system": "hubspot", "source_id": "ct8", "entity_key": "P8", "rule": "same_email",
         "match_probability": 1.0, "model_version": "t"},
        {"source_system": "koban", "source_id": "kct8", "entity_key": "P8", "rule": "same_email",
         "match_probability": 1.0, "model_version": "t"},
    ] + [{"source_system": sys_, "source_id": k, "entity_key": "P14", "rule": "same_name", "match_probability": 1.0,
          "model_version": "t"} for sys_, k in (("hubspot", "ct14"), ("koban", "kct14"), ("koban", "kct14b"))]
    contact_golden = [{"entity_key": "P14", "n_records": 3, "sources": "[hubspot, koban]", "first_name": "Léa",
                       "email": "lea@or-un.fr", "email_source": "koban"},
                      {"entity_key": "P8", "n_records": 2, "sources": "[hubspot, koban]",
                       "email": "hugo@bronze-un.fr", "email_source": "hubspot"}]
    settings = {"lead_points_page_view": "1", "lead_points_email_open": "2", "lead_points_email_click": "5",
                "lead_points_form_submission": "20", "lead_score_handoff_threshold": "60",
                "enrichment_name_match_min_score": "0.8", "tier_suggestion_min_peers": "2"}
    return {
        "staging.companies": companies,
        "core.company_crosswalk": crosswalk,
        "core.company_golden": golden,
        "staging.registry_companies": registry,
        "staging.registry_candidates": candidates,
        "staging.contacts": contacts,
        "core.contact_crosswalk": contact_xw,
        "core.contact_golden": contact_golden,
        "staging.code_labels": [
            {"nomenclature": "naf", "code": "62.01Z", "label": "Programmation informatique"},
            {"nomenclature": "naf", "code": "70.22Z", "label": "Conseil pour les affaires et autres conseils de gestion"},
            {"nomenclature": "naf", "code": "63.11Z", "label": "Traitement de données, hébergement et activités connexes"},
            {"nomenclature": "legal_form", "code": "5710", "label": "SAS, société par actions simplifiée"},
        ],
        "staging.lifecycle_events": [
            {"source_system": "hubspot", "contact_id": "ct6", "stage": "lead", "entered_at": "2026-01-05"},
            {"source_system": "hubspot", "contact_id": "ct6", "stage": "sql", "entered_at": "2026-02-10"},
        ],
        "staging.cfg_settings": [{"key": k, "value": v} for k, v in settings.items()],
        "staging.cfg_segments": [{"tier": t, "planned_share": s, "sort_order": i}
                                 for i, (t, s) in enumerate([("Or", 0.45), ("Argent", 0.35), ("Bronze", 0.2),
                                                             ("unknown", None)])],
    }


def _build(wh: Warehouse) -> None:
    load_world(wh, world())
    build_models(wh, schemas=("core",), only=MODELS)


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    warehouse = Warehouse(f"duckdb:///{tmp_path_factory.mktemp('enrich') / 'w.duckdb'}")
    _build(warehouse)
    yield warehouse
    warehouse.dispose()


def _by(wh, table, *key):
    return {tuple(r[k] for k in key) if len(key) > 1 else r[key[0]]: r for r in wh.query(f"select * from core.{table}")}


# -- registry match ------------------------------------------------------------------------------------------------

def test_siren_match_enriches(wh):
    m = _by(wh, "company_registry_match", "company_key")["E1"]
    assert (m["siren"], m["match_method"], m["match_score"], m["needs_review"], m["enrichment_status"]) == \
        (S1, "siren", 1.0, False, "enriched")
    c = _by(wh, "dim_company", "company_key")["E1"]
    assert c["legal_name"] == "ATELIER LUMEN"
    assert c["legal_form"] == "SAS, société par actions simplifiée"
    assert (c["category"], c["creation_date"], c["is_ceased"], c["ceased_on"]) == ("PME", dt.date(2010, 5, 4), False, None)
    assert c["head_office_address"] == "12 RUE DE LA PAIX"
    assert c["registry_fetched_at"] == dt.datetime(2026, 3, 2, tzinfo=UTC)
    assert c["enrichment_status"] == "enriched"


def test_siret_only_matches_its_siren(wh):
    m = _by(wh, "company_registry_match", "company_key")["E5"]
    assert (m["siren"], m["match_method"], m["enrichment_status"]) == (S5, "siret", "enriched")
    assert _by(wh, "dim_company", "company_key")["E5"]["legal_name"] == "CINQ CONSEIL"
    # no headcount typed in the CRM: the registry's band fills it, no conflict (an empty CRM value once read as
    # band 53, 10,000 employees or more, and won)
    head = _by(wh, "company_enrichment", "company_key", "field")[("E5", "headcount_band")]
    assert (head["crm_value"], head["golden_value"], head["golden_source"], head["conflict"]) == (None, "03", "registry", False)
    assert _by(wh, "dim_company", "company_key")["E5"]["headcount_band"] == "03"


def test_typed_crm_value_is_kept_and_the_conflict_shown(wh):
    e = _by(wh, "company_enrichment", "company_key", "field")
    naf = e[("E1", "naf_code")]
    assert (naf["crm_value"], naf["registry_value"], naf["golden_value"], naf["golden_source"], naf["conflict"]) == \
        ("7022Z", "62.01Z", "70.22Z", "crm", True)
    assert naf["crm_record"] == "hubspot:c1" and naf["registry_fetched_at"] == dt.datetime(2026, 3, 2, tzinfo=UTC)
    head = e[("E1", "headcount_band")]  # 45 people typed = band 12 (20-49); the registry says 21 (50-99)
    assert (head["crm_value"], head["registry_value"], head["golden_value"], head["golden_source"], head["conflict"]) == \
        ("45", "21", "12", "crm", True)
    # the registry's label describes its own code, not the typed one: the golden label is the typed code's
    label = e[("E1", "naf_label")]
    assert (label["registry_value"], label["golden_value"], label["golden_source"], label["conflict"]) == \
        ("Programmation informatique", "Conseil pour les affaires et autres conseils de gestion", "crm", False)
    # same value in another spelling is no conflict; the typed spelling is kept
    city = e[("E1", "city")]
    assert (city["golden_value"], city["golden_source"], city["conflict"]) == ("Paris", "crm", False)
    assert e[("E1", "address")]["conflict"] is False
    # a field the CRM lacks is filled from the registry
    legal = e[("E1", "legal_name")]
    assert (legal["crm_value"], legal["golden_value"], legal["golden_source"]) == (None, "ATELIER LUMEN", "registry")
    c = _by(wh, "dim_company", "company_key")["E1"]
    assert (c["naf_code"], c["naf_label"], c["headcount_band"], c["city"]) == \
        ("70.22Z", "Conseil pour les affaires et autres conseils de gestion", "12", "Paris")
    conflicts = {(r["company_key"], r["field"]) for r in wh.query("select * from core.company_enrichment where conflict")}
    assert conflicts == {("E1", "naf_code"), ("E1", "headcount_band"), ("E6", "siren")}


def test_typed_siren_failing_its_check_digit_is_never_the_golden_one(wh):
    # E6's latest record holds a typo of its SIREN (Luhn fails): the registry matched the valid one (older record)
    m = _by(wh, "company_registry_match", "company_key")["E6"]
    assert (m["siren"], m["enrichment_status"]) == (S6, "enriched")
    siren = _by(wh, "company_enrichment", "company_key", "field")[("E6", "siren")]
    assert (siren["crm_value"], siren["registry_value"], siren["golden_value"], siren["golden_source"],
            siren["conflict"], siren["crm_record"]) == (S6_TYPO, S6, S6, "registry", True, "hubspot:c6")
    c = _by(wh, "dim_company", "company_key")["E6"]
    assert (c["siren"], c["legal_name"], c["naf_code"], c["naf_label"]) == \
        (S6, "TRANSPORTS SIX", "49.41A", "Transports routiers de fret")


def test_naf_label_of_a_typed_code_without_registry_match(wh):
    # A1: no identifier, no registry match; the typed code's label comes from the code labels
    label = _by(wh, "company_enrichment", "company_key", "field")[("A1", "naf_label")]
    assert (label["crm_value"], label["registry_value"], label["golden_value"], label["golden_source"]) == \
        (None, None, "Traitement de données, hébergement et activités connexes", "crm")
    c = _by(wh, "dim_company", "company_key")["A1"]
    assert (c["naf_code"], c["naf_label"]) == ("63.11Z", "Traitement de données, hébergement et activités connexes")
    fields = _by(wh, "company_enrichment", "company_key", "field")
    assert ("A2", "naf_code") in fields and ("A2", "naf_label") not in fields


def test_candidate_below_the_gate_is_listed_for_review_and_not_enriched(wh):
    m = _by(wh, "company_registry_match", "company_key")["E2"]
    assert (m["siren"], m["match_method"], m["needs_review"], m["review_reason"], m["enrichment_status"]) == \
        (None, "none", True, "below_gate", "needs_review")
    assert (m["candidate_siren"], round(m["match_score"], 4)) == (S2, 0.6667)  # 2 words shared of 3
    c = _by(wh, "dim_company", "company_key")["E2"]
    assert (c["legal_name"], c["naf_code"], c["is_ceased"], c["siren"], c["enrichment_status"]) == \
        (None, None, None, None, "needs_review")
    assert not wh.query("select * from core.company_enrichment where company_key = 'E2' and registry_value is not null")


def test_name_and_postcode_match_above_the_gate_enriches(wh):
    m = _by(wh, "company_registry_match", "company_key")["E3"]
    # "Dupont & Fils SARL" ~ "DUPONT ET FILS" (legal forms and 'et' left out), same postcode: 1.0
    assert (m["siren"], m["match_method"], m["match_score"], m["candidates"], m["needs_review"]) == \
        (S3, "name_postcode", 1.0, 2, False)
    assert _by(wh, "dim_company", "company_key")["E3"]["is_ceased"] is True


def test_invalid_siren_without_candidate_needs_review(wh):
    m = _by(wh, "company_registry_match", "company_key")["E4"]
    assert (m["siren"], m["needs_review"], m["review_reason"]) == (None, True, "invalid_identifier")
    # a SIREN that fails its check digit is never dim_company's; company_enrichment keeps it visible (and the
    # quality rule company_siren_valid lists it)
    c = _by(wh, "dim_company", "company_key")["E4"]
    assert (c["siren"], c["legal_name"]) == (None, None)
    siren = _by(wh, "company_enrichment", "company_key", "field")[("E4", "siren")]
    assert (siren["crm_value"], siren["golden_value"], siren["golden_source"]) == ("123456789", None, None)


def test_company_without_identifier_or_candidate(wh):
    m = _by(wh, "company_registry_match", "company_key")["A1"]
    assert (m["match_method"], m["needs_review"], m["enrichment_status"]) == ("none", False, "no_identifier")


# -- contacts likely gone ------------------------------------------------------------------------------------------

def test_contact_flags(wh):
    f = _by(wh, "contact_flags", "source_system", "contact_id")
    flags = {k[1]: (r["likely_gone"], r["hard_bounce"], r["company_ceased"], r["email_domain_not_company"])
             for k, r in f.items() if k[1] in ("ct1", "ct2", "ct3", "ct4", "ct5", "ct9")}
    assert flags == {
        "ct1": (False, False, False, False),
        "ct2": (True, True, False, False),  # hard bounce
        "ct3": (False, False, False, False),  # gmail.com: free mail never flags
        "ct4": (True, False, False, True),  # oldname.fr is not atelier-lumen.fr
        "ct5": (True, False, True, False),  # Dupont et Fils ceased
        "ct9": (False, False, False, False),  # a sub-domain of the company's
    }
    assert f[("hubspot", "ct2")]["reasons"] == "hard bounce on bob@atelier-lumen.fr"
    assert f[("hubspot", "ct4")]["reasons"] == "e-mail domain oldname.fr is not the company's (atelier-lumen.fr)"
    assert f[("hubspot", "ct5")]["reasons"] == "company ceased in the registry on 2025-06-30"
    assert f[("hubspot", "ct1")]["reasons"] is None
    assert ("hubspot", "ct12") not in f  # deleted in the CRM


# -- lead scores ---------------------------------------------------------------------------------------------------

def test_lead_score_sums_points_and_hands_off_at_the_threshold(wh):
    s = _by(wh, "lead_scores", "contact_key")
    at, below = s["hubspot:ct6"], s["hubspot:ct7"]
    assert (at["score"], at["handoff_threshold"], at["qualifies_for_handoff"]) == (60.0, 60.0, True)
    assert (below["score"], below["qualifies_for_handoff"]) == (59.0, False)
    assert (at["handed_off"], at["handed_off_at"], at["handoff_pending"]) == \
        (True, dt.datetime(2026, 2, 10, tzinfo=UTC), False)
    # one person with a HubSpot and a Koban record: 30 views + 2 forms = 70, not yet handed to sales
    p8 = s["P8"]
    assert (p8["records"], p8["score"], p8["qualifies_for_handoff"], p8["handed_off"], p8["handoff_pending"]) == \
        (2, 70.0, True, False, True)
    assert (p8["company_key"], p8["handed_off_at"]) == ("B1", None)
    assert s["hubspot:ct1"]["score"] == 50.0


def test_a_person_likely_gone_is_kept_off_the_hand_off_list(tmp_path):
    # jo (ct11, 100 points) bounced: handing him to sales would reach nobody. Hugo (P8) bounced on his HubSpot
    # record only: his Koban record still reaches him, he stays on the list.
    w = world()
    w["staging.contacts"] = [{**c, "hard_bounced": True} if c["contact_id"] in ("ct11", "ct8") else c
                             for c in w["staging.contacts"]]
    warehouse = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    try:
        load_world(warehouse, w)
        build_models(warehouse, schemas=("core",), only=MODELS)
        s = _by(warehouse, "lead_scores", "contact_key")
    finally:
        warehouse.dispose()
    jo, hugo = s["hubspot:ct11"], s["P8"]
    assert (jo["qualifies_for_handoff"], jo["handed_off"], jo["handoff_pending"], jo["likely_gone"]) == \
        (True, False, False, True)
    assert jo["likely_gone_reasons"] == "hard bounce on jo@or-un.fr"
    assert (hugo["handoff_pending"], hugo["likely_gone"], hugo["likely_gone_reasons"]) == (True, False, None)


def test_lead_score_email_is_the_golden_one(wh):
    # P14's freshest record has no e-mail: the golden e-mail (core.contact_golden: the next freshest record's),
    # not the greatest of the others (old.lea@...)
    assert _by(wh, "lead_scores", "contact_key")["P14"]["email"] == "lea@or-un.fr"
    assert _by(wh, "lead_scores", "contact_key")["hubspot:ct1"]["email"] == "alice@atelier-lumen.fr"


# -- tier suggestions ----------------------------------------------------------------------------------------------

def test_bronze_account_engaging_like_argent_gets_a_suggestion(wh):
    rows = wh.query("select * from core.tier_suggestions")
    # Argent median engagement = (59 + 60) / 2 = 59.5; B1 engages 70 -> Argent. Or has one company (< 2 peers):
    # no Or suggestion. B2 (5) and the unknown companies stay.
    assert [(r["company_key"], r["current_tier"], r["suggested_tier"]) for r in rows] == [("B1", "Bronze", "Argent")]
    r = rows[0]
    assert (r["engagement_per_contact"], r["tier_engagement_median"], r["contacts"]) == (70.0, 59.5, 1)
    # Bronze engages 70 and 5: its upper quartile 53.75 is below Argent's median, so engagement tells them apart
    assert r["suggested_on"] == "engagement" and r["tier_median_won_amount_home"] is None
    assert r["reason"] == ("engages like Argent: engagement per contact 70.0 (1 contact) >= Argent median 59.5 "
                           "(2 companies), above the Bronze upper quartile 53.8")


def test_no_suggestion_on_a_figure_that_does_not_tell_the_tiers_apart(tmp_path):
    # B2 now engages 65 like B1's 70: Bronze's upper quartile (68.75) is above Argent's median (59.5). Argent accounts
    # engage no more than Bronze ones, so B1 reaching Argent's median says nothing about its tier.
    w = world()
    w["staging.contacts"] = [{**c, "page_views": 65} if c["contact_id"] == "ct10" else c for c in w["staging.contacts"]]
    warehouse = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    try:
        load_world(warehouse, w)
        build_models(warehouse, schemas=("core",), only=MODELS)
        assert warehouse.query("select company_key from core.tier_suggestions") == []
    finally:
        warehouse.dispose()


#: sales_model.yaml's tiers by headcount range, first in file order wins
_HEADCOUNT_TIERS = (
    {"tier": "Or", "planned_share": 0.45, "sort_order": 0, "min_headcount": 250},
    {"tier": "Argent", "planned_share": 0.35, "sort_order": 1, "min_headcount": 50, "max_headcount": 249},
    {"tier": "Bronze", "planned_share": 0.2, "sort_order": 2, "min_headcount": 0, "max_headcount": 49},
    {"tier": "unknown", "planned_share": None, "sort_order": 3},
)


def test_a_suggestion_on_won_deals_shows_only_the_figures_that_back_it(tmp_path):
    """The QA case: a Bronze account suggested Argent on its won deals, engaging below Argent's median. The row once
    showed Argent's engagement median beside it as if engagement backed the suggestion. Now: suggested_on says
    won_deals, only the won-deal median is shown, the reason counts the won deals and says engagement was not
    compared (and never claims the account engages like Argent)."""
    w = world()
    w["staging.cfg_segments"] = [dict(r) for r in _HEADCOUNT_TIERS]
    # B1 engages 5 + 2 forms = 45, below Argent's 59.5; B2 engages 100, so Bronze's upper quartile (72.5) is above
    # Argent's median: engagement does not tell the tiers apart and is not compared
    views = {"ct8": 5, "ct10": 100}
    w["staging.contacts"] = [{**c, "page_views": views.get(c["contact_id"], c["page_views"])}
                             for c in w["staging.contacts"]]

    def won(deal_id, company_id, amount):
        return {"source_system": "hubspot", "deal_id": deal_id, "company_id": company_id, "is_won": True,
                "is_closed": True, "amount_home": amount, "pipeline_id": "default", "stage_id": "closedwon",
                "is_deleted": False}

    # Bronze (B1, B2, E1 with 45 staff, E5 by its registry band) median won deals 90000, 1000, 2000, 3000: upper
    # quartile 24750; Argent's median 35000 stands above it, and B1's one won deal of 90000 reaches it
    w["staging.deals"] = [won("d1", "b1", 90000), won("d2", "b2", 1000), won("d3", "c1", 2000),
                          won("d4", "c5", 3000), won("d5", "a1", 30000), won("d6", "a2", 40000)]
    warehouse = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    try:
        load_world(warehouse, w)
        build_models(warehouse, schemas=("core",), only=MODELS)
        rows = warehouse.query("select * from core.tier_suggestions")
    finally:
        warehouse.dispose()
    assert [(r["company_key"], r["suggested_tier"], r["suggested_on"]) for r in rows] == [("B1", "Argent", "won_deals")]
    r = rows[0]
    assert (r["engagement_per_contact"], r["tier_engagement_median"]) == (45.0, None)
    assert (r["won_deals"], r["median_won_amount_home"], r["tier_median_won_amount_home"]) == (1, 90000, 35000)
    assert "engages like" not in r["reason"]
    assert r["reason"] == ("buys like Argent: median won deal 90000 (1 won deal) >= Argent median 35000 "
                           "(2 companies), above the Bronze upper quartile 24750; engagement not compared: "
                           "Argent median 59.5 is not above the Bronze upper quartile 72.5")


# -- contracts -----------------------------------------------------------------------------------------------------

def test_tables_match_the_dictionary_and_keys_are_unique(wh):
    d = load_dictionary()["core"]
    for name in MODELS:
        assert wh.columns("core", name) == list(d[name]["columns"]), name
        key = ", ".join(d[name]["primary_key"])
        assert wh.query(f"select {key}, count(*) as n from core.{name} group by {key} having count(*) > 1") == [], name


def _sql_list(path: Path, cte: str) -> set[str]:
    text = path.read_text()
    block = text[text.index(f"{cte} as ("):]
    block = block[:block.index(") as ")]
    return set(re.findall(r"\('([^']+)'\)", block))


def test_sql_word_lists_follow_normalize():
    assert _sql_list(CORE_DIR / "contact_flags.sql", "free_mail") == set(normalize.FREE_MAIL_DOMAINS)
    folded = {t for t in (normalize._fold(x) for x in normalize.LEGAL_FORM_TOKENS) if " " not in t}
    assert _sql_list(CORE_DIR / "company_registry_match.sql", "legal_forms") == folded


# -- PostgreSQL ----------------------------------------------------------------------------------------------------

def _norm(v):
    if isinstance(v, dt.datetime):
        return v.astimezone(UTC)
    if isinstance(v, float):
        return round(v, 6)
    return v


@pytest.mark.postgres
def test_postgres_gives_the_same_tables(wh, postgres_warehouse):
    _build(postgres_warehouse)
    d = load_dictionary()["core"]
    for name in MODELS:
        cols = list(d[name]["columns"])
        got = {}
        for side, w in (("duckdb", wh), ("postgres", postgres_warehouse)):
            rows = [tuple(_norm(r[c]) for c in cols) for r in w.query(f"select {', '.join(cols)} from core.{name}")]
            got[side] = sorted(rows, key=lambda r: tuple((x is None, str(x)) for x in r))
        assert got["duckdb"], f"core.{name} is empty: the comparison would prove nothing"
        assert got["duckdb"] == got["postgres"], name


# -- segment rule ---------------------------------------------------------------------------------------------------

def test_segment_by_tag_else_headcount_typed_else_registry_band(tmp_path):
    """sales_model.yaml: a company is in a tier when tagged with it, else when its headcount is in the tier's range
    (first tier in file order); the headcount typed in the CRM wins over the registry band's lower bound."""
    w = world()
    w["staging.cfg_segments"] = [dict(r) for r in _HEADCOUNT_TIERS]
    for row in w["staging.registry_companies"]:
        if row["siren"] == S5:
            row["headcount_band"] = "32"  # 250-499 employees
    for row in w["staging.companies"]:
        if row["company_id"] == "b2":
            row["headcount"] = 1000  # tagged Bronze: the tag wins
    wh = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    load_world(wh, w)
    build_models(wh, schemas=("core",), only=["company_tier"])
    got = {k: (r["tier"], r["tier_rule"], r["headcount"]) for k, r in _by(wh, "company_tier", "company_key").items()}
    wh.dispose()
    assert got["E1"] == ("Bronze", "headcount_crm", 45)  # typed 45; the registry's band 21 (50-99) is not used
    assert got["E5"] == ("Or", "headcount_registry", 250)  # nothing typed: band 32 reads as 250
    assert got["B2"] == ("Bronze", "tag", 1000)
    assert got["A1"] == ("Argent", "tag", None)
    assert got["E2"] == ("unknown", "none", None)  # no tag, no headcount, no registry match: shown, not dropped


def test_deleted_crm_record_is_no_company_and_billing_only_company_has_its_address(wh):
    companies = _by(wh, "dim_company", "company_key")
    assert "hubspot:c7" not in companies  # was a second "Atelier Lumen", carrying E1's SIREN
    assert companies["E1"]["siren"] == S1
    # the contact of the deleted record: no company rather than a company key nothing else knows
    assert _by(wh, "lead_scores", "contact_key")["hubspot:ct13"]["company_key"] is None
    assert {r["company_key"] for r in wh.query("select * from core.contact_flags where contact_key = 'hubspot:ct13'")} \
        <= {None}
    e9 = companies["E9"]
    assert (e9["name"], e9["domain"], e9["postcode"], e9["city"]) == ("Cabinet Noël", "cabinet-noel.fr", "66000", "Perpignan")
