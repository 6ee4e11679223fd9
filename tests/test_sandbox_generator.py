"""The sandbox world generator: determinism, valid identifiers, known dirt shares, truth coverage, advance()."""
from __future__ import annotations

import copy
import re
from collections import Counter, defaultdict
from datetime import datetime

import pytest
from stdnum.fr import siren as std_siren, siret as std_siret, tva as std_tva

from sandbox.generator import dump_store, generate_world, iso, main
from sandbox.model import MANDATORY_FIELDS

ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(scope="module")
def tiny():
    return generate_world(seed=7, size="tiny")


@pytest.fixture(scope="module")
def demo():
    return generate_world(seed=42, size="demo")


def test_same_seed_same_store_and_other_seed_differs():
    a = dump_store(generate_world(seed=3, size="tiny").hubspot)
    b = dump_store(generate_world(seed=3, size="tiny").hubspot)
    c = dump_store(generate_world(seed=4, size="tiny").hubspot)
    assert a == b
    assert a != c


def test_identifiers_pass_stdnum(demo):
    for co in demo.companies:
        assert std_siren.is_valid(co.siren), co.siren
        assert std_siret.is_valid(co.siret) and co.siret.startswith(co.siren), co.siret
        assert std_tva.is_valid(co.vat) and co.vat.endswith(co.siren), co.vat
    for e in demo.registry:
        assert std_siren.is_valid(e.siren) and std_siret.is_valid(e.siret) and std_tva.is_valid(e.vat)
    for rec in demo.hubspot.objects["companies"].values():
        s = rec["properties"]["siren"]
        assert s is None or std_siren.is_valid(s)
    for c in demo.billing.customers:
        assert c.vat is None or std_tva.is_valid(c.vat)


def _all_timestamps(store):
    """Every event timestamp in the store. An open deal's closedate, and any closedate as it was set in the past,
    is a forecast and may lie ahead."""
    for recs in store.objects.values():
        for r in recs.values():
            yield r["createdAt"]
            yield r["updatedAt"]
            if r["archivedAt"]:
                yield r["archivedAt"]
            is_open = r["properties"].get("hs_is_closed") == "false"
            for k, v in r["properties"].items():
                if isinstance(v, str) and ISO_RE.match(v) and not (is_open and k == "closedate"):
                    yield v
    for obj, per_obj in store.property_history.items():
        for rid, per_rec in per_obj.items():
            for prop, entries in per_rec.items():
                for e in entries:
                    yield e["timestamp"]
                    if isinstance(e["value"], str) and ISO_RE.match(e["value"]) and prop != "closedate":
                        yield e["value"]


def test_every_timestamp_is_at_or_before_as_of(demo):
    limit = iso(demo.as_of)
    stamps = list(_all_timestamps(demo.hubspot))
    assert len(stamps) > 50_000
    late = [s for s in stamps if s > limit]
    assert not late, late[:5]
    start = iso(demo.start)
    # deal close dates may lie before the window (never after as_of); record creation is inside it
    assert min(r["createdAt"] for r in demo.hubspot.objects["deals"].values()) >= start
    for inv in demo.billing.invoices:
        assert inv.created_at <= demo.as_of and (inv.paid_at is None or inv.paid_at <= demo.as_of)


def test_duplicate_and_missing_shares_within_stated_ranges(demo):
    hs_contacts = [r for r in demo.contact_records if r.vendor == "hubspot"]
    per_person = Counter(r.person_key for r in hs_contacts)
    dup_people = sum(1 for n in per_person.values() if n >= 2) / len(demo.people)
    assert 0.05 <= dup_people <= 0.11
    assert max(per_person.values()) <= 3
    per_company = Counter(r.company_key for r in demo.company_records if r.vendor == "hubspot")
    dup_cos = sum(1 for n in per_company.values() if n >= 2) / len(demo.companies)
    assert 0.03 <= dup_cos <= 0.08
    # ~10% of CRM records miss some mandatory field, unevenly by owner.
    n_records = len(hs_contacts) + len(per_company and [r for r in demo.company_records if r.vendor == "hubspot"]) \
        + len(demo.deals)
    hs_missing = [k for k in demo.truth.missing_fields if k[0] == "hubspot"]
    assert 0.06 <= len(hs_missing) / n_records <= 0.16
    by_owner = Counter(o for k in hs_missing for o in set(demo.truth.missing_fields[k].values()))
    owned = Counter(r.owner_key for r in hs_contacts)
    rates = [by_owner[o] / owned[o] for o in owned if owned[o] >= 50]
    assert max(rates) > 2 * min(rates)


