"""In-memory Stripe store: what the sandbox Stripe API serves, rendered from the neutral world's billing.

Kept apart from sandbox/stores.py (the generator's contract) because the neutral world only holds billing facts;
the Stripe shapes (API objects, the event log, deletions) are this twin's business (sandbox/stripe_render.py).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

# Stripe list resources served by the twin, in the order a backfill walks them.
OBJECT_TYPES = ("customers", "invoices", "subscriptions", "credit_notes")


@dataclass
class StripeStore:
    """Stripe, as the REST API (pinned to a basil-or-later version) shows it.

    objects: object type (OBJECT_TYPES) -> id -> the full API object (dict), invoices with ALL their lines in
        `lines.data` (the server embeds only the first page, like Stripe) and customers with their tax ids in
        `tax_ids.data` (the server shows them only when `tax_ids` is expanded, like Stripe).
    created_order: object type -> ids sorted by (created, id) DESCENDING: Stripe lists are newest first.
    deleted: object type -> id -> unix time of deletion. Deleted customers / draft invoices stay out of lists;
        a GET by id answers the `{"id", "object", "deleted": true}` stub.
    events: every event ever emitted, oldest first (`/v1/events` serves the last 30 days of world time).
    fingerprints: object type -> id -> hash of the rendered object when last synced (diff base for events).
    now: world time (unix seconds) the store was last synced to; steps: world.steps at that sync.
    """

    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {t: {} for t in OBJECT_TYPES})
    created_order: dict[str, list[str]] = field(default_factory=dict)
    deleted: dict[str, dict[str, int]] = field(default_factory=lambda: {t: {} for t in OBJECT_TYPES})
    events: list[dict[str, Any]] = field(default_factory=list)
    fingerprints: dict[str, dict[str, str]] = field(default_factory=lambda: {t: {} for t in OBJECT_TYPES})
    now: int = 0
    steps: int = 0
    billing_fingerprint: str = ""  # of the neutral billing at the last sync: tells whether advance() touched it
    derived_steps: list[int] = field(default_factory=list)  # world steps whose billing changes this twin derived
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
