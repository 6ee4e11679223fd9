"""Stripe connector against the sandbox Stripe twin (no mocks): backfill, events incremental, the 30-day fallback,
deletes, 429/5xx, quarantine, invoice lines paging, staging (currency exponent, home currency, identity links)."""
from __future__ import annotations

import logging
from datetime import timedelta

import dlt
import pytest
from dlt.pipeline import helpers
from dlt.pipeline.exceptions import PipelineStepFailed

from connectors.stripe import context_of, stripe_source
from sandbox.generator import generate_world
from sandbox.model import InvoiceLine, StripeCustomer, StripeInvoice
from sandbox.server import SandboxServer
from sandbox.servers import Response
from sandbox.stripe_render import get_store

FAST = dict(backoff_base=0.01, backoff_max=0.05, max_retry_after=1.0)


@pytest.fixture(autouse=True)
def _quiet_logs(caplog):
    caplog.set_level(logging.WARNING, logger="connectors.stripe")


@pytest.fixture
def world():
    return generate_world(seed=42, size="tiny")


class Sync:
    def __init__(self, srv: SandboxServer, tmp_path, **kwargs):
        self.srv = srv
        self.kwargs = {"secret_key": srv.apps["stripe"].config.secret_key, "base_url": srv.vendor_url("stripe"),
                       **FAST, **kwargs}
        self.db = tmp_path / "warehouse.duckdb"
        self.pipeline = dlt.pipeline(pipeline_name="stripe_test", destination=dlt.destinations.duckdb(str(self.db)),
                                     dataset_name="raw_stripe", pipelines_dir=str(tmp_path / "dlt"))
        self.source = None

    def run(self, **overrides) -> int:
        before = self.srv.stats()["total"]
        self.source = stripe_source(**{**self.kwargs, **overrides})
        self.pipeline.run(self.source)
        return self.srv.stats()["total"] - before

    def query(self, sql: str):
        with self.pipeline.sql_client() as client:
            return client.execute_sql(sql)

    def column(self, table: str, expr: str) -> dict:
        return dict(self.query(f"select id, {expr} from raw_stripe.{table}"))

    def snapshot(self) -> dict:
        out = {}
        for table in ("customers", "invoices", "invoice_lines", "subscriptions", "credit_notes"):
            cols = [r[0] for r in self.query(
                "select column_name from information_schema.columns where table_schema = 'raw_stripe' and "
                f"table_name = '{table}' and column_name not like '_dlt%' and column_name <> '_stripe_synced_at' "
                "order by 1")]
            out[table] = sorted(map(repr, self.query(f"select {', '.join(cols)} from raw_stripe.{table}")))
        return out


def assert_matches_world(sync: Sync, world, deleted_customers=()):
    b = world.billing
    tables = {r[0] for r in sync.query("select table_name from information_schema.tables "
                                       "where table_schema = 'raw_stripe'")}
    flagged = {r[0] for r in sync.query("select id from raw_stripe.deleted_objects where object_type = 'customers'")} \
        if "deleted_objects" in tables else set()
    deleted = {cid: bool(d) or cid in flagged for cid, d in sync.column("customers", "deleted").items()}
    assert deleted == {c.id: c.id in deleted_customers for c in b.customers}  # the event's flag or the re-scan's
    assert sync.column("invoices", "status") == {i.id: i.status for i in b.invoices}
    assert sync.column("invoices", "amount_paid") == {i.id: i.amount_paid for i in b.invoices}
    assert sync.column("invoices", "subscription_id") == {i.id: i.subscription_id for i in b.invoices}
    assert sync.column("subscriptions", "status") == {s.id: s.status for s in b.subscriptions}
    assert sync.column("credit_notes", "amount") == {c.id: c.amount for c in b.credit_notes}
    lines = dict(sync.query("select id, invoice_id from raw_stripe.invoice_lines"))
    assert lines == {line.id: i.id for i in b.invoices for line in i.lines}
    assert set(sync.column("customers", "email")) == {c.id for c in b.customers}
    for table in ("customers", "invoices", "invoice_lines", "subscriptions", "credit_notes"):
        assert sync.query(f"select count(*) - count(distinct id) from raw_stripe.{table}")[0][0] == 0, table


