"""What sales ops see of data quality: the per-rep scorecard, violations of rules taken out of the sales model, and the
quarantine table. Hand-made staging rows in a real warehouse, on DuckDB and PostgreSQL; the Dagster quality step is
run as the pipeline runs it."""
from __future__ import annotations

import datetime as dt

import pytest

from transforms.build import build_models
from transforms.quality.rules import build_rules
from transforms.quality.violations import evaluate_rules
from transforms.sales_model import SAMPLE_PATH, load_sales_model
from warehouse.connection import Warehouse
from warehouse.dictionary import load_dictionary

from test_quality_rules import insert, make_staging  # the same hand-made staging

AS_OF = dt.datetime(2026, 10, 31, 18, tzinfo=dt.timezone.utc)
MODEL = load_sales_model(SAMPLE_PATH)
RULES = {r.name: r for r in build_rules(MODEL, as_of=AS_OF)}
HOUR = dt.timedelta(hours=1)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def wh(request, tmp_path):
    if request.param == "duckdb":
        w = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    else:
        w = Warehouse(request.getfixturevalue("postgres_url"))
    make_staging(w)
    yield w
    w.dispose()


def one_rep_in_two_crms(wh: Warehouse) -> None:
    """Camille Martin is HubSpot owner o1 and Koban user k1 (one email); Julien Bernard is in HubSpot only."""
    created = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    insert(wh, "owners",
           {"owner_id": "o1", "email": "camille@seller.fr", "full_name": "Camille Martin", "is_active": True,
            "created_at": created},
           {"source_system": "koban", "owner_id": "k1", "email": "Camille@Seller.fr", "full_name": "Camille Martin",
            "is_active": True, "created_at": created + dt.timedelta(days=30)},
           {"owner_id": "o2", "email": "julien@seller.fr", "full_name": "Julien Bernard", "is_active": True,
            "created_at": created})
    insert(wh, "contacts",
           {"contact_id": "1", "owner_id": "o1", "lifecycle_stage": "lead"},
           {"contact_id": "2", "owner_id": "o1", "lifecycle_stage": None},
           {"source_system": "koban", "contact_id": "k-1", "owner_id": "k1", "lifecycle_stage": "lead"},
           {"source_system": "koban", "contact_id": "k-2", "owner_id": "k1", "lifecycle_stage": ""},
           {"contact_id": "3", "owner_id": "o2", "lifecycle_stage": "lead"},
           {"contact_id": "4", "owner_id": None, "lifecycle_stage": None})


def scorecard(wh: Warehouse, rule: str) -> list[dict]:
    return wh.query(
        "select day, rep_key, owner_name, records_checked, records_failing, "
        "cast(completeness_pct as double precision) as pct, cast(previous_completeness_pct as double precision) "
        "as prev from marts.data_quality_by_owner where rule = :r order by day, rep_key", {"r": rule})


# -- A. one row per rep, whatever CRM holds the record ----------------------------------------------------------
def test_scorecard_counts_a_rep_once_across_crms(wh):
    one_rep_in_two_crms(wh)
    rule = RULES["contact_lifecycle_stage"]
    evaluate_rules(wh, [rule], run_at=AS_OF)
    wh.execute("update staging.contacts set lifecycle_stage = 'lead' where contact_id = 'k-2'")  # fixed in Koban
    evaluate_rules(wh, [rule], run_at=AS_OF + dt.timedelta(days=1))
    build_models(wh, ("core", "marts"), only=["core.rep_crosswalk", "marts.data_quality_by_owner"])

    d1, d2 = AS_OF.date(), AS_OF.date() + dt.timedelta(days=1)
    camille = {"rep_key": "hubspot:o1", "owner_name": "Camille Martin"}
    julien = {"rep_key": "hubspot:o2", "owner_name": "Julien Bernard"}
    nobody = {"rep_key": "unassigned", "owner_name": "unassigned"}
    assert scorecard(wh, "contact_lifecycle_stage") == [
        {"day": d1, **camille, "records_checked": 4, "records_failing": 2, "pct": 50.0, "prev": None},
        {"day": d1, **julien, "records_checked": 1, "records_failing": 0, "pct": 100.0, "prev": None},
        {"day": d1, **nobody, "records_checked": 1, "records_failing": 1, "pct": 0.0, "prev": None},
        {"day": d2, **camille, "records_checked": 4, "records_failing": 1, "pct": 75.0, "prev": 50.0},
        {"day": d2, **julien, "records_checked": 1, "records_failing": 0, "pct": 100.0, "prev": 100.0},
        {"day": d2, **nobody, "records_checked": 1, "records_failing": 1, "pct": 0.0, "prev": 0.0},
    ]
    doc = load_dictionary()["marts"]["data_quality_by_owner"]
    assert wh.columns("marts", "data_quality_by_owner") == list(doc["columns"])
    key = ", ".join(doc["primary_key"])
    assert wh.query(f"select {key} from marts.data_quality_by_owner group by {key} having count(*) > 1") == []


# -- the Dagster quality step, as the pipeline runs it -----------------------------------------------------------
def run_quality_step(wh: Warehouse, model, only_tables: list[str] | None = None):
    """Materialise staging stand-ins with the quality checks of `model`; `only_tables`: evaluate only the checks
    on those staging tables (a run that selects some assets), else every check."""
    import dagster as dg

    from pipelines.quality_checks import build_quality_checks

    class WarehouseStandIn(dg.ConfigurableResource):
        url: str

        def get(self) -> Warehouse:
            return Warehouse(self.url)

    def stand_in(table):
        @dg.asset(key=["staging", table])
        def _asset():
            return None
        return _asset

    tables = ["deals", "contacts"]
    assets = [stand_in(t) for t in tables]
    selection = None
    if only_tables is not None:
        selection = dg.AssetSelection.assets(*[dg.AssetKey(["staging", t]) for t in only_tables])
    result = dg.materialize([*assets, *build_quality_checks(model, as_of=AS_OF)], selection=selection,
                            resources={"warehouse": WarehouseStandIn(url=wh.url)}, raise_on_error=False)
    return {e.check_name for e in result.get_asset_check_evaluations()}


