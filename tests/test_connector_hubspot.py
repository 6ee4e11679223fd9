"""HubSpot connector against the sandbox HubSpot server (no mocks): full and incremental syncs into DuckDB,
deletes, rate limits, 5xx, daily quota, quarantine, the search result cap, both API path versions."""
from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta, timezone

import dlt
import pytest
from dlt.pipeline import helpers
import requests

from connectors.common.retry import QuotaExhaustedError, RetryPolicy, parse_retry_after, send_with_retry
from connectors.common.throttle import RateLimiter
from connectors.hubspot import client_of, hubspot_source
from connectors.hubspot.settings import ALL_OBJECTS, ASSOCIATIONS, last_modified_property
from sandbox.generator import generate_world
from sandbox.server import SandboxServer

ENGAGEMENTS = ("calls", "meetings", "emails", "notes", "tasks")
FAST = dict(backoff_base=0.01, backoff_max=0.05, max_retry_after=2.0)


@pytest.fixture(autouse=True)
def _quiet_logs(caplog):
    caplog.set_level(logging.WARNING, logger="connectors.hubspot")


@pytest.fixture
def world():
    return generate_world(seed=42, size="tiny")


def _token(srv: SandboxServer) -> str:
    return srv.apps["hubspot"].config.token


class Sync:
    """One dlt pipeline (DuckDB file + pipelines dir in tmp_path) syncing from one sandbox server."""

    def __init__(self, srv: SandboxServer, tmp_path, **source_kwargs):
        self.srv = srv
        self.kwargs = {"access_token": _token(srv), "base_url": srv.vendor_url("hubspot"), **FAST, **source_kwargs}
        self.pipeline = dlt.pipeline(
            pipeline_name="hubspot_test",
            destination=dlt.destinations.duckdb(str(tmp_path / "warehouse.duckdb")),
            dataset_name="raw_hubspot",
            pipelines_dir=str(tmp_path / "dlt"),
        )
        self.last_source = None

    def run(self, **overrides) -> int:
        """Run one sync; returns the number of HTTP requests the sandbox saw for it."""
        before = self.srv.stats()["total"]
        self.last_source = hubspot_source(**{**self.kwargs, **overrides})
        self.pipeline.run(self.last_source)
        return self.srv.stats()["total"] - before

    def query(self, sql: str):
        with self.pipeline.sql_client() as client:
            return client.execute_sql(sql)

    def tables(self) -> set[str]:
        rows = self.query("select table_name from information_schema.tables where table_schema = 'raw_hubspot'")
        return {r[0] for r in rows}

    def archived_by_id(self, table: str) -> dict[str, bool]:
        return {r[0]: r[1] for r in self.query(f"select id, archived from raw_hubspot.{table}")}

    def snapshot(self) -> dict[str, list]:
        out = {}
        for table in sorted(t for t in self.tables() if not t.startswith("_dlt")):
            cols = [r[0] for r in self.query(
                "select column_name from information_schema.columns where table_schema = 'raw_hubspot' "
                f"and table_name = '{table}' and column_name not in ('_dlt_load_id', '_dlt_id', '_dlt_parent_id', "
                "'_dlt_root_id')"
                " order by column_name")]
            quoted = ", ".join(f'"{c}"' for c in cols)
            out[table] = sorted(map(repr, self.query(f"select {quoted} from raw_hubspot.{table}")))
        return out


def store_archived_by_id(world, object_type: str) -> dict[str, bool]:
    return {rid: bool(r.get("archived")) for rid, r in world.hubspot.objects[object_type].items()}


def assert_warehouse_matches_store(sync: Sync, world, skip_ids=()):
    for object_type in ALL_OBJECTS:
        expected = {k: v for k, v in store_archived_by_id(world, object_type).items() if k not in skip_ids}
        assert sync.archived_by_id(object_type) == expected, object_type
        stamps = dict(sync.query(f"select id, strftime(updated_at, '%Y-%m-%dT%H:%M:%S.%g') "
                                 f"from raw_hubspot.{object_type}"))
        for rid in expected:
            assert stamps[rid] + "Z" == world.hubspot.objects[object_type][rid]["updatedAt"], (object_type, rid)
        dupes = sync.query(f"select count(*) - count(distinct id) from raw_hubspot.{object_type}")[0][0]
        assert dupes == 0


# ------------------------------------------------------------------------------------------- full sync

