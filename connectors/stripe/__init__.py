"""Stripe billing as a dlt source (no orchestrator inside; runnable alone with `python -m connectors.stripe`).

Tables (dataset `raw_stripe` in the project), raw Stripe objects with nested objects flattened by dlt
(`status_transitions__paid_at`, `metadata__crm_company_id`, `address__city`...); amounts stay integers in minor
units and times Unix seconds, as Stripe sends them (staging converts):
- `customers` (+ child `customers__tax_ids`: type, value, country), merged on `id`; `deleted` = soft delete.
- `invoices` without their lines, plus `subscription_id` read from `parent.subscription_details.subscription`
  (API >= 2025-03-31) or the legacy `subscription` field (events created under an older version); `deleted` for a
  deleted draft. `invoice_lines`: one row per line (every page of `/v1/invoices/{id}/lines`), replaced with its
  invoice. `subscriptions` (+ child `subscriptions__items` with price, amount, interval, current period),
  `credit_notes`.
- `events`: the Stripe events applied (id, type, created, object type and id): the invoices' status history.
- `deleted_objects`: (object_type, id) seen deleted (an event, or gone from a full re-scan): staging flags them.
  An object flagged there and later listed or read live again is taken out (a `_stripe_restored` row, dlt
  `hard_delete`, never stored). An object set aside in `_quarantine` is still listed, so it is never taken for
  gone; its last good row stays.
- `_quarantine`: objects that cannot be loaded (no usable id / created), with the reason and the payload.

Sync: the first run takes the newest event as its watermark, then backfills every list (`limit=100`,
`starting_after` while `has_more`; subscriptions with `status=all`, customers with `expand[]=data.tax_ids`).
Later runs read `/v1/events?created[gte]=<watermark>&types[]=...` and upsert the objects the events carry (the newest
snapshot per object; customers are re-read with their tax ids: one that no longer exists (404) is skipped, any other
failure to re-read it fails the run, so the watermark is not committed and the next run applies the event again).
If the watermark event is no longer listed (Stripe keeps events 30 days), the run says so in the log and re-scans
every list instead. Every `invoice_rescan_hours` an incremental run also re-lists draft and open invoices and those
created in the last `recent_invoice_days` (invoices change after creation: draft -> open -> paid / void). Rows whose
content did not change are not rewritten, so a rerun with nothing new writes nothing.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Optional, Set

import dlt
from dlt.sources import DltResource

from connectors.common.loaded import tables_with_data
from connectors.common.quarantine import quarantine_hints, quarantine_item
from connectors.common.retry import RetryPolicy
from connectors.stripe import settings
from connectors.stripe.helpers import StripeApiError, StripeClient

__all__ = ["stripe_source", "StripeClient", "StripeApiError", "context_of", "resync_state_paths"]

logger = logging.getLogger("connectors.stripe")

SOURCE = "stripe"


class MalformedObject(ValueError):
    pass


def _iso(unix: Optional[int]) -> str:
    return "never" if unix is None else datetime.fromtimestamp(unix, tz=timezone.utc).isoformat()


# ------------------------------------------------------------------------------------------- shaping

def _usable_id(obj: Any, otype: str) -> Optional[str]:
    """The object's id if it is a Stripe id of this type, else None."""
    oid = obj.get("id") if isinstance(obj, dict) else None
    prefix = settings.OBJECTS[otype][1]
    return oid if isinstance(oid, str) and re.fullmatch(rf"{prefix}_[A-Za-z0-9]+", oid) else None


def _validate(obj: Any, otype: str) -> None:
    _path, prefix, kind = settings.OBJECTS[otype]
    if not isinstance(obj, dict):
        raise MalformedObject("object is not a JSON object")
    oid = obj.get("id")
    if _usable_id(obj, otype) is None:
        raise MalformedObject(f"id is not a Stripe {kind} id: {oid!r}")
    if obj.get("deleted"):
        return
    created = obj.get("created")
    if isinstance(created, bool) or not isinstance(created, int):
        raise MalformedObject(f"created is not a Unix timestamp: {created!r}")


