"""Quality rules on hand-made staging rows in a real warehouse (DuckDB file; one test also on PostgreSQL)."""
from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from transforms.quality.quarantine import quarantine
from transforms.quality.rules import build_rules
from transforms.quality.scorecard import build_scorecard
from transforms.quality.violations import evaluate_rules
from transforms.sales_model import SAMPLE_PATH, load_sales_model
from warehouse.connection import Warehouse
from warehouse.dictionary import load_dictionary

AS_OF = dt.datetime(2026, 10, 31, 18, tzinfo=dt.timezone.utc)
MODEL = load_sales_model(SAMPLE_PATH)
RULES = {r.name: r for r in build_rules(MODEL, as_of=AS_OF)}

STAGES = [("appointmentscheduled", 0, False, False), ("qualifiedtobuy", 1, False, False),
          ("presentationscheduled", 2, False, False), ("decisionmakerboughtin", 3, False, False),
          ("contractsent", 4, False, False), ("closedwon", 5, True, True), ("closedlost", 6, True, False)]


def make_staging(wh: Warehouse) -> None:
    """Empty staging tables with the dictionary's columns and types (one transaction: fast)."""
    wh.ensure_schemas()
    script = []
    for table, doc in load_dictionary()["staging"].items():
        cols = ", ".join(f"{c} {'double precision' if d['type'] == 'double' else d['type']}"
                         for c, d in doc["columns"].items())
        script += [f"drop table if exists staging.{table}", f"create table staging.{table} ({cols})"]
    script += [f"insert into staging.pipeline_stages (source_system, pipeline_id, stage_id, stage_order, is_closed, "
               f"is_won) values ('hubspot', 'default', '{sid}', {order}, {closed}, {won})"
               for sid, order, closed, won in STAGES]
    wh.execute_script(";\n".join(script))


def insert(wh: Warehouse, table: str, *rows: dict) -> None:
    import sqlalchemy as sa

    with wh.connect() as conn:
        for row in rows:
            row = {"source_system": "hubspot", **row}
            conn.execute(sa.text(f"insert into staging.{table} ({', '.join(row)}) "
                                 f"values ({', '.join(':' + k for k in row)})"), row)


@pytest.fixture
def wh(tmp_path):
    w = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    make_staging(w)
    yield w
    w.dispose()


def failing(wh: Warehouse, rule: str, run_at: dt.datetime = AS_OF) -> dict[str, str]:
    """Run one rule; {record_id: offending_value} of its open violations."""
    evaluate_rules(wh, [RULES[rule]], run_at=run_at)
    rows = wh.query("select record_id, offending_value from quality.violations "
                    "where rule = :r and resolved_at is null", {"r": rule})
    return {r["record_id"]: r["offending_value"] for r in rows}


# -- mandatory fields -----------------------------------------------------------------------------------------
def test_mandatory_all_fields_null_empty_and_whitespace_fail(wh):
    insert(wh, "deals",
           {"deal_id": "ok", "pipeline_id": "default", "stage_id": "qualifiedtobuy"},
           {"deal_id": "null", "pipeline_id": "default", "stage_id": None},
           {"deal_id": "empty", "pipeline_id": "", "stage_id": "qualifiedtobuy"},
           {"deal_id": "blank", "pipeline_id": "default", "stage_id": "   "},
           {"deal_id": "deleted", "pipeline_id": None, "stage_id": None, "is_deleted": True})
    got = failing(wh, "deal_stage")
    assert got == {"null": "missing: stage_id", "empty": "missing: pipeline_id", "blank": "missing: stage_id"}


def test_mandatory_any_of_contact_email_or_phone(wh):
    insert(wh, "contacts",
           {"contact_id": "email", "email": "a@b.fr"},
           {"contact_id": "mobile", "mobile_phone": "06 12 34 56 78"},
           {"contact_id": "none", "email": " ", "phone": ""})
    assert set(failing(wh, "contact_reachable")) == {"none"}


