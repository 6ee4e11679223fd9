"""Inputs connector on files rendered from the sandbox world: full load = the world's spend and rep costs, reruns
load nothing, a changed file replaces its rows, a removed file stops counting, malformed files fail with
file:line:reason and load nothing; staging built on what was loaded."""
from __future__ import annotations

import csv
import logging
from decimal import Decimal

import dlt
import pytest
from openpyxl import load_workbook

from connectors.inputs import InputFileError, inputs_source
from sandbox.generator import generate_world
from sandbox.inputs_render import write_input_files
from transforms import staging
from warehouse import Warehouse


@pytest.fixture(autouse=True)
def _quiet_logs(caplog):
    caplog.set_level(logging.WARNING, logger="connectors.inputs")


@pytest.fixture(scope="module")
def world():
    return generate_world(seed=42, size="tiny")


class Sync:
    def __init__(self, tmp_path, folder, reps=None):
        self.folder = folder
        self.reps = reps
        self.db = str(tmp_path / "warehouse.duckdb")
        self.pipeline = dlt.pipeline(pipeline_name="inputs_test", destination=dlt.destinations.duckdb(self.db),
                                     dataset_name="raw_inputs", pipelines_dir=str(tmp_path / "dlt"))

    def run(self):
        return self.pipeline.run(inputs_source(folder=str(self.folder), known_reps=self.reps))

    def query(self, sql):
        with self.pipeline.sql_client() as client:
            return client.execute_sql(sql)

    def staging(self) -> Warehouse:
        from transforms.sales_model import load_sales_model

        wh = Warehouse(f"duckdb:///{self.db}")
        wh.ensure_schemas()
        for n, df in load_sales_model("sales_model.yaml").config_frames().items():
            wh.write_frame("staging", n, df)
        for table, parts in staging.parts(["inputs"]).items():
            if parts:
                sql, _ = staging.union_sql(table, parts, wh.dialect, wh.table_exists, wh.columns)
                wh.build_table("staging", table, sql)
        return wh


@pytest.fixture
def folder(world, tmp_path):
    path = tmp_path / "inputs"
    write_input_files(world, path)
    return path


def _spend(wh):
    return {(r["month"], r["channel"], r["campaign"]): r["amount"]
            for r in wh.query("select * from staging.marketing_spend")}


def _rewrite_csv(path, edit):
    with open(path, newline="", encoding="utf-8") as fh:
        text = fh.read()
    delim = ";" if text.split("\n", 1)[0].count(";") else ","
    rows = list(csv.reader(text.splitlines(), delimiter=delim))
    rows = edit(rows)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, delimiter=delim).writerows(rows)


def test_full_load_is_the_worlds_inputs(world, folder, tmp_path):
    sync = Sync(tmp_path, folder, reps=[r.email for r in world.reps])
    sync.run()
    wh = sync.staging()
    assert _spend(wh) == {(s.month, s.channel, s.campaign): s.amount_eur for s in world.inputs.marketing_spend}
    assert {r["currency"] for r in wh.query("select currency from staging.marketing_spend")} == {"EUR"}
    costs = {(r["rep_email"], r["valid_from"]): (r["hourly_cost"], r["valid_to"])
             for r in wh.query("select * from staging.rep_costs")}
    assert costs == {(c.rep_email, c.valid_from): (c.hourly_cost, c.valid_to) for c in world.inputs.rep_costs}
    raised = world.reps[0]  # the rep whose cost changes mid-history: two periods, back to back
    periods = sorted((k[1], v) for k, v in costs.items() if k[0] == raised.email)
    assert len(periods) == 2 and periods[0][1][0] < periods[1][1][0]


def test_rerun_loads_nothing_and_a_changed_file_replaces_its_rows(world, folder, tmp_path):
    sync = Sync(tmp_path, folder)
    sync.run()
    loads = sync.query("select source_file, _dlt_load_id from input_files order by 1")
    row_loads = sync.query("select distinct _dlt_load_id from marketing_spend")
    sync.run()  # nothing changed: nothing reloaded
    assert sync.query("select source_file, _dlt_load_id from input_files order by 1") == loads
    assert sync.query("select distinct _dlt_load_id from marketing_spend") == row_loads

    first = sorted(folder.glob("marketing_spend_*.csv"))[0]
    year_rows = [s for s in world.inputs.marketing_spend if s.month.year == int(first.stem[-4:])]
    dropped, changed = year_rows[0], year_rows[1]

    def edit(rows):
        out = [rows[0]]
        for r in rows[1:]:
            if r[2] == dropped.campaign and r[0] == dropped.month.strftime("%Y-%m"):
                continue  # a line removed
            if r[2] == changed.campaign and r[0] == changed.month.strftime("%Y-%m"):
                r = [r[0], r[1], r[2], "999.99", r[4]]
            out.append(r)
        return out

    _rewrite_csv(first, edit)
    sync.run()
    after = dict(sync.query("select source_file, _dlt_load_id from input_files order by 1"))
    assert [f for f, lid in loads if after[f] != lid] == [first.name]  # only the changed file was reloaded
    spend = _spend(sync.staging())
    assert (dropped.month, dropped.channel, dropped.campaign) not in spend
    assert spend[(changed.month, changed.channel, changed.campaign)] == Decimal("999.99")
    assert len(spend) == len(world.inputs.marketing_spend) - 1

    first.unlink()  # a removed file stops counting
    sync.run()
    spend = _spend(sync.staging())
    assert len(spend) == len(world.inputs.marketing_spend) - len(year_rows)
    assert sync.query(f"select is_deleted from input_files where source_file = '{first.name}'") == [(True,)]