def test_the_quality_step_builds_the_scorecard_before_the_crosswalk_then_merges_reps(wh):
    one_rep_in_two_crms(wh)
    run_quality_step(wh, MODEL, only_tables=["contacts"])  # first run: core.rep_crosswalk not built yet
    reps = {r["rep_key"]: r["records_checked"] for r in scorecard(wh, "contact_lifecycle_stage")}
    assert reps == {"hubspot:o1": 2, "koban:k1": 2, "hubspot:o2": 1, "unassigned": 1}

    build_models(wh, ("core",), only=["core.rep_crosswalk"])
    run_quality_step(wh, MODEL, only_tables=["contacts"])
    reps = {r["rep_key"]: r["records_checked"] for r in scorecard(wh, "contact_lifecycle_stage")}
    assert reps == {"hubspot:o1": 4, "hubspot:o2": 1, "unassigned": 1}


# -- B. rules taken out of sales_model.yaml ----------------------------------------------------------------------
def edited_model(tmp_path):
    """The sample model with deal_amount renamed (deal_amount_filled) and deal_close_not_before_create turned off."""
    text = SAMPLE_PATH.read_text()
    for old, new in (("{rule: deal_amount, fields: [amount]", "{rule: deal_amount_filled, fields: [amount]"),
                     ("deal_close_not_before_create: warn", "deal_close_not_before_create: off")):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "sales_model.yaml"
    path.write_text(text)
    return load_sales_model(path)


def open_violations(wh: Warehouse) -> set[tuple[str, str]]:
    return {(r["rule"], r["record_id"]) for r in wh.query(
        "select rule, record_id from quality.violations where resolved_at is null")}


def test_violations_of_rules_taken_out_of_the_model_are_resolved_not_other_steps(wh, tmp_path):
    insert(wh, "deals", {"deal_id": "d1", "owner_id": "o1", "amount": None,
                         "created_at": dt.datetime(2026, 5, 2), "close_date": dt.datetime(2026, 5, 1)})
    insert(wh, "contacts", {"contact_id": "c1", "owner_id": "o1", "lifecycle_stage": None})
    run_quality_step(wh, MODEL)
    before = open_violations(wh)
    assert {("deal_amount", "d1"), ("deal_close_not_before_create", "d1"), ("contact_lifecycle_stage", "c1")} <= before

    # the rules are edited; the next run evaluates the deals' checks only (the contacts' are not selected)
    evaluated = run_quality_step(wh, edited_model(tmp_path), only_tables=["deals"])
    assert "quality_deal_amount_filled" in evaluated and "quality_contact_lifecycle_stage" not in evaluated
    after = open_violations(wh)
    assert ("deal_amount", "d1") not in after and ("deal_close_not_before_create", "d1") not in after
    assert ("deal_amount_filled", "d1") in after  # the renamed rule still lists the record
    assert ("contact_lifecycle_stage", "c1") in after  # still defined, just not evaluated by this run
    resolved = {r["rule"]: r["resolution"] for r in wh.query(
        "select rule, resolution from quality.violations where record_id = 'd1' and resolved_at is not null")}
    assert resolved == {"deal_amount": "rule_removed", "deal_close_not_before_create": "rule_removed"}

    # back in the model, the rule sees the record again: reopened, no longer resolved
    run_quality_step(wh, MODEL, only_tables=["deals"])
    assert ("deal_amount", "d1") in open_violations(wh)
    assert wh.scalar("select resolution from quality.violations where rule = 'deal_amount'") is None


def test_a_fixed_record_is_resolved_as_fixed_and_older_warehouses_get_the_column(wh):
    insert(wh, "deals", {"deal_id": "d1", "owner_id": "o1"}, {"deal_id": "d2", "owner_id": "o1"})
    evaluate_rules(wh, [RULES["deal_amount"]], run_at=AS_OF)
    wh.execute("update staging.deals set amount = 10 where deal_id = 'd1'")
    evaluate_rules(wh, [RULES["deal_amount"]], run_at=AS_OF + HOUR)
    rows = {r["record_id"]: r["resolution"] for r in wh.query("select record_id, resolution from quality.violations")}
    assert rows == {"d1": "fixed", "d2": None}

    # a warehouse written before the column existed: it is added, and what was resolved then was fixed
    wh.execute("alter table quality.violations drop column resolution")
    evaluate_rules(wh, [RULES["deal_amount"]], run_at=AS_OF + 2 * HOUR)
    rows = {r["record_id"]: r["resolution"] for r in wh.query("select record_id, resolution from quality.violations")}
    assert rows == {"d1": "fixed", "d2": None}
    assert wh.columns("quality", "violations") == list(load_dictionary()["quality"]["violations"]["columns"])


# -- C. the quarantine can always be counted ---------------------------------------------------------------------
def test_quarantine_counts_zero_when_nothing_was_set_aside(wh):
    insert(wh, "deals", {"deal_id": "d1", "owner_id": "o1", "amount": 10})
    run_quality_step(wh, MODEL, only_tables=["deals"])
    assert wh.scalar("select count(*) from quality.quarantine") == 0
    assert wh.columns("quality", "quarantine") == list(load_dictionary()["quality"]["quarantine"]["columns"])