def test_conditional_rules_past_proposal_and_won(wh):
    insert(wh, "deals",
           {"deal_id": "early", "stage_id": "qualifiedtobuy", "amount": None},
           {"deal_id": "at_proposal", "stage_id": "presentationscheduled", "amount": None},
           {"deal_id": "past", "stage_id": "contractsent", "amount": None},
           {"deal_id": "past_ok", "stage_id": "decisionmakerboughtin", "amount": 0},
           {"deal_id": "lost", "stage_id": "closedlost", "amount": None, "is_closed": True, "is_won": False},
           {"deal_id": "won", "stage_id": "closedwon", "amount": 10, "is_won": True, "is_closed": True},
           {"deal_id": "won_ok", "stage_id": "closedwon", "is_won": True, "is_closed": True,
            "closed_at": dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc)})
    assert set(failing(wh, "deal_amount_past_proposal")) == {"past", "won_ok"}
    assert set(failing(wh, "deal_won_close_date")) == {"won"}
    res = wh.query("select checked, failing from quality.rule_results where rule = 'deal_amount_past_proposal'")
    assert res == [{"checked": 4, "failing": 2}]  # past, past_ok, won, won_ok (lost deals are excluded)


def test_past_proposal_rule_covers_the_koban_pipeline(wh):
    """`stage_past` named a stage of one pipeline (HubSpot's presentationscheduled), so the rule only looked at the
    stages after it in that pipeline: Koban deals past their proposal step (DECIDEUR, CONTRAT, WON) were never
    checked. The sample names the proposal stage of each pipeline."""
    insert(wh, "deals",
           {"deal_id": "hs_past", "pipeline_id": "default", "stage_id": "contractsent", "amount": None},
           *({"source_system": "koban", "deal_id": f"kb_{stage.lower()}", "pipeline_id": "VENTE", "stage_id": stage,
              "amount": None, "is_closed": stage in ("WON", "LOST", "SLEEP"), "is_won": stage == "WON"}
             for stage in ("RDV", "QUALIF", "PRESENTATION", "DECIDEUR", "CONTRAT", "WON", "LOST", "SLEEP")),
           {"source_system": "koban", "deal_id": "kb_ok", "pipeline_id": "VENTE", "stage_id": "CONTRAT",
            "amount": 1200},
           # another process with a stage of the same id: the rule names none of its stages, so it is not covered
           {"source_system": "koban", "deal_id": "kb_other_process", "pipeline_id": "RENOUV", "stage_id": "CONTRAT",
            "amount": None})
    assert set(failing(wh, "deal_amount_past_proposal")) == {"hs_past", "kb_decideur", "kb_contrat", "kb_won"}
    res = wh.query("select checked, failing from quality.rule_results where rule = 'deal_amount_past_proposal'")
    assert res == [{"checked": 5, "failing": 4}]


def build_company_tier(wh: Warehouse, crosswalk: tuple[tuple[str, str, str], ...] = ()) -> None:
    """core.company_tier (and what it reads) from the staging rows and the sample sales model, as the pipeline
    builds it; `crosswalk`: (source_system, source_id, entity_key) rows of core.company_crosswalk."""
    from transforms.build import build_models

    frames = MODEL.config_frames()
    for name in ("cfg_settings", "cfg_segments"):
        wh.write_frame("staging", name, frames[name])
    cols = ", ".join(f"{c} {d['type']}" for c, d in load_dictionary()["core"]["company_crosswalk"]["columns"].items())
    wh.execute(f"create table core.company_crosswalk ({cols})")
    for source_system, source_id, entity_key in crosswalk:
        wh.execute("insert into core.company_crosswalk (source_system, source_id, entity_key) values (:s, :i, :e)",
                   {"s": source_system, "i": source_id, "e": entity_key})
    build_models(wh, schemas=("core",), only=["company_tier"])


def test_deal_segment_from_company_tag_or_headcount(wh):
    insert(wh, "companies",
           {"company_id": "big", "headcount": 400},
           {"company_id": "tagged", "tier": "Bronze"},
           {"company_id": "blank", "tier": "  ", "headcount": None})
    insert(wh, "deals",
           {"deal_id": "d1", "company_id": "big"}, {"deal_id": "d2", "company_id": "tagged"},
           {"deal_id": "d3", "company_id": "blank"}, {"deal_id": "d4", "company_id": None})
    build_company_tier(wh)
    assert set(failing(wh, "deal_segment")) == {"d3", "d4"}


