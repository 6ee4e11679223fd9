"""In-memory Koban CRM store (the sandbox twin's data), filled by sandbox/koban_render.py.

Shaped as Koban's API v1 GET methods show records (field names from Koban-CRM/coding-templates
`api/structures/*.md`, the webhook payloads in `API.md` / `api/webhook/deal.md`, and the official Node SDK
`koban-node-api-library` models): every record carries `Guid`, `Extcode`, `CreationDate` / `LastUpdateDate`
(.NET JSON dates "/Date(ms)/"), `DCreated` / `DUpdated` (unix seconds, as the SDK's base model) and `Obsolete`
(true = deleted; Koban keeps the record). `purge` removes a record outright (an admin purge, an API delete): it
is then served by no method, GetUpdated included.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

# Koban controllers holding records that `GetUpdated` pages through.
CONTROLLERS = ("ncThird", "ncContact", "ncLead", "ncDeal", "ncAction", "ncInvoice")

# Neutral / HubSpot-style object names accepted by fault switches (malformed_object_type...).
OBJECT_ALIASES = {
    "companies": "ncThird", "accounts": "ncThird", "contacts": "ncContact", "leads": "ncLead", "deals": "ncDeal",
    "actions": "ncAction", "activities": "ncAction", "invoices": "ncInvoice",
}


@dataclass
class KobanStore:
    """objects: controller -> Guid -> record (API shape, see the module docstring).
    updated_ms: controller -> Guid -> LastUpdateDate in epoch ms (the GetUpdated filter and sort key).
    users: ncUser records; processes: deal processes with their Steps.
    step: the world step (world.steps) the store reflects; changes: (step, controller, Guid, kind) applied by
    the Koban side of World.advance (kind: created | updated | obsolete).
    """

    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {c: {} for c in CONTROLLERS})
    updated_ms: dict[str, dict[str, int]] = field(default_factory=lambda: {c: {} for c in CONTROLLERS})
    users: list[dict[str, Any]] = field(default_factory=list)
    processes: list[dict[str, Any]] = field(default_factory=list)
    step: int = 0
    changes: list[tuple[int, str, str, str]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def put(self, controller: str, record: dict[str, Any], updated_ms: int) -> None:
        self.objects[controller][record["Guid"]] = record
        self.updated_ms[controller][record["Guid"]] = updated_ms

    def purge(self, controller: str, record_guid: str) -> dict[str, Any]:
        """Hard-delete a record (no Obsolete flag, no trace left); returns it."""
        with self.lock:
            self.updated_ms[controller].pop(record_guid, None)
            return self.objects[controller].pop(record_guid)

    def count(self, controller: str, obsolete: bool | None = None) -> int:
        recs = self.objects[controller].values()
        return sum(1 for r in recs if obsolete is None or bool(r.get("Obsolete")) == obsolete)