@pytest.mark.parametrize("api_version", ["2026-03", pytest.param("v3", marks=pytest.mark.slow)])
def test_full_sync_lands_every_record_with_archived_flagged(world, tmp_path, api_version):
    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path, api_version=api_version, custom_properties={"contacts": ["lead_source"]})
        requests_full = sync.run()
        paths = srv.stats()["by_path"]
    prefix = "/hubspot/crm/v3/objects/" if api_version == "v3" else "/hubspot/crm/objects/2026-03/"
    assert all(prefix in p or "/objects/" not in p for p in paths), paths
    assert requests_full == client_of(sync.last_source).stats.total

    assert_warehouse_matches_store(sync, world)
    assert any(store_archived_by_id(world, "contacts").values()), "the tiny world has archived contacts"

    # properties flattened under their HubSpot names, text as sent; custom property opted in
    row = sync.query("select email, lifecyclestage, lead_source, createdate from raw_hubspot.contacts "
                     "where not archived order by id limit 1")[0]
    first = world.hubspot.objects["contacts"][min(k for k, v in store_archived_by_id(world, "contacts").items()
                                                  if not v)]["properties"]
    assert row == (first.get("email"), first.get("lifecyclestage"), first.get("lead_source"), first.get("createdate"))

    # owners (archived owner included), pipelines and stages with labels/probability/closed flag
    owners = dict(sync.query("select id, archived from raw_hubspot.owners"))
    assert owners == {str(o["id"]): bool(o["archived"]) for o in world.hubspot.owners}
    assert any(owners.values())
    stages = {r[0]: r[1:] for r in sync.query(
        "select id, label, probability, is_closed, display_order from raw_hubspot.pipeline_stages")}
    for pipeline in world.hubspot.pipelines["deals"]:
        for stage in pipeline["stages"]:
            assert stages[stage["id"]][:3] == (stage["label"], str(stage["metadata"]["probability"]),
                                               str(stage["metadata"]["isClosed"]).lower())

    # property history of the configured properties, one row per store entry
    for object_type, prop in (("deals", "dealstage"), ("contacts", "lifecyclestage")):
        expected = {
            (rid, e["timestamp"])
            for rid, per in world.hubspot.property_history[object_type].items()
            if not world.hubspot.objects[object_type][rid].get("archived")
            for e in per.get(prop, [])
        }
        got = {(r[0], r[1] + "Z") for r in sync.query(
            f"select object_id, strftime(timestamp, '%Y-%m-%dT%H:%M:%S.%g') from "
            f"raw_hubspot.{object_type}_property_history where property = '{prop}'")}
        assert got == expected and expected

    # associations from the owning side, with type ids and categories
    pairs = {(r[0], r[1], r[2]) for r in sync.query(
        "select from_id, to_id, type_id from raw_hubspot.associations_deal_company")}
    live_deals = {k for k, v in store_archived_by_id(world, "deals").items() if not v}
    expected_pairs = {(a, b, t) for a, b, t in world.hubspot.associations.get(("deals", "companies"), [])
                      if a in live_deals}
    assert expected_pairs and expected_pairs <= pairs
    assert {r[0] for r in sync.query("select distinct category from raw_hubspot.associations_deal_company")} \
        <= {"HUBSPOT_DEFINED", "USER_DEFINED"}
    for _, _, table in ASSOCIATIONS:
        assert table in sync.tables() or table == "associations_engagement_deal"


# ------------------------------------------------------------------------------------------- incremental

