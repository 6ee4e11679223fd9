"""Fixtures for the sandbox server tests: a small hand-built HubSpot store (cheap, exact counts).

Kept apart from tests/conftest.py (shared); import what you need:
    from tests.sandbox_fixtures import hand_world, big_contacts_world
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from sandbox.stores import HubSpotStore

BASE = datetime(2025, 1, 1, 9, 0, tzinfo=timezone.utc)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _record(record_id: int, created: datetime, updated: datetime, props: dict[str, Any],
            modified_name: str, archived: bool = False) -> dict[str, Any]:
    rid = str(record_id)
    return {
        "id": rid,
        "properties": {"hs_object_id": rid, "createdate": _iso(created), modified_name: _iso(updated), **props},
        "createdAt": _iso(created),
        "updatedAt": _iso(updated),
        "archived": archived,
        "archivedAt": _iso(updated) if archived else None,
    }


@dataclass
class HandWorld:
    """Quacks like sandbox.generator's World for the server: .seed, .hubspot, .advance()."""

    hubspot: HubSpotStore
    seed: int = 7
    advanced: list[int] = field(default_factory=list)

    def advance(self, step: int = 1) -> dict[str, Any]:
        self.advanced.append(step)
        with self.hubspot.lock:
            record = self.hubspot.objects["contacts"]["1001"]
            record["updatedAt"] = record["properties"]["lastmodifieddate"] = "2026-11-01T10:00:00.000Z"
        return {"changes": [{"vendor": "hubspot", "object_type": "contacts", "id": "1001", "kind": "updated"}]}


