"""End to end: the sandbox vendors over real HTTP, every asset through Dagster, into DuckDB and PostgreSQL.

One module-scoped run per warehouse (the expensive part), then assertions on what a user sees: tables built, checks
evaluated, and marts that agree with the generator's truth.
"""
from __future__ import annotations

import os
from collections import Counter

import pytest

from warehouse import Warehouse

pytestmark = pytest.mark.slow

SEED = 7


def _run_pipeline(warehouse_url: str, tmp_path):
    """Serve the tiny sandbox world, point every source at it, and run the whole pipeline once."""
    from sandbox.generator import generate_world
    from sandbox.pipeline_run import run_full_pipeline, sandbox_environment

    world = generate_world(seed=SEED, size="tiny")
    env_before = dict(os.environ)
    os.environ["CRM_ETL_WAREHOUSE_URL"] = warehouse_url
    os.environ["DLT_DATA_DIR"] = str(tmp_path / "dlt")
    try:
        # one contact is served with a broken id: it must land in quarantine, and everything else must load
        with sandbox_environment(world, tmp_path / "files", faults={"malformed_record": "bad_id"}):
            result = run_full_pipeline(echo=lambda _: None)
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    return world, result


@pytest.fixture(scope="module")
def duckdb_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e_duckdb")
    url = f"duckdb:///{tmp / 'warehouse.duckdb'}"
    world, result = _run_pipeline(url, tmp)
    return world, result, Warehouse(url)


def _failed_steps(result) -> list[str]:
    return [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]


def _check_evaluations(result):
    return [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]


def test_every_asset_materialises_on_duckdb(duckdb_run):
    world, result, wh = duckdb_run
    assert _failed_steps(result) == [], "steps failed"
    materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    for key in ("staging/deals", "core/company_crosswalk", "core/fct_deals", "marts/mart_win_rate",
                "marts/data_quality_by_owner", "quality/violations"):
        assert key in materialised
    assert wh.row_count("staging", "deals") == sum(1 for d in world.deals if d.hubspot_id) + wh.scalar(
        "select count(*) from staging.deals where source_system <> 'hubspot'")


def test_key_checks_and_quality_rules_evaluated(duckdb_run):
    _, result, wh = duckdb_run
    skipped = wh.query("select rule from quality.rule_results where status = 'skipped'")
    assert skipped == [], "every rule's tables are built before the rule runs"
    evaluations = _check_evaluations(result)
    names = {e.check_name for e in evaluations}
    assert "primary_key_unique_not_null" in names
    assert any(n.startswith("quality_") for n in names)
    assert all(e.passed for e in evaluations if e.check_name == "primary_key_unique_not_null")


def test_built_tables_have_the_documented_columns(duckdb_run):
    from warehouse.dictionary import load_dictionary

    _, _, wh = duckdb_run
    for schema in ("staging", "core", "marts"):
        for table, doc in load_dictionary().get(schema, {}).items():
            if not wh.table_exists(schema, table):
                continue
            assert wh.columns(schema, table) == list(doc["columns"]), f"{schema}.{table} drifted from the dictionary"


def test_win_rate_matches_the_generator_truth(duckdb_run):
    """Per month of close and rep: won and lost deals counted from the truth equal the mart's."""
    world, _, wh = duckdb_run
    truth = Counter()
    for deal in world.deals:
        if deal.archived:
            continue
        t = world.deal_truth(deal)
        if t.outcome in ("won", "lost"):
            month = t.closed_at.date().replace(day=1)
            truth[(month, world.rep(t.owner_key).owner_id, t.outcome)] += 1
    rows = wh.query(
        "select f.month, r.owner_id, f.deals_won, f.deals_lost from marts.mart_win_rate f "
        "join staging.owners r on 'hubspot:' || r.owner_id = f.rep_key "
        "where f.tier = 'all' and f.team_name <> 'all' and f.rep_key not in ('all', 'unassigned')"
    )
    got = Counter()
    for r in rows:
        got[(r["month"], r["owner_id"], "won")] += r["deals_won"]
        got[(r["month"], r["owner_id"], "lost")] += r["deals_lost"]
    assert +got == +truth


@pytest.fixture(scope="module")
def postgres_run(tmp_path_factory):
    """The same world through the same pipeline into a throw-away PostgreSQL database."""
    import uuid

    import sqlalchemy as sa

    from tests.conftest import PG_ADMIN_URL

    name = f"crm_etl_e2e_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'create database "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        world, result = _run_pipeline(url, tmp_path_factory.mktemp("e2e_pg"))
        wh = Warehouse(url)
        yield world, result, wh
        wh.dispose()
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
                (name,))
            conn.exec_driver_sql(f'drop database if exists "{name}"')
        admin.dispose()


