"""Stripe constants: API version pin, page size, rate limits, the events the incremental sync follows."""
from __future__ import annotations

from typing import Dict, Tuple

DEFAULT_BASE_URL = "https://api.stripe.com"
# Pinned, so the objects' layout does not change under the staging SQL when Stripe (or the account) moves on.
# 2025-03-31.basil moved invoice.subscription to invoice.parent.subscription_details.subscription; this is the
# version stripe-python 16 pins. Events keep the version they were created with (older events: old layout).
DEFAULT_API_VERSION = "2026-10-28.endive"

PAGE_SIZE = 100  # Stripe's maximum `limit`

# Stripe: 25 requests/s in test mode (sandboxes), 100/s live. Paced a little below, because the server counts
# arrivals and the network bunches requests up.
RATE_LIMIT_TEST = 20
RATE_LIMIT_LIVE = 80

EVENT_RETENTION_DAYS = 30  # /v1/events only goes back this far

# Resources synced, in backfill order: name -> (list path, id prefix, Stripe `object` value).
OBJECTS: Dict[str, Tuple[str, str, str]] = {
    "customers": ("/v1/customers", "cus", "customer"),
    "invoices": ("/v1/invoices", "in", "invoice"),
    "subscriptions": ("/v1/subscriptions", "sub", "subscription"),
    "credit_notes": ("/v1/credit_notes", "cn", "credit_note"),
}
OBJECT_OF = {obj: name for name, (_path, _prefix, obj) in OBJECTS.items()}

# At most 20 types per /v1/events request (Stripe's cap on `types[]`).
EVENT_TYPES: Tuple[str, ...] = (
    "customer.created", "customer.updated", "customer.deleted",
    "customer.tax_id.created", "customer.tax_id.updated", "customer.tax_id.deleted",
    "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
    "invoice.created", "invoice.finalized", "invoice.updated", "invoice.paid", "invoice.voided",
    "invoice.marked_uncollectible", "invoice.deleted",
    "credit_note.created", "credit_note.updated", "credit_note.voided",
)
assert len(EVENT_TYPES) <= 20
