"""The sandbox's HubSpot server behaves like HubSpot where the connector depends on it."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import pytest
import requests

from sandbox.server import SandboxServer
from tests.sandbox_fixtures import (  # noqa: F401  (fixtures)
    TINY_SEED, big_contacts_world, fresh_tiny_world, hand_world, tiny_world)

TOKEN = "sandbox-hubspot-7"  # the hand-built world's seed is 7
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GEN_AUTH = {"Authorization": f"Bearer sandbox-hubspot-{TINY_SEED}"}


# Functional tests lift the search limit (5/s) so that they never race it; the limits have their own tests.
NO_SEARCH_LIMIT = {"search_rate_limit": 100_000}


@pytest.fixture
def srv(hand_world):
    with SandboxServer(hand_world, port=0, hubspot=NO_SEARCH_LIMIT) as server:
        yield server


def make_client(server, auth=AUTH):
    """GET/POST helpers against the HubSpot mount, authenticated."""
    base = server.vendor_url("hubspot")
    session = requests.Session()
    session.headers.update(auth)

    class Client:
        url = base

        def get(self, path, **params):
            return session.get(base + path, params=params, timeout=10)

        def post(self, path, body):
            return session.post(base + path, json=body, timeout=10)

    return Client()


@pytest.fixture
def hs(srv):
    return make_client(srv)


@pytest.fixture(scope="module")
def gen_srv(tiny_world):
    """The generated tiny world, served read-only for the whole module."""
    with SandboxServer(tiny_world, port=0, hubspot=NO_SEARCH_LIMIT) as server:
        yield server


@pytest.fixture
def gen_hs(gen_srv):
    return make_client(gen_srv, GEN_AUTH)


@pytest.fixture
def fresh_srv(fresh_tiny_world):
    with SandboxServer(fresh_tiny_world, port=0, hubspot=NO_SEARCH_LIMIT) as server:
        yield server


def live_count(world, object_type):
    return sum(1 for r in world.hubspot.objects[object_type].values() if not r["archived"])


def page_all(hs, path, **params):
    """Follow paging.next.after to the last page, as a connector does."""
    records, after, pages = [], None, 0
    while True:
        query = dict(params, **({"after": after} if after else {}))
        resp = hs.get(path, **query)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        records += body["results"]
        pages += 1
        after = body.get("paging", {}).get("next", {}).get("after")
        if not after:
            return records, pages


OBJECT_TYPES = ["contacts", "companies", "deals", "calls", "meetings", "emails", "notes", "tasks"]


@pytest.mark.parametrize("version", ["v3", "2026-03"])
@pytest.mark.parametrize("object_type", OBJECT_TYPES)
def test_paging_reaches_the_last_page_with_every_live_record_once(gen_hs, tiny_world, object_type, version):
    path = f"/crm/v3/objects/{object_type}" if version == "v3" else f"/crm/objects/2026-03/{object_type}"
    records, pages = page_all(gen_hs, path, limit=100)
    ids = [r["id"] for r in records]
    live = live_count(tiny_world, object_type)
    assert len(ids) == live > 0
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids, key=int)  # stable order by id
    assert pages == -(-live // 100)
    assert all(not r["archived"] for r in records)


def test_paging_hand_world_exact(hs, hand_world):
    records, pages = page_all(hs, "/crm/objects/2026-03/contacts", limit=100)
    assert len(records) == 234 and pages == 3


def test_next_link_is_followable(hs):
    body = hs.get("/crm/v3/objects/deals", limit=10, properties="dealname").json()
    link = body["paging"]["next"]["link"]
    assert link.startswith(hs.url + "/crm/v3/objects/deals?")
    second = requests.get(link, headers=AUTH, timeout=10).json()
    assert second["results"][0]["id"] == body["paging"]["next"]["after"]
    assert "dealname" in second["results"][0]["properties"]


@pytest.mark.parametrize("object_type", ["contacts", "deals", "calls"])
def test_archived_true_returns_only_archived_records(gen_hs, tiny_world, object_type):
    records, _ = page_all(gen_hs, f"/crm/objects/2026-03/{object_type}", archived="true", limit=100)
    expected = sorted((i for i, r in tiny_world.hubspot.objects[object_type].items() if r["archived"]), key=int)
    assert [r["id"] for r in records] == expected and expected
    assert all(r["archived"] and r["archivedAt"] for r in records)


def test_properties_only_asked_plus_defaults(hs):
    default = hs.get("/crm/v3/objects/contacts", limit=1).json()["results"][0]["properties"]
    assert set(default) == {"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"}
    asked = hs.get("/crm/v3/objects/contacts", limit=1, properties="phone,lifecyclestage,jobtitle,nosuchprop")
    props = asked.json()["results"][0]["properties"]
    # asked + the always-present ones; a defined-but-unset property comes back null; unknown ones are absent
    assert set(props) == {"createdate", "hs_object_id", "lastmodifieddate", "phone", "lifecyclestage", "jobtitle"}
    assert props["jobtitle"] is None
    assert "email" not in props


def test_properties_with_history_pages_of_50_and_400_above(gen_hs, tiny_world):
    resp = gen_hs.get("/crm/v3/objects/deals", limit=50, propertiesWithHistory="dealstage,amount")
    assert resp.status_code == 200
    body = resp.json()
    assert len(body["results"]) == 50
    for deal in body["results"]:
        stored = tiny_world.hubspot.property_history["deals"].get(deal["id"], {})
        assert deal["propertiesWithHistory"]["dealstage"] == stored.get("dealstage", [])
    assert any(d["propertiesWithHistory"]["dealstage"] for d in body["results"])
    too_big = gen_hs.get("/crm/v3/objects/deals", limit=51, propertiesWithHistory="dealstage")
    assert too_big.status_code == 400
    assert too_big.json()["category"] == "VALIDATION_ERROR"
    assert gen_hs.get("/crm/v3/objects/deals", limit=101).status_code == 400
    assert gen_hs.get("/crm/v3/objects/deals", limit=100).status_code == 200


def test_inline_associations_v3_shape(hs):
    rec = hs.get("/crm/v3/objects/deals/3001", associations="companies,contacts").json()
    assert rec["associations"]["companies"]["results"] == [{"id": "2001", "type": "deal_to_company"}]
    assert rec["associations"]["contacts"]["results"] == [{"id": "1001", "type": "deal_to_contact"}]
    # the reverse direction is answered from the same list
    company = hs.get("/crm/v3/objects/companies/2001", associations="deals").json()
    assert {"id": "3001", "type": "company_to_deal"} in company["associations"]["deals"]["results"]


def test_get_one_and_batch_read(hs):
    assert hs.get("/crm/objects/2026-03/companies/2004", properties="tier").json()["properties"]["tier"] == "Or"
    missing = hs.get("/crm/v3/objects/companies/999999")
    assert missing.status_code == 404 and missing.json()["category"] == "OBJECT_NOT_FOUND"
    ok = hs.post("/crm/v3/objects/contacts/batch/read", {"inputs": [{"id": "1001"}, {"id": "1004"}],
                                                          "properties": ["email"]})
    assert ok.status_code == 200 and [r["id"] for r in ok.json()["results"]] == ["1001", "1004"]
    partial = hs.post("/crm/objects/2026-03/contacts/batch/read", {"inputs": [{"id": "1001"}, {"id": "5"}]})
    assert partial.status_code == 207 and partial.json()["errors"][0]["context"]["ids"] == ["5"]
    too_many = hs.post("/crm/v3/objects/contacts/batch/read", {"inputs": [{"id": str(i)} for i in range(101)]})
    assert too_many.status_code == 400


# -- auth ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer pat-na1-wrong"}, {"Authorization": TOKEN}])
def test_missing_or_wrong_token_is_401_with_hubspot_body(srv, headers):
    resp = requests.get(srv.vendor_url("hubspot") + "/crm/v3/objects/contacts", headers=headers, timeout=10)
    assert resp.status_code == 401
    body = resp.json()
    assert body["status"] == "error" and body["category"] == "INVALID_AUTHENTICATION" and body["correlationId"]


def test_token_is_configurable(hand_world):
    with SandboxServer(hand_world, port=0, hubspot={"token": "sandbox-other"}) as server:
        url = server.vendor_url("hubspot") + "/crm/v3/owners"
        assert requests.get(url, headers=AUTH, timeout=10).status_code == 401
        assert requests.get(url, headers={"Authorization": "Bearer sandbox-other"}, timeout=10).status_code == 200
        assert server.connection_info()["hubspot"]["SOURCES__HUBSPOT__ACCESS_TOKEN"] == "sandbox-other"


# -- search --------------------------------------------------------------------------------------
def search_ids(hs, object_type, body, path_version="v3"):
    path = (f"/crm/v3/objects/{object_type}/search" if path_version == "v3"
            else f"/crm/objects/2026-03/{object_type}/search")
    resp = hs.post(path, body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def flt(prop, op, value=None, **extra):
    f = {"propertyName": prop, "operator": op, **extra}
    if value is not None:
        f["value"] = value
    return f


@pytest.mark.parametrize("object_type,modified", [("contacts", "lastmodifieddate"), ("deals", "hs_lastmodifieddate"),
                                                  ("meetings", "hs_lastmodifieddate")])
def test_search_filters_on_last_modified_epoch_ms_and_iso_agree(gen_hs, tiny_world, object_type, modified):
    cutoff = "2026-06-01T00:00:00.000Z"
    cutoff_ms = "1780272000000"  # the same instant in epoch milliseconds
    expected = sorted((i for i, r in tiny_world.hubspot.objects[object_type].items()
                       if not r["archived"] and r["updatedAt"] >= cutoff), key=int)
    by_iso = search_ids(gen_hs, object_type, {"filterGroups": [{"filters": [flt(modified, "GTE", cutoff)]}],
                                              "limit": 200})
    by_ms = search_ids(gen_hs, object_type, {"filterGroups": [{"filters": [flt(modified, "GTE", cutoff_ms)]}],
                                             "limit": 200}, path_version="dbv")
    assert by_iso["total"] == by_ms["total"] == len(expected) > 0
    assert [r["id"] for r in by_iso["results"]] == [r["id"] for r in by_ms["results"]] == expected[:200]


def test_search_operators(hs, hand_world):
    contacts = {i: r for i, r in hand_world.hubspot.objects["contacts"].items() if not r["archived"]}

    def total(*filters, groups=None):
        body = {"filterGroups": groups or [{"filters": list(filters)}], "limit": 1}
        return search_ids(hs, "contacts", body)["total"]

    lifecycle = [r["properties"]["lifecyclestage"] for r in contacts.values()]
    assert total(flt("lifecyclestage", "EQ", "CUSTOMER")) == lifecycle.count("customer")  # case-insensitive
    assert total(flt("lifecyclestage", "NEQ", "customer")) == len(contacts) - lifecycle.count("customer")
    assert total(flt("lifecyclestage", "IN", values=["lead", "customer"])) == \
        lifecycle.count("lead") + lifecycle.count("customer")
    with_phone = sum(1 for r in contacts.values() if r["properties"]["phone"])
    assert total(flt("phone", "HAS_PROPERTY")) == with_phone
    assert total(flt("phone", "NOT_HAS_PROPERTY")) == len(contacts) - with_phone
    # hs_object_id compares as a number ("1010" > "999" although "1010" < "999" as text)
    assert total(flt("hs_object_id", "GT", "999")) == len(contacts)
    assert total(flt("hs_object_id", "BETWEEN", "1001", highValue="1010")) == 4  # 1001, 1004, 1007, 1010
    assert total(flt("hs_object_id", "LT", "1004")) == 1
    assert total(flt("hs_object_id", "LTE", "1004")) == 2
    # groups are ORed, filters inside a group ANDed
    assert total(groups=[{"filters": [flt("hs_object_id", "EQ", "1001")]},
                         {"filters": [flt("hs_object_id", "EQ", "1004"), flt("lifecyclestage", "EQ", "lead")]}]) == 1


def test_search_sort_properties_and_paging(gen_hs, tiny_world):
    body = {"sorts": [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}], "properties": ["email"],
            "limit": 100}
    first = search_ids(gen_hs, "contacts", body)
    assert len(first["results"]) == 100 and first["paging"]["next"]["after"] == "100"
    second = search_ids(gen_hs, "contacts", {**body, "after": first["paging"]["next"]["after"]})
    assert "paging" not in second
    rows = first["results"] + second["results"]
    assert len(rows) == first["total"] == live_count(tiny_world, "contacts")
    stamps = [r["properties"]["lastmodifieddate"] for r in rows]
    assert stamps == sorted(stamps, reverse=True)
    assert set(rows[0]["properties"]) == {"createdate", "hs_object_id", "lastmodifieddate", "email"}
    assert gen_hs.post("/crm/v3/objects/contacts/search", {"limit": 201}).status_code == 400


def test_search_never_returns_archived(gen_hs, tiny_world):
    archived = [i for i, r in tiny_world.hubspot.objects["contacts"].items() if r["archived"]]
    assert archived
    body = {"filterGroups": [{"filters": [flt("hs_object_id", "IN", values=archived)]}]}
    assert search_ids(gen_hs, "contacts", body)["total"] == 0


def test_search_cap_small_configurable(hand_world):
    with SandboxServer(hand_world, port=0, hubspot={"search_result_cap": 100, **NO_SEARCH_LIMIT}) as server:
        url = server.vendor_url("hubspot") + "/crm/v3/objects/contacts/search"
        ok = requests.post(url, json={"limit": 50, "after": "50"}, headers=AUTH, timeout=10)
        assert ok.status_code == 200 and ok.json()["total"] == 234
        past = requests.post(url, json={"limit": 50, "after": "100"}, headers=AUTH, timeout=10)
        assert past.status_code == 400
        assert past.json()["category"] == "VALIDATION_ERROR" and past.json()["status"] == "error"


def test_search_real_10k_cap_and_id_windowing_gets_everything(big_contacts_world):
    with SandboxServer(big_contacts_world, port=0, hubspot=NO_SEARCH_LIMIT) as server:
        url = server.vendor_url("hubspot") + "/crm/v3/objects/contacts/search"
        sort = [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
        at_cap = requests.post(url, json={"limit": 200, "after": "9800", "sorts": sort}, headers=AUTH, timeout=10)
        assert at_cap.status_code == 200 and at_cap.json()["total"] == 10_050
        past_cap = requests.post(url, json={"limit": 200, "after": "10000", "sorts": sort}, headers=AUTH, timeout=10)
        assert past_cap.status_code == 400
        # the workaround a connector uses: restart after=0 with hs_object_id > last id seen
        window = {"filterGroups": [{"filters": [flt("hs_object_id", "GT", "10000")]}], "sorts": sort, "limit": 200}
        rest = requests.post(url, json=window, headers=AUTH, timeout=10).json()
        assert rest["total"] == 50 and rest["results"][0]["id"] == "10001"


def test_search_rejects_bad_requests(hs):
    assert hs.post("/crm/v3/objects/contacts/search",
                   {"filterGroups": [{"filters": [flt("email", "LIKE", "x")]}]}).status_code == 400
    assert hs.post("/crm/v3/objects/contacts/search",
                   {"filterGroups": [{"filters": [flt("email", "HAS_PROPERTY")]}] * 6}).status_code == 400
    assert hs.post("/crm/v3/objects/contacts/search",
                   {"sorts": [{"propertyName": "email"}, {"propertyName": "firstname"}]}).status_code == 400
    assert hs.post("/crm/v3/objects/nosuchtype/search", {}).status_code == 400


# -- metadata endpoints --------------------------------------------------------------------------
def test_owners_properties_pipelines_usage(hs, hand_world):
    active = hs.get("/crm/v3/owners").json()["results"]
    archived = hs.get("/crm/owners/2026-03", archived="true").json()["results"]
    assert len(active) == 3 and [o["id"] for o in archived] == ["504"]
    props = hs.get("/crm/v3/properties/contacts").json()["results"]
    assert {"lead_source", "email"} <= {p["name"] for p in props}
    assert hs.get("/crm/properties/2026-03/contacts/lead_source").json()["hubspotDefined"] is False
    pipelines = hs.get("/crm/v3/pipelines/deals").json()["results"]
    assert pipelines[0]["id"] == "default" and len(pipelines[0]["stages"]) == 4
    assert hs.get("/crm/pipelines/2026-03/deals/default").json()["label"] == "Pipeline commercial"
    assert len(hs.get("/crm/v3/pipelines/deals/default/stages").json()["results"]) == 4
    usage = hs.get("/account-info/v3/api-usage/daily/private-apps").json()["results"][0]
    assert usage["name"] == "private-apps-api-calls-daily" and usage["currentUsage"] >= 6


def test_associations_v4_batch_read_shape(hs):
    for path in ("/crm/v4/associations/contacts/companies/batch/read",
                 "/crm/associations/2026-03/contact/company/batch/read"):
        resp = hs.post(path, {"inputs": [{"id": "1001"}, {"id": "1004"}]})
        assert resp.status_code == 200, resp.text
        first = resp.json()["results"][0]
        assert first["from"] == {"id": "1001"}
        assert first["to"] == [{"toObjectId": 2001, "associationTypes": [
            {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"},
            {"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None}]}]
    reverse = hs.post("/crm/v4/associations/companies/contacts/batch/read", {"inputs": [{"id": "2001"}]}).json()
    type_ids = {t["typeId"] for to in reverse["results"][0]["to"] for t in to["associationTypes"]}
    assert type_ids == {2, 280}  # the inverse type ids


def test_associations_v4_per_record_paging(hand_world):
    with SandboxServer(hand_world, port=0, hubspot={"association_page_size": 3}) as server:
        url = server.vendor_url("hubspot") + "/crm/v4/associations/companies/contacts/batch/read"
        seen, after = [], None
        while True:
            item = {"id": "2001", **({"after": after} if after else {})}
            result = requests.post(url, json={"inputs": [item]}, headers=AUTH, timeout=10).json()["results"][0]
            seen += [t["toObjectId"] for t in result["to"]]
            after = result.get("paging", {}).get("next", {}).get("after")
            if not after:
                break
        expected = sorted({int(c) for c, co, _t in hand_world.hubspot.associations[("contacts", "companies")]
                          if co == "2001"})
        assert sorted(set(seen)) == expected and len(seen) == len(set(seen)) > 3


# -- rate limits ---------------------------------------------------------------------------------
class FakeClock:
    """The rate-limit windows read this instead of the wall clock: no sleeping, no timing in tests."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def limited_server(world, **options):
    clock = FakeClock()
    return SandboxServer(world, port=0, hubspot={"clock": clock, **options}), clock