def build_store(n_contacts: int = 237, n_companies: int = 30, n_deals: int = 45, n_calls: int = 20,
                n_archived_contacts: int = 3) -> HubSpotStore:
    store = HubSpotStore()
    contacts: dict[str, dict[str, Any]] = {}
    for i in range(n_contacts):
        cid = 1001 + i * 3  # gaps in ids, like a real portal
        created = BASE + timedelta(hours=i)
        updated = created + timedelta(days=i % 40)
        archived = i >= n_contacts - n_archived_contacts
        contacts[str(cid)] = _record(cid, created, updated, {
            "email": f"prenom{i}.nom@acme{i % 7}.fr",
            "firstname": f"Prénom{i}",
            "lastname": f"Nom{i}",
            "lifecyclestage": ["lead", "marketingqualifiedlead", "customer"][i % 3],
            "phone": None if i % 5 == 0 else f"+3361234{i:04d}",
            "hubspot_owner_id": str(501 + i % 3),
            "lead_source": "referral" if i % 4 == 0 else None,
        }, "lastmodifieddate", archived)
    companies = {}
    for i in range(n_companies):
        cid = 2001 + i
        created = BASE + timedelta(days=i)
        companies[str(cid)] = _record(cid, created, created + timedelta(days=2), {
            "name": f"Société {i} SAS", "domain": f"acme{i}.fr", "tier": ["Or", "Argent", "Bronze"][i % 3],
            "siren": f"{123456789 + i}",
        }, "hs_lastmodifieddate")
    deals = {}
    stages = ["appointmentscheduled", "qualifiedtobuy", "closedwon", "closedlost"]
    for i in range(n_deals):
        did = 3001 + i
        created = BASE + timedelta(days=i)
        deals[str(did)] = _record(did, created, created + timedelta(days=5), {
            "dealname": f"Affaire {i}", "amount": str(1000 * (i + 1)), "dealstage": stages[i % 4],
            "pipeline": "default", "closedate": _iso(created + timedelta(days=30)),
        }, "hs_lastmodifieddate")
    calls = {}
    for i in range(n_calls):
        kid = 4001 + i
        created = BASE + timedelta(days=i)
        calls[str(kid)] = _record(kid, created, created, {
            "hs_createdate": _iso(created), "hs_timestamp": _iso(created), "hs_call_duration": "600000",
        }, "hs_lastmodifieddate")
    store.objects = {"contacts": contacts, "companies": companies, "deals": deals, "calls": calls}
    contact_ids = sorted(contacts, key=int)
    store.property_history["contacts"] = {
        cid: {"lifecyclestage": [
            {"value": contacts[cid]["properties"]["lifecyclestage"], "timestamp": contacts[cid]["updatedAt"],
             "sourceType": "CRM_UI", "sourceId": "userId:1"},
            {"value": "lead", "timestamp": contacts[cid]["createdAt"], "sourceType": "API", "sourceId": None},
        ]} for cid in contact_ids}
    company_ids = sorted(companies, key=int)
    store.associations[("contacts", "companies")] = [
        (cid, company_ids[n % len(company_ids)], 1) for n, cid in enumerate(contact_ids)] + [
        (cid, company_ids[n % len(company_ids)], 279) for n, cid in enumerate(contact_ids)]
    store.associations[("deals", "companies")] = [(d, company_ids[n % len(company_ids)], 5)
                                                  for n, d in enumerate(sorted(deals, key=int))]
    store.associations[("deals", "contacts")] = [(d, contact_ids[n], 3) for n, d in enumerate(sorted(deals, key=int))]
    store.associations[("calls", "contacts")] = [(k, contact_ids[n], 194) for n, k in enumerate(sorted(calls, key=int))]
    store.owners = [
        {"id": str(501 + i), "email": f"rep{i}@sandbox-co.fr", "type": "PERSON", "firstName": f"Rep{i}",
         "lastName": "Commercial", "userId": 9001 + i, "userIdIncludingInactive": 9001 + i,
         "createdAt": _iso(BASE), "updatedAt": _iso(BASE), "archived": i == 3,
         "teams": [{"id": "11", "name": "Équipe PME", "primary": True}]}
        for i in range(4)]
    store.pipelines["deals"] = [{
        "id": "default", "label": "Pipeline commercial", "displayOrder": 0, "archived": False,
        "createdAt": _iso(BASE), "updatedAt": _iso(BASE),
        "stages": [{"id": s, "label": s.title(), "displayOrder": n, "archived": False,
                    "createdAt": _iso(BASE), "updatedAt": _iso(BASE),
                    "metadata": {"isClosed": "true" if s.startswith("closed") else "false",
                                 "probability": {"closedwon": "1.0", "closedlost": "0.0"}.get(s, "0.4")}}
                   for n, s in enumerate(stages)]}]
    store.property_definitions = {
        "contacts": [{"name": n, "label": n, "type": t, "fieldType": "text", "groupName": "contactinformation",
                      "hubspotDefined": n != "lead_source", "options": []}
                     for n, t in [("email", "string"), ("firstname", "string"), ("lastname", "string"),
                                  ("lifecyclestage", "enumeration"), ("phone", "string"), ("jobtitle", "string"),
                                  ("createdate", "datetime"), ("lastmodifieddate", "datetime"),
                                  ("hubspot_owner_id", "enumeration"), ("lead_source", "string")]],
        "companies": [{"name": "name", "label": "Nom", "type": "string", "fieldType": "text",
                       "groupName": "companyinformation", "hubspotDefined": True, "options": []}],
    }
    return store


@pytest.fixture
def hand_world() -> HandWorld:
    return HandWorld(build_store())


@pytest.fixture(scope="module")
def big_contacts_world() -> HandWorld:
    """10,050 live contacts: enough to hit the real 10,000-result search cap (built in well under a second)."""
    store = HubSpotStore()
    contacts = {}
    for i in range(10_050):
        created = BASE + timedelta(minutes=i)
        contacts[str(i + 1)] = _record(i + 1, created, created, {"email": f"c{i}@x.fr"}, "lastmodifieddate")
    store.objects = {"contacts": contacts}
    return HandWorld(store)


TINY_SEED = 5


@pytest.fixture(scope="module")
def tiny_world():
    """The generated sandbox company (size tiny), shared by read-only tests of a module."""
    from sandbox.generator import generate_world
    return generate_world(seed=TINY_SEED, size="tiny")


@pytest.fixture
def fresh_tiny_world():
    """A generated world of one's own, for tests that mutate the store (faults, advance)."""
    from sandbox.generator import generate_world
    return generate_world(seed=TINY_SEED, size="tiny")