def _table(wh: Warehouse, schema: str, table: str) -> list[tuple]:
    cols = wh.columns(schema, table)
    order = ", ".join(f'"{c}"' for c in cols)
    rows = wh.query(f'select * from {schema}.{table} order by {order}')
    return [tuple(_normal(r[c]) for c in cols) for r in rows]


def _normal(value):
    """Compare values across dialects: same instant, same number (DuckDB and PostgreSQL drivers differ in types)."""
    import datetime as dt
    from decimal import Decimal

    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, (Decimal, float)):
        return round(float(value), 6)
    return value


@pytest.mark.postgres
def test_postgres_gives_the_same_marts_as_duckdb(duckdb_run, postgres_run):
    _, pg_result, pg = postgres_run
    _, _, duck = duckdb_run
    assert _failed_steps(pg_result) == []
    for table in ("mart_win_rate", "mart_cac", "mart_effort_per_target", "mart_average_basket", "mart_flash"):
        assert pg.table_exists("marts", table), table
        assert _table(pg, "marts", table) == _table(duck, "marts", table), f"marts.{table} differs"
    assert _table(pg, "staging", "deals") == _table(duck, "staging", "deals")


def test_scorecard_matches_the_fields_the_generator_left_empty(duckdb_run):
    """Sales ops' per-rep scorecard counts exactly the deals whose amount the generator blanked, per rep, and shows
    each rep once although every rep is a user in both CRMs."""
    world, _, wh = duckdb_run
    truth = Counter()
    archived = {d.hubspot_id for d in world.deals if d.archived}
    for (vendor, obj, record_id), fields in world.truth.missing_fields.items():
        if vendor == "hubspot" and obj == "deals" and "amount" in fields and record_id not in archived:
            rep = world.rep(fields["amount"])
            truth[f"{rep.first_name} {rep.last_name}"] += 1
    rows = wh.query(
        "select owner_name, sum(records_failing) as failing from marts.data_quality_by_owner "
        "where rule = 'deal_amount' group by owner_name"
    )
    got = Counter({r["owner_name"]: int(r["failing"]) for r in rows if r["failing"]})
    assert truth, "the tiny world should leave some deal amounts empty"
    assert got == truth
    reps = wh.query("select distinct rep_key, owner_name from marts.data_quality_by_owner "
                    "where rep_key <> 'unassigned'")
    assert len({r["owner_name"] for r in reps}) == len(reps) == len(world.reps)


def test_malformed_record_is_quarantined_with_its_reason(duckdb_run):
    """Nothing that came in is lost: the record the sandbox broke is in quality.quarantine, with why."""
    _, _, wh = duckdb_run
    rows = wh.query("select source, object, reason, payload from quality.quarantine")
    hubspot = [r for r in rows if r["source"] == "hubspot"]
    assert len(hubspot) == 1 and hubspot[0]["object"] == "contacts" and "id is not numeric" in hubspot[0]["reason"]
    assert all(r["reason"] and r["payload"] for r in rows)  # the fault breaks one record per vendor that has one


def test_postgres_pipeline_with_parallel_step_processes(postgres_url, tmp_path, monkeypatch):
    """The path the Dagster daemon takes with CRM_ETL_PARALLEL_STEPS on PostgreSQL: steps in forked processes, two
    at a time. Each step process plans the job again, so the checks must be the same steps in every process (a
    Dagster-split multi-asset check was numbered differently per process and evaluated other tables' checks)."""
    import dagster as dg

    from sandbox.generator import generate_world
    from sandbox.pipeline_run import STOCK_SELECTION, execute_with_code_location_executor, sandbox_environment

    monkeypatch.setenv("CRM_ETL_WAREHOUSE_URL", postgres_url)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.setenv("CRM_ETL_PARALLEL_STEPS", "2")
    (tmp_path / "home").mkdir()
    with sandbox_environment(generate_world(seed=SEED, size="tiny"), tmp_path / "files"):
        instance = dg.DagsterInstance.local_temp(str(tmp_path / "home"))
        assert execute_with_code_location_executor(STOCK_SELECTION, instance).success
        result = execute_with_code_location_executor(None, instance)
    assert result.success, _failed_steps(result)
    evaluations = _check_evaluations(result)
    assert len(evaluations) >= 90
    assert not [e for e in evaluations if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
    processes = {e.pid for e in result.all_events if e.event_type_value == "STEP_START"}
    assert len(processes) > 10  # each step in a process of its own
