"""Render the neutral world's billing (world.billing) as Stripe API objects and events (a StripeStore).

Shapes follow Stripe's own example objects (stripe-mock fixtures3.json: every top-level key is present) in the
basil-or-later layout (`invoice.parent.subscription_details.subscription`, line `parent`, subscription periods on
items). `to_version()` turns a canonical object into the pre-basil layout, for requests / events made with an older
API version (the sandbox account's default version is older than the connector's pin, like a long-lived account).

Time passing: World.advance() (sandbox/advance.py) only changes the CRM side. When the world advanced and its
billing did not change, `sync()` DERIVES the day's billing changes itself, deterministically from the world's seed
and the step number, and applies them to world.billing (so world.billing stays the truth the tests compare with):
subscription invoices falling due, an invoice for every deal won that day, some open invoices paid, one invoice
voided every third day (step 1 included), drafts finalised, now and then a credit note, a customer e-mail change, a
subscription canceled, and on step 1 one outside-CRM customer deleted. Then every change between world.billing and
the store becomes Stripe events (invoice.paid, invoice.voided, customer.deleted...). If advance() ever changes the
billing itself, nothing is derived and its changes are turned into events the same way.
"""
from __future__ import annotations

import copy
import hashlib
import json
import random
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from sandbox.model import InvoiceLine, StripeCreditNote, StripeCustomer, StripeInvoice, StripeSubscription
from sandbox.stripe_store import OBJECT_TYPES, StripeStore

UTC = timezone.utc
BASIL = "2025-03-31"  # the version that moved invoice.subscription to parent.subscription_details
LATEST_API_VERSION = "2026-10-28.endive"  # what stripe-python 16 pins
ACCOUNT_API_VERSION = "2024-09-30.acacia"  # the sandbox account's default (events are rendered in it)
EVENT_RETENTION_DAYS = 30


def ts(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp())