def test_segment_rule_and_company_tier_agree_a_tag_wins_over_headcount(wh):
    """METRICS.md: a company's segment is its Or / Argent / Bronze tag, or (untagged) the sales model's headcount
    rule. The deal_segment rule once had its own copy of the rule, in which the headcount ranges came first: a
    company tagged Bronze with 998 staff was Or for the quality rules and Bronze in core.company_tier (and every
    mart). Both now read core.company_tier; a rule scoped on `segment` sees the same tier."""
    from transforms.quality.rules import mandatory_rule
    from transforms.sales_model import Condition, MandatoryRule

    insert(wh, "companies",
           {"company_id": "dumont", "name": "Groupe Dumont SA", "tier": "Bronze", "headcount": 998},
           {"company_id": "mid_bronze", "tier": "bronze", "headcount": 120},
           {"company_id": "untagged", "headcount": 998},
           # two CRM records of one company: resolved like core.fct_deals, through the crosswalk
           {"source_system": "koban", "company_id": "k1", "tier": "Argent", "headcount": 300,
            "updated_at": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)},
           {"company_id": "h1", "headcount": 300, "updated_at": dt.datetime(2026, 2, 1, tzinfo=dt.timezone.utc)})
    insert(wh, "deals",
           {"deal_id": "d_dumont", "company_id": "dumont"}, {"deal_id": "d_mid", "company_id": "mid_bronze"},
           {"deal_id": "d_untagged", "company_id": "untagged"}, {"deal_id": "d_h1", "company_id": "h1"})
    build_company_tier(wh, crosswalk=(("koban", "k1", "E1"), ("hubspot", "h1", "E1")))
    tiers = {r["company_key"]: r["tier"] for r in wh.query("select company_key, tier from core.company_tier")}
    assert tiers == {"hubspot:dumont": "Bronze", "hubspot:mid_bronze": "Bronze", "hubspot:untagged": "Or",
                     "E1": "Argent"}

    def deals_in(tier: str) -> set[str]:
        # a deal missing its amount fails a rule limited to the deals of `tier` exactly when the rule sees that tier
        rule = mandatory_rule(MODEL, "deal", MandatoryRule(rule=f"probe_{tier.lower()}", fields=["amount"],
                                                           when=Condition(field="segment", equals=tier)))
        evaluate_rules(wh, [rule], run_at=AS_OF)
        return {r["record_id"] for r in wh.query(
            "select record_id from quality.violations where rule = :r and resolved_at is null", {"r": rule.name})}

    assert deals_in("Bronze") == {"d_dumont", "d_mid"}
    assert deals_in("Or") == {"d_untagged"}
    assert deals_in("Argent") == {"d_h1"}
    probe = mandatory_rule(MODEL, "deal", MandatoryRule(rule="probe", fields=["amount"],
                                                        when=Condition(field="segment", equals="Or")))
    assert {("core", "company_tier"), ("core", "company_crosswalk")} <= probe.reads  # the check waits for them


# -- validity -----------------------------------------------------------------------------------------------
def test_email_and_phone_syntax(wh):
    insert(wh, "contacts",
           {"contact_id": "good", "email": "Jeanne.Dupont@example.fr", "phone": "01 42 68 53 00"},
           {"contact_id": "bad_email", "email": "jeanne@@example"},
           {"contact_id": "intl", "phone": "0033 6 12 34 56 78", "mobile_phone": "+41 44 668 18 00"},
           # Réunion, dialled as the French do: valid under its own country code
           {"contact_id": "reunion", "phone": "02 62 46 89 05", "mobile_phone": "0692 12 34 56"},
           {"contact_id": "bad_mobile", "phone": "+33612345678", "mobile_phone": "12"},
           {"contact_id": "empty", "email": "", "phone": None})
    assert set(failing(wh, "contact_email_valid")) == {"bad_email"}
    phones = failing(wh, "contact_phone_valid")
    assert set(phones) == {"bad_mobile"} and phones["bad_mobile"].startswith("12 (")