def test_empty_mandatory_fields_are_exactly_the_declared_gaps(demo):
    """A quality check computed from the store must find exactly truth.missing_fields."""
    found = {}
    for obj, fields in MANDATORY_FIELDS.items():
        for rid, rec in demo.hubspot.objects[obj].items():
            empty = {p for p in fields.values() if rec["properties"].get(p) in (None, "")}
            if empty:
                found[("hubspot", obj, rid)] = empty
    declared = {k: set(v) for k, v in demo.truth.missing_fields.items() if k[0] == "hubspot"}
    assert found == declared


def test_truth_covers_every_record(demo):
    t = demo.truth
    hs = demo.hubspot.objects
    assert set(hs["contacts"]) == {rid for (v, rid) in t.contact_person if v == "hubspot"}
    assert set(hs["companies"]) == {rid for (v, rid) in t.company_entity if v == "hubspot"}
    assert set(hs["deals"]) == {rid for (v, rid) in t.deal_records if v == "hubspot"}
    assert all(("koban", r.record_id) in t.contact_person for r in demo.contact_records if r.vendor == "koban")
    assert all(("stripe", c.id) in t.company_entity for c in demo.billing.customers)
    assert all(("registry", e.siren) in t.company_entity for e in demo.registry)
    assert set(t.deals) == {d.key for d in demo.deals}
    assert set(t.person_funnel) == {p.key for p in demo.people}
    # Koban overlaps ~30% of companies.
    koban_cos = {t.company_entity[("koban", r.record_id)] for r in demo.company_records if r.vendor == "koban"}
    assert 0.2 <= len(koban_cos) / len(demo.companies) <= 0.35
    # Stripe link kinds and registry noise exist.
    links = Counter(c.link for c in demo.billing.customers)
    assert links["metadata"] > links["tax_id"] > 0 and links["none"] > 0
    assert sum(e.company_key is None for e in demo.registry) == 2 * len(demo.companies)


def test_duplicate_pairs_match_records_and_shared_mailboxes_are_distinct_people(demo):
    t = demo.truth
    for a, b in t.duplicate_pairs:
        key = t.contact_person if a[1] == "contacts" else t.company_entity
        assert key[(a[0], a[2])] == key[(b[0], b[2])]
    hs_pairs = [p for p in t.duplicate_pairs if p[0][0] == p[1][0] == "hubspot" and p[0][1] == "contacts"]
    assert hs_pairs
    shared = defaultdict(set)
    for p in demo.people:
        if p.shared_mailbox:
            shared[p.email].add(p.key)
    assert shared and all(len(keys) >= 2 for keys in shared.values())
    # HubSpot refuses two contacts with one email: duplicates carry another address (role mailboxes aside).
    emails = Counter(r["properties"]["email"] for r in demo.hubspot.objects["contacts"].values()
                     if r["properties"]["email"] and not r["archived"])
    dup_emails = [e for e, n in emails.items() if n > 1 and not e.startswith("contact@")]
    assert not dup_emails


def test_win_rate_and_funnel_are_computable_from_truth(demo):
    closed = [d for d in demo.truth.deals.values() if d.outcome in ("won", "lost")]
    won = sum(d.outcome == "won" for d in closed)
    assert 0.22 <= won / len(closed) <= 0.40
    by_rep = defaultdict(lambda: [0, 0])
    for d in closed:
        by_rep[d.owner_key][0] += d.outcome == "won"
        by_rep[d.owner_key][1] += 1
    rates = [w / n for w, n in by_rep.values() if n >= 30]
    assert max(rates) - min(rates) > 0.05
    assert {d.team for d in closed} == {"Équipe Grands Comptes", "Équipe PME"}
    # The store agrees with the truth on every live deal.
    for deal in demo.deals:
        props = demo.hubspot.objects["deals"][deal.hubspot_id]["properties"]
        assert props["hs_is_closed_won"] == ("true" if deal.outcome == "won" else "false")
        assert (props["hs_is_closed"] == "true") == (deal.outcome != "open")
    # Funnels run forward in time and most people stop early.
    order = ["lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer"]
    for funnel in demo.truth.person_funnel.values():
        stages = [s for s in order if s in funnel]
        assert list(funnel) == stages
        assert all(funnel[a] <= funnel[b] for a, b in zip(stages, stages[1:]))
    customers = sum("customer" in f for f in demo.truth.person_funnel.values())
    assert 0 < customers < 0.3 * len(demo.people)
    flags = Counter(f for d in demo.deals for f in d.flags)
    assert all(flags[f] >= 1 for f in ("stale", "reopened", "moved_back", "probability_drop", "won_twice"))