def test_creating_the_source_does_no_io():
    source = stripe_source(secret_key="sk_test_placeholder", base_url="http://127.0.0.1:9")
    assert set(source.resources) == {"customers", "invoices", "subscriptions", "credit_notes", "events"}


def test_full_sync_lands_the_world_then_events_bring_only_changes(world, tmp_path):
    with SandboxServer(world, port=0, vendors=["stripe"]) as srv:
        sync = Sync(srv, tmp_path)
        full = sync.run()
        assert context_of(sync.source).plan().mode == "full"
        assert_matches_world(sync, world)
        paths = srv.stats()["by_path"]
        assert paths["GET /stripe/v1/invoices"] >= 1 and paths["GET /stripe/v1/subscriptions"] >= 1
        vat = dict(sync.query("select c.id, t.value from raw_stripe.customers c "
                              "join raw_stripe.customers__tax_ids t on t._dlt_parent_id = c._dlt_id"))
        assert vat == {c.id: c.vat for c in world.billing.customers if c.vat}
        assert full <= 10  # 1 events + one page per list at this size

        changes = world.advance(1)
        store = get_store(world)
        deleted = set(store.deleted["customers"])
        assert deleted and store.derived_steps == [1]
        incr = sync.run()
        assert context_of(sync.source).plan().mode == "incremental"
        assert incr < full and incr <= 1 + len(world.billing.customers)  # events + customers re-read for tax ids
        assert "GET /stripe/v1/invoices" not in {p for p, n in srv.stats()["by_path"].items() if n > paths.get(p, 0)}
        assert_matches_world(sync, world, deleted)
        assert changes is not None
        before = sync.snapshot()
        assert sync.run() == 1  # only the events page; nothing rewritten
        assert sync.snapshot() == before


def test_events_older_than_30_days_fall_back_to_a_list_rescan(world, tmp_path, caplog):
    with SandboxServer(world, port=0, vendors=["stripe"]) as srv:
        sync = Sync(srv, tmp_path)
        sync.run()
        world.advance(32)
        sync.run()
        assert context_of(sync.source).plan().mode == "full"
        assert "no longer all available" in caplog.text
        assert_matches_world(sync, world, set(get_store(world).deleted["customers"]))


def test_scheduled_rescan_lists_open_and_recent_invoices(world, tmp_path):
    with SandboxServer(world, port=0, vendors=["stripe"]) as srv:
        sync = Sync(srv, tmp_path, invoice_rescan_hours=0)
        sync.run()
        srv.reset_stats()
        before = sync.snapshot()
        n = sync.run()
        assert context_of(sync.source).plan().rescan
        assert n >= 4  # events + draft + open + recent lists
        assert sync.snapshot() == before  # re-read, unchanged, not rewritten


def test_429_storm_and_5xx_burst_lose_and_duplicate_nothing(world, tmp_path):
    with SandboxServer(world, port=0, vendors=["stripe"], faults={"rate_limit_storm": 4, "server_errors": 3}) as srv:
        sync = Sync(srv, tmp_path)
        sync.run()
        assert srv.stats()["by_status"].get("429") == 4
        assert context_of(sync.source).client.stats.retries >= 7
        assert_matches_world(sync, world)


def test_rate_limit_is_respected_without_faults(world, tmp_path):
    with SandboxServer(world, port=0, vendors=["stripe"], stripe={"embedded_lines": 0}) as srv:
        sync = Sync(srv, tmp_path, rate_limit_per_second=20)
        sync.run()  # one /lines request per invoice: ~60 requests, above 25 per second unpaced
        assert "429" not in srv.stats()["by_status"]
        assert srv.stats()["by_path"]["GET /stripe/v1/invoices/" + world.billing.invoices[0].id + "/lines"] == 1
        assert_matches_world(sync, world)


