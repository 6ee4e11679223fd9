"""The official `stripe` Python package (v16) against the sandbox Stripe twin: auto-paging, object shapes compared
with Stripe's own example objects (stripe-mock fixtures3.json), API-version layouts, errors as the SDK types them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import stripe

from sandbox.generator import generate_world
from sandbox.server import SandboxServer

FIXTURES = Path("/work/shared/reference/stripe/fixtures3.json")
PROJECT_FIXTURES = Path(__file__).resolve().parent / "data" / "stripe_fixtures3.json"


@pytest.fixture(scope="module")
def server():
    world = generate_world(seed=42, size="tiny")
    with SandboxServer(world, port=0, vendors=["stripe"]) as srv:
        yield srv, world


def _client(srv, **kwargs) -> stripe.StripeClient:
    return stripe.StripeClient(srv.apps["stripe"].config.secret_key,
                               base_addresses={"api": srv.vendor_url("stripe")}, **kwargs)


def _fixtures() -> dict:
    for path in (FIXTURES, PROJECT_FIXTURES):
        if path.exists():
            return json.loads(path.read_text())["resources"]
    pytest.skip("Stripe's fixtures3.json is not available on this machine")


def test_sdk_auto_pages_customers_and_invoices(server):
    srv, world = server
    client = _client(srv)
    customers = list(client.v1.customers.list({"limit": 5}).auto_paging_iter())
    invoices = list(client.v1.invoices.list({"limit": 7}).auto_paging_iter())
    assert sorted(c.id for c in customers) == sorted(c.id for c in world.billing.customers)
    assert sorted(i.id for i in invoices) == sorted(i.id for i in world.billing.invoices)
    subs = list(client.v1.subscriptions.list({"status": "all", "limit": 3}).auto_paging_iter())
    assert len(subs) == len(world.billing.subscriptions)


def test_legacy_global_configuration_works_too(server):
    srv, world = server
    old = stripe.api_key, stripe.api_base
    stripe.api_key, stripe.api_base = srv.apps["stripe"].config.secret_key, srv.vendor_url("stripe")
    try:
        notes = list(stripe.CreditNote.list(limit=1).auto_paging_iter())
    finally:
        stripe.api_key, stripe.api_base = old
    assert sorted(n.id for n in notes) == sorted(n.id for n in world.billing.credit_notes)


def test_sandbox_objects_carry_every_key_of_stripes_example_objects(server):
    srv, world = server
    fixtures = _fixtures()
    key = srv.apps["stripe"].config.secret_key
    base = srv.vendor_url("stripe")
    headers = {"Authorization": f"Bearer {key}", "Stripe-Version": stripe.api_version}

    def get(path: str, **params):
        r = requests.get(base + path, headers=headers, params=params, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    sub_invoice = next(i for i in world.billing.invoices if i.subscription_id)
    samples = {
        "customer": get("/v1/customers", limit=1)["data"][0],
        "invoice": get(f"/v1/invoices/{sub_invoice.id}"),
        "line_item": get(f"/v1/invoices/{sub_invoice.id}/lines")["data"][0],
        "subscription": get("/v1/subscriptions", limit=1)["data"][0],
        "credit_note": get("/v1/credit_notes", limit=1)["data"][0],
        "event": get("/v1/events", limit=1)["data"][0],
        "tax_id": get(f"/v1/customers/{next(c.id for c in world.billing.customers if c.vat)}/tax_ids")["data"][0],
    }
    for name, obj in samples.items():
        missing = set(fixtures[name]) - set(obj)
        assert not missing, f"{name} lacks {sorted(missing)}"
    # basil layout under the pinned version: the subscription is under parent
    assert samples["invoice"]["parent"]["subscription_details"]["subscription"] == sub_invoice.subscription_id


def test_api_version_changes_the_invoice_layout(server):
    srv, world = server
    sub_invoice = next(i for i in world.billing.invoices if i.subscription_id)
    client = _client(srv)
    pinned = client.v1.invoices.retrieve(sub_invoice.id)
    assert pinned.parent.subscription_details.subscription == sub_invoice.subscription_id
    old = _client(srv, stripe_version="2024-06-20").v1.invoices.retrieve(sub_invoice.id)
    assert old.subscription == sub_invoice.subscription_id and "parent" not in old


def test_sdk_sees_stripe_errors_and_does_not_retry_a_429(server):
    srv, _world = server
    srv.apps["stripe"].reset_limits()  # the module's earlier tests spent this second's budget
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient("sk_test_wrong", base_addresses={"api": srv.vendor_url("stripe")}).v1.customers.list()
    with pytest.raises(stripe.InvalidRequestError) as missing:
        _client(srv).v1.invoices.retrieve("in_doesnotexist")
    assert missing.value.code == "resource_missing" and missing.value.http_status == 404
    before = srv.stats()["total"]
    srv.faults.set(rate_limit_storm=1)
    with pytest.raises(stripe.RateLimitError) as limited:
        _client(srv).v1.customers.list()
    assert limited.value.http_status == 429 and limited.value.json_body["error"]["code"] == "rate_limit"
    assert srv.stats()["total"] - before == 1  # the SDK gave up at once: the ETL must back off itself
    srv.faults.reset()