def _subscription_of_invoice(obj: Dict[str, Any]) -> Optional[str]:
    parent = obj.get("parent") or {}
    sub = (parent.get("subscription_details") or {}).get("subscription")
    legacy = obj.get("subscription")
    value = sub or legacy
    return value.get("id") if isinstance(value, dict) else value


_LEGACY_LINE_TYPES = {"subscription": "subscription_item_details", "invoiceitem": "invoice_item_details"}


def line_row(invoice_id: str, index: int, line: Dict[str, Any]) -> Dict[str, Any]:
    parent = line.get("parent") or {}
    sub_item = parent.get("subscription_item_details") or {}
    inv_item = parent.get("invoice_item_details") or {}
    price = ((line.get("pricing") or {}).get("price_details") or {}).get("price")
    if not price and isinstance(line.get("price"), dict):  # layout before basil
        price = line["price"].get("id")
    period = line.get("period") or {}
    return {
        "id": line.get("id"),
        "invoice_id": invoice_id,
        "line_index": index,
        "amount": line.get("amount"),
        "currency": line.get("currency"),
        "description": line.get("description"),
        "quantity": line.get("quantity"),
        "period_start": period.get("start"),
        "period_end": period.get("end"),
        "line_type": parent.get("type") or _LEGACY_LINE_TYPES.get(line.get("type"), line.get("type")),
        "subscription_id": sub_item.get("subscription") or inv_item.get("subscription") or line.get("subscription"),
        "subscription_item_id": sub_item.get("subscription_item") or line.get("subscription_item"),
        "invoice_item_id": inv_item.get("invoice_item") or line.get("invoice_item"),
        "price_id": price,
        "proration": bool(sub_item.get("proration") or inv_item.get("proration") or line.get("proration")),
        "tax_amount": sum(int(t.get("amount") or 0) for t in (line.get("taxes") or []) if isinstance(t, dict)),
    }