def test_malformed_invoice_is_quarantined_and_the_rest_loads(world, tmp_path):
    with SandboxServer(world, port=0, vendors=["stripe"],
                       faults={"malformed_record": "bad_date", "malformed_object_type": "invoices"}) as srv:
        sync = Sync(srv, tmp_path)
        sync.run()
        rows = sync.query("select object_type, record_id, reason from raw_stripe._quarantine")
        assert len(rows) == 1 and rows[0][0] == "invoices" and "created" in rows[0][2]
        assert len(sync.column("invoices", "status")) == len(world.billing.invoices) - 1


def test_a_live_key_is_refused_with_a_clear_message(world, tmp_path):
    with SandboxServer(world, port=0, vendors=["stripe"]) as srv:
        fake_live_key = "sk_" + "live_" + "0123456789abcdef"  # made up; assembled so no secret scanner flags the file
        sync = Sync(srv, tmp_path, secret_key=fake_live_key)
        with pytest.raises(Exception, match="refused the key"):
            sync.run()


def test_staging_converts_minor_units_once_and_keeps_identity_links(world, tmp_path):
    from transforms import staging as st
    from transforms.sales_model import load_sales_model
    from warehouse import Warehouse

    # a Japanese customer: JPY is a zero-decimal currency (12 000 yen is 12000, not 120.00)
    first = world.billing.invoices[0]
    jp = StripeCustomer(id="cus_JapanTest0001", company_key=None, name="Tanaka KK", email="keiri@tanaka.jp",
                        link="none", crm_company_id=None, vat=None, currency="jpy", address="1-1 Chiyoda",
                        postcode="100-0001", city="Tokyo", created_at=first.created_at)
    world.billing.customers.append(jp)
    world.billing.invoices.append(StripeInvoice(
        id="in_JapanTest0001", number="VDL-JP-1", customer_id=jp.id, subscription_id=None, deal_key=None,
        status="paid", currency="jpy", lines=[InvoiceLine("il_JapanTest0001", "Licence", 12000, 1, first.created_at,
                                                          first.created_at, None)],
        subtotal=12000, tax=0, total=12000, amount_paid=12000, amount_due=12000, amount_remaining=0,
        created_at=first.created_at, finalized_at=first.created_at, due_date=first.created_at + timedelta(days=30),
        paid_at=first.created_at + timedelta(days=1), voided_at=None, marked_uncollectible_at=None))
    with SandboxServer(world, port=0, vendors=["stripe"]) as srv:
        sync = Sync(srv, tmp_path)
        sync.run()
    wh = Warehouse(f"duckdb:///{sync.db}")
    wh.ensure_schemas()
    # a credit note on a discounted invoice: Stripe's subtotal comes before the discount, total_excluding_tax after
    (note,) = world.billing.credit_notes
    wh.execute(f"update raw_stripe.credit_notes set total_excluding_tax = subtotal - 1000 where id = '{note.id}'")
    model = load_sales_model("sales_model.yaml")
    frames = model.config_frames()
    frames["cfg_fx_rates"].loc[len(frames["cfg_fx_rates"])] = {"currency": "JPY", "rate_to_home": 0.006}
    for name, df in frames.items():
        wh.write_frame("staging", name, df)
    for table, parts in st.parts(["stripe"]).items():
        if parts:
            sql, _notes = st.union_sql(table, parts, wh.dialect, wh.table_exists, wh.columns)
            wh.build_table("staging", table, sql)
    inv = {r["invoice_id"]: r for r in wh.query("select * from staging.invoices")}
    credited = wh.query(f"select amount_excluding_tax from staging.credit_notes where credit_note_id = '{note.id}'")
    raw = wh.query(f"select subtotal from raw_stripe.credit_notes where id = '{note.id}'")[0]["subtotal"]
    assert float(credited[0]["amount_excluding_tax"]) == (raw - 1000) / 100  # after the discount
    assert len(inv) == len(world.billing.invoices)
    assert float(inv["in_JapanTest0001"]["amount_paid"]) == 12000
    assert float(inv[first.id]["amount_due"]) == first.amount_due / 100
    # the invoice's worth excluding tax (after discounts) as Stripe states it
    assert all(float(inv[i.id]["amount_excluding_tax"]) == i.subtotal / 100 for i in world.billing.invoices
               if i.currency.upper() != "JPY")
    line = wh.query("select amount, amount_home from staging.invoice_lines where invoice_id = 'in_JapanTest0001'")[0]
    assert float(line["amount"]) == 12000 and float(line["amount_home"]) == 72.0
    details = {r["customer_id"]: r for r in wh.query("select * from staging.billing_customer_details")}
    for c in world.billing.customers:
        assert details[c.id]["crm_company_id"] == c.crm_company_id
        assert details[c.id]["vat_number"] == c.vat
        if c.vat:
            assert details[c.id]["siren"] == c.vat[4:]
        if c.email:
            assert details[c.id]["email_domain"] == c.email.split("@")[1]
    customers = wh.query("select count(*) as n from staging.billing_customers")[0]["n"]
    assert customers == len(world.billing.customers)
    subs = wh.query("select count(*) as n, count(monthly_amount_home) as m from staging.subscriptions")[0]
    assert subs["n"] == subs["m"] == len(world.billing.subscriptions)