def _h(*parts: Any, n: int = 14) -> str:
    """Deterministic Stripe-looking id suffix."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    num = int(digest, 16)
    out = []
    for _ in range(n):
        num, r = divmod(num, len(alphabet))
        out.append(alphabet[r])
    return "".join(out)


def _list(data: list, url: str) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": False, "total_count": len(data), "url": url}


# ------------------------------------------------------------------------------------------- objects

def _address(line1: str | None, postcode: str | None, city: str | None, country: str = "FR") -> dict[str, Any]:
    return {"city": city, "country": country, "line1": line1, "line2": None, "postal_code": postcode, "state": None}


def tax_id_object(c: StripeCustomer) -> dict[str, Any]:
    return {
        "id": "txi_" + _h("txi", c.id), "object": "tax_id", "country": "FR", "created": ts(c.created_at),
        "customer": c.id, "customer_account": None, "livemode": False,
        "owner": {"customer": c.id, "type": "customer", "customer_account": None},
        "type": "eu_vat", "value": c.vat,
        "verification": {"status": "verified", "verified_address": None, "verified_name": None},
    }


def render_customer(c: StripeCustomer, n_invoices: int) -> dict[str, Any]:
    tax_ids = [tax_id_object(c)] if c.vat else []
    return {
        "id": c.id, "object": "customer", "address": _address(c.address, c.postcode, c.city),
        "balance": 0, "business_name": None, "created": ts(c.created_at), "currency": c.currency,
        "customer_account": None, "default_source": None, "delinquent": False, "description": None,
        "discount": None, "email": c.email, "individual_name": None, "invoice_prefix": _h("prefix", c.id, n=8).upper(),
        "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None,
                             "rendering_options": None},
        "livemode": False,
        "metadata": {"crm_company_id": c.crm_company_id} if c.crm_company_id else {},
        "name": c.name, "next_invoice_sequence": n_invoices + 1, "phone": None, "preferred_locales": ["fr-FR"],
        "shipping": None, "tax_exempt": "none", "test_clock": None,
        "tax_ids": _list(tax_ids, f"/v1/customers/{c.id}/tax_ids"),
    }


def _tax_amounts(subtotal: int, tax: int) -> list[dict[str, Any]]:
    if not tax:
        return []
    return [{"amount": tax, "tax_behavior": "exclusive", "taxability_reason": "standard_rated",
             "taxable_amount": subtotal, "type": "tax_rate_details",
             "tax_rate_details": {"tax_rate": "txr_" + _h("txr-fr-20")}}]


def render_line(inv: StripeInvoice, line: InvoiceLine, tax: int) -> dict[str, Any]:
    if line.subscription_id:
        parent = {"type": "subscription_item_details", "invoice_item_details": None,
                  "subscription_item_details": {"invoice_item": None, "proration": False,
                                                "proration_details": {"credited_items": None},
                                                "subscription": line.subscription_id,
                                                "subscription_item": "si_" + _h("si", line.subscription_id)}}
        price = "price_" + _h("price", line.subscription_id)
    else:
        parent = {"type": "invoice_item_details", "subscription_item_details": None,
                  "invoice_item_details": {"invoice_item": "ii_" + _h("ii", line.id), "proration": False,
                                           "proration_details": {"credited_items": None}, "subscription": None}}
        price = "price_" + _h("price", line.id)
    unit = line.amount // max(1, line.quantity)
    return {
        "id": line.id, "object": "line_item", "amount": line.amount, "currency": inv.currency,
        "description": line.description, "discount_amounts": [], "discountable": True, "discounts": [],
        "invoice": inv.id, "livemode": False, "metadata": {}, "parent": parent,
        "period": {"end": ts(line.period_end), "start": ts(line.period_start)},
        "pretax_credit_amounts": [],
        "pricing": {"type": "price_details", "price_details": {"price": price, "product": "prod_" + _h("prod", price)},
                    "unit_amount_decimal": str(unit)},
        "quantity": line.quantity, "quantity_decimal": str(line.quantity), "subscription": None,
        "subtotal": line.amount, "taxes": _tax_amounts(line.amount, tax),
    }


def render_invoice(inv: StripeInvoice, cust: StripeCustomer | None, credit_notes: Iterable[StripeCreditNote],
                   account_name: str, first_of_subscription: bool = False) -> dict[str, Any]:
    draft = inv.status == "draft"
    sub = inv.subscription_id
    send_invoice = sub is None
    credited = sum(cn.amount for cn in credit_notes)
    lines = [render_line(inv, line, round(line.amount * inv.tax / inv.subtotal) if inv.subtotal else 0)
             for line in inv.lines]
    starts = [line.period_start for line in inv.lines] or [inv.created_at]
    ends = [line.period_end for line in inv.lines] or [inv.created_at]
    if sub is None:
        billing_reason = "manual"
    else:
        billing_reason = "subscription_create" if first_of_subscription else "subscription_cycle"
    hosted = None if draft else f"https://invoice.stripe.com/i/acct_sandbox/test_{_h('hosted', inv.id, n=24)}"
    return {
        "id": inv.id, "object": "invoice", "account_country": "FR", "account_name": account_name,
        "account_tax_ids": None, "amount_due": inv.amount_due, "amount_overpaid": 0, "amount_paid": inv.amount_paid,
        "amount_remaining": inv.amount_remaining, "amount_shipping": 0, "application": None,
        "attempt_count": 0 if draft or send_invoice else 1, "attempted": not draft and not send_invoice,
        "auto_advance": inv.status in ("draft", "open"),
        "automatic_tax": {"enabled": False, "liability": None, "status": None, "disabled_reason": None,
                          "provider": None},
        "automatically_finalizes_at": ts(inv.created_at + timedelta(hours=1)) if draft else None,
        "billing_reason": billing_reason,
        "collection_method": "send_invoice" if send_invoice else "charge_automatically",
        "created": ts(inv.created_at), "currency": inv.currency, "custom_fields": None, "customer": inv.customer_id,
        "customer_account": None,
        "customer_address": _address(cust.address, cust.postcode, cust.city) if cust else None,
        "customer_email": cust.email if cust else None, "customer_name": cust.name if cust else None,
        "customer_phone": None, "customer_shipping": None, "customer_tax_exempt": "none",
        "customer_tax_ids": [{"type": "eu_vat", "value": cust.vat}] if cust and cust.vat else [],
        "default_payment_method": None, "default_source": None, "default_tax_rates": [], "description": None,
        "discounts": [], "due_date": ts(inv.due_date) if send_invoice else None,
        "effective_at": ts(inv.finalized_at), "ending_balance": None if draft else 0, "footer": None,
        "from_invoice": None, "hosted_invoice_url": hosted,
        "invoice_pdf": None if draft else f"{hosted}/pdf", "issuer": {"type": "self"},
        "last_finalization_error": None, "latest_revision": None,
        "lines": _list(lines, f"/v1/invoices/{inv.id}/lines"), "livemode": False, "metadata": {},
        "next_payment_attempt": None, "number": None if draft else inv.number, "on_behalf_of": None,
        "parent": None if sub is None else {
            "type": "subscription_details", "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": sub}},
        "payment_settings": {"default_mandate": None, "payment_method_options": None, "payment_method_types": None},
        "period_end": ts(max(ends)), "period_start": ts(min(starts)),
        "post_payment_credit_notes_amount": credited, "pre_payment_credit_notes_amount": 0,
        "receipt_number": None, "rendering": None, "shipping_cost": None, "shipping_details": None,
        "starting_balance": 0, "statement_descriptor": None, "status": inv.status,
        "status_transitions": {"finalized_at": ts(inv.finalized_at),
                               "marked_uncollectible_at": ts(inv.marked_uncollectible_at),
                               "paid_at": ts(inv.paid_at), "voided_at": ts(inv.voided_at)},
        "subscription": None,  # removed in basil (kept as null, as Stripe's fixtures do): read `parent`
        "subtotal": inv.subtotal, "subtotal_excluding_tax": inv.subtotal, "test_clock": None, "total": inv.total,
        "total_discount_amounts": [], "total_excluding_tax": inv.subtotal, "total_pretax_credit_amounts": [],
        "total_taxes": _tax_amounts(inv.subtotal, inv.tax), "webhooks_delivered_at": ts(inv.created_at),
    }


def render_subscription(s: StripeSubscription, latest_invoice: str | None) -> dict[str, Any]:
    price_id = "price_" + _h("price", s.id)
    item = {
        "id": "si_" + _h("si", s.id), "object": "subscription_item", "billing_thresholds": None,
        "created": ts(s.created_at), "current_period_end": ts(s.current_period_end),
        "current_period_start": ts(s.current_period_start), "discounts": [], "metadata": {},
        "plan": {"id": price_id, "object": "plan", "active": True, "amount": s.unit_amount,
                 "amount_decimal": str(s.unit_amount), "billing_scheme": "per_unit", "created": ts(s.created_at),
                 "currency": s.currency, "interval": "month", "interval_count": 1, "livemode": False, "metadata": {},
                 "meter": None, "nickname": s.product_name, "product": "prod_" + _h("prod", price_id),
                 "tiers_mode": None, "transform_usage": None, "trial_period_days": None, "usage_type": "licensed"},
        "price": {"id": price_id, "object": "price", "active": True, "billing_scheme": "per_unit",
                  "created": ts(s.created_at), "currency": s.currency, "custom_unit_amount": None, "livemode": False,
                  "lookup_key": None, "metadata": {}, "nickname": s.product_name,
                  "product": "prod_" + _h("prod", price_id),
                  "recurring": {"interval": "month", "interval_count": 1, "meter": None,
                                "trial_period_days": None, "usage_type": "licensed"},
                  "tax_behavior": "exclusive", "tiers_mode": None, "transform_quantity": None, "type": "recurring",
                  "unit_amount": s.unit_amount, "unit_amount_decimal": str(s.unit_amount)},
        "quantity": 1, "subscription": s.id, "tax_rates": [],
    }
    canceled = s.status == "canceled"
    return {
        "id": s.id, "object": "subscription", "application": None, "application_fee_percent": None,
        "automatic_tax": {"enabled": False, "liability": None, "disabled_reason": None},
        "billing_cycle_anchor": ts(s.start_date), "billing_cycle_anchor_config": None,
        "billing_mode": {"type": "classic", "flexible": None}, "billing_schedules": [], "billing_thresholds": None,
        "cancel_at": None, "cancel_at_period_end": False, "canceled_at": ts(s.canceled_at),
        "cancellation_details": {"comment": None, "feedback": None,
                                 "reason": "cancellation_requested" if canceled else None},
        "collection_method": "charge_automatically", "created": ts(s.created_at), "currency": s.currency,
        "customer": s.customer_id, "customer_account": None, "days_until_due": None,
        "default_payment_method": None, "default_source": None, "default_tax_rates": [], "description": None,
        "discounts": [], "ended_at": ts(s.ended_at),
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": _list([item], f"/v1/subscription_items?subscription={s.id}"),
        "latest_invoice": latest_invoice, "livemode": False, "managed_payments": None, "metadata": {},
        "next_pending_invoice_item_invoice": None, "on_behalf_of": None, "pause_collection": None,
        "payment_settings": {"payment_method_options": None, "payment_method_types": None,
                             "save_default_payment_method": "off"},
        "pending_invoice_item_interval": None, "pending_setup_intent": None, "pending_update": None,
        "schedule": None, "start_date": ts(s.start_date), "status": s.status, "test_clock": None,
        "transfer_data": None, "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}}, "trial_start": None,
    }


def render_credit_note(cn: StripeCreditNote, inv: StripeInvoice | None) -> dict[str, Any]:
    ratio = (inv.subtotal / inv.total) if inv and inv.total else 1.0
    subtotal = round(cn.amount * ratio)
    line = {
        "id": "cnli_" + _h("cnli", cn.id), "object": "credit_note_line_item", "amount": subtotal,
        "description": (inv.lines[0].description if inv and inv.lines else "Avoir"), "discount_amount": 0,
        "discount_amounts": [], "invoice_line_item": inv.lines[0].id if inv and inv.lines else None,
        "livemode": False, "metadata": {}, "pretax_credit_amounts": [], "quantity": 1, "tax_rates": [],
        "taxes": _tax_amounts(subtotal, cn.amount - subtotal), "type": "invoice_line_item",
        "unit_amount": None, "unit_amount_decimal": None,
    }
    return {
        "id": cn.id, "object": "credit_note", "amount": cn.amount, "amount_shipping": 0,
        "created": ts(cn.created_at), "currency": cn.currency, "customer": cn.customer_id, "customer_account": None,
        "customer_balance_transaction": None, "discount_amount": 0, "discount_amounts": [],
        "effective_at": ts(cn.created_at), "invoice": cn.invoice_id,
        "lines": _list([line], f"/v1/credit_notes/{cn.id}/lines"), "livemode": False, "memo": None,
        "metadata": {}, "number": cn.number, "out_of_band_amount": None,
        "pdf": f"https://pay.stripe.com/credit_notes/acct_sandbox/test_{_h('cnpdf', cn.id, n=24)}/pdf",
        "post_payment_amount": cn.amount, "pre_payment_amount": 0, "pretax_credit_amounts": [],
        "reason": cn.reason, "refunds": [], "shipping_cost": None, "status": "issued", "subtotal": subtotal,
        "subtotal_excluding_tax": subtotal, "total": cn.amount, "total_excluding_tax": subtotal,
        "total_taxes": _tax_amounts(subtotal, cn.amount - subtotal), "type": "post_payment", "voided_at": None,
    }


def to_version(obj: dict[str, Any], version: str | None) -> dict[str, Any]:
    """The canonical (basil+) object as an older API version shows it (a copy), or the object itself."""
    if not version or version[:10] >= BASIL:
        return obj
    kind = obj.get("object")
    if kind == "invoice":
        out = dict(obj)
        parent = out.pop("parent", None) or {}
        out["subscription"] = (parent.get("subscription_details") or {}).get("subscription")
        lines = dict(out["lines"])
        lines["data"] = [to_version(line, version) for line in lines["data"]]
        out["lines"] = lines
        return out
    if kind == "line_item":
        out = dict(obj)
        parent = out.pop("parent", None) or {}
        sid = parent.get("subscription_item_details") or {}
        out["type"] = "subscription" if sid else "invoiceitem"
        out["subscription"] = sid.get("subscription")
        out["subscription_item"] = sid.get("subscription_item")
        out["proration"] = False
        return out
    if kind == "subscription":
        out = dict(obj)
        item = (out["items"]["data"] or [{}])[0]
        out["current_period_start"] = item.get("current_period_start")
        out["current_period_end"] = item.get("current_period_end")
        return out
    return obj


# ------------------------------------------------------------------------------------------- store

def _fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _billing_fingerprint(world) -> str:
    return hashlib.sha256(repr(world.billing).encode()).hexdigest()


def render_all(world) -> dict[str, dict[str, dict[str, Any]]]:
    """Every neutral billing object as its canonical Stripe object: type -> id -> object."""
    b = world.billing
    customers = {c.id: c for c in b.customers}
    n_inv: dict[str, int] = {}
    latest: dict[str, tuple] = {}
    first: dict[str, tuple] = {}
    cns: dict[str, list[StripeCreditNote]] = {}
    for cn in b.credit_notes:
        cns.setdefault(cn.invoice_id, []).append(cn)
    invoices = {i.id: i for i in b.invoices}
    for inv in b.invoices:
        n_inv[inv.customer_id] = n_inv.get(inv.customer_id, 0) + 1
        if inv.subscription_id and (inv.subscription_id not in latest or latest[inv.subscription_id] < (inv.created_at, inv.id)):
            latest[inv.subscription_id] = (inv.created_at, inv.id)
        if inv.subscription_id and (inv.subscription_id not in first or first[inv.subscription_id] > (inv.created_at, inv.id)):
            first[inv.subscription_id] = (inv.created_at, inv.id)
    firsts = {v[1] for v in first.values()}
    account = getattr(getattr(world, "seller", None), "name", "Sandbox SAS")
    return {
        "customers": {c.id: render_customer(c, n_inv.get(c.id, 0)) for c in b.customers},
        "invoices": {i.id: render_invoice(i, customers.get(i.customer_id), cns.get(i.id, []), account,
                                     i.id in firsts)
                     for i in b.invoices},
        "subscriptions": {s.id: render_subscription(s, latest.get(s.id, (None, None))[1]) for s in b.subscriptions},
        "credit_notes": {cn.id: render_credit_note(cn, invoices.get(cn.invoice_id)) for cn in b.credit_notes},
    }


def _order(objects: dict[str, dict[str, Any]]) -> list[str]:
    return [o["id"] for o in sorted(objects.values(), key=lambda o: (o["created"], o["id"]), reverse=True)]


class _EventLog:
    def __init__(self, store: StripeStore, seed: Any) -> None:
        self.store, self.seed = store, seed

    def emit(self, etype: str, obj: dict[str, Any], created: int, previous: dict[str, Any] | None = None) -> None:
        n = len(self.store.events)
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous:
            data["previous_attributes"] = previous
        self.store.events.append({
            "id": "evt_" + _h("evt", self.seed, n, n=24), "object": "event", "account": None,
            "api_version": ACCOUNT_API_VERSION, "context": None, "created": int(created), "data": data,
            "livemode": False, "pending_webhooks": 0, "request": {"id": None, "idempotency_key": None},
            "type": etype,
        })


_CUSTOMER_SNAPSHOT = ("customer_address", "customer_email", "customer_name", "customer_phone", "customer_shipping",
                      "customer_tax_exempt", "customer_tax_ids")
_SINGULAR = {"customers": "customer", "invoices": "invoice", "subscriptions": "customer.subscription",
             "credit_notes": "credit_note"}


def _invoice_transition_events(old: dict | None, new: dict) -> list[tuple[str, int | None]]:
    """Event types (with the moment they happened) for an invoice going from `old` to `new`."""
    out: list[tuple[str, int | None]] = []
    st = new["status_transitions"]
    was = old["status"] if old else None
    if old is None:
        out.append(("invoice.created", new["created"]))
    if was in (None, "draft") and new["status"] != "draft":
        out.append(("invoice.finalized", st["finalized_at"]))
    if was != new["status"]:
        if new["status"] == "paid":
            out += [("invoice.paid", st["paid_at"]), ("invoice.payment_succeeded", st["paid_at"])]
        elif new["status"] == "void":
            out.append(("invoice.voided", st["voided_at"]))
        elif new["status"] == "uncollectible":
            out.append(("invoice.marked_uncollectible", st["marked_uncollectible_at"]))
    if old is not None and not out:
        out.append(("invoice.updated", None))
    return out


def _previous_attributes(old: dict, new: dict) -> dict[str, Any]:
    return {k: old.get(k) for k in new if k not in ("lines",) and old.get(k) != new.get(k)}


def build_store(world) -> StripeStore:
    """The initial store, with the events of the last 30 days (world time) in the log."""
    store = StripeStore()
    rendered = render_all(world)
    now = ts(world.as_of)
    since = now - EVENT_RETENTION_DAYS * 86400
    pending: list[tuple[int, int, str, dict]] = []
    for otype in OBJECT_TYPES:
        store.objects[otype] = rendered[otype]
        store.created_order[otype] = _order(rendered[otype])
        store.fingerprints[otype] = {i: _fingerprint(o) for i, o in rendered[otype].items()}
        for obj in rendered[otype].values():
            if otype == "invoices":
                happenings = _invoice_transition_events(None, obj)
            elif otype == "subscriptions":
                happenings = [("customer.subscription.created", obj["created"])]
                if obj["status"] == "canceled":
                    happenings.append(("customer.subscription.deleted", obj["canceled_at"]))
            else:
                happenings = [(f"{_SINGULAR[otype]}.created", obj["created"])]
            for etype, when in happenings:
                if when is not None and since <= when <= now:
                    pending.append((when, len(pending), etype, obj))
    log = _EventLog(store, world.seed)
    for when, _n, etype, obj in sorted(pending, key=lambda p: (p[0], p[1])):
        log.emit(etype, obj, when)
    store.now, store.steps = now, getattr(world, "steps", 0)
    store.billing_fingerprint = _billing_fingerprint(world)
    return store


def get_store(world) -> StripeStore:
    """The world's Stripe store (built on first use, kept on the world), synced to the world's current time."""
    store = world.__dict__.get("_stripe_store")
    if store is None:
        store = build_store(world)
        world.__dict__["_stripe_store"] = store
    sync(world, store)
    return store


def sync(world, store: StripeStore) -> list[dict[str, Any]]:
    """Bring the store up to the world's time: derive billing changes for steps advance() left without any,
    then turn every difference into events. Returns the events emitted."""
    steps = getattr(world, "steps", 0)
    now = ts(world.as_of)
    with store.lock:
        if steps == store.steps and now == store.now:
            return []
        if steps > store.steps and _billing_fingerprint(world) == store.billing_fingerprint:
            day = timedelta(days=1)
            first = world.as_of - (steps - store.steps) * day
            for k in range(store.steps + 1, steps + 1):
                start = first + (k - store.steps - 1) * day
                derive_step(world, store, k, start, start + day)
                store.derived_steps.append(k)
        emitted = _diff(world, store, store.now, now)
        store.now, store.steps = now, steps
        store.billing_fingerprint = _billing_fingerprint(world)
        return emitted


def _diff(world, store: StripeStore, prev_now: int, now: int) -> list[dict[str, Any]]:
    rendered = render_all(world)
    log = _EventLog(store, world.seed)
    first_event = len(store.events)
    pending: list[tuple[int, int, str, dict, dict | None]] = []

    def clamp(when: int | None) -> int:
        return now if when is None or not prev_now < when <= now else when

    for otype in OBJECT_TYPES:
        current = rendered[otype]
        deleted = store.deleted[otype]
        for oid, obj in current.items():
            if oid in deleted:
                continue
            old = store.objects[otype].get(oid)
            if otype == "invoices" and old is not None and old["status"] != "draft":
                # a finalised invoice keeps the customer details it was issued with (Stripe snapshots them)
                obj.update({k: old[k] for k in _CUSTOMER_SNAPSHOT})
            fp = _fingerprint(obj)
            if old is not None and store.fingerprints[otype].get(oid) == fp:
                continue
            if otype == "invoices":
                happenings = _invoice_transition_events(old, obj)
            elif old is None:
                happenings = [(f"{_SINGULAR[otype]}.created", obj["created"])]
            elif otype == "subscriptions" and obj["status"] == "canceled" and old["status"] != "canceled":
                happenings = [("customer.subscription.deleted", obj["canceled_at"])]
            else:
                happenings = [(f"{_SINGULAR[otype]}.updated", None)]
            prev = _previous_attributes(old, obj) if old is not None else None
            for etype, when in happenings:
                pending.append((clamp(when), len(pending), etype, obj, prev if etype.endswith(".updated") else None))
            store.objects[otype][oid] = obj
            store.fingerprints[otype][oid] = fp
        for oid, when in deleted.items():
            obj = store.objects[otype].get(oid)
            if obj is not None and not obj.get("deleted"):
                stub = dict(obj, deleted=True)
                pending.append((clamp(when), len(pending), f"{_SINGULAR[otype]}.deleted", stub, None))
                store.objects[otype][oid] = stub
        store.created_order[otype] = _order({k: v for k, v in store.objects[otype].items() if k not in deleted})
    for when, _n, etype, obj, prev in sorted(pending, key=lambda p: (p[0], p[1])):
        log.emit(etype, obj, when, prev)
    return store.events[first_event:]


# ------------------------------------------------------------------------------------------- time passing

def _rand_ts(rng: random.Random, start: datetime, end: datetime) -> datetime:
    span = int((end - start).total_seconds())
    return start + timedelta(seconds=1 + rng.randrange(max(1, span - 1)))


def _new_id(rng: random.Random, prefix: str) -> str:
    return prefix + "_" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
                                  for _ in range(14))


def _next_number(b) -> int:
    best = 0
    for inv in b.invoices:
        try:
            best = max(best, int(inv.number.rsplit("-", 1)[-1]))
        except ValueError:
            pass
    return best + 1


def _make_invoice(rng, b, cust: StripeCustomer, deal_key, sub_id, lines, created: datetime, end: datetime,
                  status: str) -> StripeInvoice:
    subtotal = sum(a for _, a, _, _ in lines)
    tax = round(subtotal * 0.2) if cust.currency == "eur" else 0
    total = subtotal + tax
    inv = StripeInvoice(
        id=_new_id(rng, "in"), number=f"VDL-{created.year}-{_next_number(b):05d}", customer_id=cust.id,
        subscription_id=sub_id, deal_key=deal_key, status=status, currency=cust.currency,
        lines=[InvoiceLine(id=_new_id(rng, "il"), description=d, amount=a, quantity=1, period_start=ps, period_end=pe,
                           subscription_id=sub_id) for d, a, ps, pe in lines],
        subtotal=subtotal, tax=tax, total=total, amount_paid=0, amount_due=total, amount_remaining=total,
        created_at=created, finalized_at=None if status == "draft" else min(end, created + timedelta(hours=1)),
        due_date=None if status == "draft" else created + timedelta(days=30), paid_at=None, voided_at=None,
        marked_uncollectible_at=None)
    b.invoices.append(inv)
    return inv


def derive_step(world, store: StripeStore, k: int, start: datetime, end: datetime) -> None:
    """One day (start, end] of Stripe life, applied to world.billing (see the module docstring)."""
    rng = random.Random(f"{world.seed}:stripe:{k}")
    b = world.billing
    by_company = {c.company_key: c for c in b.customers if c.company_key}
    customers = {c.id: c for c in b.customers}
    gone = set(store.deleted["customers"])
    # drafts older than an hour are finalised (Stripe's auto-advance)
    for inv in b.invoices:
        if inv.status == "draft" and inv.created_at + timedelta(hours=1) <= end:
            inv.status = "open"
            inv.finalized_at = max(inv.created_at + timedelta(hours=1), start + timedelta(seconds=1))
            inv.due_date = inv.created_at + timedelta(days=30)
    fresh: set[str] = set()
    # subscription renewals falling due
    for sub in b.subscriptions:
        cust = customers.get(sub.customer_id)
        while sub.status == "active" and sub.current_period_end <= end and cust is not None and cust.id not in gone:
            ps, pe = sub.current_period_end, sub.current_period_end + timedelta(days=30)
            status = "draft" if ps + timedelta(hours=1) > end else "open"
            inv = _make_invoice(rng, b, cust, sub.deal_key, sub.id, [(sub.product_name, sub.unit_amount, ps, pe)],
                                max(ps, start + timedelta(seconds=1)), end, status)
            fresh.add(inv.id)
            sub.current_period_start, sub.current_period_end = ps, pe
    # deals won today get billed
    billed = {i.deal_key for i in b.invoices if i.deal_key}
    hs_company = {r.company_key: r.record_id for r in getattr(world, "company_records", [])
                  if r.vendor == "hubspot" and r.variant == "original"}
    for d in sorted(getattr(world, "deals", []), key=lambda d: d.key):
        if d.outcome != "won" or d.closed_at is None or not start < d.closed_at <= end or d.key in billed:
            continue
        cust = by_company.get(d.company_key)
        if cust is None:
            co = world.company(d.company_key)
            cust = StripeCustomer(
                id=_new_id(rng, "cus"), company_key=co.key, name=co.trade_name, email=f"compta@{co.domain}",
                link="metadata", crm_company_id=hs_company.get(co.key), vat=co.vat, currency=d.currency.lower(),
                address=co.address, postcode=co.postcode, city=co.city,
                created_at=min(end, d.closed_at + timedelta(minutes=30)))
            b.customers.append(cust)
            truth = getattr(world, "truth", None)
            if truth is not None:  # identity tests score Stripe customers against this
                truth.company_entity[("stripe", cust.id)] = co.key
            customers[cust.id] = cust
            by_company[co.key] = cust
        when = min(end, max(cust.created_at, d.closed_at) + timedelta(minutes=5))
        minor = int(d.amount * 100)
        inv = _make_invoice(rng, b, cust, d.key, None, [(d.name, minor, when, when)], when, end, "open")
        fresh.add(inv.id)
    # some open invoices get paid, one is voided every third day
    open_invoices = sorted((i for i in b.invoices if i.status == "open" and i.id not in fresh),
                           key=lambda i: (i.created_at, i.id))
    if open_invoices and k % 3 == 1:
        victim = open_invoices.pop(rng.randrange(len(open_invoices)))
        victim.status, victim.voided_at = "void", _rand_ts(rng, start, end)
        victim.amount_remaining = 0
    for inv in open_invoices:
        if inv.created_at <= start - timedelta(days=2) and rng.random() < 0.25:
            inv.status, inv.paid_at = "paid", _rand_ts(rng, start, end)
            inv.amount_paid, inv.amount_remaining = inv.total, 0
    # now and then: a credit note, a customer's billing e-mail changes, a subscription is canceled
    paid = [i for i in b.invoices if i.status == "paid"
            and i.id not in {cn.invoice_id for cn in b.credit_notes} and i.customer_id not in gone]
    if paid and rng.random() < 0.35:
        inv = paid[rng.randrange(len(paid))]
        b.credit_notes.append(StripeCreditNote(
            id=_new_id(rng, "cn"), number=f"{inv.number}-CN-01", invoice_id=inv.id, customer_id=inv.customer_id,
            amount=max(100, int(inv.total * rng.choice([0.1, 0.2, 0.5]))), currency=inv.currency,
            reason=rng.choice(["duplicate", "order_change", "product_unsatisfactory"]), created_at=_rand_ts(rng, start, end)))
    live = [c for c in b.customers if c.id not in gone and c.email]
    if live and rng.random() < 0.5:
        cust = live[rng.randrange(len(live))]
        local, _, domain = cust.email.partition("@")
        cust.email = f"{'facturation' if local != 'facturation' else 'compta'}@{domain}"
    active = [s for s in b.subscriptions if s.status == "active"]
    if active and rng.random() < 0.2:
        sub = active[rng.randrange(len(active))]
        sub.status, sub.canceled_at = "canceled", _rand_ts(rng, start, end)
        sub.ended_at = sub.canceled_at
    if k == 1:  # a customer the CRM never knew is deleted in Stripe (its invoices stay, as at Stripe)
        outsiders = sorted((c for c in b.customers if c.company_key is None and c.id not in gone),
                           key=lambda c: (c.created_at, c.id))
        if outsiders:
            store.deleted["customers"][outsiders[-1].id] = ts(_rand_ts(rng, start, end))