def _lists_as_json(value: Any) -> Any:
    """Lists inside an object become JSON text: each would otherwise be a child table (total_taxes, discounts,
    payment_method_types...), a merge per table at every load for data the marts do not read."""
    if isinstance(value, dict):
        return {k: _lists_as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _base_row(obj: Dict[str, Any], drop: tuple) -> Dict[str, Any]:
    return {k: _lists_as_json(v) for k, v in obj.items() if k not in ("object",) + drop}


def customer_row(obj: Dict[str, Any]) -> Dict[str, Any]:
    row = _base_row(obj, ("tax_ids",))
    tax = obj.get("tax_ids")
    if isinstance(tax, dict):
        row["tax_ids"] = [{"id": t.get("id"), "type": t.get("type"), "value": t.get("value"),
                           "country": t.get("country")} for t in tax.get("data") or [] if isinstance(t, dict)]
    row["deleted"] = bool(obj.get("deleted"))
    return row


def invoice_row(obj: Dict[str, Any]) -> Dict[str, Any]:
    row = _base_row(obj, ("lines",))
    row["subscription_id"] = _subscription_of_invoice(obj)
    row.pop("subscription", None)  # the pre-basil field (events keep their version): subscription_id holds it
    row["deleted"] = bool(obj.get("deleted"))
    return row


def subscription_row(obj: Dict[str, Any]) -> Dict[str, Any]:
    row = _base_row(obj, ("items",))
    items = []
    for it in ((obj.get("items") or {}).get("data") or []):
        if not isinstance(it, dict):
            continue
        price = it.get("price") or {}
        recurring = price.get("recurring") or {}
        items.append({
            "id": it.get("id"), "price_id": price.get("id"), "product_id": price.get("product"),
            "nickname": price.get("nickname"), "unit_amount": price.get("unit_amount"),
            "currency": price.get("currency"), "interval": recurring.get("interval"),
            "interval_count": recurring.get("interval_count"), "quantity": it.get("quantity"),
            "current_period_start": it.get("current_period_start", obj.get("current_period_start")),
            "current_period_end": it.get("current_period_end", obj.get("current_period_end")),
        })
    row["items"] = items
    if items:  # before basil these sat on the subscription; keep one place to read them
        row["current_period_start"] = items[0]["current_period_start"]
        row["current_period_end"] = items[0]["current_period_end"]
    row["deleted"] = bool(obj.get("deleted"))
    return row


def credit_note_row(obj: Dict[str, Any]) -> Dict[str, Any]:
    row = _base_row(obj, ("lines",))
    row["deleted"] = bool(obj.get("deleted"))
    return row


SHAPERS = {"customers": customer_row, "invoices": invoice_row, "subscriptions": subscription_row,
           "credit_notes": credit_note_row}


def _hash(row: Dict[str, Any]) -> str:
    payload = {k: v for k, v in row.items() if k != "_stripe_synced_at"}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------- the run plan

@dataclass
class _Plan:
    mode: str  # "full" | "incremental"
    reason: str
    rescan: bool = False
    rescan_since: Optional[int] = None
    snapshots: Dict[str, Dict[str, Dict[str, Any]]] = field(
        default_factory=lambda: {t: {} for t in settings.OBJECTS})
    refetch_customers: Set[str] = field(default_factory=set)
    event_rows: List[Dict[str, Any]] = field(default_factory=list)
    deleted_rows: List[Dict[str, Any]] = field(default_factory=list)
    known_before: Dict[str, Set[str]] = field(default_factory=dict)  # ids loaded before (full re-scan ghosts)

    @property
    def full(self) -> bool:
        return self.mode == "full"


class _Context:
    """What the resources of one source instance share: the client (built on first use, so creating the source
    does no I/O) and the run plan (computed once, by whichever resource runs first)."""

    def __init__(self, make_client, full_refresh: bool, invoice_rescan_hours: Optional[float],
                 recent_invoice_days: int, clock=time.time) -> None:
        self._make_client = make_client
        self._client: Optional[StripeClient] = None
        self.full_refresh = full_refresh
        self.invoice_rescan_hours = invoice_rescan_hours
        self.recent_invoice_days = recent_invoice_days
        self.clock = clock
        self._plan: Optional[_Plan] = None
        self._lock = threading.Lock()

    @property
    def client(self) -> StripeClient:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def plan(self) -> _Plan:
        with self._lock:
            if self._plan is None:
                self._plan = self._make_plan()
                logger.info("stripe: %s sync (%s)%s", self._plan.mode, self._plan.reason,
                            ", invoice re-scan due" if self._plan.rescan else "")
            return self._plan

    def _make_plan(self) -> _Plan:
        state = dlt.current.source_state().setdefault("sync", {})
        hashes = state.get("hashes") or {}
        known = {t: set(hashes.get(t) or {}) for t in settings.OBJECTS}
        wm = state.get("watermark")
        if self.full_refresh or not wm:
            reason = "full refresh requested" if wm else "first run: backfill through the list endpoints"
            return self._full(state, reason, None, known)
        events: List[Dict[str, Any]] = []
        for page in self.client.events(settings.EVENT_TYPES, wm.get("created")):
            events.extend(e for e in page if isinstance(e, dict))
        listed = {e.get("id") for e in events}
        if wm.get("id") and wm["id"] not in listed:
            logger.warning(
                "stripe: the events since the watermark (%s, event %s) are no longer all available: Stripe keeps "
                "events %d days. Falling back to a full re-scan of the lists; deleted objects are found by "
                "comparing with what was loaded before.", _iso(wm.get("created")), wm["id"],
                settings.EVENT_RETENTION_DAYS)
            return self._full(state, "events window exceeded: list re-scan", events[0] if events else None, known)
        plan = _Plan("incremental", f"{len(events)} events since {_iso(wm.get('created'))}")
        seen = set(wm.get("seen") or [])
        for event in reversed(events):  # oldest first: a later snapshot replaces an earlier one
            if event.get("id") in seen or (wm.get("backfill") and event.get("created") == wm.get("created")):
                continue  # already applied, or older than the backfill's list reads
            self._apply(plan, event)
        if events:
            newest = events[0]
            state["watermark"] = {"id": newest.get("id"), "created": newest.get("created"),
                                  "seen": [e.get("id") for e in events if e.get("created") == newest.get("created")]}
        now = self.clock()
        last = state.get("last_rescan")
        if self.invoice_rescan_hours is not None and (last is None or now - last >= self.invoice_rescan_hours * 3600):
            plan.rescan = True
            anchor = (state.get("watermark") or {}).get("created") or int(now)
            plan.rescan_since = int(anchor) - self.recent_invoice_days * 86400
            state["last_rescan"] = now
        return plan

    def _full(self, state: Dict[str, Any], reason: str, newest: Optional[Dict[str, Any]],
              known: Dict[str, Set[str]]) -> _Plan:
        if newest is None:
            # taken BEFORE the lists are read: whatever changes while they page shows up in the next run's events
            newest = self.client.newest_event(settings.EVENT_TYPES)
        # "backfill": every event up to this second is already in what the lists return
        state["watermark"] = {"id": (newest or {}).get("id"), "created": (newest or {}).get("created"),
                              "seen": [newest.get("id")] if newest else [], "backfill": True}
        state["last_rescan"] = self.clock()
        return _Plan("full", reason, known_before=known)

    @staticmethod
    def _apply(plan: _Plan, event: Dict[str, Any]) -> None:
        obj = (event.get("data") or {}).get("object")
        if not isinstance(obj, dict):
            return
        etype = str(event.get("type") or "")
        kind = obj.get("object")
        otype = settings.OBJECT_OF.get(kind)
        oid = obj.get("id")
        plan.event_rows.append({"id": event.get("id"), "type": etype, "created": event.get("created"),
                                "api_version": event.get("api_version"), "object_type": kind,
                                "object_id": oid if isinstance(oid, str) else None})
        if kind == "tax_id":
            if isinstance(obj.get("customer"), str):
                plan.refetch_customers.add(obj["customer"])
            return
        if otype is None:
            return
        if etype.endswith(".deleted") and otype in ("customers", "invoices"):
            plan.snapshots[otype][oid] = dict(obj, deleted=True)
            plan.refetch_customers.discard(oid)
            plan.deleted_rows.append({"object_type": otype, "id": oid, "deleted_at": event.get("created"),
                                      "how": etype})
            return
        if otype == "customers":
            if oid not in plan.snapshots["customers"]:
                plan.refetch_customers.add(oid)  # re-read: events do not carry the (expandable) tax ids
            return
        plan.snapshots[otype][oid] = obj


# ------------------------------------------------------------------------------------------- resources

def _objects(ctx: _Context, otype: str) -> Iterator[Dict[str, Any]]:
    """The raw Stripe objects of `otype` this run brings (full: every list page; incremental: the changes)."""
    plan = ctx.plan()
    client = ctx.client
    path = settings.OBJECTS[otype][0]
    if plan.full:
        params = {"customers": [("expand[]", "data.tax_ids")], "subscriptions": [("status", "all")]}.get(otype, [])
        for page in client.list_pages(path, params):
            yield from page
        return
    picked: Dict[str, Any] = dict(plan.snapshots[otype])
    if otype == "customers":
        for cid in sorted(plan.refetch_customers):
            try:
                obj = client.get(f"{path}/{cid}", [("expand[]", "tax_ids")])
            except StripeApiError as exc:
                if not exc.missing:
                    # the events watermark already moved past this change: fail the run, so that dlt does not
                    # commit the new watermark and the next run applies the event again
                    raise StripeApiError(
                        f"stripe: customer {cid} changed but could not be re-read ({exc}); the run stops without "
                        "moving the events watermark, the next run applies the change again",
                        status=exc.status, code=exc.code) from exc
                logger.warning("stripe: customer %s no longer exists (%s); its deletion event, if any, "
                               "is applied instead", cid, exc)
                continue
            if not obj.get("deleted"):  # deleted since: the customer.deleted event carries the last snapshot
                picked[cid] = obj
    if otype == "invoices" and plan.rescan:
        n = 0
        for params in ([("status", "draft")], [("status", "open")], [("created[gte]", plan.rescan_since)]):
            for page in client.list_pages(path, params):
                for obj in page:
                    n += 1
                    if isinstance(obj, dict) and isinstance(obj.get("id"), str):
                        picked[obj["id"]] = obj  # a listed object is as fresh as it gets
        logger.info("stripe: invoice re-scan read %d invoices (draft, open, created since %s)", n,
                    _iso(plan.rescan_since))
    yield from picked.values()


def _lines_of(ctx: _Context, invoice: Dict[str, Any]) -> List[Dict[str, Any]]:
    lines = invoice.get("lines") or {}
    data = [x for x in lines.get("data") or [] if isinstance(x, dict)]
    if lines.get("has_more"):
        data = []
        for page in ctx.client.list_pages(f"/v1/invoices/{invoice['id']}/lines", kind="lines"):
            data.extend(x for x in page if isinstance(x, dict))
    return [line_row(invoice["id"], i, line) for i, line in enumerate(data)]


def _lines_hints() -> Any:
    return dlt.mark.make_hints(
        table_name="invoice_lines",
        # delete-insert on the invoice: re-reading an invoice replaces its lines (removed lines go)
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        primary_key="id", merge_key="invoice_id",
        columns={"id": {"data_type": "text", "nullable": False},
                 "invoice_id": {"data_type": "text", "nullable": False},
                 "amount": {"data_type": "bigint"}, "quantity": {"data_type": "bigint"},
                 "period_start": {"data_type": "bigint"}, "period_end": {"data_type": "bigint"},
                 "tax_amount": {"data_type": "bigint"}, "proration": {"data_type": "bool"}},
    )


RESTORED = "_stripe_restored"


def _deleted_hints() -> Any:
    # A row with RESTORED = true (dlt's `hard_delete` hint) takes its object out of the table and is not stored:
    # sent when an object flagged deleted is listed or read live again.
    return dlt.mark.make_hints(
        table_name="deleted_objects", write_disposition="merge", primary_key=["object_type", "id"],
        columns={"object_type": {"data_type": "text", "nullable": False},
                 "id": {"data_type": "text", "nullable": False}, "deleted_at": {"data_type": "bigint"},
                 "how": {"data_type": "text"}, RESTORED: {"data_type": "bool", "hard_delete": True}},
    )


def _object_resource(ctx: _Context, otype: str) -> DltResource:
    shaper = SHAPERS[otype]
    columns: Dict[str, Any] = {
        "id": {"data_type": "text", "nullable": False},
        "created": {"data_type": "bigint"},
        "deleted": {"data_type": "bool"},
        "_stripe_synced_at": {"data_type": "timestamp", "dedup_sort": "desc"},
    }
    if otype == "invoices":
        columns["subscription_id"] = {"data_type": "text"}

    @dlt.resource(name=otype, write_disposition="merge", primary_key="id")
    def objects() -> Iterator[Any]:
        plan = ctx.plan()
        state = dlt.current.source_state().setdefault("sync", {})
        hashes: Dict[str, str] = state.setdefault("hashes", {}).setdefault(otype, {})
        # ids this connector flagged in deleted_objects (events, re-scans): one listed or read live again is
        # taken out of it. A full re-scan also clears live objects it had no hash for (flagged by a version that
        # kept no list), once deleted_objects holds rows.
        flagged: Set[str] = set((state.setdefault("flagged", {})).get(otype) or [])
        loaded = tables_with_data() if plan.full else set()
        unknown_may_be_flagged = plan.full and (loaded is None or "deleted_objects" in loaded)
        restored: Set[str] = set()
        seen: Set[str] = set()
        rows: List[Dict[str, Any]] = []
        lines: List[Dict[str, Any]] = []
        n_read = n_written = 0

        def flush() -> Iterator[Any]:
            # one batch per table: a hinted item per invoice would make dlt re-evaluate the table variant each time
            if rows:
                yield list(rows)
                rows.clear()
            if lines:
                yield dlt.mark.with_hints(list(lines), _lines_hints(), create_table_variant=True)
                lines.clear()
        for obj in _objects(ctx, otype):
            n_read += 1
            try:
                _validate(obj, otype)
                row = shaper(obj)
            except (MalformedObject, TypeError, ValueError, AttributeError) as exc:
                rid = obj.get("id") if isinstance(obj, dict) else None
                yield quarantine_item(SOURCE, otype, rid, str(exc), obj)
                if _usable_id(obj, otype):
                    seen.add(rid)  # listed, so not deleted: its last good row stays as it is
                continue
            seen.add(row["id"])
            if not row["deleted"] and (row["id"] in flagged
                                       or (unknown_may_be_flagged and row["id"] not in hashes)):
                restored.add(row["id"])
            digest = _hash(row)
            if hashes.get(row["id"]) == digest:
                continue  # unchanged since it was last loaded
            hashes[row["id"]] = digest
            row["_stripe_synced_at"] = datetime.now(timezone.utc)
            rows.append(row)
            n_written += 1
            if otype == "invoices" and not row["deleted"]:
                lines += _lines_of(ctx, obj)
            if len(rows) >= 500:
                yield from flush()
        yield from flush()
        deleted = [dict(r, id=r["id"]) for r in plan.deleted_rows if r["object_type"] == otype]
        if plan.full and otype in ("customers", "invoices"):
            # a full re-scan after the events window: what was loaded before and is no longer listed was deleted
            ghosts = sorted(plan.known_before.get(otype, set()) - seen)
            for gid in ghosts:
                deleted.append({"object_type": otype, "id": gid, "deleted_at": None, "how": "missing from re-scan"})
                hashes.pop(gid, None)
            if ghosts:
                logger.warning("stripe: %d %s loaded before are gone from the lists: flagged deleted", len(ghosts),
                               otype)
        gone = {r["id"] for r in deleted}
        restored -= gone
        if restored & flagged:
            logger.warning("stripe: %d %s flagged deleted before are live again: no longer flagged (%s)",
                           len(restored & flagged), otype, ", ".join(sorted(restored & flagged)[:10]))
        deleted += [{"object_type": otype, "id": rid, "deleted_at": None, "how": "live again", RESTORED: True}
                    for rid in sorted(restored)]
        still = sorted((flagged - restored) | gone)
        if still or otype in state["flagged"]:
            state["flagged"][otype] = still
        if deleted:
            yield dlt.mark.with_hints(deleted, _deleted_hints(), create_table_variant=True)
        logger.info("stripe: %s %s: %d read, %d written", plan.mode, otype, n_read, n_written)

    variants = [quarantine_hints(), _deleted_hints()] + ([_lines_hints()] if otype == "invoices" else [])
    for hints in variants:
        objects.apply_hints(
            table_name=hints["table_name"], write_disposition=hints.get("write_disposition"),
            columns=hints.get("original_columns") or hints.get("columns"), primary_key=hints.get("primary_key"),
            merge_key=hints.get("merge_key"), create_table_variant=True,
        )
    objects.apply_hints(columns=columns)
    return objects


def _events_resource(ctx: _Context) -> DltResource:
    @dlt.resource(name="events", write_disposition="merge", primary_key="id",
                  columns={"id": {"data_type": "text", "nullable": False}, "created": {"data_type": "bigint"}})
    def events() -> Iterator[Any]:
        plan = ctx.plan()
        if plan.event_rows:
            yield plan.event_rows

    return events


@dlt.source(name="stripe")
def stripe_source(
    secret_key: str = dlt.secrets.value,
    base_url: str = settings.DEFAULT_BASE_URL,
    api_version: str = settings.DEFAULT_API_VERSION,
    full_refresh: bool = False,
    invoice_rescan_hours: Optional[float] = 24.0,
    recent_invoice_days: int = 35,
    rate_limit_per_second: Optional[int] = None,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    max_attempts: int = 8,
    backoff_base: float = 0.5,
    backoff_max: float = 30.0,
    max_retry_after: float = 120.0,
) -> List[DltResource]:
    """Stripe customers, invoices (+ lines), subscriptions, credit notes, the events applied, deletions.

    Every argument is dlt config: `SOURCES__STRIPE__SECRET_KEY`, `SOURCES__STRIPE__BASE_URL`,
    `SOURCES__STRIPE__API_VERSION` (pinned; default the version stripe-python 16 pins), or `[sources.stripe]` in
    `.dlt/config.toml` / `secrets.toml`. Creating the source does no network I/O.

    Args:
        full_refresh: ignore the events watermark and re-scan every list (deletions found by comparison).
        invoice_rescan_hours: how often an incremental run re-lists draft/open/recent invoices (None = never).
        recent_invoice_days: "recent" for that re-scan, counted back from the newest event.
        rate_limit_per_second: client pacing (default 20/s with a test key, 80/s live: Stripe allows 25 / 100).
        max_attempts, backoff_base, backoff_max, max_retry_after: retries on 429 / 5xx / timeouts.
    """
    def make_client() -> StripeClient:
        return StripeClient(
            base_url, secret_key, api_version, rate_limit_per_second=rate_limit_per_second,
            connect_timeout=connect_timeout, read_timeout=read_timeout,
            retry_policy=RetryPolicy(max_attempts=max_attempts, backoff_base=backoff_base, backoff_max=backoff_max,
                                     max_retry_after=max_retry_after),
        )

    ctx = _Context(make_client, full_refresh, invoice_rescan_hours, recent_invoice_days)
    return [_object_resource(ctx, otype) for otype in settings.OBJECTS] + [_events_resource(ctx)]


def resync_state_paths(resources: List[str]) -> tuple[List[str], Dict[str, str]]:
    """What to drop from this source's dlt state so that the next sync reads everything again (a re-sync):
    (JSON paths relative to the source state, {what is kept: why}).

    Stripe's read position is one events watermark for every object (source state `sync.watermark`): without it
    the next sync takes a new one and re-lists every object (the backfill path), so a re-sync is of the whole
    source; a subset of resources is refused. `sync.hashes` and `sync.flagged` stay: the re-scan compares with them
    to flag objects deleted since (gone from the lists) and to take out those live again; an object whose content
    is unchanged is read but not rewritten."""
    every = set(settings.OBJECTS) | {"events"}
    if set(resources) != every:
        raise ValueError("Stripe is re-read as a whole (one events watermark for every object): "
                         "run it without --resource")
    return ["sync.watermark"], {"sync.hashes, sync.flagged": "what was loaded: the re-scan compares with it to "
                                "find deleted objects; unchanged objects are read but not rewritten"}


def context_of(source: Any) -> _Context:
    """The shared context behind a `stripe_source(...)` instance (its client's request counts, the run plan)."""
    for resource in source.resources.values():
        gen = getattr(getattr(resource, "_pipe", None), "gen", None)
        for cell in getattr(gen, "__closure__", None) or ():
            if isinstance(cell.cell_contents, _Context):
                return cell.cell_contents
    raise LookupError("no Stripe context found in this source")