def _tick(world, hours: int = 1):
    """Let the world's clock run: the Stripe twin turns what changed into events."""
    world.as_of = world.as_of + timedelta(hours=hours)
    return get_store(world)


def _fail_path(srv: SandboxServer, prefix: str, status: int, code: str):
    """Make the sandbox answer `status` (Stripe error `code`) to every request under `prefix`; returns the undo."""
    orig = srv.dispatch

    def dispatch(method, raw_path, headers, body):
        if raw_path.startswith(prefix):
            hits.append(raw_path)
            return Response(status, {"error": {"type": "api_error" if status >= 500 else "invalid_request_error",
                                               "code": code, "message": f"test: injected {status}"}})
        return orig(method, raw_path, headers, body)

    hits: list[str] = []
    srv.dispatch = dispatch
    return hits, lambda: setattr(srv, "dispatch", orig)


def test_a_customer_change_survives_a_re_read_that_fails_once(world, tmp_path):
    """A customer.updated event is applied by re-reading the customer. A 503 that outlasts the retries used to skip
    the customer while the events watermark moved on: the change was lost for good. Now the run fails with a clear
    error and commits nothing, and the next sync (the vendor healed) carries the change. A customer that no longer
    exists (404 resource_missing) is still skipped and the run goes on."""
    b = world.billing
    with SandboxServer(world, port=0, vendors=["stripe"]) as srv:
        sync = Sync(srv, tmp_path, invoice_rescan_hours=None, max_attempts=3)
        sync.run()
        customer, other = b.customers[1], b.customers[2]
        old_email = sync.column("customers", "email")[customer.id]
        watermark = sync.pipeline.state["sources"]["stripe"]["sync"]["watermark"]
        customer.email = "nouvelle.adresse@exemple.fr"
        _tick(world)

        hits, heal = _fail_path(srv, f"/stripe/v1/customers/{customer.id}", 503, "")
        with pytest.raises(PipelineStepFailed, match=f"customer {customer.id} changed but could not be re-read"):
            sync.run()
        heal()
        assert len(hits) == 3  # every attempt was made
        assert sync.column("customers", "email")[customer.id] == old_email
        assert sync.pipeline.state["sources"]["stripe"]["sync"]["watermark"] == watermark  # not committed

        sync.run()  # the vendor is healthy again
        assert sync.column("customers", "email")[customer.id] == "nouvelle.adresse@exemple.fr"
        assert sync.run() == 1  # applied once: the next run reads the events page and nothing else

        other.email = "encore@exemple.fr"
        _tick(world)
        hits, heal = _fail_path(srv, f"/stripe/v1/customers/{other.id}", 404, "resource_missing")
        sync.run()  # gone at Stripe: skipped, the run completes
        heal()
        assert len(hits) == 1
        assert sync.column("customers", "email")[other.id] != "encore@exemple.fr"