def test_siren_siret_vat_checksums(wh):
    insert(wh, "companies",
           {"company_id": "ok", "siren": "732829320", "siret": "73282932000074", "vat_number": "FR44732829320"},
           {"company_id": "laposte", "siret": "35600000049837"},
           {"company_id": "bad", "siren": "732829321", "siret": "73282932000075", "vat_number": "FR45732829320"},
           {"company_id": "digits_vat", "vat_number": "44732829320"})
    assert set(failing(wh, "company_siren_valid")) == {"bad"}
    assert set(failing(wh, "company_siret_valid")) == {"bad"}
    assert set(failing(wh, "company_vat_valid")) == {"bad"}


def test_amount_probability_and_dates(wh):
    utc = dt.timezone.utc
    insert(wh, "deals",
           {"deal_id": "ok", "amount": 0, "probability": 0.4, "created_at": dt.datetime(2026, 3, 1, 10, tzinfo=utc),
            "close_date": dt.datetime(2026, 3, 1, 0, tzinfo=utc)},
           {"deal_id": "neg", "amount": -5, "probability": 1},
           {"deal_id": "pct", "probability": 60},
           {"deal_id": "below", "probability": -0.1},
           {"deal_id": "far", "close_date": dt.datetime(2205, 1, 1, tzinfo=utc)},
           {"deal_id": "old", "created_at": dt.datetime(1970, 1, 1, tzinfo=utc)},
           {"deal_id": "before", "created_at": dt.datetime(2026, 3, 2, tzinfo=utc),
            "close_date": dt.datetime(2026, 3, 1, tzinfo=utc)})
    assert set(failing(wh, "deal_amount_not_negative")) == {"neg"}
    assert failing(wh, "deal_currency_known") == {}  # no currency given: read as the home currency
    probs = failing(wh, "deal_probability_in_range")
    assert set(probs) == {"pct", "below"} and "percentage" in probs["pct"]
    assert set(failing(wh, "deal_dates_in_range")) == {"far", "old"}
    # same-day close (midnight) after a morning creation is fine; the day before is not
    assert set(failing(wh, "deal_close_not_before_create")) == {"before"}


# -- consistency --------------------------------------------------------------------------------------------
def _ts(day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2026, 4, day, hour, tzinfo=dt.timezone.utc)


def test_stage_order_probability_and_closed_probability(wh):
    insert(wh, "deals",
           {"deal_id": "fwd", "pipeline_id": "default", "stage_id": "contractsent", "probability": 0.9},
           {"deal_id": "back", "pipeline_id": "default", "stage_id": "qualifiedtobuy", "probability": 0.4},
           {"deal_id": "reopen", "pipeline_id": "default", "stage_id": "qualifiedtobuy"},
           {"deal_id": "won1", "pipeline_id": "default", "stage_id": "closedwon", "is_closed": True, "is_won": True,
            "probability": 0.9},
           {"deal_id": "lost0", "pipeline_id": "default", "stage_id": "closedlost", "is_closed": True,
            "is_won": False, "probability": 0})
    insert(wh, "deal_stage_events",
           {"deal_id": "fwd", "stage_id": "appointmentscheduled", "entered_at": _ts(1)},
           {"deal_id": "fwd", "stage_id": "presentationscheduled", "entered_at": _ts(2)},
           {"deal_id": "fwd", "stage_id": "contractsent", "entered_at": _ts(3)},
           {"deal_id": "back", "stage_id": "appointmentscheduled", "entered_at": _ts(1)},
           {"deal_id": "back", "stage_id": "contractsent", "entered_at": _ts(2)},
           {"deal_id": "back", "stage_id": "qualifiedtobuy", "entered_at": _ts(3)},
           {"deal_id": "reopen", "stage_id": "contractsent", "entered_at": _ts(1)},
           {"deal_id": "reopen", "stage_id": "closedlost", "entered_at": _ts(2)},
           {"deal_id": "reopen", "stage_id": "qualifiedtobuy", "entered_at": _ts(3)})
    insert(wh, "deal_property_history",
           # fwd: 20 % -> 0.6 -> 0.5 while advancing to contractsent (percent and string forms mixed)
           {"deal_id": "fwd", "property": "probability", "value": "20", "changed_at": _ts(1)},
           {"deal_id": "fwd", "property": "probability", "value": "0.6", "changed_at": _ts(2)},
           {"deal_id": "fwd", "property": "probability", "value": " 0.5 ", "changed_at": _ts(3)},
           {"deal_id": "fwd", "property": "probability", "value": "n/a", "changed_at": _ts(4)},
           # back: probability falls, but the stage went back, not forward
           {"deal_id": "back", "property": "probability", "value": "0.9", "changed_at": _ts(2)},
           {"deal_id": "back", "property": "probability", "value": "0.4", "changed_at": _ts(3)})
    assert set(failing(wh, "deal_stage_dates_in_order")) == {"back"}
    fell = failing(wh, "deal_probability_falls_while_stage_advances")
    assert set(fell) == {"fwd"} and "presentationscheduled 0.6 -> contractsent 0.5" in fell["fwd"]
    assert set(failing(wh, "deal_closed_probability")) == {"won1"}


