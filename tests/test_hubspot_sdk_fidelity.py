"""HubSpot's official Python SDK (hubspot-api-client 12) talks to the sandbox as it talks to HubSpot.

If the SDK's generated models deserialise every page without error, the sandbox's JSON shapes (field
names, types, date formats, paging) match HubSpot's published OpenAPI contract.
"""
from __future__ import annotations

import pytest

hubspot = pytest.importorskip("hubspot")  # dev dependency

from hubspot import HubSpot  # noqa: E402
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest  # noqa: E402
from hubspot.crm.contacts import Filter, FilterGroup, PublicObjectSearchRequest  # noqa: E402
from hubspot.crm.deals.exceptions import ApiException  # noqa: E402
from urllib3.util.retry import Retry  # noqa: E402

from sandbox.generator import generate_world  # noqa: E402
from sandbox.server import SandboxServer  # noqa: E402

SEED = 11


@pytest.fixture(scope="module")
def world():
    return generate_world(seed=SEED, size="tiny")


@pytest.fixture(scope="module")
def server(world):
    # The SDK sends searches back to back; lift the 5/s search limit here (it has its own tests).
    with SandboxServer(world, port=0, hubspot={"search_rate_limit": 100_000}) as srv:
        yield srv


@pytest.fixture
def client(server):
    token = server.connection_info()["hubspot"]["SOURCES__HUBSPOT__ACCESS_TOKEN"]
    assert token == f"sandbox-hubspot-{SEED}"
    # `host` is copied onto every API's Configuration, replacing https://api.hubapi.com
    return HubSpot(access_token=token, host=server.vendor_url("hubspot"))


def live_ids(world, object_type):
    return {i for i, r in world.hubspot.objects[object_type].items() if not r["archived"]}


@pytest.mark.parametrize("object_type", ["contacts", "companies", "deals"])
def test_get_all_pages_every_live_record(client, world, object_type):
    api = getattr(client.crm, object_type)
    records = api.get_all(properties=["hs_lastmodifieddate", "lastmodifieddate", "hubspot_owner_id"],
                          associations=["companies"] if object_type != "companies" else ["contacts"])
    assert {r.id for r in records} == live_ids(world, object_type)
    assert len(records) == len(live_ids(world, object_type))
    assert all(r.created_at.tzinfo is not None and r.updated_at >= r.created_at for r in records)


def test_get_page_with_history_and_archived(client, world):
    page = client.crm.deals.basic_api.get_page(limit=50, properties_with_history=["dealstage"])
    assert len(page.results) == min(50, len(live_ids(world, "deals")))
    with_history = [d for d in page.results if d.properties_with_history["dealstage"]]
    assert with_history and with_history[0].properties_with_history["dealstage"][0].timestamp is not None
    archived = client.crm.contacts.basic_api.get_page(limit=100, archived=True)
    expected = {i for i, r in world.hubspot.objects["contacts"].items() if r["archived"]}
    assert {r.id for r in archived.results} == expected
    assert all(r.archived and r.archived_at is not None for r in archived.results)
    with pytest.raises(ApiException) as err:
        client.crm.deals.basic_api.get_page(limit=51, properties_with_history=["dealstage"])
    assert err.value.status == 400


def test_search_api_pages_incrementally(client, world):
    as_of = max(r["updatedAt"] for r in world.hubspot.objects["companies"].values())
    # a 90-day window before the world's as-of date, as an incremental sync asks
    from datetime import datetime, timedelta
    since = datetime.fromisoformat(as_of.replace("Z", "+00:00")) - timedelta(days=90)
    since_ms = str(int(since.timestamp() * 1000))
    expected = {i for i, r in world.hubspot.objects["companies"].items()
                if not r["archived"] and r["updatedAt"] >= since.strftime("%Y-%m-%dT%H:%M:%S")}
    request = dict(filter_groups=[FilterGroup(filters=[
        Filter(property_name="hs_lastmodifieddate", operator="GTE", value=since_ms)])],
        sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        properties=["name", "hs_lastmodifieddate"], limit=7)
    seen, after, total = [], None, None
    while True:
        page = client.crm.companies.search_api.do_search(
            public_object_search_request=PublicObjectSearchRequest(**request, after=after))
        total = page.total
        seen += [r.id for r in page.results]
        if page.paging is None or page.paging.next is None:
            break
        after = page.paging.next.after
    assert set(seen) == expected and len(seen) == total
    assert seen == sorted(seen, key=int)


def test_owners_pipelines_properties_associations(client, world):
    owners = client.crm.owners.owners_api.get_page(limit=100)
    assert {o.id for o in owners.results} == {o["id"] for o in world.hubspot.owners if not o["archived"]}
    gone = client.crm.owners.owners_api.get_page(archived=True)
    assert {o.id for o in gone.results} == {o["id"] for o in world.hubspot.owners if o["archived"]}
    assert all(o.teams is not None for o in owners.results)
    pipelines = client.crm.pipelines.pipelines_api.get_all(object_type="deals")
    stages = {s.id: s.metadata for p in pipelines.results for s in p.stages}
    assert "closedwon" in stages and stages["closedwon"]["isClosed"] == "true"
    one = client.crm.pipelines.pipelines_api.get_by_id(object_type="deals", pipeline_id=pipelines.results[0].id)
    assert one.id == pipelines.results[0].id
    props = client.crm.properties.core_api.get_all(object_type="companies")
    assert {"tier", "siren"} <= {p.name for p in props.results}
    deal_ids = sorted(live_ids(world, "deals"), key=int)[:20]
    assoc = client.crm.associations.v4.batch_api.get_page(
        from_object_type="deals", to_object_type="companies",
        batch_input_public_fetch_associations_batch_request=BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[{"id": i} for i in deal_ids]))
    assert assoc.results and all(t.association_types[0].type_id for r in assoc.results for t in r.to)


def test_sdk_retry_rides_out_a_429_storm(server, world):
    token = server.connection_info()["hubspot"]["SOURCES__HUBSPOT__ACCESS_TOKEN"]
    retry = Retry(total=4, status_forcelist=(429, 500, 502, 503), backoff_factor=0, allowed_methods=None)
    client = HubSpot(access_token=token, host=server.vendor_url("hubspot"), retry=retry)
    server.faults.set(rate_limit_storm=2)
    before = server.stats()["by_path"].get("GET /hubspot/crm/v3/objects/companies", 0)
    page = client.crm.companies.basic_api.get_page(limit=10)
    assert len(page.results) == 10
    assert server.stats()["by_path"]["GET /hubspot/crm/v3/objects/companies"] - before == 3  # 2 x 429, then 200
