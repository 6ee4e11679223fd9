"""Koban connector against the sandbox Koban twin (no mocks): full and incremental syncs into DuckDB, Obsolete
records as soft deletes, 429 storm + 5xx burst, offset-paging drift, quarantine, rerun idempotence, and the
staging SQL built on the loaded raw data (same staging tables as HubSpot, source_system 'koban')."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

import dlt
import pytest
import requests

from connectors.common.retry import NonRetryableError
from connectors.koban import client_of, koban_source, parse_koban_date
from connectors.koban.helpers import BadValue
from sandbox.generator import generate_world
from sandbox.server import SandboxServer

FAST = dict(backoff_base=0.01, backoff_max=0.05, max_retry_after=2.0, rate_limit_calls=1000)
TABLES = {"accounts": "ncThird", "contacts": "ncContact", "leads": "ncLead", "deals": "ncDeal",
          "actions": "ncAction", "invoices": "ncInvoice"}


@pytest.fixture(autouse=True)
def _quiet_logs(caplog):
    caplog.set_level(logging.ERROR, logger="dlt")


@pytest.fixture
def world():
    return generate_world(seed=42, size="tiny")


class Sync:
    def __init__(self, srv: SandboxServer, tmp_path, **kwargs):
        info = srv.apps["koban"].connection_info(srv.vendor_url("koban"))
        self.srv = srv
        self.kwargs = {"api_key": info["SOURCES__KOBAN__API_KEY"], "user_key": info["SOURCES__KOBAN__USER_KEY"],
                       "base_url": info["SOURCES__KOBAN__BASE_URL"], **FAST, **kwargs}
        self.pipeline = dlt.pipeline(pipeline_name="koban_test",
                                     destination=dlt.destinations.duckdb(str(tmp_path / "warehouse.duckdb")),
                                     dataset_name="raw_koban", pipelines_dir=str(tmp_path / "dlt"))
        self.source = None

    def run(self, **overrides) -> int:
        before = self.srv.stats()["total"]
        self.source = koban_source(**{**self.kwargs, **overrides})
        self.pipeline.run(self.source)
        return self.srv.stats()["total"] - before

    def written(self) -> dict[str, int]:
        counts = self.pipeline.last_trace.last_normalize_info.row_counts
        return {k: v for k, v in counts.items() if not k.startswith("_dlt")}

    def query(self, sql: str):
        with self.pipeline.sql_client() as client:
            return client.execute_sql(sql)

    def ids(self, table: str, deleted: bool | None = None) -> set[str]:
        where = "" if deleted is None else f" where is_deleted = {str(deleted).lower()}"
        return {r[0] for r in self.query(f"select id from raw_koban.{table}{where}")}

    def snapshot(self) -> dict[str, list]:
        out = {}
        for table in TABLES:
            cols = [r[0] for r in self.query(
                "select column_name from information_schema.columns where table_schema = 'raw_koban' and "
                f"table_name = '{table}' and column_name not in ('_dlt_load_id', '_dlt_id', '_koban_synced_at')"
                " order by column_name")]
            out[table] = sorted(map(repr, self.query(f"select {', '.join(cols)} from raw_koban.{table}")))
        return out


def _store(srv):
    return srv.apps["koban"].store


def test_parse_koban_date_forms():
    ms = 1579771515726
    want = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    assert parse_koban_date(f"/Date({ms})/") == want
    assert parse_koban_date(f"/Date({ms}+0100)/") == want  # offset is display-only
    assert parse_koban_date(ms) == want and parse_koban_date(1579771515) == want.replace(microsecond=0)
    assert parse_koban_date("/Date(-62135596800000)/") is None  # .NET MinValue = no date
    assert parse_koban_date("15/05/2020") == datetime(2020, 5, 15, tzinfo=timezone.utc)
    assert parse_koban_date(None) is None
    with pytest.raises(BadValue):
        parse_koban_date("/Date(not-a-date)/")


def test_source_call_does_no_network_io(world):
    with SandboxServer(world, port=0) as srv:
        koban_source(api_key="placeholder", user_key="placeholder", base_url=srv.vendor_url("koban") + "/api/v1")
        koban_source(api_key="x", user_key="y", base_url="http://127.0.0.1:9/api/v1")  # nothing listens there
        assert srv.stats()["total"] == 0


def test_full_sync_lands_exactly_the_world(world, tmp_path):
    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path)
        requests_sent = sync.run()
        store = _store(srv)
        for table, ctrl in TABLES.items():
            assert sync.ids(table) == set(store.objects[ctrl]), table
        assert sync.ids("accounts") == {r.record_id for r in world.company_records if r.vendor == "koban"}
        assert sync.ids("contacts") == {r.record_id for r in world.contact_records if r.vendor == "koban"}
        assert sync.ids("deals") == {d.koban_id for d in world.deals if d.koban_id}
        assert sync.ids("actions") == {a.koban_id for a in world.activities if a.koban_id}
        assert sync.ids("users") == {u["Guid"] for u in store.users}
        # one GetUpdated page per object (all < 100 records) + users + deal processes
        assert requests_sent == len(TABLES) + 2
        # .NET dates typed: the deal's forecast date and the action's start survive to the millisecond
        deal = next(iter(store.objects["ncDeal"].values()))
        got = sync.query(f"select d_prev, created_at from raw_koban.deals where id = '{deal['Guid']}'")[0]
        assert got[0] == parse_koban_date(deal["DPrev"]) and got[1] == parse_koban_date(deal["CreationDate"])


def test_incremental_after_advance_fetches_only_changes_and_soft_deletes(world, tmp_path):
    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path)
        sync.run()
        assert sync.ids("contacts", deleted=True) == set()
        world.advance()
        store = _store(srv)
        requests_sent = sync.run()
        changes = [c for c in store.changes if c[0] == world.steps]
        assert changes, "the Koban side of advance produced nothing"
        assert requests_sent == len(TABLES) + 2
        written = sync.written()
        for table, ctrl in TABLES.items():
            assert written.get(table, 0) == len({g for _, c, g, _ in changes if c == ctrl}), table
        obsolete = {g for _, c, g, k in changes if c == "ncContact" and k == "obsolete"}
        created = {g for _, c, g, k in changes if c == "ncContact" and k == "created"}
        assert obsolete and sync.ids("contacts", deleted=True) == obsolete  # still there, flagged
        assert created <= sync.ids("contacts", deleted=False)
        assert sync.ids("contacts") == set(store.objects["ncContact"])


def test_rerun_changes_nothing(world, tmp_path):
    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path)
        sync.run()
        before = sync.snapshot()
        sync.run()
        assert sync.written() == {}
        assert sync.snapshot() == before


def test_rate_limit_storm_and_5xx_burst_lose_and_duplicate_nothing(world, tmp_path):
    with SandboxServer(world, port=0, faults={"rate_limit_storm": 3, "server_errors": 4}) as srv:
        sync = Sync(srv, tmp_path, max_attempts=10)  # the 7 faults hit the first call back to back
        sync.run()
        statuses = srv.stats()["by_status"]
        assert statuses.get("429") == 3 and sum(statuses.get(s, 0) for s in ("500", "502", "503")) == 4
        assert client_of(sync.source).stats.retries == 7
        store = _store(srv)
        for table, ctrl in TABLES.items():
            rows = sync.query(f"select count(*), count(distinct id) from raw_koban.{table}")[0]
            assert rows == (len(store.objects[ctrl]), len(store.objects[ctrl])), table


def test_records_moved_during_offset_paging_are_not_lost(world, tmp_path):
    with SandboxServer(world, port=0, faults={"update_during_paging": 1, "update_object_type": "contacts"}) as srv:
        sync = Sync(srv, tmp_path, page_length=5, objects=["contacts"])
        sync.run()
        assert srv.faults.fired and srv.faults.fired[0]["fault"] == "update_during_paging"
        assert client_of(sync.source).stats.passes >= 1
        assert sync.ids("contacts") == set(_store(srv).objects["ncContact"])
        touched = srv.faults.fired[0]["id"]
        got = sync.query(f"select updated_at from raw_koban.contacts where id = '{touched}'")[0][0]
        assert got == parse_koban_date(srv.faults.fired[0]["LastUpdateDate"])


def test_malformed_record_is_quarantined_and_the_load_goes_on(world, tmp_path):
    with SandboxServer(world, port=0, faults={"malformed_record": "bad_date", "malformed_object_type": "contacts"}) as srv:
        sync = Sync(srv, tmp_path)
        sync.run()
        n = len(_store(srv).objects["ncContact"])
        assert len(sync.ids("contacts")) == n - 1
        rows = sync.query("select source, object_type, record_id, reason from raw_koban._quarantine")
        assert len(rows) == 1 and rows[0][:2] == ("koban", "contacts") and "CreationDate" in rows[0][3]
        assert rows[0][2] not in sync.ids("contacts")


def test_bad_keys_fail_with_a_clear_message(world, tmp_path):
    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path, user_key="wrong")
        with pytest.raises(Exception) as err:
            sync.run()
        assert "X-ncUser" in str(err.value) or isinstance(err.value.__cause__, NonRetryableError)
        assert srv.stats()["by_status"].get("401", 0) >= 1
        assert srv.stats()["by_status"].get("401", 0) <= 8  # not retried


def test_sandbox_speaks_koban(world):
    with SandboxServer(world, port=0) as srv:
        info = srv.apps["koban"].connection_info(srv.vendor_url("koban"))
        base, headers = info["SOURCES__KOBAN__BASE_URL"], {"X-ncApi": info["SOURCES__KOBAN__API_KEY"],
                                                           "X-ncUser": info["SOURCES__KOBAN__USER_KEY"]}
        page = requests.get(f"{base}/ncDeal/GetUpdated", params={"updated": 0, "s": 0, "l": 2}, headers=headers).json()
        assert set(page) == {"Length", "List"} and len(page["List"]) == min(2, page["Length"])
        deal = page["List"][0]
        assert deal["LastUpdateDate"].startswith("/Date(") and deal["Result"] in (None, "WON", "LOST", "SLEEP")
        one = requests.get(f"{base}/ncDeal/GetOne", params={"id": deal["Guid"]}, headers=headers).json()
        assert one["Success"] is True and one["Result"]["Guid"] == deal["Guid"]
        # `updated` filters on the last change (unix seconds)
        newest = max(_store(srv).updated_ms["ncDeal"].values()) // 1000
        later = requests.get(f"{base}/ncDeal/GetUpdated", params={"updated": newest + 1}, headers=headers).json()
        assert later == {"Length": 0, "List": []}
        denied = requests.get(f"{base}/ncDeal/GetUpdated", params={"updated": 0})
        assert denied.status_code == 401 and denied.json()["Success"] is False


def _build_staging(sync: Sync, tmp_path):
    from transforms.sales_model import load_sales_model
    from transforms.staging import parts, union_sql
    from warehouse import Warehouse

    wh = Warehouse(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    wh.ensure_schemas()
    for name, frame in load_sales_model("sales_model.yaml").config_frames().items():
        wh.write_frame("staging", name, frame)
    by_table = parts(["koban"])
    order = ["owners", "pipeline_stages"] + sorted(t for t in by_table if t not in ("owners", "pipeline_stages"))
    notes = {}
    for table in order:
        sql, notes[table] = union_sql(table, by_table[table], wh.dialect, wh.table_exists, wh.columns)
        wh.build_table("staging", table, sql)
    return wh, notes


def test_staging_from_koban_raw(world, tmp_path, monkeypatch):
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[1])
    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path)
        sync.run()
        store = _store(srv)
    wh, notes = _build_staging(sync, tmp_path)
    assert not any("skipped" in n for ns in notes.values() for n in ns), notes

    from stdnum.fr import siren as std_siren, siret as std_siret
    companies = wh.query("select * from staging.companies")
    assert {c["company_id"] for c in companies} == set(store.objects["ncThird"])
    assert all(c["source_system"] == "koban" for c in companies)
    by_key = {r.record_id: world.company(r.company_key) for r in world.company_records if r.vendor == "koban"}
    for c in companies:
        if c["siren"]:
            assert std_siren.is_valid(c["siren"]) and c["siren"] == by_key[c["company_id"]].siren
        if c["siret"]:
            assert std_siret.is_valid(c["siret"])
        if c["vat_number"]:
            assert c["vat_number"] == by_key[c["company_id"]].vat
    assert any(c["siret"] for c in companies) and any(c["tier"] for c in companies)
    # the account type in HubSpot's vocabulary (direct / reseller / partner), whatever the customer status
    recs = {r.record_id: r for r in world.company_records if r.vendor == "koban"}
    assert {c["company_id"]: c["account_type"] for c in companies} == \
        {c["company_id"]: recs[c["company_id"]].account_type for c in companies}
    assert {c["account_type"] for c in companies} >= {"direct", "reseller"}

    contacts = wh.query("select contact_id, email, company_id from staging.contacts")
    recs = {r.record_id: r for r in world.contact_records if r.vendor == "koban"}
    assert {c["contact_id"] for c in contacts} == set(recs)
    assert all(c["email"] == recs[c["contact_id"]].email for c in contacts)

    stages = {(s["stage_id"]): s for s in wh.query("select * from staging.pipeline_stages")}
    assert stages["WON"]["is_closed"] and stages["WON"]["is_won"] and stages["LOST"]["is_closed"]
    assert not stages["LOST"]["is_won"] and not stages["RDV"]["is_closed"] and stages["RDV"]["stage_order"] == 0

    deals = {d["deal_id"]: d for d in wh.query("select * from staging.deals")}
    assert set(deals) == set(store.objects["ncDeal"])
    for d in deals.values():
        assert (d["pipeline_id"], d["stage_id"]) in {(s["pipeline_id"], s["stage_id"]) for s in stages.values()}
        raw = store.objects["ncDeal"][d["deal_id"]]
        assert d["is_won"] == (raw["Result"] == "WON") and d["is_closed"] == (raw["Result"] is not None)
        assert float(d["amount"]) == raw["Amountprev"] and 0 <= d["probability"] <= 1
    events = wh.query("select deal_id, stage_id, entered_at, exited_at from staging.deal_stage_events")
    closed = [d for d in deals.values() if d["is_closed"]]
    assert {(e["deal_id"], e["stage_id"]) for e in events} >= {(d["deal_id"], d["stage_id"]) for d in closed}
    assert all(e["stage_id"] == "RDV" for e in events if e["stage_id"] not in ("WON", "LOST", "SLEEP"))

    acts = {a["activity_id"]: a for a in wh.query("select * from staging.activities")}
    truth = {a.koban_id: a for a in world.activities if a.koban_id}
    assert set(acts) == set(truth)
    for kid, a in acts.items():
        t = truth[kid]
        kind = {"call": "call", "email": "email", "note": "note", "task": "task"}.get(t.kind)
        if t.kind == "meeting":
            kind = "demo" if (t.activity_type or "").lower() == "demo" else f"meeting_{t.meeting_type}"
        assert a["activity_type"] == kind
        want = t.duration_ms / 60000 if t.duration_ms and t.kind in ("call", "meeting") else None
        assert (a["duration_minutes"] is None and want is None) or abs(a["duration_minutes"] - want) < 1e-6

    owners = wh.query("select owner_id, team_name from staging.owners")
    assert {o["owner_id"] for o in owners} == {u["Guid"] for u in store.users} and all(o["team_name"] for o in owners)
    assert wh.query("select count(*) as n from staging.owner_team_history")[0]["n"] == len(owners)
    lifecycle = wh.query("select contact_id, stage from staging.lifecycle_events")
    assert {e["contact_id"] for e in lifecycle if e["stage"] == "lead"} == set(recs)


def _touch(store, ctrl: str, rec: dict, when: datetime) -> None:
    """A change made in Koban at `when`: the record's LastUpdateDate (and GetUpdated's sort key) move there."""
    from sandbox.koban_render import dotnet_date, epoch_ms

    rec["LastUpdateDate"] = dotnet_date(when)
    rec["DUpdated"] = int(when.timestamp())
    store.updated_ms[ctrl][rec["Guid"]] = epoch_ms(when)


def _cursor(sync: Sync, table: str):
    return sync.pipeline.state["sources"]["koban"]["resources"][table].get("cursor")


def test_a_record_dated_in_the_future_does_not_carry_the_cursor_past_real_changes(world, tmp_path):
    """The cursor was the newest LastUpdateDate seen: one contact dated a year ahead (a bad value, a skewed clock)
    moved it a year ahead, and every later sync asked GetUpdated only for records newer than that, so the changes
    made meanwhile were never read. The stored cursor is now capped at the sync's start; the future-dated record
    is re-read by each sync but not rewritten while unchanged."""
    from datetime import timedelta

    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path)
        sync.run()
        store = _store(srv)
        first, edited, dropped = sorted(store.objects["ncContact"].values(), key=lambda c: c["Guid"])[:3]
        _touch(store, "ncContact", first, datetime.now(timezone.utc) + timedelta(days=365))
        started = datetime.now(timezone.utc)
        sync.run()
        assert sync.written().get("contacts") == 1

        # changes made in Koban after that sync (stamped by the clock, as Koban stamps them)
        edited["Function"] = "Directrice des achats"
        _touch(store, "ncContact", edited, datetime.now(timezone.utc))
        dropped["Obsolete"] = True
        _touch(store, "ncContact", dropped, datetime.now(timezone.utc))
        sync.run()
        assert sync.written().get("contacts") == 2  # both changes, not the future-dated record again
        got = {r[0]: r[1:] for r in sync.query("select id, function, is_deleted from raw_koban.contacts")}
        assert got[edited["Guid"]] == ("Directrice des achats", False) and got[dropped["Guid"]][1] is True
        cursor = datetime.fromisoformat(_cursor(sync, "contacts"))
        assert started <= cursor <= datetime.now(timezone.utc)
        sync.run()
        assert sync.written() == {}


def test_a_cursor_stored_in_the_future_by_an_older_version_reads_everything_again(world, tmp_path):
    """A pipeline whose cursor an older version already carried into the future skipped every change since; that
    moment is unknown, so the next sync reads the object from the start again (merge: nothing duplicated)."""
    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path, objects=["contacts"], include_users=False, include_processes=False)
        sync.run()
        store = _store(srv)
        with sync.pipeline.managed_state() as state:
            state["sources"]["koban"]["resources"]["contacts"]["cursor"] = "2099-01-01T00:00:00+00:00"
        world.advance()  # changes dated before that cursor
        sync.run()
        changed = {g for _, c, g, _ in store.changes if c == "ncContact"}
        assert changed
        rows = dict(sync.query("select id, updated_at from raw_koban.contacts"))
        assert rows.keys() == store.objects["ncContact"].keys()
        assert all(rows[g] == parse_koban_date(store.objects["ncContact"][g]["LastUpdateDate"]) for g in changed)
        assert sync.query("select count(*) - count(distinct id) from raw_koban.contacts")[0][0] == 0
        assert _cursor(sync, "contacts") < "2099"


def test_a_record_skipped_by_paging_drift_is_read_by_the_next_sync(world, tmp_path):
    """Offset paging skips a record when another one moves during the read. After the last re-pass the connector
    used to store its cursor anyway (the newest change seen, here the moved record's new stamp): the skipped
    record, older, was never asked for again. Now the cursor stays and the next sync reads the window again."""
    with SandboxServer(world, port=0, faults={"update_during_paging": 1, "update_object_type": "contacts"}) as srv:
        sync = Sync(srv, tmp_path, page_length=5, max_passes=1, objects=["contacts"], include_users=False,
                    include_processes=False)
        sync.run()
        assert srv.faults.fired and srv.faults.fired[0]["fault"] == "update_during_paging"
        everyone = set(_store(srv).objects["ncContact"])
        missed = everyone - sync.ids("contacts")
        assert len(missed) == 1  # the drift this test is about
        sync.run()
        # what the incomplete read loaded is remembered: the re-read rewrites only the missed record and the one
        # that moved, not every record again (a tenant whose reads stay incomplete rewrote a growing window)
        assert missed <= sync.ids("contacts") and sync.written()["contacts"] <= 2 < len(everyone)
        world.advance()
        sync.run()
        assert missed <= sync.ids("contacts")
        assert sync.ids("contacts") == set(_store(srv).objects["ncContact"])
        assert sync.query("select count(*) - count(distinct id) from raw_koban.contacts")[0][0] == 0


def test_a_step_removed_from_a_deal_process_leaves_raw_and_staging(world, tmp_path, monkeypatch):
    """deal_process_steps is keyed by (process, position): a process that lost a step used to keep its old last
    position, so the last step was there twice (staging.pipeline_stages then held a stage twice, breaking its key).
    Positions a listed process no longer has are now deleted; the marker row is not stored."""
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[1])
    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path)
        sync.run()
        process = _store(srv).processes[0]
        codes = [s["Extcode"] for s in process["Steps"]]
        del process["Steps"][1]
        sync.run()
        got = sync.query("select step_order, extcode from raw_koban.deal_process_steps order by step_order")
        assert got == list(enumerate(codes[:1] + codes[2:]))
        assert sync.written() == {"deal_process_steps": 4}  # 3 moved up one position, 1 position deleted
        sync.run()
        assert sync.written() == {}
    wh, _ = _build_staging(sync, tmp_path)
    stages = wh.query("select stage_id, stage_order from staging.pipeline_stages where source_system = 'koban' "
                      "order by stage_order")
    assert [s["stage_id"] for s in stages] == codes[:1] + codes[2:] + ["WON", "LOST", "SLEEP"]


def test_a_process_unlisted_then_listed_again_with_fewer_steps_loses_them(world, tmp_path, monkeypatch):
    """A process missing from GetAll for one sync (deactivated, or a transient empty answer) keeps its steps; listed
    again with a step fewer, its old last position must go, as for a process that never left (found in review)."""
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[1])
    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path)
        sync.run()
        store = _store(srv)
        process = store.processes[0]
        pid, codes = process["Guid"], [s["Extcode"] for s in process["Steps"]]
        steps = f"select step_order, extcode from raw_koban.deal_process_steps where process_id = '{pid}' order by 1"
        store.processes.remove(process)
        sync.run()
        assert sync.query(steps) == list(enumerate(codes))  # not listed: kept as last loaded
        del process["Steps"][1]
        store.processes.insert(0, process)
        sync.run()
        assert sync.query(steps) == list(enumerate(codes[:1] + codes[2:]))


def test_lost_links_leave_raw_and_staging(world, tmp_path, monkeypatch):
    """A contact moved to another account or left without one, a deal whose account changed and whose contact was
    cleared, an action taken off its deal: the incremental sync rewrites each whole row (merge on id), so no old
    link survives in raw or staging; child rows (tags) go with their record."""
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[1])
    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path)
        sync.run()
        store = _store(srv)
        now = datetime.now(timezone.utc)
        linked = sorted((c for c in store.objects["ncContact"].values() if c["Third"]), key=lambda c: c["Guid"])
        moved, orphan = linked[:2]
        other = next(t for t in sorted(store.objects["ncThird"].values(), key=lambda t: t["Guid"])
                     if t["Guid"] != moved["Third"]["Guid"])
        moved["Third"] = {"Guid": other["Guid"], "Label": other["Label"], "Extcode": None}
        orphan["Third"] = None
        deal = next(d for d in sorted(store.objects["ncDeal"].values(), key=lambda d: d["Guid"])
                    if d["Third"] and d["Contact"] and d["Tags"])
        new_home = next(t for t in sorted(store.objects["ncThird"].values(), key=lambda t: t["Guid"])
                        if t["Guid"] != deal["Third"]["Guid"])
        deal["Third"], deal["Contact"], deal["Tags"] = {"Guid": new_home["Guid"], "Label": new_home["Label"]}, None, []
        action = next(a for a in sorted(store.objects["ncAction"].values(), key=lambda a: a["Guid"]) if a["Deal"])
        action["Deal"] = None
        for ctrl, rec in (("ncContact", moved), ("ncContact", orphan), ("ncDeal", deal), ("ncAction", action)):
            _touch(store, ctrl, rec, now)
        sync.run()
        assert sync.written() == {"contacts": 2, "deals": 1, "actions": 1}
        assert sync.query(f"select count(*) from raw_koban.deals__tags t join raw_koban.deals d "
                          f"on t._dlt_root_id = d._dlt_id where d.id = '{deal['Guid']}'")[0][0] == 0
    wh, _ = _build_staging(sync, tmp_path)
    contacts = {c["contact_id"]: c["company_id"] for c in wh.query("select contact_id, company_id from staging.contacts")}
    assert contacts[moved["Guid"]] == other["Guid"] and contacts[orphan["Guid"]] is None
    (d,) = wh.query(f"select company_id, contact_id, deal_type from staging.deals where deal_id = '{deal['Guid']}'")
    assert (d["company_id"], d["contact_id"], d["deal_type"]) == (new_home["Guid"], None, None)
    (a,) = wh.query(f"select deal_id from staging.activities where activity_id = '{action['Guid']}'")
    assert a["deal_id"] is None


def test_obsolete_then_restored_records_in_raw_and_staging(world, tmp_path, monkeypatch):
    """Koban deletes by setting Obsolete (LastUpdateDate moves): the row stays, flagged, and staging carries the
    flag that core filters on; a record restored (Obsolete false again) comes back live."""
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[1])
    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path)
        sync.run()
        store = _store(srv)
        contact = sorted(store.objects["ncContact"].values(), key=lambda c: c["Guid"])[0]
        deal = sorted(store.objects["ncDeal"].values(), key=lambda d: d["Guid"])[0]
        for ctrl, rec in (("ncContact", contact), ("ncDeal", deal)):
            rec["Obsolete"] = True
            _touch(store, ctrl, rec, datetime.now(timezone.utc))
        sync.run()
        assert contact["Guid"] in sync.ids("contacts", deleted=True)
        assert sync.ids("deals", deleted=True) == {deal["Guid"]}
        wh, _ = _build_staging(sync, tmp_path)
        assert wh.query(f"select is_deleted from staging.deals where deal_id = '{deal['Guid']}'") == \
            [{"is_deleted": True}]
        assert wh.query(f"select is_deleted from staging.contacts where contact_id = '{contact['Guid']}'") == \
            [{"is_deleted": True}]
        wh.dispose()
        for ctrl, rec in (("ncContact", contact), ("ncDeal", deal)):
            rec["Obsolete"] = False
            _touch(store, ctrl, rec, datetime.now(timezone.utc))
        sync.run()
        assert sync.written() == {"contacts": 1, "deals": 1, "deals__tags": 1}
        assert deal["Guid"] in sync.ids("deals", deleted=False) and contact["Guid"] in sync.ids("contacts", False)
    wh, _ = _build_staging(sync, tmp_path)
    assert wh.query(f"select is_deleted from staging.deals where deal_id = '{deal['Guid']}'") == \
        [{"is_deleted": False}]
    assert sync.query("select count(*) - count(distinct id) from raw_koban.deals")[0][0] == 0


def test_a_transient_failure_mid_paging_fails_the_run_and_keeps_the_cursor(world, tmp_path):
    """A 503 that outlasts the retries on the second GetUpdated page of an incremental sync fails the run: dlt
    commits neither the first page's rows nor the cursor, so the healed rerun reads the same window and loads
    every change once."""
    from dlt.pipeline.exceptions import PipelineStepFailed
    from sandbox.servers import Response

    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path, page_length=5, max_attempts=2, objects=["contacts"], include_users=False,
                    include_processes=False)
        sync.run()
        store = _store(srv)
        state = lambda: sorted(sync.query("select id, function, updated_at from raw_koban.contacts"))  # noqa: E731
        cursor, before = _cursor(sync, "contacts"), state()
        changed = sorted(store.objects["ncContact"].values(), key=lambda c: c["Guid"])[:7]
        for n, rec in enumerate(changed):
            rec["Function"] = f"Poste {n}"
            _touch(store, "ncContact", rec, datetime.now(timezone.utc))
        orig, hits = srv.dispatch, []

        def dispatch(method, raw_path, headers, body):
            if "/ncContact/GetUpdated" in raw_path and "s=5&" in raw_path:
                hits.append(raw_path)
                return Response(503, "<html><h2>503 - Service Unavailable</h2></html>", content_type="text/html")
            return orig(method, raw_path, headers, body)

        srv.dispatch = dispatch
        with pytest.raises(PipelineStepFailed, match="HTTP 503"):
            sync.run()
        srv.dispatch = orig
        assert len(hits) == 2  # every attempt was made
        assert _cursor(sync, "contacts") == cursor and state() == before
        sync.run()
        assert sync.written() == {"contacts": 7}
        got = dict(sync.query("select id, function from raw_koban.contacts"))
        assert all(got[r["Guid"]] == r["Function"] for r in changed)
        assert sync.query("select count(*) - count(distinct id) from raw_koban.contacts")[0][0] == 0
        assert _cursor(sync, "contacts") > cursor


def test_an_obsolete_lead_no_longer_dates_its_contact_as_a_lead(world, tmp_path, monkeypatch):
    """staging.lifecycle_events dates a contact's 'lead' stage from the Koban lead with its e-mail when that lead is
    older. A lead deleted in Koban (Obsolete) still dated it; it no longer does."""
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[1])
    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path)
        sync.run()
        store = _store(srv)
        lead = sorted(store.objects["ncLead"].values(), key=lambda x: x["Guid"])[0]
        contact = next(c for c in store.objects["ncContact"].values()
                       if (c["EMail"] or "").lower() == lead["EMail"].lower())
        assert parse_koban_date(lead["CreationDate"]) < parse_koban_date(contact["CreationDate"])

        def lead_at(wh):
            return wh.query(f"select entered_at from staging.lifecycle_events where contact_id = '{contact['Guid']}' "
                            "and stage = 'lead'")[0]["entered_at"]

        wh, _ = _build_staging(sync, tmp_path)
        assert lead_at(wh) == parse_koban_date(lead["CreationDate"])
        wh.dispose()
        lead["Obsolete"] = True
        _touch(store, "ncLead", lead, datetime.now(timezone.utc))
        sync.run()
    wh, _ = _build_staging(sync, tmp_path)
    assert lead_at(wh) == parse_koban_date(contact["CreationDate"])


def _reconciliation_due(sync: Sync) -> None:
    """Eight days pass for the hard-delete reconciliation (default period 7 days) of every object table."""
    from datetime import timedelta

    long_ago = (datetime.now(timezone.utc) - timedelta(days=8)).isoformat()
    with sync.pipeline.managed_state() as state:
        for table, res in state["sources"]["koban"]["resources"].items():
            if table in TABLES:
                res["reconciled_at"] = long_ago


def _gone(sync: Sync) -> set[tuple[str, str]]:
    if "gone_records" not in sync.pipeline.default_schema.data_table_names(seen_data_only=True):
        return set()  # nothing flagged yet: the table is not created
    return {tuple(r) for r in sync.query("select object_type, id from raw_koban.gone_records")}


def test_hard_deleted_contact_and_deal_leave_staging_at_the_reconciliation_not_before(world, tmp_path, monkeypatch):
    """A record purged in Koban (no Obsolete flag) never shows in GetUpdated again, so it stayed live in raw and
    staging for good. Every `reconcile_every_days` a sync now lists every record (GetUpdated from 0) and flags the
    ids loaded before that are missing in raw_koban.gone_records (the raw row is kept); staging reads them as
    deleted. Not before the period is due, not twice, and a record listed again is live again."""
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[1])

    def deleted(wh, table, key, rid):
        return wh.query(f"select is_deleted from staging.{table} where {key} = '{rid}'")[0]["is_deleted"]

    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path)
        sync.run()
        store = _store(srv)
        # the oldest of each: far outside the incremental window when restored with their stamps below
        contact, deal = (min(store.updated_ms[c], key=lambda g, c=c: (store.updated_ms[c][g], g))
                         for c in ("ncContact", "ncDeal"))
        purged = {"ncContact": store.purge("ncContact", contact), "ncDeal": store.purge("ncDeal", deal)}
        sync.run()  # the next daily sync: the reconciliation is not due yet
        assert sync.written() == {} and _gone(sync) == set()
        wh, _ = _build_staging(sync, tmp_path)
        assert not deleted(wh, "contacts", "contact_id", contact) and not deleted(wh, "deals", "deal_id", deal)
        wh.dispose()

        _reconciliation_due(sync)
        sync.run(reconcile_every_days=0)  # 0 disables it
        assert sync.written() == {} and _gone(sync) == set()
        sync.run()
        assert sync.written() == {"gone_records": 2}
        assert _gone(sync) == {("contacts", contact), ("deals", deal)}
        assert contact in sync.ids("contacts") and deal in sync.ids("deals")  # never deleted physically
        wh, _ = _build_staging(sync, tmp_path)
        assert deleted(wh, "contacts", "contact_id", contact) and deleted(wh, "deals", "deal_id", deal)
        assert sum(not r["is_deleted"] for r in wh.query("select is_deleted from staging.deals")) == \
            len(store.objects["ncDeal"])
        wh.dispose()

        _reconciliation_due(sync)
        sync.run()  # a rerun flags nothing twice and rewrites nothing
        assert sync.written() == {}
        assert sync.query("select count(*), count(distinct id) from raw_koban.gone_records")[0] == (2, 2)
        for table in TABLES:
            assert sync.query(f"select count(*) - count(distinct id) from raw_koban.{table}")[0][0] == 0, table

        # restored in Koban with their old LastUpdateDate: outside the incremental window, found by the next
        # reconciliation, live again
        from sandbox.koban_render import epoch_ms

        for ctrl, rec in purged.items():
            store.put(ctrl, rec, epoch_ms(parse_koban_date(rec["LastUpdateDate"])))
        sync.run()
        assert _gone(sync) == {("contacts", contact), ("deals", deal)}
        _reconciliation_due(sync)
        sync.run()
        assert _gone(sync) == set()
        assert sync.written().get("contacts") == 1 and sync.written().get("deals") == 1
    wh, _ = _build_staging(sync, tmp_path)
    assert not deleted(wh, "contacts", "contact_id", contact) and not deleted(wh, "deals", "deal_id", deal)
    assert sync.query("select count(*) - count(distinct id) from raw_koban.deals")[0][0] == 0


def test_an_incomplete_listing_marks_nothing_gone(world, tmp_path):
    """The reconciliation listing is a long offset-paged read: a record moving during it makes another one skipped
    (see test_a_record_skipped_by_paging_drift...). A skipped record is not gone, so an incomplete listing flags
    nothing and the reconciliation is tried again by the next sync."""
    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path, page_length=5, max_passes=1, objects=["contacts"], include_users=False,
                    include_processes=False)
        sync.run()
        store = _store(srv)
        purged = sorted(store.objects["ncContact"])[-1]
        store.purge("ncContact", purged)
        _reconciliation_due(sync)
        srv.faults.set(update_during_paging=1, update_object_type="contacts")
        sync.run()
        assert srv.faults.fired and srv.faults.fired[0]["fault"] == "update_during_paging"
        assert _gone(sync) == set()
        assert purged in sync.ids("contacts", deleted=False)
        sync.run()  # still due: the listing is complete this time
        assert _gone(sync) == {("contacts", purged)}
        assert sync.query("select count(*) - count(distinct id) from raw_koban.contacts")[0][0] == 0


def test_a_listing_that_lost_most_records_marks_none_gone(world, tmp_path, caplog):
    """An API user who lost visibility of most records lists few of them: the reconciliation must not take that for
    a purge and empty the marts. Above reconcile_max_gone_share nothing is marked, with an error saying so; a user
    who did purge them accepts it for one sync with the share set to 1."""
    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path, objects=["contacts"], include_users=False, include_processes=False)
        sync.run()
        store = _store(srv)
        every = sorted(store.objects["ncContact"])
        for guid in every[: len(every) * 3 // 4]:
            store.purge("ncContact", guid)
        _reconciliation_due(sync)
        with caplog.at_level("ERROR", logger="connectors.koban"):
            sync.run()
        assert _gone(sync) == set()
        assert "none is marked gone" in caplog.text and "RECONCILE_MAX_GONE_SHARE" in caplog.text
        _reconciliation_due(sync)
        sync.run(reconcile_max_gone_share=1)
        assert len(_gone(sync)) == len(every) * 3 // 4