def test_hubspot_shapes(tiny):
    hs = tiny.hubspot
    assert set(hs.objects) == {"contacts", "companies", "deals", "calls", "meetings", "emails", "notes", "tasks"}
    for obj, recs in hs.objects.items():
        for rid, r in recs.items():
            assert rid == r["id"] == r["properties"]["hs_object_id"] and rid.isdigit()
            assert all(v is None or isinstance(v, str) for v in r["properties"].values())
            modified = "lastmodifieddate" if obj == "contacts" else "hs_lastmodifieddate"
            assert r["properties"][modified] == r["updatedAt"]
    stages = hs.pipelines["deals"][0]["stages"]
    assert [s["id"] for s in stages][-2:] == ["closedwon", "closedlost"]
    assert stages[0]["metadata"] == {"isClosed": "false", "probability": "0.2"}
    assert any(o["archived"] for o in hs.owners) and all(o["teams"] for o in hs.owners)
    custom = {p["name"] for p in hs.property_definitions["companies"] if not p["hubspotDefined"]}
    assert {"tier", "siren"} <= custom
    assert ("contacts", "companies") in hs.associations
    assert {t for _, _, t in hs.associations[("calls", "contacts")]} == {194}
    for rid, per in hs.property_history["deals"].items():
        ts = [e["timestamp"] for e in per["dealstage"]]
        assert ts == sorted(ts, reverse=True)  # newest first
    meeting_types = {r["properties"]["hs_meeting_location_type"] for r in hs.objects["meetings"].values()}
    assert meeting_types == {"IN_PERSON", "PHONE", "VIDEO"}
    missing = sum(r["properties"]["hs_call_duration"] is None for r in hs.objects["calls"].values())
    assert 0 < missing < 0.2 * len(hs.objects["calls"])


def _snapshot(store):
    return {obj: {rid: copy.deepcopy(r) for rid, r in recs.items()} for obj, recs in store.objects.items()}


def test_advance_changes_exactly_what_it_lists():
    world = generate_world(seed=11, size="tiny")
    before = _snapshot(world.hubspot)
    old_as_of = iso(world.as_of)
    cs = world.advance()
    after = _snapshot(world.hubspot)
    new_as_of = iso(world.as_of)
    assert new_as_of > old_as_of and iso(cs.end) == new_as_of
    kinds = Counter(c.kind for c in cs.changes)
    assert kinds["updated"] and kinds["created"] and kinds["archived"]
    for obj in after:
        changed = {rid for rid, r in after[obj].items() if before[obj].get(rid) != r}
        assert changed == cs.ids(obj), obj
        for rid in changed:
            r = after[obj][rid]
            assert old_as_of < r["updatedAt"] <= new_as_of
        for rid in cs.ids(obj, "created"):
            assert rid not in before[obj]
        for rid in cs.ids(obj, "archived"):
            assert after[obj][rid]["archived"] and not before[obj][rid]["archived"]
    # Updated deals got a history entry at the new date; the truth follows.
    for rid in cs.ids("deals", "updated"):
        hist = world.hubspot.property_history["deals"][rid]
        assert max(e["timestamp"] for entries in hist.values() for e in entries) > old_as_of
    t = world.truth
    assert set(world.hubspot.objects["contacts"]) == {rid for (v, rid) in t.contact_person if v == "hubspot"}
    assert set(t.deals) == {d.key for d in world.deals}
    # Deterministic too.
    again = generate_world(seed=11, size="tiny")
    cs2 = again.advance()
    assert [(c.object_type, c.id, c.kind) for c in cs2.changes] == [(c.object_type, c.id, c.kind) for c in cs.changes]
    assert dump_store(again.hubspot) == dump_store(world.hubspot)


def test_malformed_switch_and_cli(capsys):
    world = generate_world(seed=1, size="tiny", malformed=True)
    (vendor, obj, rid, prop), = world.truth.malformed
    value = world.hubspot.objects[obj][rid]["properties"][prop]
    with pytest.raises(ValueError):
        datetime.fromisoformat(value)
    assert not generate_world(seed=1, size="tiny").truth.malformed
    assert main(["--seed", "1", "--size", "tiny", "--summary"]) == 0
    out = capsys.readouterr().out
    assert "hubspot.contacts" in out and "stripe.invoices" in out


def test_a_company_tagged_against_the_tier_rule_buys_like_its_size(demo):
    # What core.tier_suggestions must find: a Bronze-tagged ETI buys like an Or account, not like a Bronze one.
    from sandbox.generator import _Generator

    ranges = {"Or": (25_000, 150_000), "Argent": (8_000, 40_000), "Bronze": (1_500, 12_000)}
    companies = {c.key: c for c in demo.companies}
    mistagged = 0
    for d in demo.deals:
        co = companies[d.company_key]
        if co.tier is None:
            continue
        size = _Generator._tier_rule(co.category, co.headcount_band)
        lo, hi = ranges[size]
        assert lo <= d.amount <= hi, (co.key, co.tier, size, d.amount)
        mistagged += co.tier != size
    assert mistagged > 0  # the world holds such deals, so the check above saw some