@pytest.mark.slow
def test_incremental_sync_reads_only_changes_and_soft_deletes(world, tmp_path):
    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path)
        full = sync.run()
        changes = world.advance(1)
        incremental = sync.run()
        incremental_source = sync.last_source
        incremental_load_id = sync.pipeline.last_trace.last_normalize_info.loads_ids[-1]
        assert_warehouse_matches_store(sync, world)
        rerun_requests = sync.run()

    assert changes.changes, "advance() changed something"
    # Only changed records are read and written: one search page and one archived-list page per object
    # (tiny world), and the rows the incremental load wrote are exactly the changed records.
    stats = client_of(incremental_source).stats
    assert stats.by_kind["search"] == len(ALL_OBJECTS) and stats.by_kind["list"] == len(ALL_OBJECTS)
    assert incremental < full and rerun_requests < incremental
    for object_type in ALL_OBJECTS:
        written = {r[0] for r in sync.query(f"select id from raw_hubspot.{object_type} where _dlt_load_id = "
                                            f"'{incremental_load_id}'")}
        assert written == changes.ids(object_type), object_type
    # deletes arrive as archived rows, never as missing or still-live rows
    for object_type in ALL_OBJECTS:
        archived_now = changes.ids(object_type, "archived")
        flags = sync.archived_by_id(object_type)
        assert all(flags[i] is True for i in archived_now), object_type
    assert any(changes.ids(o, "archived") for o in ALL_OBJECTS)
    # created records arrived with their associations
    created_deals = changes.ids("deals", "created")
    if created_deals:
        linked = {r[0] for r in sync.query("select from_id from raw_hubspot.associations_deal_company")}
        assert created_deals <= linked
    # the changed deals' new stage history is there
    updated_deals = changes.ids("deals", "updated")
    if updated_deals:
        rid = sorted(updated_deals)[0]
        store_hist = world.hubspot.property_history["deals"].get(rid, {})
        want = {(p, e["timestamp"]) for p, entries in store_hist.items() if p in ("dealstage", "amount")
                for e in entries}
        got = {(r[0], r[1] + "Z") for r in sync.query(
            "select property, strftime(timestamp, '%Y-%m-%dT%H:%M:%S.%g') from raw_hubspot.deals_property_history "
            f"where object_id = '{rid}' and property in ('dealstage', 'amount')")}
        assert want <= got


@pytest.mark.slow
def test_rerun_without_change_changes_nothing(world, tmp_path):
    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path)
        sync.run()
        world.advance(1)
        sync.run()
        before = sync.snapshot()
        sync.run()
        after = sync.snapshot()
    assert before == after
    assert sum(len(v) for v in before.values()) > 500


@pytest.mark.slow
def test_record_updated_while_paging_is_caught_next_sync(world, tmp_path):
    with SandboxServer(world, port=0, faults={"update_during_paging": 1, "update_object_type": "contacts"}) as srv:
        sync = Sync(srv, tmp_path)
        sync.run()
        fired = [f for f in srv.faults.fired if f["fault"] == "update_during_paging"]
        assert fired
        sync.run()
    assert_warehouse_matches_store(sync, world)


def _contacts_state(sync: Sync) -> dict:
    return sync.pipeline.state["sources"]["hubspot"]["resources"]["contacts"]


def _loaded_stamps(sync: Sync) -> dict:
    return dict(sync.query("select id, strftime(updated_at, '%Y-%m-%dT%H:%M:%S.%g') || 'Z' from raw_hubspot.contacts"))


def _utc(stamp) -> datetime:
    return stamp if isinstance(stamp, datetime) else datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))


@pytest.mark.parametrize("read, hubspot_clock", [
    ("full", timedelta(0)),
    ("incremental", timedelta(0)),
    # this machine's clock 2 hours ahead of HubSpot's: the sync's start must come from HubSpot's (Date header)
    ("full", timedelta(hours=-2)),
], ids=["full", "incremental", "full-client-clock-2h-ahead"])
def test_changes_made_while_a_sync_pages_longer_than_the_overlap_are_caught_next_sync(
        world, tmp_path, read, hubspot_clock):
    """A sync pages for an hour (a large portal under the rate limits): a record it has already read is modified
    a minute into it, one it has not read yet 59 minutes later (it reads that change). The stored cursor must not
    pass the sync's start, or the next sync (cursor - 5 min overlap) never sees the first change."""
    with SandboxServer(world, port=0) as srv:
        srv.apps["hubspot"].advance_clock(hubspot_clock)
        # pages of 2 records on the incremental search, so the race can fall between two of its pages
        sync = Sync(srv, tmp_path, objects=["contacts"], search_result_cap=2)
        if read == "incremental":
            sync.run()
            world.advance(1)
        srv.faults.set(slow_sync_race=1, race_object_type="contacts")
        sync.run()
        fired = [f for f in srv.faults.fired if f["fault"] == "slow_sync_race"]
        assert len(fired) == 1 and fired[0]["unread"]["id"] is not None, fired
        read_rec, unread = fired[0]["read"], fired[0]["unread"]
        loaded = _loaded_stamps(sync)
        assert loaded[unread["id"]] == unread["updatedAt"], "the sync read the change made ahead of its paging"
        assert loaded[read_rec["id"]] != read_rec["updatedAt"], "the sync read that record before its change"
        cursor = _utc(_contacts_state(sync)["incremental"]["updated_at"]["last_value"])

        sync.run()
        assert _loaded_stamps(sync)[read_rec["id"]] == read_rec["updatedAt"], "the change behind the paging was lost"
        # the cursor stood at the sync's start, before the change made a minute after the first page
        assert cursor < _utc(read_rec["updatedAt"]), cursor

        before = sync.snapshot()
        sync.run()  # nothing changed: both records are read again (newer than the cursor) and skipped
        assert sync.snapshot() == before
        recent = _contacts_state(sync)["recent"]
        assert {read_rec["id"], unread["id"]} <= set(recent), "the re-read window holds both records"
    expected = store_archived_by_id(world, "contacts")
    assert sync.archived_by_id("contacts") == expected
    stamps = _loaded_stamps(sync)
    assert {i: stamps[i] for i in expected} == {i: world.hubspot.objects["contacts"][i]["updatedAt"] for i in expected}
    assert sync.query("select count(*) - count(distinct id) from raw_hubspot.contacts")[0][0] == 0