def test_activity_links_exist(wh):
    insert(wh, "companies", {"company_id": "c1"}, {"company_id": "gone", "is_deleted": True},
           {"company_id": "kgone", "is_deleted": True, "source_system": "koban"})
    insert(wh, "deals", {"deal_id": "d1"})
    insert(wh, "activities",
           {"activity_id": "a_ok", "company_id": "c1", "deal_id": "d1"},
           {"activity_id": "a_missing", "deal_id": "d404"},
           # HubSpot unassociates an activity from a record deleted there: our copy's stale link is no violation
           {"activity_id": "a_archived_hubspot", "company_id": "gone"},
           # Koban keeps the link to an Obsolete record: the activity points at a record that is gone
           {"activity_id": "a_archived", "company_id": "kgone", "source_system": "koban"},
           {"activity_id": "a_other_source", "company_id": "c1", "source_system": "koban"},
           {"activity_id": "a_none"})
    got = failing(wh, "activity_links_exist")
    assert got == {"a_missing": "deal_id=d404 (not found)", "a_archived": "company_id=kgone (archived)",
                   "a_other_source": "company_id=c1 (not found)"}


def test_identity_rules_stripe_and_ceased(wh):
    wh.execute("create table core.company_crosswalk (source_system text, source_id text, entity_key text, "
               "rule text, match_probability double precision, model_version text)")
    wh.execute("insert into core.company_crosswalk values ('hubspot','h1','E1','same_siren',1,'v1'), "
               "('stripe','cus_1','E1','stripe_metadata',1,'v1'), ('stripe','cus_2','E2','singleton',1,'v1')")
    assert set(failing(wh, "stripe_customer_linked")) == {"cus_2"}
    wh.execute("create table core.dim_company (company_key text, name text, siren text, is_ceased boolean)")
    wh.execute("create table core.fct_deals (source_system text, deal_id text, company_key text, is_closed boolean)")
    wh.execute("insert into core.dim_company values ('E1','Alpha','732829320',true), ('E2','Beta',null,false)")
    wh.execute("insert into core.fct_deals values ('hubspot','d1','E1',false), ('hubspot','d2','E1',true), "
               "('hubspot','d3','E2',false)")
    insert(wh, "deals", {"deal_id": "d1", "owner_id": "o7"})
    assert set(failing(wh, "ceased_company_in_open_deal")) == {"d1"}
    assert wh.scalar("select owner_id from quality.violations where rule = 'ceased_company_in_open_deal'") == "o7"


def test_missing_table_skips_and_keeps_violations(wh):
    wh.execute("drop table staging.activities")
    run = evaluate_rules(wh, [RULES["activity_owner"]], run_at=AS_OF)
    assert run.outcomes[0].status == "skipped" and "staging.activities" in run.outcomes[0].reason