@pytest.mark.parametrize("breakage, expected", [
    ("missing_column", "missing column(s) amount"),
    ("bad_date", ":3: month '2025-13' is not a month"),
    ("negative", ":2: amount -12.50 is negative"),
    ("unknown_rep", "unknown rep 'intrus@example.com'"),
    ("overlap", "overlaps"),
])
def test_malformed_file_fails_with_file_line_reason_and_loads_nothing(world, folder, tmp_path, breakage, expected):
    sync = Sync(tmp_path, folder, reps=[r.email for r in world.reps])
    sync.run()
    before = sync.query("select count(*) from marketing_spend")[0][0], sync.query("select count(*) from rep_costs")[0][0]
    spend_file = sorted(folder.glob("marketing_spend_*.csv"))[1]
    if breakage == "missing_column":
        _rewrite_csv(spend_file, lambda rows: [r[:3] + r[4:] for r in rows])
    elif breakage == "bad_date":
        _rewrite_csv(spend_file, lambda rows: rows[:2] + [["2025-13"] + rows[2][1:]] + rows[3:])
    elif breakage == "negative":
        _rewrite_csv(spend_file, lambda rows: [rows[0], rows[1][:3] + ["-12.50"] + rows[1][4:]] + rows[2:])
    else:
        wb = load_workbook(folder / "rep_costs.xlsx")
        ws = wb["rep_costs"]
        if breakage == "unknown_rep":
            ws.append(["intrus@example.com", 50, None, None, "2025-01-01", None])
        else:  # a second open period for a rep whose first period is open too
            ws.append([ws["A2"].value, 99, None, None, "2025-06-01", None])
        wb.save(folder / "rep_costs.xlsx")
    # a valid new file next to the broken one must not be loaded either
    with open(folder / "marketing_spend_extra.csv", "w", encoding="utf-8") as fh:
        fh.write("month,channel,campaign,amount\n2026-10,PAID_SEARCH,Nouvelle campagne,10\n")
    with pytest.raises(Exception) as info:
        sync.run()
    cause = info.value
    while cause is not None and not isinstance(cause, InputFileError):
        cause = cause.__cause__ or cause.__context__
    assert cause is not None, info.value
    message = str(cause)
    assert expected in message
    assert (spend_file.name in message) or ("rep_costs.xlsx[rep_costs]" in message)
    after = sync.query("select count(*) from marketing_spend")[0][0], sync.query("select count(*) from rep_costs")[0][0]
    assert after == before
    assert sync.query("select count(*) from input_files where source_file = 'marketing_spend_extra.csv'")[0][0] == 0


def test_rep_check_skipped_without_a_list_and_source_does_no_io(world, folder, tmp_path):
    inputs_source(folder=str(tmp_path / "does-not-exist"))  # nothing read until the resources run
    wb = load_workbook(folder / "rep_costs.xlsx")
    wb["rep_costs"].append(["someone@else.fr", 40, None, None, "2025-01-01", "2025-12-31"])
    wb.save(folder / "rep_costs.xlsx")
    sync = Sync(tmp_path, folder, reps=None)
    sync.run()
    assert sync.query("select hourly_cost from rep_costs where rep_email = 'someone@else.fr'") == [(Decimal("40.00"),)]


def test_shipped_samples_load(tmp_path):
    from pathlib import Path

    samples = Path(__file__).resolve().parent.parent / "docs" / "samples"
    sync = Sync(tmp_path, samples)
    sync.run()
    wh = sync.staging()
    assert wh.row_count("staging", "marketing_spend") > 0
    assert wh.row_count("staging", "rep_costs") > 0


@pytest.mark.postgres
def test_staging_on_postgresql(world, folder, tmp_path, postgres_warehouse, monkeypatch):
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS__PASSWORD", "trust-auth-ignores-it")  # dlt requires one
    pipeline = dlt.pipeline(pipeline_name="inputs_pg", destination=postgres_warehouse.dlt_destination(),
                            dataset_name="raw_inputs", pipelines_dir=str(tmp_path / "dlt_pg"))
    pipeline.run(inputs_source(folder=str(folder)))
    wh = postgres_warehouse
    for table, parts in staging.parts(["inputs"]).items():
        if parts:
            sql, _ = staging.union_sql(table, parts, wh.dialect, wh.table_exists, wh.columns)
            wh.build_table("staging", table, sql)
    assert _spend(wh) == {(s.month, s.channel, s.campaign): s.amount_eur for s in world.inputs.marketing_spend}
    assert wh.row_count("staging", "rep_costs") == len(world.inputs.rep_costs)