# ------------------------------------------------------------------------------------------- faults

@pytest.mark.slow
def test_429_storm_and_5xx_bursts_lose_and_duplicate_nothing(world, tmp_path):
    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path, max_attempts=12)  # the storm and the 5xx burst may hit one request in a row
        srv.faults.set(rate_limit_storm=6, server_errors=5, server_error_statuses=[500, 502, 503, 504])
        sync.run()
        statuses = srv.stats()["by_status"]
        world.advance(1)
        srv.faults.set(rate_limit_storm=3, server_errors=3)
        sync.run()
    assert int(statuses.get("429", 0)) >= 6 and sum(int(v) for k, v in statuses.items() if k.startswith("5")) >= 5
    assert client_of(sync.last_source).stats.retries >= 6
    assert_warehouse_matches_store(sync, world)


def test_read_timeouts_are_retried(world, tmp_path):
    with SandboxServer(world, port=0, faults={"delay_ms": 800, "delay_requests": 2}) as srv:
        sync = Sync(srv, tmp_path, read_timeout=0.3, objects=["companies"])
        sync.run()
    assert sync.archived_by_id("companies") == store_archived_by_id(world, "companies")


def test_daily_quota_429_stops_with_a_clear_message(world, tmp_path):
    with SandboxServer(world, port=0, hubspot={"daily_limit": 15}) as srv:
        sync = Sync(srv, tmp_path)
        with pytest.raises(Exception) as info:
            sync.run()
        requests_sent = srv.stats()["total"]
    chain, exc = [], info.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    quota = [e for e in chain if isinstance(e, QuotaExhaustedError)]
    assert quota, chain
    assert "DAILY" in str(quota[0]) and "resets at" in str(quota[0])
    assert requests_sent <= 16 + 1  # no retry storm against an exhausted daily quota


def test_malformed_records_go_to_quarantine_and_the_rest_loads(world, tmp_path):
    with SandboxServer(world, port=0, faults={"malformed_record": "bad_date",
                                              "malformed_object_type": "contacts"}) as srv:
        sync = Sync(srv, tmp_path)
        sync.run()
        srv.faults.set(malformed_record="bad_id", malformed_object_type="deals")
        sync2 = Sync(srv, tmp_path / "second")
        sync2.run(objects=["deals"])
    rows = sync.query("select source, object_type, record_id, reason, payload from raw_hubspot._quarantine")
    assert len(rows) == 1
    source, object_type, record_id, reason, payload = rows[0]
    assert (source, object_type) == ("hubspot", "contacts") and "not a date" in reason and "not-a-date" in payload
    live = {k for k, v in store_archived_by_id(world, "contacts").items()}
    assert set(sync.archived_by_id("contacts")) == live - {record_id}
    assert set(sync.archived_by_id("companies")) == set(store_archived_by_id(world, "companies"))

    rows = sync2.query("select object_type, record_id, reason from raw_hubspot._quarantine")
    assert len(rows) == 1 and rows[0][0] == "deals" and rows[0][1].endswith("x") and "not numeric" in rows[0][2]
    assert len(sync2.archived_by_id("deals")) == len(world.hubspot.objects["deals"]) - 1


@pytest.mark.slow
def test_search_result_cap_is_passed_by_id_windowing(world, tmp_path):
    cap = 20
    with SandboxServer(world, port=0, hubspot={"search_result_cap": cap}) as srv:
        sync = Sync(srv, tmp_path, search_result_cap=cap)
        sync.run()
        # A huge overlap makes the incremental search return every live record: many windows of `cap`.
        sync.run(overlap_minutes=60 * 24 * 365 * 5)
        stats = srv.stats()
    assert "400" not in stats["by_status"]
    searches = sum(n for p, n in stats["by_path"].items() if p.endswith("/contacts/search"))
    live = sum(1 for r in world.hubspot.objects["contacts"].values() if not r["archived"])
    assert searches >= live // cap
    assert_warehouse_matches_store(sync, world)


