"""The marts on a small hand-made world (tests/marts_world.py): every expected figure below is worked out by hand
from the rows written there, not by running the same SQL."""
from __future__ import annotations

from decimal import Decimal

import pytest

from marts_world import load_world, world
from transforms.build import build_models
from warehouse.connection import Warehouse

#: The marts this test file covers (data_quality_by_owner belongs to the quality suite).
MY_MARTS = ["mart_win_rate"]


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    wh = Warehouse(f"duckdb:///{tmp_path_factory.mktemp('marts') / 'w.duckdb'}")
    load_world(wh, world())
    build_models(wh, schemas=("core",))
    build_models(wh, only=MY_MARTS)
    yield wh
    wh.dispose()


def rows(wh, sql, **params):
    return wh.query(sql, params)


def one(wh, sql, **params):
    found = rows(wh, sql, **params)
    assert len(found) == 1, found
    return found[0]


# -- core ---------------------------------------------------------------------------------------------------------

def test_fct_deals_resolves_company_rep_team_and_final_close(wh):
    deals = {r["deal_key"]: r for r in rows(wh, "select * from core.fct_deals")}
    assert set(deals) == {"hubspot:d1", "hubspot:d2", "hubspot:d3", "hubspot:d4", "hubspot:d5", "hubspot:d6", "koban:kd7"}
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


def test_dim_company_customer_won_twice_is_acquired_once(wh):
    comp = {r["company_key"]: r for r in rows(wh, "select * from core.dim_company")}
    assert set(comp) == {"E1", "E2", "E3", "E4"}
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
    assert total == 6  # 7 deals, d6 open
