"""The marts on a small hand-made world (tests/marts_world.py): every expected figure below is worked out by hand
from the rows written there, not by running the same SQL."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest

from marts_world import load_world, world
from transforms.build import build_models
from warehouse.connection import Warehouse

#: The marts this test file covers (data_quality_by_owner belongs to the quality suite).
MY_MARTS = [
    "mart_win_rate", "mart_cac", "mart_effort_per_target", "mart_marketing_to_sales", "mart_average_basket",
    "mart_pipeline_daily", "mart_weighted_pipeline", "mart_stage_velocity", "mart_forecast_accuracy",
    "mart_rep_scorecard", "mart_flash",
]


class Reader:
    """Read-only access to the built DuckDB file through one connection (Warehouse opens the file per query,
    which is right for a pipeline and slow for a hundred assertions)."""

    def __init__(self, path):
        import duckdb

        self.con = duckdb.connect(str(path), read_only=True)

    def query(self, sql, params=None):
        cur = self.con.execute(re.sub(r"(?<=[\s(=,]):(\w+)", r"$\1", sql), params or {})
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def scalar(self, sql, params=None):
        return self.con.execute(sql, params or {}).fetchone()[0]

    def columns(self, schema, table):
        return [r["column_name"] for r in self.query(
            "select column_name from information_schema.columns where table_schema = :s and table_name = :t "
            "order by ordinal_position", {"s": schema, "t": table})]


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    path = tmp_path_factory.mktemp("marts") / "w.duckdb"
    warehouse = Warehouse(f"duckdb:///{path}")
    load_world(warehouse, world())
    build_models(warehouse, only=MY_MARTS + ["dim_rep"])
    warehouse.dispose()
    reader = Reader(path)
    yield reader
    reader.con.close()


def rows(wh, sql, **params):
    return wh.query(sql, params)


def one(wh, sql, **params):
    found = rows(wh, sql, **params)
    assert len(found) == 1, found
    return found[0]


# -- core ---------------------------------------------------------------------------------------------------------

def test_fct_deals_resolves_company_rep_team_and_final_close(wh):
    deals = {r["deal_key"]: r for r in rows(wh, "select * from core.fct_deals")}
    assert set(deals) == {"hubspot:d1", "hubspot:d2", "hubspot:d3", "hubspot:d4", "hubspot:d5", "hubspot:d6", "koban:kd7", "hubspot:d8", "hubspot:d9"}
    # koban kd9 was migrated to hubspot d9: only the new record
    # koban k1 has alice's email: same rep as hubspot o1; its company kc1 is E1 (tier Or from the hubspot record)
    assert deals["koban:kd7"]["rep_key"] == "hubspot:o1"
    assert (deals["koban:kd7"]["company_key"], deals["koban:kd7"]["tier"]) == ("E1", "Or")
    assert deals["hubspot:d3"]["tier"] == "Argent"  # tagged 'argent' in the CRM
    assert deals["hubspot:d5"]["tier"] == "unknown"
    # alice changed team on 2026-02-15: d1 (January) is North's, d2 (March) South's
    assert deals["hubspot:d1"]["team_name"] == "North"
    assert deals["hubspot:d2"]["team_name"] == "South"
    # d4 was lost on 2026-01-15 then reopened and won: judged on its final close
    assert deals["hubspot:d4"]["is_won"] and str(deals["hubspot:d4"]["closed_at"])[:10] == "2026-02-20"
    # proposal: d5 never got there; d6 went back from negotiation to proposal and still counts
    assert not deals["hubspot:d5"]["reached_proposal"]
    assert deals["hubspot:d6"]["reached_proposal"] and not deals["hubspot:d6"]["is_closed"]


def test_dim_rep_one_row_per_person(wh):
    reps = {r["rep_key"]: r for r in rows(wh, "select * from core.dim_rep")}
    assert set(reps) == {"hubspot:o1", "hubspot:o2"}
    assert reps["hubspot:o1"]["email"] == "alice@acme.fr"
    assert reps["hubspot:o1"]["team_name"] == "South"


def test_dim_company_golden_name_and_a_customer_won_twice_acquired_once(wh):
    comp = {r["company_key"]: r for r in rows(wh, "select * from core.dim_company")}
    assert set(comp) == {"E1", "E2", "E3", "E4", "E5"}
    # the golden name where identity chose one, else the most recent CRM record's
    assert comp["E5"]["name"] == "Fromagerie Petit & Fils" and comp["E1"]["name"]
    # E1: won 2026-01-20 (d1), 2026-01-28 (kd7), 2026-03-05 (d2): acquired at the first
    assert str(comp["E1"]["acquired_at"])[:10] == "2026-01-20"
    assert str(comp["E2"]["acquired_at"])[:10] == "2026-02-20"
    assert comp["E3"]["acquired_at"] is None
    assert comp["E1"]["tier"] == "Or" and comp["E4"]["tier"] == "unknown"


# -- mart_win_rate ------------------------------------------------------------------------------------------------

WIN_RATE = "select * from marts.mart_win_rate where month = cast(:m as date) and team_name = :team and rep_key = :rep and tier = :tier"


def test_win_rate_company_january(wh):
    # closed in January: d1 won 10000, kd7 won 2100 (CHF 2000), d3 lost 8000. d4's January loss was reopened.
    r = one(wh, WIN_RATE, m="2026-01-01", team="all", rep="all", tier="all")
    assert (r["deals_won"], r["deals_lost"], r["deals_closed"]) == (2, 1, 3)
    assert r["win_rate_count"] == pytest.approx(0.666667)
    assert r["amount_won_home"] == Decimal("12100.00") and r["amount_lost_home"] == Decimal("8000.00")
    assert r["win_rate_value"] == pytest.approx(0.60199)  # 12100 / 20100
    assert (r["deals_reached_proposal"], r["deals_won_after_proposal"]) == (3, 2)
    assert r["proposal_success_rate"] == pytest.approx(0.666667)
    assert r["quarter"].isoformat() == "2026-01-01" and r["year"] == 2026


def test_win_rate_rep_changed_team(wh):
    jan = one(wh, WIN_RATE, m="2026-01-01", team="North", rep="hubspot:o1", tier="Or")
    assert (jan["deals_won"], jan["deals_closed"], jan["win_rate_count"]) == (2, 2, 1.0)
    assert jan["amount_won_home"] == Decimal("12100.00")
    feb = one(wh, WIN_RATE, m="2026-02-01", team="North", rep="hubspot:o1", tier="all")  # d5 lost on 02-10
    assert (feb["deals_won"], feb["deals_lost"], feb["win_rate_value"]) == (0, 1, 0.0)
    mar = one(wh, WIN_RATE, m="2026-03-01", team="South", rep="hubspot:o1", tier="all")
    assert (mar["deals_won"], mar["amount_won_home"]) == (1, Decimal("5000.00"))
    assert not rows(wh, "select * from marts.mart_win_rate where month = date '2026-03-01' and team_name = 'North'")


def test_win_rate_reopened_deal_and_proposal(wh):
    team = one(wh, WIN_RATE, m="2026-02-01", team="North", rep="all", tier="all")
    # February, North: d4 won 6000 (reopened after the January loss), d5 lost 3000 (no proposal)
    assert (team["deals_won"], team["deals_lost"]) == (1, 1)
    assert team["win_rate_value"] == pytest.approx(0.666667)
    assert (team["deals_reached_proposal"], team["deals_won_after_proposal"], team["proposal_success_rate"]) == (1, 1, 1.0)
    unknown = one(wh, WIN_RATE, m="2026-02-01", team="all", rep="all", tier="unknown")
    assert (unknown["deals_closed"], unknown["proposal_success_rate"]) == (1, None)  # 0 reached proposal: null, not 0


def test_win_rate_grain_is_unique_and_open_deals_excluded(wh):
    dup = rows(wh, "select month, team_name, rep_key, tier, count(*) n from marts.mart_win_rate "
                   "group by 1, 2, 3, 4 having count(*) > 1")
    assert dup == []
    total = wh.scalar("select sum(deals_closed) from marts.mart_win_rate where team_name = 'all' and tier = 'all'")
    assert total == 7  # 9 deals (kd9 superseded by d9), d6 and d8 open
    dec = one(wh, WIN_RATE, m="2025-12-01", team="all", rep="all", tier="all")
    assert (dec["deals_won"], dec["amount_won_home"]) == (1, Decimal("700.00"))  # the migrated deal once


# -- dictionary ---------------------------------------------------------------------------------------------------

def test_built_tables_match_the_dictionary(wh):
    from warehouse.dictionary import load_dictionary

    d = load_dictionary()
    for schema, names in (("marts", MY_MARTS), ("core", ["fct_deals", "fct_activities", "fct_invoices", "dim_rep",
                                                         "dim_company", "as_of", "rep_crosswalk", "company_tier", "company_channel",
                                                         "fct_acquisition_effort", "fct_deal_stages",
                                                         "deal_property_periods", "stage_calibration", "deal_state_periods"])):
        for name in names:
            assert wh.columns(schema, name) == list(d[schema][name]["columns"]), f"{schema}.{name}"
    for name in MY_MARTS:
        doc = d["marts"][name]
        assert doc.get("example") and doc.get("grain") and doc.get("primary_key"), name
        key = ", ".join(doc["primary_key"])
        assert rows(wh, f"select {key}, count(*) from marts.{name} group by {key} having count(*) > 1") == [], name


# -- core activities / invoices -----------------------------------------------------------------------------------

def test_fct_activities_hours_default_duration_and_team_of_the_day(wh):
    acts = {r["activity_key"]: r for r in rows(wh, "select * from core.fct_activities")}
    assert "hubspot:a9" not in acts  # deleted
    assert (acts["hubspot:a2"]["hours"], acts["hubspot:a2"]["duration_logged"]) == (1.5, False)  # default 90 min
    assert (acts["hubspot:a1"]["hours"], acts["hubspot:a1"]["duration_logged"]) == (0.5, True)
    assert acts["hubspot:a6"]["company_key"] == "E2"  # from its deal d4
    assert acts["hubspot:a5"]["team_name"] == "North" and acts["hubspot:a10"]["team_name"] == "South"
    assert acts["koban:a8"]["rep_key"] == "hubspot:o1"


def test_fct_invoices_currency_and_links(wh):
    inv = {r["invoice_key"]: r for r in rows(wh, "select * from core.fct_invoices")}
    assert "stripe:i7" not in inv
    assert inv["stripe:i3"]["amount_paid_home"] == Decimal("900.00") and inv["stripe:i3"]["currency"] == "USD"
    assert inv["stripe:i6"]["company_key"] is None and inv["stripe:i6"]["tier"] == "unknown"
    assert str(one(wh, "select acquired_at from core.dim_company where company_key = 'E4'")["acquired_at"])[:10] == "2026-03-15"


def test_fct_invoices_revenue_excludes_tax_and_credit_notes(wh):
    inv = {r["invoice_key"]: r for r in rows(wh, "select * from core.fct_invoices")}

    def money(key):
        r = inv[f"stripe:{key}"]
        return tuple(r[c] for c in ("amount_paid_home", "amount_excl_tax_home", "credited_excl_tax_home", "revenue_home"))

    D = Decimal
    # cash received keeps the VAT; revenue is the lines excluding tax minus the issued credit notes excluding tax
    assert money("i1") == (D("1200.00"), D("1000.00"), D("200.00"), D("800.00"))
    assert money("i2") == (D("600.00"), D("500.00"), D("0.00"), D("500.00"))  # 600 + proration -100
    # USD: the credit note's USD 100 excl. tax is 90 EUR; the voided one (USD 300) does not count
    assert money("i3") == (D("900.00"), D("900.00"), D("90.00"), D("810.00"))
    assert money("i4") == (D("240.00"), D("200.00"), D("0.00"), D("200.00"))  # its credit note was deleted
    assert money("i5") == (D("0.00"), D("300.00"), D("0.00"), D("0.00"))  # open: billed, no revenue yet
    assert money("i8") == (D("360.00"), D("300.00"), D("300.00"), D("0.00"))  # credited in full
    assert str(inv["stripe:i8"]["last_credited_at"])[:10] == "2026-03-10" and inv["stripe:i2"]["last_credited_at"] is None


# -- mart_cac -----------------------------------------------------------------------------------------------------

CAC = "select * from marts.mart_cac where month = cast(:m as date) and channel = :ch and tier = :tier"


def test_cac_allocated_spend_sales_cost_and_value(wh):
    r = one(wh, CAC, m="2026-01-01", ch="PAID_SEARCH", tier="Or")
    # untagged 1200 all to Or (the only PAID_SEARCH customer in January is E1, Or)
    assert r["marketing_spend_home"] == Decimal("1200.00")
    assert r["spend_allocation_method"] == "allocated_by_new_customers"
    # pre-acquisition effort on E1: a1 0.5 h, a2 1.5 h (default), koban a8 0.5 h at alice's January 60/h; a3 is after
    assert r["sales_hours"] == pytest.approx(2.5) and r["sales_cost_home"] == Decimal("150.00")
    assert r["new_customers"] == 1  # E1, won three times, counted once
    assert r["cac_home"] == Decimal("1350.00")
    assert (r["cac_marketing_only_home"], r["cac_sales_only_home"]) == (Decimal("1200.00"), Decimal("150.00"))
    assert r["channel_group"] == "marketing"
    # first "year" = 1 month in this world, [01-20, 02-20): revenue excluding tax, net of credit notes, of i1 (1000
    # - 200 credited in February, still counted against i1) + i2 (600 - 100 proration) + i8 (300, credited in full)
    assert r["cohort_mature"] and r["first_year_revenue_home"] == Decimal("1300.00")  # paid incl. tax: 2160
    assert r["revenue_to_cac"] == pytest.approx(0.962963) and r["payback_months"] == pytest.approx(1.038462)


def test_cac_zero_new_customers_is_null_not_an_error(wh):
    tagged = one(wh, CAC, m="2026-01-01", ch="PAID_SEARCH", tier="Argent")
    assert (tagged["marketing_spend_home"], tagged["spend_allocation_method"]) == (Decimal("300.00"), "tagged")
    assert tagged["new_customers"] == 0 and tagged["cac_home"] is None and tagged["first_year_revenue_home"] is None
    email = one(wh, CAC, m="2026-02-01", ch="EMAIL_MARKETING", tier="unknown")
    assert email["spend_allocation_method"] == "unallocated_no_new_customers"
    assert email["marketing_spend_home"] == Decimal("500.00") and email["cac_home"] is None
    # February's untagged USD 100 = 90 EUR: no PAID_SEARCH customer in February, but the channel's customers within
    # the allocation window (12 months either side by default) are E1 (Or, January): all to Or
    feb = one(wh, CAC, m="2026-02-01", ch="PAID_SEARCH", tier="Or")
    assert (feb["marketing_spend_home"], feb["spend_allocation_method"]) == (Decimal("90.00"), "allocated_by_new_customers")
    assert feb["new_customers"] == 0 and feb["cac_home"] is None
    paid = one(wh, CAC, m="2026-02-01", ch="PAID_SEARCH", tier="unknown")
    # E3 effort: a5 0.75 h at alice's February 80/h (sales model file), a10 0.25 h on 02-20 at the cost file's
    # 70/h from 02-15 (the file wins over the sales model's row of the same day)
    assert paid["marketing_spend_home"] == Decimal("0.00") and paid["sales_cost_home"] == Decimal("77.50")
    assert paid["acquisition_cost_home"] == Decimal("77.50")


def test_cac_bob_default_cost_and_immature_cohort(wh):
    feb = one(wh, CAC, m="2026-02-01", ch="OFFLINE", tier="Argent")
    # a6 demo 1 h (default) at bob's 65/h from the cost file (no sales model row; before February he costs the
    # default 50/h); E2 acquired 2026-02-20 through d4 (OFFLINE)
    assert (feb["sales_cost_home"], feb["new_customers"], feb["cac_home"]) == (Decimal("65.00"), 1, Decimal("65.00"))
    jan = one(wh, CAC, m="2026-01-01", ch="OFFLINE", tier="Argent")
    assert jan["sales_cost_home"] == Decimal("50.00")  # a4 call 1 h at the default
    assert feb["first_year_revenue_home"] == Decimal("810.00")  # i3 USD 1000 (no VAT) - USD 100 credited = 900 - 90
    mar = one(wh, CAC, m="2026-03-01", ch="UNKNOWN", tier="unknown")  # E4 via its first paid invoice
    assert mar["new_customers"] == 1 and not mar["cohort_mature"] and mar["first_year_revenue_home"] is None
    assert wh.scalar("select sum(new_customers) from marts.mart_cac") == 4  # E1, E2, E4 and E5 (December 2025)


# -- mart_effort_per_target -----------------------------------------------------------------------------------------

EFFORT = "select * from marts.mart_effort_per_target where month = cast(:m as date) and team_name = :team and rep_key = :rep and tier = :tier"


def test_effort_rep_against_result(wh):
    r = one(wh, EFFORT, m="2026-01-01", team="North", rep="hubspot:o1", tier="Or")
    assert (r["calls"], r["meetings_in_person"], r["meetings_phone"], r["emails"]) == (1, 1, 1, 1)
    assert (r["meetings"], r["activities"], r["companies_worked"]) == (2, 4, 1)
    assert r["hours"] == pytest.approx(2.6)
    assert (r["deals_won"], r["revenue_won_home"]) == (2, Decimal("12100.00"))
    assert r["meetings_per_won_deal"] == 1.0 and r["hours_per_won_deal"] == pytest.approx(1.3)
    assert r["activities_per_won_deal"] == 2.0
    assert (r["effort_share"], r["planned_share"], r["effort_flag"]) == (1.0, 0.5, "over-invested")


def test_effort_team_rows(wh):
    orr = one(wh, EFFORT, m="2026-01-01", team="North", rep="all", tier="Or")
    arg = one(wh, EFFORT, m="2026-01-01", team="North", rep="all", tier="Argent")
    assert orr["effort_share"] == pytest.approx(0.722222) and orr["effort_flag"] == "over-invested"  # 2.6 / 3.6
    assert arg["effort_share"] == pytest.approx(0.277778) and arg["effort_flag"] == "on plan"  # vs 0.3 +- 0.1
    assert arg["deals_won"] == 0 and arg["hours_per_won_deal"] is None
    demo = one(wh, EFFORT, m="2026-02-01", team="North", rep="hubspot:o2", tier="Argent")
    assert (demo["demos"], demo["deals_worked"], demo["deals_won"], demo["meetings_per_won_deal"]) == (1, 1, 1, 1.0)
    # a7 (June, after the as-of) is not counted anywhere
    assert not rows(wh, "select * from marts.mart_effort_per_target where month > date '2026-04-01'")


# -- mart_marketing_to_sales ----------------------------------------------------------------------------------------

FUNNEL = "select * from marts.mart_marketing_to_sales where cohort_month = cast(:m as date) and source_channel = :ch and tier = :tier"


def test_funnel_cohort_person_counted_once(wh):
    r = one(wh, FUNNEL, m="2026-01-01", ch="PAID_SEARCH", tier="Or")
    # P1 (hubspot ct1 + koban kct1): one lead, created 01-03, all the way to customer
    assert (r["leads"], r["reached_mql"], r["reached_sql"], r["reached_opportunity"], r["reached_customer"]) == (1, 1, 1, 1, 1)
    assert (r["median_days_lead_to_mql"], r["median_days_mql_to_sql"], r["median_days_opportunity_to_customer"]) == (5.0, 5.0, 2.0)
    assert r["channel_group"] == "marketing" and r["cohort_mature"]
    assert r["opportunities_created"] == 2  # d1 and kd7
    assert (r["month_marketing_opportunities"], r["month_opportunities"], r["month_marketing_opportunity_share"]) == (3, 6, 0.5)
    assert wh.scalar("select sum(leads) from marts.mart_marketing_to_sales") == 4


def test_funnel_skipped_stage_sales_source_and_maturity(wh):
    p2 = one(wh, FUNNEL, m="2026-01-01", ch="OFFLINE", tier="Argent")
    assert p2["channel_group"] == "sales"  # OFFLINE + prospecting
    assert (p2["reached_mql"], p2["reached_sql"], p2["reached_opportunity"], p2["reached_customer"]) == (1, 1, 1, 0)
    assert p2["median_days_lead_to_mql"] is None and p2["median_days_sql_to_opportunity"] == 7.0
    p3 = one(wh, FUNNEL, m="2026-01-01", ch="PAID_SEARCH", tier="unknown")
    assert (p3["leads"], p3["rate_lead_to_mql"], p3["rate_mql_to_sql"], p3["median_days_lead_to_mql"]) == (1, 1.0, 0.0, 10.0)
    p4 = one(wh, FUNNEL, m="2026-02-01", ch="UNKNOWN", tier="unknown")
    assert p4["leads"] == 1 and not p4["cohort_mature"]  # 2026-03-01 + 75 days > as-of


# -- mart_average_basket --------------------------------------------------------------------------------------------

BASKET = "select * from marts.mart_average_basket where month = cast(:m as date) and account_type = :at and tier = :tier"


def test_average_basket_period_and_lifetime(wh):
    # revenue excluding tax, net of credit notes (core.fct_invoices.revenue_home), by month of payment
    mar = one(wh, BASKET, m="2026-03-01", at="all", tier="all")
    # March: i3 810 (E2: USD 1000 = 900, minus USD 100 credited), i4 200 (E4), i6 100 (unlinked); i7 deleted
    assert (mar["invoices_paid"], mar["paying_customers"], mar["revenue_home"]) == (3, 2, Decimal("1110.00"))
    assert (mar["average_basket_home"], mar["revenue_per_customer_home"]) == (Decimal("370.00"), Decimal("555.00"))
    # + January i1 800 (its February credit note counts in January) + February i2 500; i8 credited in full is no sale
    assert (mar["lifetime_invoices"], mar["lifetime_customers"], mar["lifetime_amount_home"]) == (5, 3, Decimal("2410.00"))
    assert (mar["lifetime_average_basket_home"], mar["lifetime_revenue_per_customer_home"]) == (Decimal("482.00"), Decimal("803.33"))
    jan = one(wh, BASKET, m="2026-01-01", at="all", tier="all")
    assert (jan["invoices_paid"], jan["revenue_home"], jan["average_basket_home"]) == (1, Decimal("800.00"), Decimal("800.00"))
    feb = one(wh, BASKET, m="2026-02-01", at="customer", tier="Or")
    # i2 500 (600 - 100 proration); i8 (paid 360 incl. tax, credited in full in March) counts nowhere
    assert (feb["invoices_paid"], feb["revenue_home"], feb["average_basket_home"]) == (1, Decimal("500.00"), Decimal("500.00"))
    assert (feb["lifetime_invoices"], feb["lifetime_average_basket_home"], feb["lifetime_revenue_per_customer_home"]) == (2, Decimal("650.00"), Decimal("1300.00"))
    unk = one(wh, BASKET, m="2026-03-01", at="unknown", tier="unknown")
    # i4 200 + i6 100 excluding tax (paid 240 + 120)
    assert (unk["invoices_paid"], unk["paying_customers"], unk["average_basket_home"]) == (2, 1, Decimal("150.00"))


# -- mart_pipeline_daily / mart_weighted_pipeline --------------------------------------------------------------------

PIPE = "select * from marts.mart_pipeline_daily where snapshot_date = cast(:d as date) and deal_key = :k"


def test_pipeline_daily_reconstructs_past_days(wh):
    d1 = one(wh, PIPE, d="2026-01-15", k="hubspot:d1")
    assert (d1["stage_id"], d1["amount_home"], d1["probability"]) == ("proposal", Decimal("10000.00"), 0.5)
    assert (d1["weighted_amount_home"], d1["team_name"], d1["days_in_stage"]) == (Decimal("5000.00"), "North", 5)
    assert (d1["iso_year"], d1["iso_week"], str(d1["month"])) == (2026, 3, "2026-01-01")
    assert {r["deal_key"] for r in rows(wh, "select deal_key from marts.mart_pipeline_daily where snapshot_date = date '2026-01-15'")} \
        == {"hubspot:d1", "hubspot:d3", "koban:kd7"}  # d4 lost that morning
    assert one(wh, PIPE, d="2026-01-15", k="koban:kd7")["weighted_amount_home"] == Decimal("1260.00")  # 2100 x 0.6
    # d4 reopened on 02-01: back in the pipeline
    assert one(wh, PIPE, d="2026-02-05", k="hubspot:d4")["stage_id"] == "qual"


def test_pipeline_daily_property_history_stale_and_consistency(wh):
    nego = one(wh, PIPE, d="2026-02-10", k="hubspot:d6")
    assert (nego["stage_id"], nego["amount_home"], nego["probability"], str(nego["expected_close_date"])) == ("nego", Decimal("3000.00"), 0.8, "2026-04-15")
    assert not nego["probability_inconsistent"]
    fell = one(wh, PIPE, d="2026-02-11", k="hubspot:d6")  # advanced to nego, probability fell 0.2 -> 0.1
    assert fell["probability"] == 0.1 and fell["probability_inconsistent"]
    late = one(wh, PIPE, d="2026-03-31", k="hubspot:d6")  # moved back to proposal on 02-20
    assert (late["stage_id"], late["amount_home"], late["probability"], str(late["expected_close_date"])) == ("proposal", Decimal("4000.00"), 0.5, "2026-05-15")
    assert (late["days_in_stage"], late["is_stale"], late["probability_inconsistent"]) == (39, True, False)
    assert late["calibrated_win_rate"] == 0.75  # d1, d2, d4 won, d3 lost after proposal
    assert late["weighted_amount_calibrated_home"] == Decimal("3000.00")
    # a lost deal's probability falls to 0: a close is no advance, so no inconsistency (d3 and d4 were flagged)
    assert rows(wh, "select deal_key from core.deal_state_periods where is_closed and probability_inconsistent") == []


def test_weighted_pipeline(wh):
    r = one(wh, "select * from marts.mart_weighted_pipeline where snapshot_date = date '2026-01-15' and team_name = 'North' "
                "and rep_key = 'all' and stage_id = 'proposal' and tier = 'Argent'")
    assert (r["open_deals"], r["amount_home"], r["weighted_amount_home"]) == (1, Decimal("8000.00"), Decimal("4000.00"))
    day = rows(wh, "select sum(weighted_amount_home) w from marts.mart_weighted_pipeline where snapshot_date = date '2026-01-15' and rep_key <> 'all'")
    assert day[0]["w"] == Decimal("10260.00")  # 5000 + 4000 + 1260


# -- mart_stage_velocity --------------------------------------------------------------------------------------------

def test_stage_velocity(wh):
    vel = {r["stage_id"]: r for r in rows(wh, "select * from marts.mart_stage_velocity where quarter = date '2026-01-01' and pipeline_id = 'default'")}
    p = vel["proposal"]  # d1 10 d, d2 8 d, d3 13 d (lost), d4 10 d, d6 still there (censored at the as-of)
    assert (p["entries"], p["exits_forward"], p["exits_to_won"], p["exits_to_lost"], p["still_open"]) == (5, 3, 3, 1, 1)
    assert (p["median_days_in_stage"], p["p75_days_in_stage"]) == (10.0, 13.0)
    assert (vel["nego"]["entries"], vel["nego"]["exits_back"]) == (1, 1)
    q = vel["qual"]  # 5, 8, 9, 9, 9, 10, 21 and d8 open since 01-22 (no history: one stay)
    assert (q["entries"], q["deals_entered"], q["exits_forward"], q["exits_to_lost"], q["still_open"]) == (8, 7, 5, 2, 1)
    assert (q["median_days_in_stage"], q["p75_days_in_stage"]) == (9.0, 12.75)
    assert "won" not in vel and "lost" not in vel


# -- mart_forecast_accuracy -----------------------------------------------------------------------------------------

FC = "select * from marts.mart_forecast_accuracy where month = cast(:m as date) and horizon_days = :h and rep_key = :rep and probability_bucket = :b"


def test_forecast_accuracy(wh):
    mar = one(wh, FC, m="2026-03-01", h=0, rep="hubspot:o1", b="all")
    # as of the end of 02-28: d2 in proposal (0.5) x 5000, expected in March; won 5000 in March
    assert (str(mar["snapshot_date"]), mar["forecast_weighted_home"], mar["actual_won_home"]) == ("2026-02-28", Decimal("2500.00"), Decimal("5000.00"))
    assert (mar["accuracy"], mar["bias"], mar["brier_score"], mar["amount_error_home"]) == (0.5, -0.5, 0.25, Decimal("0.00"))
    feb = one(wh, FC, m="2026-02-01", h=0, rep="all", b="all")
    # as of 01-31: only d5 (qual 0.2 x 3000) expected in February; d4 (6000) won in February
    assert (feb["forecast_weighted_home"], feb["actual_won_home"]) == (Decimal("600.00"), Decimal("6000.00"))
    assert (feb["accuracy"], feb["bias"], feb["brier_score"]) == (0.1, -0.9, 0.04)
    bucket = one(wh, FC, m="2026-02-01", h=0, rep="all", b="0.2-0.4")
    assert (bucket["forecast_deals"], bucket["mean_predicted_probability"], bucket["observed_win_rate"]) == (1, 0.2, 0.0)
    apr = one(wh, FC, m="2026-04-01", h=30, rep="hubspot:o2", b="all")
    # as of 03-01 d6 was expected on 04-15 (moved to May on 03-10); still open: nothing scored
    assert (apr["forecast_weighted_home"], apr["accuracy"], apr["scored_deals"], apr["brier_score"]) == (Decimal("2000.00"), None, 0, None)


def test_forecast_accuracy_unowned_deal_meets_its_actual(tmp_path):
    """A deal with no owner is forecast and won under 'unassigned', so the row scores it (not two half rows)."""
    w = world()
    for d in w["staging.deals"]:
        if d["deal_id"] == "d2":
            d["owner_id"] = None
    wh = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    load_world(wh, w)
    build_models(wh, only=["mart_forecast_accuracy"])
    mar = one(wh, FC, m="2026-03-01", h=0, rep="unassigned", b="all")
    assert (mar["forecast_weighted_home"], mar["actual_won_home"], mar["accuracy"]) == (Decimal("2500.00"), Decimal("5000.00"), 0.5)
    wh.dispose()


def test_every_built_table_passes_its_blocking_key_check(wh):
    """The pipeline's blocking key checks (pipelines/key_checks.py, keys from the data dictionary) pass on the
    edge-case world: a failing one would hold back every mart in production. Here bob and Koban's alice have no
    team history, so their rep_team_history period starts at null ('since always')."""
    from pipelines.key_checks import evaluate_key_check
    from warehouse.dictionary import load_dictionary

    built = {(r["table_schema"], r["table_name"]) for r in wh.query(
        "select table_schema, table_name from information_schema.tables where table_schema in ('core', 'marts')")}
    checked = []
    for schema in ("core", "marts"):
        for table, doc in load_dictionary()[schema].items():
            if (schema, table) in built and doc.get("primary_key"):
                nullable = {c for c, spec in doc["columns"].items() if spec.get("nullable")}
                result = evaluate_key_check(wh, schema, table, list(doc["primary_key"]), nullable)
                assert result.passed, (schema, table, result.metadata)
                checked.append(table)
    assert "rep_team_history" in checked and "mart_pipeline_daily" in checked and len(checked) > 15
    assert wh.query("select count(*) as n from core.rep_team_history where valid_from is null")[0]["n"] == 2


# -- mart_rep_scorecard ---------------------------------------------------------------------------------------------

def test_rep_scorecard_against_team_median(wh):
    sc = {r["rep_key"]: r for r in rows(wh, "select * from marts.mart_rep_scorecard where month = date '2026-01-01'")}
    a, b = sc["hubspot:o1"], sc["hubspot:o2"]
    assert (a["team_name"], a["territory"], b["territory"]) == ("North", "75", "69")
    assert (a["deals_won"], a["revenue_won_home"], a["average_deal_home"], a["win_rate_count"]) == (2, Decimal("12100.00"), Decimal("6050.00"), 1.0)
    assert (a["activities"], a["meetings"], a["hours_per_won_deal"]) == (4, 2, pytest.approx(1.3))
    assert (b["deals_lost"], b["win_rate_count"], b["activities"]) == (1, 0.0, 1)
    assert (a["team_median_revenue_won_home"], a["team_median_win_rate_count"], a["team_median_activities"], a["team_reps"]) == (Decimal("6050.00"), 0.5, 2.5, 2)
    assert a["hours_share_or"] == 1.0
    mar = one(wh, "select * from marts.mart_rep_scorecard where month = date '2026-03-01' and rep_key = 'hubspot:o1'")
    assert (mar["team_name"], mar["revenue_won_home"], mar["team_reps"]) == ("South", Decimal("5000.00"), 1)


# -- mart_flash -----------------------------------------------------------------------------------------------------

def test_flash(wh):
    d20 = one(wh, "select * from marts.mart_flash where day = date '2026-01-20'")
    assert (d20["deals_won"], d20["revenue_won_home"], d20["new_customers"], d20["win_rate_mtd"]) == (1, Decimal("10000.00"), 1, 1.0)
    d31 = one(wh, "select * from marts.mart_flash where day = date '2026-01-31'")
    assert (d31["deals_won_mtd"], d31["deals_lost_mtd"], d31["revenue_won_mtd_home"]) == (2, 1, Decimal("12100.00"))
    assert d31["win_rate_mtd"] == pytest.approx(0.666667) and d31["hours_mtd"] == pytest.approx(3.6)
    assert (d31["marketing_spend_month_home"], d31["sales_cost_mtd_home"], d31["acquisition_cost_mtd_home"]) == (Decimal("1500.00"), Decimal("200.00"), Decimal("1700.00"))
    assert (d31["new_customers_mtd"], d31["cac_mtd_home"]) == (1, Decimal("1700.00"))
    assert (d31["deals_checked_mtd"], d31["deals_complete_mtd"]) == (6, 5)  # d8 has no company
    days = rows(wh, "select min(day) lo, max(day) hi, count(*) n from marts.mart_flash")[0]
    assert (str(days["lo"]), str(days["hi"])) == ("2025-12-01", "2026-04-30") and days["n"] == 151


# -- mart_pipeline_daily as a day-partitioned asset -------------------------------------------------------------------

def _snapshot_rows(w, day=None):
    cols = "snapshot_date, deal_key, stage_id, amount_home, probability, team_name, days_in_stage, is_stale, probability_inconsistent"
    where = f"where snapshot_date = date '{day}'" if day else ""
    return sorted(tuple(r.values()) for r in w.query(f"select {cols} from marts.mart_pipeline_daily {where}"))


def test_pipeline_snapshot_partition_replaces_one_day_idempotently(tmp_path):
    import warnings

    import dagster as dg

    from pipelines.pipeline_snapshot import pipeline_snapshot_assets
    from pipelines.resources import WarehouseResource

    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    w = Warehouse(url)
    load_world(w, world())
    build_models(w, only=["mart_pipeline_daily"])
    full_day, full_other = _snapshot_rows(w, "2026-02-11"), _snapshot_rows(w, "2026-02-10")
    assert len(full_day) == 3 and full_other
    # a damaged day: rows lost, a stray row added; the partition run puts back exactly the full rebuild's rows
    w.execute("delete from marts.mart_pipeline_daily where snapshot_date = date '2026-02-11' and deal_key <> 'hubspot:d6'")
    w.execute("insert into marts.mart_pipeline_daily select * from marts.mart_pipeline_daily where snapshot_date = date '2026-02-11'")
    w.dispose()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assets = pipeline_snapshot_assets(start_date="2026-01-01")
    for _ in range(2):  # twice: the second run must not duplicate
        result = dg.materialize(assets, partition_key="2026-02-11", resources={"warehouse": WarehouseResource(url=url)})
        assert result.success
        assert result.get_asset_materialization_events()[0].materialization.metadata["dagster/row_count"].value == 3
    w = Warehouse(url)
    assert _snapshot_rows(w, "2026-02-11") == full_day
    assert _snapshot_rows(w, "2026-02-10") == full_other  # other days untouched
    fell = [r for r in full_day if r[1] == "hubspot:d6"][0]
    assert (fell[2], fell[4], fell[8]) == ("nego", 0.1, True)  # the hand-checked row of test_pipeline_daily_property_history...
    # a day after the data's as-of (2026-04-30) has no snapshot, as in the full rebuild
    result = dg.materialize(assets, partition_key="2026-10-01", resources={"warehouse": WarehouseResource(url=url)})
    assert result.success and _snapshot_rows(w, "2026-10-01") == []
    w.dispose()


def test_pipeline_snapshot_partition_creates_the_table_and_backfills_a_range(tmp_path):
    import datetime as dt

    from transforms.build import replace_pipeline_snapshot_days

    full = Warehouse(f"duckdb:///{tmp_path / 'full.duckdb'}")
    load_world(full, world())
    build_models(full, only=["mart_pipeline_daily"])
    expected = [r for r in _snapshot_rows(full) if dt.date(2026, 1, 10) <= r[0] <= dt.date(2026, 1, 20)]
    full.dispose()
    w = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    load_world(w, world())
    build_models(w, only=["deal_state_periods", "rep_team_history", "as_of"])
    assert not w.table_exists("marts", "mart_pipeline_daily")
    n = replace_pipeline_snapshot_days(w, dt.date(2026, 1, 10), dt.date(2026, 1, 20))
    assert n == len(expected) and expected
    assert _snapshot_rows(w) == expected
    w.dispose()


def test_pipeline_snapshot_run_without_partition_builds_history_then_refreshes_recent_days(tmp_path):
    """A sync or rebuild_marts run names no day: the first one rebuilds every day the history allows, later ones
    only the last `pipeline_snapshot_refresh_days` up to the as-of (2026-04-30 here); older days keep their
    snapshot as it was taken, so history accumulates."""
    import warnings

    import dagster as dg

    from pipelines.pipeline_snapshot import pipeline_snapshot_assets
    from pipelines.resources import WarehouseResource

    full = Warehouse(f"duckdb:///{tmp_path / 'full.duckdb'}")
    load_world(full, world())
    build_models(full, only=["mart_pipeline_daily"])
    expected = _snapshot_rows(full)
    full.dispose()
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    w = Warehouse(url)
    load_world(w, world())
    build_models(w, only=["deal_state_periods", "rep_team_history", "as_of"])
    w.dispose()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assets = pipeline_snapshot_assets(start_date="2026-01-01")
    resources = {"warehouse": WarehouseResource(url=url)}
    assert dg.materialize(assets, resources=resources).success
    w = Warehouse(url)
    assert _snapshot_rows(w) == expected  # first run: the whole history
    days = sorted({r[0] for r in expected})
    assert str(days[-1]) == "2026-04-30"
    # an old day whose snapshot differs from what the history says now (as if taken before a correction), and a
    # recent day damaged: the next run puts back the last two days only
    w.execute("update marts.mart_pipeline_daily set amount_home = amount_home + 1 where snapshot_date in "
              "(date '2026-02-11', date '2026-04-29', date '2026-04-30')")
    w.dispose()
    result = dg.materialize(assets, resources=resources)
    assert result.success
    assert result.get_asset_materialization_events()[0].materialization.metadata["days"].value == "2026-04-29..2026-04-30"
    w = Warehouse(url)
    assert _snapshot_rows(w, "2026-04-29") == [r for r in expected if str(r[0]) == "2026-04-29"]
    assert _snapshot_rows(w, "2026-04-30") == [r for r in expected if str(r[0]) == "2026-04-30"]
    kept = _snapshot_rows(w, "2026-02-11")
    assert kept and kept != [r for r in expected if str(r[0]) == "2026-02-11"]
    assert len(_snapshot_rows(w)) == len(expected)  # nothing duplicated
    # days not snapshotted since the last run (the as-of moved on by more than the refresh window, a quiet
    # weekend): the next run fills them, leaving no gap
    w.execute("delete from marts.mart_pipeline_daily where snapshot_date > date '2026-04-24'")
    w.dispose()
    result = dg.materialize(assets, resources=resources)
    assert result.get_asset_materialization_events()[0].materialization.metadata["days"].value == "2026-04-25..2026-04-30"
    w = Warehouse(url)
    assert [r for r in _snapshot_rows(w) if str(r[0]) > "2026-04-24"] == [r for r in expected if str(r[0]) > "2026-04-24"]
    w.dispose()


def test_pipeline_snapshot_of_an_older_version_is_rebuilt_when_its_columns_changed(tmp_path):
    """After an upgrade that changes the snapshot's columns, a partition run rebuilds the table from the history
    (the kept days cannot take the new rows) instead of failing on every sync."""
    import datetime as dt

    from transforms.build import replace_pipeline_snapshot_days

    full = Warehouse(f"duckdb:///{tmp_path / 'full.duckdb'}")
    load_world(full, world())
    build_models(full, only=["mart_pipeline_daily"])
    expected = _snapshot_rows(full)
    full.dispose()
    w = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    load_world(w, world())
    build_models(w, only=["deal_state_periods", "rep_team_history", "as_of"])
    replace_pipeline_snapshot_days(w, dt.date(2026, 1, 10), dt.date(2026, 1, 20))
    w.execute("alter table marts.mart_pipeline_daily drop column probability_inconsistent")  # as an older version
    replace_pipeline_snapshot_days(w, dt.date(2026, 2, 11))
    assert "probability_inconsistent" in w.columns("marts", "mart_pipeline_daily")
    assert _snapshot_rows(w) == expected
    w.dispose()


def test_catalog_table_functions_are_not_tables(tmp_path):
    from transforms.catalog import SqlModel

    path = tmp_path / "m.sql"
    path.write_text("-- a model\n-- indexes: (a, b); (c)\nselect g.d, x.a from generate_series(1, 3) as g(d) "
                    "join core.x x on x.a = g.d cross join range(2) r(i)")
    m = SqlModel("marts", "m", path)
    assert m.deps == {("core", "x")}
    assert m.indexes == (("a", "b"), ("c",))
    assert m.description() == "a model"


def test_dim_company_builds_before_the_identity_step_wrote_company_golden(tmp_path):
    """An upgraded warehouse whose registry sync (which rebuilds dim_company) runs before the identity step ever wrote
    core.company_golden: dim_company is built with the CRM names, and the run says why."""
    import dagster as dg

    from pipelines.resources import WarehouseResource
    from pipelines.transform_assets import sql_model_asset
    from transforms.catalog import discover

    w = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    load_world(w, world())
    build_models(w, only=MY_MARTS + ["dim_rep"])
    w.execute("drop table core.company_golden")
    w.execute("drop table core.dim_company")
    (model,) = [m for m in discover(("core",)) if m.name == "dim_company"]
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([sql_model_asset(model)], resources={"warehouse": WarehouseResource(url=w.url)},
                            instance=instance)
    assert result.success
    names = {r["company_key"]: r["name"] for r in w.query("select company_key, name from core.dim_company")}
    assert names["E5"] == "Fromagerie Petit"  # the CRM record's (no golden name to take)
    logs = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any("core.company_golden not built yet, read as empty" in m for m in logs)
    w.dispose()


def test_activities_follow_a_migrated_deal_and_drop_a_deleted_one(tmp_path):
    w = world()
    hs, kb = "hubspot", "koban"
    deal = dict(w["staging.deals"][0], deal_id="dx", deal_name="dx", is_deleted=True)
    w["staging.deals"].append(deal)
    base = dict(w["staging.activities"][0], duration_minutes=30, company_id=None, is_deleted=False)
    w["staging.activities"] += [
        # logged in Koban on kd9 before the migration: kd9 became hubspot d9 (E5's won deal)
        dict(base, source_system=kb, activity_id="ak1", owner_id="k1", deal_id="kd9"),
        # on a deal deleted since: no deal to point at, the activity stays (effort on its company)
        dict(base, source_system=hs, activity_id="ax1", deal_id="dx", company_id="c1"),
    ]
    wh = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    load_world(wh, w)
    build_models(wh, only=["fct_activities"])
    acts = {r["activity_key"]: r for r in wh.query("select * from core.fct_activities")}
    assert (acts["koban:ak1"]["deal_key"], acts["koban:ak1"]["company_key"]) == ("hubspot:d9", "E5")
    assert (acts["hubspot:ax1"]["deal_key"], acts["hubspot:ax1"]["company_key"]) == (None, "E1")
    deals = {r["deal_key"] for r in wh.query("select deal_key from core.fct_deals")}
    assert {a["deal_key"] for a in acts.values() if a["deal_key"]} <= deals  # no activity points at a missing deal
    wh.dispose()


def test_an_invoice_credited_in_full_makes_nobody_a_customer(tmp_path):
    # E4 is a customer by its only paid invoice (i4, 240 incl. tax); a credit note giving all of it back (an
    # order cancelled) leaves it a prospect: no acquisition date, no new customer in March
    w = world()
    cn = dict(next(c for c in w["staging.credit_notes"] if c["credit_note_id"] == "cn4d"), credit_note_id="cn4",
              is_deleted=False)
    w["staging.credit_notes"].append(cn)
    wh = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    load_world(wh, w)
    build_models(wh, only=["dim_company"])
    e4 = wh.query("select first_paid_at, acquired_at from core.dim_company where company_key = 'E4'")[0]
    assert (e4["first_paid_at"], e4["acquired_at"]) == (None, None)
    # a partial credit note does not: E2's i3 (USD 1000) keeps its date
    assert wh.query("select first_paid_at from core.dim_company where company_key = 'E2'")[0]["first_paid_at"] is not None
    wh.dispose()


def test_invoice_revenue_is_after_discounts(tmp_path):
    # i4 with a 10% discount: its line stays 200 (Stripe lines come before discounts), the invoice is worth
    # 180 excluding tax (total_excluding_tax) and was paid 216 with VAT: revenue is 180, not the line's 200
    w = world()
    i4 = next(i for i in w["staging.invoices"] if i["invoice_id"] == "i4")
    i4.update(amount_paid=216, amount_due=216, amount_excluding_tax=180)
    wh = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    load_world(wh, w)
    build_models(wh, only=["fct_invoices"])
    row = wh.query("select amount_paid_home, amount_excl_tax_home, revenue_home from core.fct_invoices "
                   "where invoice_key = 'stripe:i4'")[0]
    assert (row["amount_paid_home"], row["amount_excl_tax_home"], row["revenue_home"]) == \
        (Decimal("216.00"), Decimal("180.00"), Decimal("180.00"))
    wh.dispose()