def test_rate_limit_headers_count_down(hs):
    first = hs.get("/crm/v3/objects/companies")
    second = hs.get("/crm/v3/objects/companies")
    for resp in (first, second):
        assert resp.headers["X-HubSpot-RateLimit-Max"] == "190"
        assert resp.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert resp.headers["X-HubSpot-RateLimit-Daily"] == "650000"
    assert int(first.headers["X-HubSpot-RateLimit-Remaining"]) - 1 == int(second.headers["X-HubSpot-RateLimit-Remaining"])
    assert int(first.headers["X-HubSpot-RateLimit-Daily-Remaining"]) - 1 == \
        int(second.headers["X-HubSpot-RateLimit-Daily-Remaining"])


def test_ten_second_bucket_429_then_recovers(hand_world):
    server, clock = limited_server(hand_world, rate_limit_max=5, retry_after_every=2, retry_after_seconds=1)
    with server:
        url = server.vendor_url("hubspot") + "/crm/v3/objects/deals"
        statuses = [requests.get(url, headers=AUTH, timeout=10) for _ in range(7)]
        assert [r.status_code for r in statuses] == [200] * 5 + [429] * 2
        assert statuses[4].headers["X-HubSpot-RateLimit-Remaining"] == "0"
        body = statuses[5].json()
        assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "TEN_SECONDLY_ROLLING"
        assert body["status"] == "error" and body["correlationId"]
        # Retry-After only on some 429s, as HubSpot does
        assert "Retry-After" not in statuses[5].headers
        assert int(statuses[6].headers["Retry-After"]) >= 1
        clock.now += 10.001
        assert requests.get(url, headers=AUTH, timeout=10).status_code == 200