def test_new_custom_property_becomes_a_column(world, tmp_path):
    store = world.hubspot
    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path, objects=["companies"], custom_properties="all")
        sync.run()
        with store.lock:
            store.property_definitions["companies"].append({
                "name": "score_interne", "label": "Score interne", "type": "number", "fieldType": "number",
                "groupName": "companyinformation", "hubspotDefined": False, "options": []})
            rid, record = next((k, r) for k, r in store.objects["companies"].items() if not r["archived"])
            record["properties"]["score_interne"] = "12"
            stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            record["updatedAt"] = record["properties"]["hs_lastmodifieddate"] = stamp
        sync.run()
        with store.lock:  # same property, now a value that is not a number: still loads
            record["properties"]["score_interne"] = "élevé"
            record["updatedAt"] = record["properties"]["hs_lastmodifieddate"] = stamp[:-4] + "500Z"
        sync.run()
    assert sync.query(f"select score_interne from raw_hubspot.companies where id = '{rid}'") == [("élevé",)]


LINK_TABLES = sorted({table for _, _, table in ASSOCIATIONS})


def _touch(store, object_type: str, rid: str, stamp: str, **properties) -> None:
    """A property change HubSpot would stamp (so the next incremental sync reads the record again)."""
    record = store.objects[object_type][rid]
    record["properties"].update(properties)
    record["updatedAt"] = record["properties"][last_modified_property(object_type)] = stamp


def _links_in_raw(sync: Sync) -> dict[str, set]:
    return {t: set(sync.query(f"select from_object_type, from_id, to_id, type_id from raw_hubspot.{t}"))
            for t in LINK_TABLES if t in sync.tables()}


def test_a_record_that_loses_all_its_links_keeps_none_in_raw_or_staging(world, tmp_path, monkeypatch):
    """Link tables are replaced per from-record; a record re-read with NO link left used to yield nothing, so its
    old links stayed (a contact kept its company in staging). A contact losing its only company, a deal its
    companies, a call every link: after the next sync none is left in raw or staging, the other records' links are
    untouched, and the tombstones that clear them are never stored. The first full sync sends no tombstone (its
    link tables are new), a full resync after the state was dropped does (an association-only change)."""
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[1])
    store = world.hubspot
    live = {o: {k for k, r in store.objects[o].items() if not r["archived"]} for o in ("contacts", "deals", "calls")}

    def linked(frm: str, to: str) -> list[str]:
        return sorted({a for a, _, _ in store.associations[(frm, to)] if a in live[frm]}, key=int)

    contact = next(c for c in linked("contacts", "companies")
                   if sum(a == c for a, _, _ in store.associations[("contacts", "companies")]) == 1)
    deal = linked("deals", "companies")[0]
    call = next(c for c in linked("calls", "contacts") if c in linked("calls", "companies")
                and c in linked("calls", "deals"))
    gone = {("contact", contact), ("deal", deal), ("call", call)}

    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path, objects=["contacts", "companies", "deals", "calls"])
        sync.run()
        first = sync.pipeline.last_trace.last_normalize_info.row_counts
        before = _links_in_raw(sync)
        assert {t: first.get(t, 0) for t in before} == {t: len(v) for t, v in before.items()}  # no extra row
        assert any(r[1] == contact for r in before["associations_contact_company"])
        assert any(r[1] == deal for r in before["associations_deal_company"])
        assert all(any(r[:2] == ("call", call) for r in before[f"associations_engagement_{to}"])
                   for to in ("contact", "company", "deal"))

        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        with store.lock:
            for key in list(store.associations):
                frm = key[0]
                drop = {"contacts": contact, "deals": deal, "calls": call}.get(frm)
                if key == ("deals", "contacts"):
                    continue  # the deal keeps its contact: only its company links go
                store.associations[key] = [p for p in store.associations[key] if p[0] != drop]
            _touch(store, "contacts", contact, stamp, jobtitle="Nouvelle fonction", associatedcompanyid=None)
            _touch(store, "deals", deal, stamp, dealname="Renommée")
            _touch(store, "calls", call, stamp, hs_call_title="Appel requalifié")
        sync.run()
        after = _links_in_raw(sync)

        # an association-only change (no property change, no last-modified bump) is not seen incrementally; a full
        # resync after the state was dropped reads every record again and clears it as well
        other = next(c for c in linked("contacts", "companies") if c != contact)
        with store.lock:
            store.associations[("contacts", "companies")] = [
                p for p in store.associations[("contacts", "companies")] if p[0] != other]
        sync.run()
        assert any(r[1] == other for r in _links_in_raw(sync)["associations_contact_company"])
        helpers.pipeline_drop(sync.pipeline, resources=["contacts"], state_only=True)()
        sync.run()
        resynced = _links_in_raw(sync)

    assert set(after) == set(before) == set(LINK_TABLES)
    for table, rows in after.items():
        kept = before[table] if table == "associations_deal_contact" else {
            r for r in before[table] if (r[0], r[1]) not in gone}
        assert rows == kept, table
        assert not [r for r in rows if r[2] == ""], table  # tombstones never land
    assert not [r for r in resynced["associations_contact_company"] if r[1] == other]
    assert resynced["associations_contact_company"] == {
        r for r in after["associations_contact_company"] if r[1] != other}

    wh = _build_staging(tmp_path)
    one = lambda sql, rid: wh.query(sql, {"i": rid})[0]  # noqa: E731
    assert one("select job_title, company_id from staging.contacts where contact_id = :i", contact) \
        == {"job_title": "Nouvelle fonction", "company_id": None}
    assert one("select company_id from staging.deals where deal_id = :i", deal)["company_id"] is None
    assert one("select contact_id from staging.deals where deal_id = :i", deal)["contact_id"] is not None
    assert one("select company_id, contact_id, deal_id from staging.activities where activity_id = :i",
               f"call:{call}") == {"company_id": None, "contact_id": None, "deal_id": None}