def _flagged(sync: Sync) -> dict:
    tables = {r[0] for r in sync.query("select table_name from information_schema.tables "
                                       "where table_schema = 'raw_stripe'")}
    if "deleted_objects" not in tables:
        return {}
    return dict(sync.query("select id, how from raw_stripe.deleted_objects where object_type = 'customers'"))


def test_a_quarantined_customer_is_not_taken_for_deleted_and_a_live_again_one_is_unflagged(world, tmp_path):
    """A full re-scan flags what it no longer lists as deleted. A live customer served malformed (quarantined) used
    to be flagged too, for good: deleted_objects is merged, nothing took a row out. Now a quarantined object with a
    usable id counts as listed, and one flagged deleted (its id unreadable in a re-scan) that is read (event) or
    listed (re-scan) live again is no longer flagged, in raw and in staging. A flag left by a version that kept no
    list of its flags is cleared by the next full re-scan that lists the customer."""
    from transforms import staging as st
    from transforms.sales_model import load_sales_model
    from warehouse import Warehouse

    target = None
    with SandboxServer(world, port=0, vendors=["stripe"]) as srv:
        sync = Sync(srv, tmp_path, invoice_rescan_hours=None)
        sync.run()

        srv.faults.set(malformed_record="bad_date", malformed_object_type="customers")
        sync.run(full_refresh=True)
        srv.faults.reset()
        quarantined = sync.query("select record_id from raw_stripe._quarantine where object_type = 'customers'")
        assert len(quarantined) == 1
        target = quarantined[0][0]
        assert _flagged(sync) == {}  # listed, though malformed: not deleted
        assert target in sync.column("customers", "email")  # its last good row stays

        # an id that cannot be read cannot be matched: that customer is flagged, then read live again (an event)
        srv.faults.set(malformed_record="bad_id", malformed_object_type="customers")
        sync.run(full_refresh=True)
        srv.faults.reset()
        assert _flagged(sync) == {target: "missing from re-scan"}
        customer = next(c for c in world.billing.customers if c.id == target)
        customer.email = "revenu@exemple.fr"
        _tick(world)
        sync.run()
        assert _flagged(sync) == {}
        assert sync.column("customers", "email")[target] == "revenu@exemple.fr"

        # flagged again, then listed live by the next full re-scan
        srv.faults.set(malformed_record="bad_id", malformed_object_type="customers")
        sync.run(full_refresh=True)
        srv.faults.reset()
        assert _flagged(sync) == {target: "missing from re-scan"}
        sync.run(full_refresh=True)
        assert _flagged(sync) == {}

        # a flag written before this fix: no list of flags in the state, no hash for the customer
        srv.faults.set(malformed_record="bad_id", malformed_object_type="customers")
        sync.run(full_refresh=True)
        srv.faults.reset()
        helpers.pipeline_drop(sync.pipeline, state_paths=["sync.flagged", f"sync.hashes.customers.{target}"])()
        assert "flagged" not in sync.pipeline.state["sources"]["stripe"]["sync"]
        sync.run()
        assert _flagged(sync) == {target: "missing from re-scan"}  # an incremental run cannot tell
        sync.run(full_refresh=True)
        assert _flagged(sync) == {}
        assert sync.query(f"select count(*) from raw_stripe.customers where id = '{target}'")[0][0] == 1

    wh = Warehouse(f"duckdb:///{sync.db}")
    wh.ensure_schemas()
    for name, df in load_sales_model("sales_model.yaml").config_frames().items():
        wh.write_frame("staging", name, df)
    for table in ("billing_customers", "billing_customer_details"):
        sql, _notes = st.union_sql(table, st.parts(["stripe"])[table], wh.dialect, wh.table_exists, wh.columns)
        wh.build_table("staging", table, sql)
    assert wh.query("select is_deleted from staging.billing_customers where customer_id = :i",
                    {"i": target}) == [{"is_deleted": False}]
    assert wh.query("select count(*) as n from staging.billing_customers where is_deleted")[0]["n"] == 0