def test_daily_quota_spent_returns_daily_429_until_reset(hand_world):
    server, _clock = limited_server(hand_world, daily_limit=3)
    with server:
        url = server.vendor_url("hubspot") + "/crm/v3/objects/contacts"
        codes = [requests.get(url, headers=AUTH, timeout=10).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        spent = requests.get(url, headers=AUTH, timeout=10)
        assert spent.status_code == 429
        assert spent.json()["policyName"] == "DAILY" and spent.json()["message"] == "You have reached your daily limit."
        assert spent.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
        assert requests.get(url, headers=AUTH, timeout=10).status_code == 429  # still spent
        requests.post(server.base_url + "/_sandbox/reset-limits", timeout=10)
        assert requests.get(url, headers=AUTH, timeout=10).status_code == 200


def test_search_has_its_own_per_second_bucket(hand_world):
    server, clock = limited_server(hand_world, search_rate_limit=2)
    with server:
        base = server.vendor_url("hubspot")
        search = base + "/crm/v3/objects/contacts/search"
        codes = [requests.post(search, json={}, headers=AUTH, timeout=10).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        third = requests.post(search, json={}, headers=AUTH, timeout=10)
        assert third.json()["errorType"] == "RATE_LIMIT"
        # the general bucket is untouched by search
        assert requests.get(base + "/crm/v3/objects/contacts", headers=AUTH, timeout=10).status_code == 200
        clock.now += 1.001
        assert requests.post(search, json={}, headers=AUTH, timeout=10).status_code == 200


# -- faults --------------------------------------------------------------------------------------
def set_faults(srv, **switches):
    resp = requests.post(srv.base_url + "/_sandbox/faults", json=switches, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_fault_429_storm_via_admin_endpoint(srv, hs):
    set_faults(srv, rate_limit_storm=3)
    responses = [hs.get("/crm/v3/objects/contacts") for _ in range(4)]
    assert [r.status_code for r in responses] == [429, 429, 429, 200]
    assert responses[0].json()["policyName"] == "TEN_SECONDLY_ROLLING"


def test_fault_5xx_burst_cycles_statuses(srv, hs):
    srv.faults.set(server_errors=4)  # in-process API
    responses = [hs.get("/crm/v3/objects/contacts") for _ in range(5)]
    assert [r.status_code for r in responses] == [500, 502, 503, 500, 200]
    assert responses[0].json()["status"] == "error"
    assert responses[1].headers["Content-Type"].startswith("text/html")  # the edge's HTML page, not JSON


def test_fault_slow_response_triggers_client_timeout(srv, hs):
    set_faults(srv, delay_ms=1500, delay_requests=1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(hs.url + "/crm/v3/owners", headers=AUTH, timeout=0.2)
    assert hs.get("/crm/v3/owners").status_code == 200  # only the next request was slowed


def test_faults_at_construction_and_unknown_switch_rejected(hand_world):
    with SandboxServer(hand_world, port=0, faults={"server_errors": 1}) as server:
        url = server.vendor_url("hubspot") + "/crm/v3/owners"
        assert requests.get(url, headers=AUTH, timeout=10).status_code == 500
        assert requests.get(url, headers=AUTH, timeout=10).status_code == 200
        bad = requests.post(server.base_url + "/_sandbox/faults", json={"no_such_fault": 1}, timeout=10)
        assert bad.status_code == 400


@pytest.mark.parametrize("kind", ["bad_date", "bad_id"])
def test_fault_malformed_record_served_once_store_untouched(gen_srv, gen_hs, tiny_world, kind):
    set_faults(gen_srv, malformed_record=kind)
    try:
        records, _ = page_all(gen_hs, "/crm/v3/objects/contacts", limit=100)
    finally:
        set_faults(gen_srv, reset=True)
    if kind == "bad_date":
        broken = [r for r in records if r["properties"]["createdate"] == "not-a-date"]
    else:
        broken = [r for r in records if not r["id"].isdigit()]
    assert len(broken) == 1 and len(records) == live_count(tiny_world, "contacts")
    assert all(r["properties"]["createdate"] != "not-a-date" for r in tiny_world.hubspot.objects["contacts"].values())
    records, _ = page_all(gen_hs, "/crm/v3/objects/contacts", limit=100)
    assert all(r["id"].isdigit() and r["properties"]["createdate"] != "not-a-date" for r in records)


def test_fault_record_updated_while_sync_pages(fresh_srv, fresh_tiny_world):
    hs, world, srv = make_client(fresh_srv, GEN_AUTH), fresh_tiny_world, fresh_srv
    sync_start = max(r["updatedAt"] for r in world.hubspot.objects["contacts"].values())
    set_faults(srv, update_during_paging=1, update_object_type="contacts")
    records, pages = page_all(hs, "/crm/v3/objects/contacts", limit=50)
    assert pages == 3
    first_served = records[0]
    fired = srv.faults.snapshot()["fired"]
    assert [(e["fault"], e["id"]) for e in fired] == [("update_during_paging", first_served["id"])]
    # the copy the sync holds is stale; the store's record now sorts after the sync's start
    stored = world.hubspot.objects["contacts"][first_served["id"]]
    assert stored["updatedAt"] > sync_start and stored["updatedAt"] != first_served["updatedAt"]
    changed = search_ids(hs, "contacts", {"filterGroups": [{"filters": [
        flt("lastmodifieddate", "GT", sync_start)]}], "properties": ["notes_last_updated"]})
    assert [r["id"] for r in changed["results"]] == [first_served["id"]]
    assert changed["results"][0]["properties"]["notes_last_updated"] == stored["updatedAt"]
    # it fires once: a second sync sees no further change
    page_all(hs, "/crm/v3/objects/contacts", limit=50)
    assert len(srv.faults.snapshot()["fired"]) == 1


def _date_header(resp):
    return parsedate_to_datetime(resp.headers["Date"])


def datetime_of(stamp):
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_responses_carry_hubspots_clock_in_a_date_header_and_it_can_be_moved(fresh_srv):
    hs, app = make_client(fresh_srv, GEN_AUTH), fresh_srv.apps["hubspot"]
    before = datetime.now(timezone.utc).replace(microsecond=0)
    resp = hs.get("/crm/v3/objects/contacts", limit=1)
    assert before - timedelta(seconds=1) <= _date_header(resp) <= datetime.now(timezone.utc)
    assert len(resp.raw.headers.getlist("Date")) == 1  # the server's own Date is not sent besides
    app.advance_clock(timedelta(hours=-2))
    for resp in (hs.get("/crm/v3/objects/contacts", limit=1), hs.post("/crm/v3/objects/contacts/search", {}),
                 requests.get(fresh_srv.vendor_url("hubspot") + "/crm/v3/owners", timeout=10)):  # a 401 too
        assert abs(_date_header(resp) - (datetime.now(timezone.utc) - timedelta(hours=2))) < timedelta(seconds=2)


@pytest.mark.parametrize("read", ["list", "search"])
def test_fault_slow_sync_race_modifies_a_read_and_an_unread_record_an_hour_apart(fresh_srv, fresh_tiny_world, read):
    hs, world, srv = make_client(fresh_srv, GEN_AUTH), fresh_tiny_world, fresh_srv
    contacts = world.hubspot.objects["contacts"]
    set_faults(srv, slow_sync_race=2, race_object_type="contacts")
    start = srv.apps["hubspot"].now()
    if read == "list":
        first = hs.get("/crm/v3/objects/contacts", limit=10)
        page = hs.get("/crm/v3/objects/contacts", limit=10, after=first.json()["paging"]["next"]["after"])
        records, _ = page_all(hs, "/crm/v3/objects/contacts", limit=10,
                              after=page.json()["paging"]["next"]["after"])
    else:
        body = {"sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}], "limit": 10}
        first = hs.post("/crm/v3/objects/contacts/search", body)
        page = hs.post("/crm/v3/objects/contacts/search", {**body, "after": "10"})
        records = []
        after = page.json()["paging"]["next"]["after"]
        while after:
            rest = hs.post("/crm/v3/objects/contacts/search", {**body, "after": after}).json()
            records += rest["results"]
            after = rest.get("paging", {}).get("next", {}).get("after")
    fired = [e for e in srv.faults.snapshot()["fired"] if e["fault"] == "slow_sync_race"]
    assert len(fired) == 1
    event = fired[0]
    served = page.json()["results"]
    # the read record: page 2's first, changed after it was served (the copy served is stale)
    assert event["read"]["id"] == served[0]["id"] and served[0]["updatedAt"] != event["read"]["updatedAt"]
    # the unread one: the highest live id, served later with its new stamp
    live_ids = sorted((i for i, r in contacts.items() if not r["archived"]), key=int)
    assert event["unread"]["id"] == live_ids[-1]
    assert {r["id"]: r["updatedAt"] for r in records}[live_ids[-1]] == event["unread"]["updatedAt"]
    # an hour of HubSpot time: one minute after the page, then 59 minutes later, and the clock stands past both
    read_at, unread_at = (datetime_of(event[k]["updatedAt"]) for k in ("read", "unread"))
    assert timedelta(seconds=59) <= read_at - start <= timedelta(minutes=1, seconds=5)
    assert unread_at - read_at == timedelta(minutes=59)
    assert unread_at < _date_header(hs.get("/crm/v3/objects/contacts", limit=1)) + timedelta(seconds=1)
    assert _date_header(page) <= start + timedelta(seconds=1)  # page K is dated when served, before time jumps
    assert contacts[event["read"]["id"]]["properties"]["lastmodifieddate"] == event["read"]["updatedAt"]
    # fires once
    page_all(hs, "/crm/v3/objects/contacts", limit=10)
    assert len([e for e in srv.faults.snapshot()["fired"] if e["fault"] == "slow_sync_race"]) == 1


# -- admin: stats, advance -----------------------------------------------------------------------
def test_stats_count_requests_per_path_and_method(srv, hs):
    page_all(hs, "/crm/v3/objects/contacts", limit=100)
    hs.post("/crm/v3/objects/contacts/search", {})
    requests.get(srv.vendor_url("hubspot") + "/crm/v3/owners", timeout=10)  # 401s count too
    stats = requests.get(srv.base_url + "/_sandbox/stats", timeout=10).json()
    assert stats["by_path"] == {"GET /hubspot/crm/v3/objects/contacts": 3,
                                "POST /hubspot/crm/v3/objects/contacts/search": 1,
                                "GET /hubspot/crm/v3/owners": 1}
    assert stats["total"] == 5 and stats["by_status"] == {"200": 4, "401": 1}
    assert srv.stats() == stats
    requests.post(srv.base_url + "/_sandbox/stats/reset", timeout=10)
    assert srv.stats()["total"] == 0


def test_advance_endpoint_makes_time_pass_for_the_api(fresh_srv, fresh_tiny_world):
    hs, world = make_client(fresh_srv, GEN_AUTH), fresh_tiny_world
    as_of = max(r["updatedAt"] for objs in world.hubspot.objects.values() for r in objs.values())
    resp = requests.post(fresh_srv.base_url + "/_sandbox/advance", json={"step": 1}, timeout=10)
    assert resp.status_code == 200
    changes = [c for c in resp.json()["changes"]["changes"]
               if c["vendor"] == "hubspot" and c["object_type"] == "contacts"]
    assert changes
    archived = {c["id"] for c in changes if c["kind"] == "archived"}
    live_changed = {c["id"] for c in changes if c["kind"] in ("created", "updated")} - archived
    found = search_ids(hs, "contacts", {"filterGroups": [{"filters": [flt("lastmodifieddate", "GT", as_of)]}],
                                        "limit": 200})
    assert {r["id"] for r in found["results"]} == live_changed
    archived_now = {r["id"] for r in page_all(hs, "/crm/v3/objects/contacts", archived="true", limit=100)[0]}
    assert archived <= archived_now


def test_advance_calls_world_advance(srv, hand_world):
    resp = requests.post(srv.base_url + "/_sandbox/advance", json={"step": 2}, timeout=10)
    assert resp.status_code == 200 and hand_world.advanced == [2]


# -- CLI -----------------------------------------------------------------------------------------
def test_cli_serve_prints_urls_tokens_and_exports_then_stops_on_ctrl_c():
    import signal
    import subprocess
    import sys

    cmd = [sys.executable, "-c", "from crm_etl_cli import main; main()", "sandbox", "serve", "--seed", "3",
           "--size", "tiny", "--port", "0", "--server-errors", "1"]
    # started the way a parent that ignores SIGINT starts it (pytest-xdist workers, nohup): Ctrl-C must still stop it
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        lines = []
        for line in proc.stdout:  # blocks until the server prints; the pytest timeout guards a hang
            lines.append(line.rstrip("\n"))
            if line.startswith("Serving"):
                break
        hubspot_line = next(line for line in lines if line.startswith("hubspot"))
        url, token = hubspot_line.split()[1], hubspot_line.split("token:")[1].strip()
        assert url.startswith("http://127.0.0.1:") and not url.startswith("http://127.0.0.1:0/")
        assert token == "sandbox-hubspot-3"
        export = next(line for line in lines if line.startswith("export "))
        assert f"SOURCES__HUBSPOT__BASE_URL={url}" in export and f"SOURCES__HUBSPOT__ACCESS_TOKEN={token}" in export
        auth = {"Authorization": f"Bearer {token}"}
        assert requests.get(url + "/crm/v3/owners", headers=auth, timeout=10).status_code == 500  # --server-errors 1
        assert requests.get(url + "/crm/v3/owners", headers=auth, timeout=10).status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_search_on_the_wrong_last_modified_name_finds_nothing(gen_hs, tiny_world):
    """Contacts use lastmodifieddate, everything else hs_lastmodifieddate: the wrong name silently matches
    nothing on HubSpot, and here too."""
    window = "2020-01-01T00:00:00.000Z"
    right = search_ids(gen_hs, "deals", {"filterGroups": [{"filters": [flt("hs_lastmodifieddate", "GTE", window)]}]})
    wrong = search_ids(gen_hs, "deals", {"filterGroups": [{"filters": [flt("lastmodifieddate", "GTE", window)]}]})
    assert right["total"] == live_count(tiny_world, "deals") and wrong["total"] == 0
    contacts = search_ids(gen_hs, "contacts", {"filterGroups": [{"filters": [flt("lastmodifieddate", "GTE", window)]}]})
    assert contacts["total"] == live_count(tiny_world, "contacts")