# ------------------------------------------------------------------------------------------- team history

def _build_staging(tmp_path):
    """staging (every table, HubSpot parts) on the synced DuckDB file."""
    from transforms.sales_model import load_sales_model
    from transforms.staging import parts, union_sql
    from warehouse import Warehouse

    wh = Warehouse(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    wh.ensure_schemas()
    for name, frame in load_sales_model("sales_model.yaml").config_frames().items():
        wh.write_frame("staging", name, frame)
    by_table = parts(["hubspot"])
    first = ["owners", "pipeline_stages"]
    for table in first + sorted(t for t in by_table if t not in first):
        sql, _notes = union_sql(table, by_table[table], wh.dialect, wh.table_exists, wh.columns)
        wh.build_table("staging", table, sql)
    return wh


def _build_staging_and_deals(tmp_path):
    """staging (every table, HubSpot parts) and core.fct_deals with what it needs, on the synced DuckDB file."""
    from transforms.build import build_models

    wh = _build_staging(tmp_path)
    # identity (a Python step) left out: every company record its own company
    wh.build_table("core", "company_crosswalk",
                   "select source_system, company_id as source_id, source_system || ':' || company_id as entity_key, "
                   "'singleton' as rule, cast(1.0 as double) as match_probability, 't' as model_version "
                   "from staging.companies")
    build_models(wh, schemas=("core",), only=["fct_deals"])
    return wh


def _set_team(store, owner_id: str, team_id: str, team_name: str, updated_at: datetime) -> None:
    with store.lock:
        owner = next(o for o in store.owners if str(o["id"]) == owner_id)
        owner["teams"] = [{"id": team_id, "name": team_name, "primary": True}]
        owner["updatedAt"] = updated_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_team_moves_are_recorded_from_the_first_sync_and_credit_deals_to_the_team_of_the_day(
        world, tmp_path, monkeypatch):
    """HubSpot serves only an owner's current team. The sandbox's mover left PME for Grands Comptes mid-history:
    a sync before the move (the server then served PME) and one after it record both teams; staging makes two
    periods and core.fct_deals credits each closed deal to the team of its close, as the sandbox truth says."""
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[1])
    mover = next(r for r in world.reps if len(r.team_history) > 1)
    old, new = mover.team_history
    team_id = {t.name: t.id for t in world.teams}
    moved = new.start
    before_move, at_move = moved - timedelta(days=30), moved + timedelta(hours=1)
    store = world.hubspot
    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path)
        current = next(o["teams"] for o in store.owners if o["id"] == mover.owner_id)
        _set_team(store, mover.owner_id, team_id[old.team], old.team, before_move)  # HubSpot as it was then
        sync.run(now=before_move)
        first = sync.query("select owner_id, team_id, observed_at from raw_hubspot.owner_team_changes")
        with store.lock:
            next(o for o in store.owners if o["id"] == mover.owner_id)["teams"] = current  # the move
        sync.run(now=at_move)
        sync.run(now=at_move + timedelta(hours=1))  # nothing changed: nothing appended
        changes = sync.query("select owner_id, team_id, team_name, observed_at from raw_hubspot.owner_team_changes "
                             "order by observed_at, owner_id")

    # the first sync records every owner (archived ones too), the second only the mover, the third nothing
    assert {r[0] for r in first} == {str(o["id"]) for o in store.owners} and len(first) == len(store.owners)
    assert any(o["archived"] for o in store.owners)
    later = [r for r in changes if r[3] > before_move]
    assert [(r[0], r[1], r[2], r[3]) for r in later] == [(mover.owner_id, team_id[new.team], new.team, at_move)]
    assert len(changes) == len(store.owners) + 1

    wh = _build_staging_and_deals(tmp_path)
    periods = wh.query("select owner_id, team_id, team_name, valid_from, valid_to from staging.owner_team_history "
                       "where owner_id = :o order by valid_from", {"o": mover.owner_id})
    assert [(p["team_id"], p["team_name"], p["valid_from"], p["valid_to"]) for p in periods] == [
        (team_id[old.team], old.team, mover.created_at, at_move),
        (team_id[new.team], new.team, at_move, None),
    ]
    others = wh.query("select owner_id, count(*) as n, min(valid_from) as start, max(valid_to) as stop "
                      "from staging.owner_team_history where owner_id <> :o group by owner_id", {"o": mover.owner_id})
    created = {r.owner_id: r.created_at for r in world.reps}
    assert len(others) == len(world.reps) - 1
    assert all(r["n"] == 1 and r["start"] == created[r["owner_id"]] and r["stop"] is None for r in others)

    deals = {r["deal_id"]: r for r in wh.query(
        "select deal_id, team_name, closed_at from core.fct_deals where owner_id = :o and closed_at is not null",
        {"o": mover.owner_id})}
    truth = {d.hubspot_id: world.deal_truth(d) for d in world.deals if d.hubspot_id in deals}
    assert {deals[i]["team_name"] for i in deals} == {old.team, new.team}
    for deal_id, row in deals.items():
        want = old.team if row["closed_at"] < at_move else new.team
        assert row["team_name"] == want == truth[deal_id].team, deal_id


