"""In-memory vendor stores: the contract between the sandbox generator and the sandbox servers.

The generator (sandbox/generator.py) builds one fictional French B2B company (a `World`) and renders
it into one store per vendor, shaped the way that vendor's API shows it. The servers (sandbox/servers/)
only read and page through these stores; they never invent data. Mutations (the "time passes" step
for incremental syncs) edit the stores in place and bump the vendor's last-modified stamps.

Everything here is plain data (dicts, lists, strings) so a store can be dumped to JSON for debugging.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class HubSpotStore:
    """HubSpot CRM, as the v3 / date-based (2026-03) CRM API shows it.

    objects: object type ("contacts", "companies", "deals", "calls", "meetings", "emails", "notes",
        "tasks") -> record id (numeric string) -> record:
        {"id": "123", "properties": {name: str | None, ...}, "createdAt": iso-ms-Z, "updatedAt": iso-ms-Z,
         "archived": bool, "archivedAt": iso-ms-Z | None}
        All property values are strings or None, as HubSpot sends them. `properties` holds every property
        the record has; the server returns only those asked for (plus HubSpot's defaults).
        Contacts carry `lastmodifieddate`, every other object `hs_lastmodifieddate`, both equal to updatedAt.
    property_history: object type -> record id -> property name -> list of
        {"value": str | None, "timestamp": iso-ms-Z, "sourceType": str, "sourceId": str | None}, newest first.
    associations: (from type, to type) -> list of (from id, to id, association type id). The server answers
        both directions (from one list, reversed for the other way round).
    owners: list of owner dicts as GET /crm/v3/owners returns them (id, email, type, firstName, lastName,
        userId, createdAt, updatedAt, archived, teams=[{id, name, primary}]).
    pipelines: object type ("deals") -> list of pipeline dicts as GET /crm/v3/pipelines/deals returns them.
    property_definitions: object type -> list of {"name", "label", "type", "fieldType", "groupName",
        "hubspotDefined": bool, "options": [...]} as GET /crm/v3/properties/{type} returns them.
    """

    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    property_history: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = field(default_factory=dict)
    associations: dict[tuple[str, str], list[tuple[str, str, int]]] = field(default_factory=dict)
    owners: list[dict[str, Any]] = field(default_factory=list)
    pipelines: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    property_definitions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Guards every read and every mutation: the server pages on one thread while a test mutates on another.
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