# -- violations history, blocking, scorecard ------------------------------------------------------------------
def test_violation_lifecycle_first_last_seen_resolved_reopened(wh):
    insert(wh, "deals", {"deal_id": "d1", "owner_id": "o1"}, {"deal_id": "d2", "owner_id": "o1", "amount": 5})
    t1, t2, t3, t4 = (AS_OF + dt.timedelta(hours=h) for h in (0, 1, 2, 3))
    failing(wh, "deal_amount", t1)
    failing(wh, "deal_amount", t2)
    v = wh.query("select * from quality.violations where rule = 'deal_amount'")
    assert len(v) == 1 and v[0]["record_id"] == "d1"
    assert v[0]["first_seen"] == t1 and v[0]["last_seen"] == t2 and v[0]["resolved_at"] is None

    wh.execute("update staging.deals set amount = 100 where deal_id = 'd1'")  # fixed in the CRM
    assert failing(wh, "deal_amount", t3) == {}
    v = wh.query("select * from quality.violations where rule = 'deal_amount'")
    assert len(v) == 1 and v[0]["resolved_at"] == t3 and v[0]["last_seen"] == t2  # kept, marked resolved

    wh.execute("update staging.deals set amount = null where deal_id = 'd1'")  # broken again
    assert set(failing(wh, "deal_amount", t4)) == {"d1"}
    v = wh.query("select * from quality.violations where rule = 'deal_amount'")
    assert len(v) == 1 and v[0]["resolved_at"] is None and v[0]["reopened_at"] == t4 and v[0]["first_seen"] == t1


def test_error_rule_blocks_and_says_where_to_look(wh):
    insert(wh, "deals", {"deal_id": "d1", "probability": 60}, {"deal_id": "d2", "probability": 0.5, "amount": -1})
    run = evaluate_rules(wh, [RULES["deal_probability_in_range"], RULES["deal_amount_not_negative"],
                              RULES["deal_amount"]], run_at=AS_OF)
    assert {o.rule for o in run.blocking} == {"deal_probability_in_range", "deal_amount_not_negative"}
    msg = run.blocking_message()
    assert "deal_probability_in_range [error] on staging.deals: 1 of 2 deal records fail" in msg
    assert "quality.violations where rule = 'deal_probability_in_range'" in msg
    ok = evaluate_rules(wh, [RULES["deal_amount"]], run_at=AS_OF)  # warn only: nothing blocks
    assert ok.blocking_message() is None


def test_scorecard_by_owner_matches_hand_count(wh):
    insert(wh, "owners", {"owner_id": "o1", "full_name": "Camille Martin"}, {"owner_id": "o2", "full_name": "Julien Bernard"})
    insert(wh, "contacts",
           {"contact_id": "1", "owner_id": "o1", "lifecycle_stage": "lead"},
           {"contact_id": "2", "owner_id": "o1", "lifecycle_stage": ""},
           {"contact_id": "3", "owner_id": "o1", "lifecycle_stage": None},
           {"contact_id": "4", "owner_id": "o1", "lifecycle_stage": "customer"},
           {"contact_id": "5", "owner_id": "o2", "lifecycle_stage": "lead"},
           {"contact_id": "6", "owner_id": None, "lifecycle_stage": None})
    day1 = AS_OF
    evaluate_rules(wh, [RULES["contact_lifecycle_stage"]], run_at=day1 - dt.timedelta(hours=2))  # superseded
    evaluate_rules(wh, [RULES["contact_lifecycle_stage"]], run_at=day1)
    wh.execute("update staging.contacts set lifecycle_stage = 'lead' where contact_id = '2'")
    evaluate_rules(wh, [RULES["contact_lifecycle_stage"]], run_at=day1 + dt.timedelta(days=1))
    build_scorecard(wh)  # as the quality step does (core.rep_crosswalk not built: each owner its own rep)
    rows = wh.query("select day, rep_key, owner_name, records_checked, records_failing, "
                    "cast(completeness_pct as double precision) as pct, "
                    "cast(previous_completeness_pct as double precision) as prev "
                    "from marts.data_quality_by_owner order by day, rep_key")
    d1, d2 = day1.date(), day1.date() + dt.timedelta(days=1)
    assert rows == [
        {"day": d1, "rep_key": "hubspot:o1", "owner_name": "Camille Martin", "records_checked": 4, "records_failing": 2,
         "pct": 50.0, "prev": None},
        {"day": d1, "rep_key": "hubspot:o2", "owner_name": "Julien Bernard", "records_checked": 1, "records_failing": 0,
         "pct": 100.0, "prev": None},
        {"day": d1, "rep_key": "unassigned", "owner_name": "unassigned", "records_checked": 1,
         "records_failing": 1, "pct": 0.0, "prev": None},
        {"day": d2, "rep_key": "hubspot:o1", "owner_name": "Camille Martin", "records_checked": 4, "records_failing": 1,
         "pct": 75.0, "prev": 50.0},
        {"day": d2, "rep_key": "hubspot:o2", "owner_name": "Julien Bernard", "records_checked": 1, "records_failing": 0,
         "pct": 100.0, "prev": 100.0},
        {"day": d2, "rep_key": "unassigned", "owner_name": "unassigned", "records_checked": 1,
         "records_failing": 1, "pct": 0.0, "prev": 0.0},
    ]
    assert set(wh.columns("marts", "data_quality_by_owner")) == set(
        load_dictionary()["marts"]["data_quality_by_owner"]["columns"])