def test_owner_team_changes_without_a_move_append_nothing(world, tmp_path):
    """Two syncs, no team change: the second appends nothing. Staging then reads exactly as it does for a warehouse
    loaded before teams were recorded (no owner_team_changes table): one period per owner, from its creation, in
    its current team."""
    from transforms.staging import parts, union_sql
    from warehouse import Warehouse

    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path, objects=["companies"])
        sync.run()
        sync.run()
        rows = sync.query("select owner_id, team_id, observed_at from raw_hubspot.owner_team_changes")
        counts = sync.pipeline.last_trace.last_normalize_info.row_counts
    assert "owner_team_changes" not in counts
    assert len(rows) == len(world.hubspot.owners) == len({r[0] for r in rows})
    assert {r[0]: r[1] for r in rows} == {str(o["id"]): o["teams"][0]["id"] for o in world.hubspot.owners}

    wh = Warehouse(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    wh.ensure_schemas()
    by_table = parts(["hubspot"])

    def history() -> list[tuple]:
        for table in ("owners", "owner_team_history"):
            sql, _notes = union_sql(table, by_table[table], wh.dialect, wh.table_exists, wh.columns)
            wh.build_table("staging", table, sql)
        return sorted(tuple(r.values()) for r in wh.query(
            "select owner_id, team_id, team_name, valid_from, valid_to from staging.owner_team_history"))

    observed = history()
    with wh.connect() as conn:
        conn.exec_driver_sql("drop table raw_hubspot.owner_team_changes")
    assert not wh.table_exists("raw_hubspot", "owner_team_changes")
    assert history() == observed
    reps = {r.owner_id: r for r in world.reps}
    assert observed == sorted((r.owner_id, {t.name: t.id for t in world.teams}[r.team], r.team, r.created_at, None)
                              for r in reps.values())


# ------------------------------------------------------------------------------------------- shared pieces

def test_rate_limiter_paces_and_adapts_to_server_headers():
    now = [0.0]
    sleeps = []

    def sleep(s):
        sleeps.append(s)
        now[0] += s

    limiter = RateLimiter(3, 1.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(6):
        limiter.acquire()
    assert now[0] >= 1.0  # the 4th call had to wait for the window to roll
    limiter.observe(limit=3, remaining=0)  # someone else used the budget
    t = now[0]
    limiter.acquire()
    assert now[0] > t


def test_retry_policy_honours_retry_after_and_stops_on_fatal():
    def response(status, headers=None, body=b"{}"):
        r = requests.Response()
        r.status_code, r._content = status, body
        r.headers.update(headers or {})
        return r

    answers = [response(429, {"Retry-After": "3"}), response(503), response(200)]
    waits = []
    out = send_with_retry(lambda: answers.pop(0), RetryPolicy(backoff_base=0.5), sleep=waits.append,
                          rng=random.Random(1))
    assert out.status_code == 200 and waits[0] == 3.0 and 0.5 <= waits[1] <= 1.0  # 2nd attempt: up to 2x base

    def fatal(r):
        if r.status_code == 429:
            raise QuotaExhaustedError("daily", quota="DAILY")

    calls = []
    with pytest.raises(QuotaExhaustedError):
        send_with_retry(lambda: calls.append(1) or response(429), RetryPolicy(), check=fatal, sleep=waits.append)
    assert len(calls) == 1
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


def test_a_link_read_that_fails_for_one_record_keeps_its_links(world, tmp_path, monkeypatch, caplog):
    """Only HubSpot's NO_ASSOCIATIONS_FOUND empties a record's links: another per-record error in the batch read's
    207 (a lookup that failed) leaves them as last loaded, with a warning, instead of deleting them."""
    import logging

    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[1])
    store = world.hubspot
    contact = next(c for c, _, _ in store.associations[("contacts", "companies")]
                   if not store.objects["contacts"][c]["archived"])
    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path, objects=["contacts", "companies"])
        sync.run()
        assert any(r[1] == contact for r in _links_in_raw(sync)["associations_contact_company"])
        app = srv.apps["hubspot"]
        real = app.associations_batch_read

        def failing_lookup(req, from_type, to_type, shape):
            # the contact's links cannot be read this time: HubSpot names it in an error of another kind
            with store.lock:
                saved = list(store.associations[("contacts", "companies")])
                store.associations[("contacts", "companies")] = [p for p in saved if p[0] != contact]
            try:
                resp = real(req, from_type, to_type, shape)
            finally:
                with store.lock:
                    store.associations[("contacts", "companies")] = saved
            for error in (resp.body.get("errors") if isinstance(resp.body, dict) else None) or []:
                if contact in error["context"]["fromObjectId"]:
                    error.update(category="INTERNAL_ERROR", subCategory="crm.associations.READ_FAILED")
            return resp

        monkeypatch.setattr(app, "associations_batch_read", failing_lookup)
        _touch(store, "contacts", contact, datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
               jobtitle="Nouvelle fonction")
        with caplog.at_level(logging.WARNING, logger="connectors.hubspot"):
            sync.run()
        assert any(r[1] == contact for r in _links_in_raw(sync)["associations_contact_company"])
        assert any("not read" in m and contact in m for m in caplog.messages)


def test_incremental_search_reads_back_the_overlap_once(world, tmp_path, monkeypatch):
    """The search asks for records modified since the stored cursor minus the overlap (5 minutes), not twice that:
    dlt's cursor already stands the overlap back, and every record of a doubled window is dropped again."""
    import json as _json

    with SandboxServer(world, port=0) as srv:
        sync = Sync(srv, tmp_path, objects=["contacts"])
        sync.run()
        newest = sync.query("select max(updated_at) from raw_hubspot.contacts")[0][0]
        app = srv.apps["hubspot"]
        real, asked = app.search, []

        def recording_search(req, object_type):
            for group in (_json.loads(req.body or b"{}").get("filterGroups") or []):
                asked.extend(int(f["value"]) for f in group.get("filters") or []
                          if f.get("propertyName") in ("lastmodifieddate", "hs_lastmodifieddate")
                          and f.get("operator") in ("GTE", "GT"))
            return real(req, object_type)

        monkeypatch.setattr(app, "search", recording_search)
        sync.run()
    assert asked, "the incremental run searched on last-modified"
    since = datetime.fromtimestamp(min(asked) / 1000, tz=timezone.utc)
    assert since == newest.astimezone(timezone.utc) - timedelta(minutes=5)
