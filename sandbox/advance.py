"""World.advance: one deterministic day of CRM life after as_of, applied to the neutral model, the truth and
the HubSpot store together (so incremental syncs have something to find)."""
from __future__ import annotations

import random
from datetime import datetime, timedelta

from sandbox import frdata
from sandbox.hubspot_render import (
    ASSOC_TYPE, KIND_TO_OBJECT, _hist, company_record, contact_record, deal_record, engagement_record,
)
from sandbox.model import (
    MANDATORY_FIELDS, OPEN_STAGES, STAGE_PROBABILITY, Activity, Change, ChangeSet, ContactRecord, Deal, Person,
)

_PRIORITY = {"updated": 0, "archived": 1, "created": 2}


class _Step:
    def __init__(self, world, number: int):
        self.w = world
        self.rng = random.Random(f"{world.seed}:advance:{number}")
        self.start = world.as_of
        self.end = world.as_of + timedelta(days=1)
        self.cs = ChangeSet(step=number, start=self.start, end=self.end)
        self.changes: dict[tuple[str, str], Change] = {}
        self.store = world.hubspot

    def ts(self) -> datetime:
        span = int((self.end - self.start).total_seconds() * 1000)
        return self.start + timedelta(milliseconds=1 + int(self.rng.random() * (span - 1)))

    def note(self, obj: str, rid: str, kind: str, props=()):
        key = (obj, rid)
        old = self.changes.get(key)
        if old is None or _PRIORITY[kind] > _PRIORITY[old.kind]:
            merged = tuple(sorted(set(props) | set(old.properties if old else ())))
            self.changes[key] = Change("hubspot", obj, rid, kind, merged)
        else:
            old.properties = tuple(sorted(set(old.properties) | set(props)))

    # ------------------------------------------------------------------ re-render helpers
    def put_contact(self, rec: ContactRecord, extra_hist: dict | None = None):
        obj, hist = contact_record(self.w, rec)
        self.store.objects["contacts"][rec.record_id] = obj
        h = self.store.property_history["contacts"].setdefault(rec.record_id, {})
        h["lifecyclestage"] = hist["lifecyclestage"]
        for prop, entry in (extra_hist or {}).items():
            h.setdefault(prop, []).insert(0, entry)
        self.sync_missing("contacts", rec.record_id, rec.missing, rec.owner_key)

    def put_company(self, rec, extra_hist: dict | None = None):
        obj, hist = company_record(self.w, rec)
        self.store.objects["companies"][rec.record_id] = obj
        h = self.store.property_history["companies"].setdefault(rec.record_id, {})
        h["lifecyclestage"] = hist["lifecyclestage"]
        for prop, entry in (extra_hist or {}).items():
            h.setdefault(prop, []).insert(0, entry)
        self.sync_missing("companies", rec.record_id, rec.missing, rec.owner_key)

    def put_deal(self, d: Deal):
        obj, hist = deal_record(self.w, d)
        self.store.objects["deals"][d.hubspot_id] = obj
        self.store.property_history["deals"][d.hubspot_id] = hist
        self.sync_missing("deals", d.hubspot_id, d.hubspot_missing, d.owner_key)
        self.w.truth.deals[d.key] = self.w.deal_truth(d)
        self.w.truth.deal_records[("hubspot", d.hubspot_id)] = d.key

    def sync_missing(self, obj: str, rid: str, missing: list[str], owner_key: str):
        key = ("hubspot", obj, rid)
        if missing:
            names = MANDATORY_FIELDS[obj]
            self.w.truth.missing_fields[key] = {names[f]: owner_key for f in missing}
        else:
            self.w.truth.missing_fields.pop(key, None)

    def uid(self, rep_key: str) -> str:
        return f"userId:{self.w.rep(rep_key).user_id}"

    # ------------------------------------------------------------------ the day's events
    def run(self) -> ChangeSet:
        w, rng = self.w, self.rng
        live_contacts = [r for r in w.contact_records if r.vendor == "hubspot" and not r.archived]
        live_companies = [r for r in w.company_records if r.vendor == "hubspot" and not r.archived]
        open_deals = [d for d in w.deals if d.outcome == "open" and not d.archived]
        share = 0.03
        for rec in rng.sample(live_contacts, max(1, round(len(live_contacts) * share))):
            self.update_contact(rec)
        for rec in rng.sample(live_companies, max(1, round(len(live_companies) * share))):
            self.update_company(rec)
        n_deals = max(1, round(len([d for d in w.deals if not d.archived]) * share))
        for d in rng.sample(open_deals, min(n_deals, len(open_deals))):
            self.update_deal(d)
        for _ in range(max(1, len(w.people) // 400)):
            self.create_contact(rng.choice(live_companies))
        for _ in range(max(1, len(w.deals) // 300)):
            self.create_deal(rng.choice([r for r in live_contacts if r.variant == "original"]))
        open_deals = [d for d in w.deals if d.outcome == "open" and not d.archived]
        for _ in range(max(3, len(w.activities) // 400)):
            if open_deals:
                self.create_activity(rng.choice(open_deals))
        live_contacts = [r for r in w.contact_records if r.vendor == "hubspot" and not r.archived
                         and ("contacts", r.record_id) not in self.changes]
        for rec in rng.sample(live_contacts, min(len(live_contacts), max(1, len(live_contacts) // 1000))):
            self.archive_contact(rec)
        cands = [d for d in open_deals if ("deals", d.hubspot_id) not in self.changes]
        for d in rng.sample(cands, min(len(cands), max(1, len(w.deals) // 1000))):
            self.archive_deal(d)
        w.as_of = self.end
        self.cs.changes = sorted(self.changes.values(), key=lambda c: (c.object_type, int(c.id)))
        return self.cs

    def update_contact(self, rec: ContactRecord):
        t = self.ts()
        p = self.w.person(rec.person_key)
        r = self.rng.random()
        extra = {}
        if r < 0.5:
            rec.job_title = self.rng.choice(frdata.JOB_TITLES)
            p.job_title = rec.job_title if rec.variant == "original" else p.job_title
            if "job_title" in rec.missing:
                rec.missing.remove("job_title")
            extra["jobtitle"] = _hist(rec.job_title, t, "CRM_UI", self.uid(rec.owner_key))
            props = ("jobtitle",)
        elif r < 0.75 or rec.variant != "original":
            rec.phone = "0" + self.rng.choice("12345") + " " + " ".join(
                f"{int(self.rng.random() * 100):02d}" for _ in range(4))
            if "phone" in rec.missing:
                rec.missing.remove("phone")
            extra["phone"] = _hist(rec.phone, t, "CRM_UI", self.uid(rec.owner_key))
            props = ("phone",)
        else:
            # Progress one funnel stage (before opportunity: deals drive that one).
            nxt = {"lead": "marketingqualifiedlead", "marketingqualifiedlead": "salesqualifiedlead"}
            cur = next(reversed(rec.lifecycle))
            stage = nxt.get(cur)
            if stage is None:
                rec.page_views += 1
                props = ("hs_analytics_num_page_views",)
            else:
                rec.lifecycle[stage] = t
                p.lifecycle[stage] = t
                self.w.truth.person_funnel[p.key][stage] = t
                props = ("lifecyclestage", f"hs_lifecyclestage_{stage}_date")
        rec.updated_at = t
        self.put_contact(rec, extra)
        self.note("contacts", rec.record_id, "updated", props)

    def update_company(self, rec):
        t = self.ts()
        co = self.w.company(rec.company_key)
        extra = {}
        if self.rng.random() < 0.6:
            base = rec.headcount or co.headcount
            rec.headcount = max(1, base + self.rng.choice([-2, -1, 1, 2, 3, 5]))
            if "headcount" in rec.missing:
                rec.missing.remove("headcount")
            if rec.variant == "original":
                co.headcount = rec.headcount
            extra["numberofemployees"] = _hist(str(rec.headcount), t, "CRM_UI", self.uid(rec.owner_key))
            props = ("numberofemployees",)
        else:
            rec.tier = self.rng.choice([x for x in ("Or", "Argent", "Bronze") if x != rec.tier])
            if rec.variant == "original":
                co.tier = rec.tier
            extra["tier"] = _hist(rec.tier, t, "CRM_UI", self.uid(rec.owner_key))
            props = ("tier",)
        rec.updated_at = t
        self.put_company(rec, extra)
        self.note("companies", rec.record_id, "updated", props)

    def update_deal(self, d: Deal):
        t = self.ts()
        w = self.w
        if self.rng.random() < 0.3:
            new = (d.amount * self._factor()).quantize(d.amount)
            d.amount = new
            d.amount_eur = (new * _fx(d.currency)).quantize(d.amount_eur)
            d.amount_history.append((new, t))
            if "amount" in d.hubspot_missing:
                d.hubspot_missing.remove("amount")
            props = ("amount",)
        else:
            i = OPEN_STAGES.index(d.stage) if d.stage in OPEN_STAGES else 0
            if i + 1 < len(OPEN_STAGES):
                stage = OPEN_STAGES[i + 1]
            else:
                stage = "closedwon" if self.rng.random() < 0.6 else "closedlost"
            d.stage = stage
            d.stage_history.append((stage, t))
            d.probability_history.append((STAGE_PROBABILITY[stage], t))
            props = ("dealstage", "hs_deal_stage_probability", f"hs_v2_date_entered_{stage}")
            if stage in ("closedwon", "closedlost"):
                d.closed_at = t
                d.outcome = "won" if stage == "closedwon" else "lost"
                d.closedate_history.append((t, t))
                props += ("closedate", "hs_is_closed", "hs_is_closed_won")
                if "closedate" in d.hubspot_missing:
                    d.hubspot_missing.remove("closedate")
                if d.outcome == "won":
                    self._became_customer(d, t)
        d.updated_at = t
        self.put_deal(d)
        self.note("deals", d.hubspot_id, "updated", props)

    def _factor(self):
        from decimal import Decimal
        return Decimal(self.rng.choice(["0.9", "0.95", "1.05", "1.1", "1.2"]))

    def _became_customer(self, d: Deal, t: datetime):
        w = self.w
        co = w.company(d.company_key)
        if "customer" not in co.lifecycle:
            co.lifecycle["customer"] = t
            for rec in w.company_records:
                if rec.vendor == "hubspot" and rec.company_key == co.key and rec.variant == "original" \
                        and not rec.archived:
                    rec.lifecycle["customer"] = t
                    rec.updated_at = t
                    self.put_company(rec)
                    self.note("companies", rec.record_id, "updated", ("lifecyclestage",))
        p = w.person(d.contact_key)
        if "customer" not in p.lifecycle:
            p.lifecycle["customer"] = t
            w.truth.person_funnel[p.key]["customer"] = t
            for rec in w.contact_records:
                if rec.vendor == "hubspot" and rec.person_key == p.key and rec.variant == "original" \
                        and not rec.archived:
                    rec.lifecycle["customer"] = t
                    rec.updated_at = t
                    self.put_contact(rec)
                    self.note("contacts", rec.record_id, "updated", ("lifecyclestage",))

    def create_contact(self, company_rec):
        w, rng = self.w, self.rng
        t = self.ts()
        co = w.company(company_rec.company_key)
        female = rng.random() < 0.5
        first = rng.choice(frdata.FIRST_NAMES_F if female else frdata.FIRST_NAMES_M)
        last = rng.choice(frdata.LAST_NAMES)
        from sandbox.generator import _email_part
        email = f"{_email_part(first)}.{_email_part(last.replace(' ', ''))}.{w.steps + 1}" \
                f"{int(rng.random() * 1000)}@{co.domain}"
        channel = rng.choice(frdata.MARKETING_CHANNELS + frdata.SALES_LEAD_SOURCES)
        kind = "marketing" if channel in frdata.MARKETING_CHANNELS else "sales"
        owner = company_rec.owner_key
        p = Person(key=f"p-{len(w.people) + 1:07d}", first_name=first, last_name=last, email=email,
                   phone=None, mobile=f"06 {int(rng.random() * 1e8):08d}"[:5] + "", job_title=rng.choice(
                       frdata.JOB_TITLES), company_key=co.key, owner_key=owner, created_at=t, channel=channel,
                   source_kind=kind, lifecycle={"lead": t}, page_views=1, email_opens=0, email_clicks=0,
                   form_submissions=1 if kind == "marketing" else 0)
        digits = f"0{rng.choice('12345')}{int(rng.random() * 1e8):08d}"
        p.phone = " ".join(digits[i:i + 2] for i in range(0, 10, 2))
        p.mobile = None
        w.people.append(p)
        w.truth.person_funnel[p.key] = dict(p.lifecycle)
        rid = w.next_hubspot_id("contacts")
        rec = ContactRecord(
            vendor="hubspot", record_id=rid, person_key=p.key, variant="original", dirt=[], first_name=first,
            last_name=last, email=email, phone=p.phone, mobile=None, job_title=p.job_title,
            company_name=co.trade_name, company_record_id=company_rec.record_id, owner_key=owner, created_at=t,
            updated_at=t, source=channel if kind == "marketing" else "OFFLINE",
            lead_source=channel if kind == "sales" else None, lifecycle={"lead": t}, page_views=1, email_opens=0,
            email_clicks=0, form_submissions=p.form_submissions, bounce_reason=None)
        w.contact_records.append(rec)
        w.truth.contact_person[("hubspot", rid)] = p.key
        self.store.property_history["contacts"][rid] = {}
        self.put_contact(rec)
        self.store.associations[("contacts", "companies")].append((rid, company_rec.record_id, 1))
        self.note("contacts", rid, "created")

    def create_deal(self, contact_rec: ContactRecord):
        w, rng = self.w, self.rng
        t = self.ts()
        p = w.person(contact_rec.person_key)
        co = w.company(p.company_key)
        from decimal import Decimal
        amount = Decimal(int(rng.uniform(2_000, 60_000)) // 10 * 10).quantize(Decimal("0.01"))
        d = Deal(key=f"d-{len(w.deals) + 1:06d}", name=f"{co.trade_name} – Projet {t.year}", company_key=co.key,
                 contact_key=p.key, owner_key=contact_rec.owner_key, amount=amount, currency="EUR",
                 amount_eur=amount, deal_type="existingbusiness" if "customer" in co.lifecycle else "newbusiness",
                 channel=p.channel, created_at=t, expected_close=t + timedelta(days=60), closed_at=None,
                 outcome="open", stage="appointmentscheduled", stage_history=[("appointmentscheduled", t)],
                 amount_history=[(amount, t)], probability_history=[(0.2, t)],
                 closedate_history=[(t + timedelta(days=60), t)], owner_history=[(contact_rec.owner_key, t)],
                 updated_at=t)
        d.hubspot_id = w.next_hubspot_id("deals")
        originals = [r for r in w.company_records if r.vendor == "hubspot" and r.company_key == co.key
                     and r.variant == "original"]
        d.hubspot_company_record_id = originals[0].record_id
        d.hubspot_contact_record_id = contact_rec.record_id
        w.deals.append(d)
        self.put_deal(d)
        self.store.associations[("deals", "companies")].append((d.hubspot_id, d.hubspot_company_record_id, 5))
        self.store.associations[("deals", "contacts")].append((d.hubspot_id, d.hubspot_contact_record_id, 3))
        self.note("deals", d.hubspot_id, "created")
        if "opportunity" not in p.lifecycle and contact_rec.variant == "original":
            p.lifecycle["opportunity"] = t
            w.truth.person_funnel[p.key]["opportunity"] = t
            contact_rec.lifecycle["opportunity"] = t
            contact_rec.updated_at = t
            self.put_contact(contact_rec)
            self.note("contacts", contact_rec.record_id, "updated", ("lifecyclestage",))

    def create_activity(self, d: Deal):
        w, rng = self.w, self.rng
        t = self.ts()
        kind = rng.choice(["call", "email", "meeting", "note", "task"])
        a = Activity(key=f"a-{len(w.activities) + 1:07d}", kind=kind, timestamp=t, duration_ms=None,
                     owner_key=d.owner_key, contact_key=d.contact_key, company_key=d.company_key, deal_key=d.key,
                     title="Suivi", created_at=t, updated_at=t)
        if kind == "call":
            a.direction, a.status, a.duration_ms, a.activity_type = "OUTBOUND", "COMPLETED", 300_000, "Suivi"
        elif kind == "meeting":
            a.meeting_type, a.status, a.duration_ms, a.activity_type = "video", "COMPLETED", 1_800_000, "Suivi"
        elif kind == "email":
            a.direction = "EMAIL"
        elif kind == "task":
            a.task_type, a.status = "TODO", "NOT_STARTED"
        obj = KIND_TO_OBJECT[kind]
        a.hubspot_id = w.next_hubspot_id(obj)
        w.activities.append(a)
        self.store.objects[obj][a.hubspot_id] = engagement_record(w, a)
        contact = next((r.record_id for r in w.contact_records if r.vendor == "hubspot"
                        and r.record_id == d.hubspot_contact_record_id), None)
        if contact:
            self.store.associations[(obj, "contacts")].append((a.hubspot_id, contact, ASSOC_TYPE[(obj, "contacts")]))
        self.store.associations[(obj, "companies")].append(
            (a.hubspot_id, d.hubspot_company_record_id, ASSOC_TYPE[(obj, "companies")]))
        self.store.associations[(obj, "deals")].append((a.hubspot_id, d.hubspot_id, ASSOC_TYPE[(obj, "deals")]))
        self.note(obj, a.hubspot_id, "created")

    def archive_contact(self, rec: ContactRecord):
        t = self.ts()
        rec.archived, rec.archived_at = True, t
        self.put_contact(rec)
        self.note("contacts", rec.record_id, "archived")

    def archive_deal(self, d: Deal):
        t = self.ts()
        d.archived, d.archived_at = True, t
        self.put_deal(d)
        self.note("deals", d.hubspot_id, "archived")


def _fx(currency: str):
    from sandbox.model import FX_TO_EUR
    return FX_TO_EUR[currency]


def advance_world(world, step: int = 1) -> ChangeSet:
    """Apply `step` days of changes; returns one ChangeSet covering them all (start = old as_of)."""
    if step < 1:
        raise ValueError("step must be >= 1")
    with world.hubspot.lock:
        total = None
        for _ in range(step):
            world.steps += 1
            cs = _Step(world, world.steps).run()
            if total is None:
                total = cs
            else:
                merged = {(c.object_type, c.id): c for c in total.changes}
                for c in cs.changes:
                    old = merged.get((c.object_type, c.id))
                    if old is None or _PRIORITY[c.kind] > _PRIORITY[old.kind]:
                        merged[(c.object_type, c.id)] = c
                total = ChangeSet(step=cs.step, start=total.start, end=cs.end,
                                  changes=sorted(merged.values(), key=lambda c: (c.object_type, int(c.id))))
        new_pairs = __import__("sandbox.generator", fromlist=["duplicate_pairs"]).duplicate_pairs(
            world.contact_records, world.company_records)
        world.truth.duplicate_pairs = new_pairs
        return total