def test_quality_tables_match_the_dictionary(wh):
    insert(wh, "deals", {"deal_id": "d1"})
    evaluate_rules(wh, list(RULES.values()), run_at=AS_OF)
    quarantine(wh, [{"source": "hubspot", "object": "contacts", "record_id": "9", "reason": "createdate 'hier'",
                     "payload": {"id": "9", "createdate": "hier"}}])
    docs = load_dictionary()["quality"]
    for table in ("violations", "rule_results", "rule_results_by_owner", "value_checks", "quarantine"):
        assert wh.columns("quality", table) == list(docs[table]["columns"]), table


def test_quarantine_keeps_first_seen_and_payload(wh):
    row = {"source": "hubspot", "object": "contacts", "record_id": 9, "reason": "createdate is not a date",
           "payload": {"id": "9", "createdate": "hier"}}
    t1, t2 = AS_OF, AS_OF + dt.timedelta(days=1)
    assert quarantine(wh, [row], seen_at=t1) == 1
    quarantine(wh, [row], seen_at=t2)
    (q,) = wh.query("select * from quality.quarantine")
    assert q["record_id"] == "9" and json.loads(q["payload"]) == {"id": "9", "createdate": "hier"}
    assert q["first_seen_at"] == t1 and q["seen_at"] == t2


# -- Dagster pieces (the coordinator wires them into Definitions) -----------------------------------------------
def test_check_factory_blocks_on_error_rules(wh):
    import dagster as dg

    from pipelines.quality_checks import build_quality_checks, freshness_policies

    class WarehouseStandIn(dg.ConfigurableResource):
        url: str

        def get(self) -> Warehouse:
            return Warehouse(self.url)

    checks = build_quality_checks(MODEL, as_of=AS_OF)
    specs = {spec.name: spec for c in checks for spec in c.check_specs}
    assert len(specs) == len(RULES)
    assert specs["quality_deal_probability_in_range"].blocking is True
    assert specs["quality_deal_amount"].blocking is False
    assert specs["quality_deal_amount"].asset_key == dg.AssetKey(["staging", "deals"])

    insert(wh, "deals", {"deal_id": "d1", "probability": 60, "owner_id": "o1"})
    insert(wh, "owners", {"owner_id": "o1", "full_name": "Camille Martin"})

    @dg.asset(key=["staging", "deals"])
    def deals():
        return None

    @dg.asset(deps=[deals], key=["marts", "downstream"])
    def downstream():
        return None

    deal_checks = [c for c in checks if any(s.name in ("quality_deal_probability_in_range", "quality_deal_amount")
                                            for s in c.check_specs)]
    result = dg.materialize([deals, downstream, *deal_checks],
                            resources={"warehouse": WarehouseStandIn(url=wh.url)}, raise_on_error=False)
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evals["quality_deal_probability_in_range"].passed is False
    assert evals["quality_deal_probability_in_range"].metadata["failing"].value == 1
    assert evals["quality_deal_probability_in_range"].metadata["sample_record_ids"].value == ["hubspot:d1"]
    # the sample says what is wrong and whose record it is, by name
    samples = evals["quality_deal_probability_in_range"].metadata["samples"].value
    assert "| hubspot:d1 | 60" in samples and "Camille Martin |" in samples
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey(["marts", "downstream"]) not in materialized  # the blocking check stopped it
    assert set(freshness_policies(MODEL)) >= {"hubspot", "stripe", "registry"}


# -- PostgreSQL -------------------------------------------------------------------------------------------------
@pytest.mark.postgres
def test_same_rules_same_results_on_postgres(tmp_path):
    import sqlalchemy as sa

    admin = sa.create_engine("postgresql://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    name = f"crm_etl_quality_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.exec_driver_sql(f'create database "{name}"')
    pg = Warehouse(f"postgresql://postgres@127.0.0.1:5432/{name}")
    duck = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    try:
        results = []
        for w in (duck, pg):
            make_staging(w)
            insert(w, "contacts", {"contact_id": "1", "email": "x@@y", "owner_id": "o1"},
                   {"contact_id": "2", "email": "ok@example.fr", "phone": "12", "owner_id": "o2"})
            insert(w, "deals", {"deal_id": "d1", "probability": 60, "stage_id": "contractsent", "owner_id": "o1"},
                   {"deal_id": "d2", "probability": 0.2, "stage_id": "closedwon", "is_won": True, "is_closed": True})
            insert(w, "activities", {"activity_id": "a1", "deal_id": "nope", "owner_id": "o1"})
            run = evaluate_rules(w, list(RULES.values()), run_at=AS_OF)
            results.append((
                sorted((o.rule, o.status, o.checked, o.failing) for o in run.outcomes),
                w.query("select rule, record_id, owner_id from quality.violations order by rule, record_id"),
            ))
            build_scorecard(w)
        assert results[0] == results[1]
        assert any(r["rule"] == "deal_won_close_date" for r in results[1][1])
    finally:
        pg.dispose()
        duck.dispose()
        with admin.connect() as c:
            c.exec_driver_sql(f'drop database if exists "{name}" with (force)')
        admin.dispose()


def test_currency_without_a_rate(wh):
    insert(wh, "deals", {"deal_id": "eur", "amount": 10, "currency": "eur"}, {"deal_id": "chf", "amount": 10, "currency": "CHF"},
           {"deal_id": "xof", "amount": 10, "currency": "XOF"}, {"deal_id": "no_amount", "currency": "XOF"})
    got = failing(wh, "deal_currency_known")
    assert set(got) == {"xof"} and "fx_rates" in got["xof"]


def test_a_deal_migrated_to_another_crm_is_checked_once_as_its_new_record(wh):
    # kd1 was migrated from Koban to HubSpot as d1 (d1 names it in imported_from): core counts d1 only, so the
    # rules check d1 only; the old Koban copy (missing its stage) is neither a violation nor a checked record
    insert(wh, "deals",
           {"source_system": "koban", "deal_id": "kd1", "pipeline_id": "default", "stage_id": None},
           {"deal_id": "d1", "pipeline_id": "default", "stage_id": "qualifiedtobuy", "imported_from": "koban:kd1"},
           {"source_system": "koban", "deal_id": "kd2", "pipeline_id": "default", "stage_id": None})
    assert set(failing(wh, "deal_stage")) == {"kd2"}
    res = wh.query("select checked, failing from quality.rule_results where rule = 'deal_stage'")
    assert res == [{"checked": 2, "failing": 1}]  # d1 and kd2


def test_a_skipped_rule_shows_as_a_warning_not_a_pass_and_never_blocks():
    import dagster as dg

    from pipelines.quality_checks import _result_fields
    from transforms.quality.violations import RuleOutcome

    skipped = RuleOutcome(rule="deal_probability_in_range", object="deal", severity="error", table="staging.deals",
                          status="skipped", reason="staging.deals not loaded yet")
    fields = _result_fields(skipped)
    # nothing was checked: not green in the UI, and a warning (an ERROR failure would block the marts)
    assert fields["passed"] is False and fields["severity"] == dg.AssetCheckSeverity.WARN
    assert "not loaded yet" in fields["metadata"]["reason"] and "skipped" in fields["description"]
