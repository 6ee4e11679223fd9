"""Deterministic sandbox world generator: one fictional French B2B company with known truth.

    from sandbox.generator import generate_world, SIZES
    world = generate_world(seed=42, size="demo")
    world.hubspot            # sandbox.stores.HubSpotStore
    world.truth              # sandbox.model.Truth
    changes = world.advance()  # one more day of CRM activity

The neutral model lives in sandbox/model.py (documented there); vendor renderers read it. Same seed and size give
byte-identical stores: every random draw comes from `random.Random` instances seeded from the seed, and no wall
clock is read. `python -m sandbox.generator --seed 42 --size demo --summary` prints counts.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from sandbox import frdata
from sandbox.ids import fr_vat, guid, new_siren, siret_for, stripe_id
from sandbox.model import (
    FX_TO_EUR, MANDATORY_FIELDS, OPEN_STAGES, STAGE_PROBABILITY, TEAM_GRANDS_COMPTES, TEAM_PME, Activity, Billing,
    Change, ChangeSet, Company, CompanyRecord, ContactRecord, CostSpell, Deal, DealTruth, InvoiceLine, Inputs,
    MarketingSpend, Person, RegistryEntity, Rep, RepCost, Seller, StripeCreditNote, StripeCustomer, StripeInvoice,
    StripeSubscription, Team, TeamSpell, Truth,
)
from sandbox.stores import HubSpotStore

UTC = timezone.utc
DEFAULT_AS_OF = datetime(2026, 10, 31, 18, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class SizeSpec:
    companies: int
    contacts: int  # people (CRM contact records are ~10% more, plus Koban's)
    deals: int
    activities: int
    reps: int = 10


SIZES: dict[str, SizeSpec] = {
    "tiny": SizeSpec(companies=40, contacts=120, deals=60, activities=600, reps=8),
    "demo": SizeSpec(companies=600, contacts=2000, deals=1000, activities=10000, reps=10),
    "small": SizeSpec(companies=3000, contacts=10000, deals=5000, activities=50000, reps=16),
    "large": SizeSpec(companies=30000, contacts=100000, deals=50000, activities=500000, reps=40),
}


@dataclass(frozen=True)
class WorldConfig:
    """Knobs; any field can be overridden with generate_world(..., name=value)."""
    as_of: datetime = DEFAULT_AS_OF
    months: int = 24
    person_dup_share: float = 0.08  # people with 2-3 HubSpot contact records
    company_dup_share: float = 0.05  # companies with 2 HubSpot company records
    koban_share: float = 0.30  # companies also in Koban
    ceased_share: float = 0.04
    no_tier_share: float = 0.10
    shared_mailbox_share: float = 0.02  # companies whose contact@ mailbox is shared by 2-3 people
    left_share: float = 0.05  # people who left their company
    archived_share: float = 0.005  # per object, min 2 records
    missing_duration_share: float = 0.08  # calls/meetings with no logged duration
    malformed: bool = False  # one contact with a garbage createdate (quarantine tests)


_SIZE_FIELDS = {f.name for f in dataclasses.fields(SizeSpec)}
_CONFIG_FIELDS = {f.name for f in dataclasses.fields(WorldConfig)}


# --------------------------------------------------------------------------------------------- helpers

def iso(ts: datetime) -> str:
    """HubSpot-style UTC timestamp with milliseconds: 2026-10-31T18:00:00.000Z (ts must be UTC)."""
    return ts.isoformat(timespec="milliseconds")[:23] + "Z"


def _ascii(s: str) -> str:
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii")


def _slug(s: str) -> str:
    out = []
    for ch in _ascii(s).lower():
        if ch.isalnum():
            out.append(ch)
        elif out and out[-1] != "-":
            out.append("-")
    return "".join(out).strip("-")


def _email_part(s: str) -> str:
    return "".join(ch for ch in _ascii(s).lower() if ch.isalnum() or ch == "-").replace("--", "-")


def _rand_between(rng: random.Random, a: datetime, b: datetime) -> datetime:
    """A uniform timestamp in [a, b], millisecond resolution."""
    if b <= a:
        return a
    span_ms = int((b - a).total_seconds() * 1000)
    return a + timedelta(milliseconds=int(rng.random() * (span_ms + 1)))


def _work_ts(rng: random.Random, a: datetime, b: datetime) -> datetime:
    """A timestamp in [a, b] on a weekday during French office hours when the window allows it."""
    ts = _rand_between(rng, a, b)
    if (b - a).days < 3:
        return ts
    wd = ts.weekday()
    if wd >= 5:
        ts -= timedelta(days=wd - 4)
    secs = int(rng.random() * 36000)  # 07:00-17:00 UTC = 8:00-19:00 Paris
    ts = ts.replace(hour=7 + secs // 3600, minute=secs // 60 % 60, second=secs % 60,
                    microsecond=int(rng.random() * 1000) * 1000)
    if ts < a or ts > b:
        return _rand_between(rng, a, b)
    return ts


def _phone(rng: random.Random, prefix: str) -> str:
    digits = prefix + f"{int(rng.random() * 100_000_000):08d}"
    return " ".join(digits[i:i + 2] for i in range(0, 10, 2))


_DEPT_PREFIX = {}
for _p, _depts in {
    "01": "75 77 78 91 92 93 94 95", "02": "14 17 22 29 35 37 44 45 49 56 72 76 79 85 86",
    "03": "10 21 25 51 54 57 59 62 67 68 80", "04": "06 13 26 30 34 38 42 63 66 69 73 74 83 84",
    "05": "31 33 40 64 87",
}.items():
    for _d in _depts.split():
        _DEPT_PREFIX[_d] = _p


def _money(x: float) -> Decimal:
    return Decimal(str(round(x, -1) if x >= 1000 else round(x))).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _weighted(rng: random.Random, pairs):
    """Pick a value from (value, weight) pairs."""
    total = 0.0
    for _, w in pairs:
        total += w
    x = rng.random() * total
    for v, w in pairs:
        x -= w
        if x < 0:
            return v
    return pairs[-1][0]


# --------------------------------------------------------------------------------------------- world

@dataclass
class World:
    """The generated world. Attributes are documented in sandbox/model.py and the module docstring."""
    seed: int
    size: str
    spec: SizeSpec
    config: WorldConfig
    as_of: datetime
    start: datetime  # as_of - 24 months: history starts here
    migration_date: datetime  # Koban was the CRM before this date; HubSpot holds full history (imported)
    seller: Seller
    teams: list[Team]
    reps: list[Rep]
    companies: list[Company]
    people: list[Person]
    deals: list[Deal]
    activities: list[Activity]
    company_records: list[CompanyRecord]  # hubspot + koban
    contact_records: list[ContactRecord]  # hubspot + koban
    billing: Billing
    registry: list[RegistryEntity]
    inputs: Inputs
    truth: Truth
    hubspot: HubSpotStore = field(default_factory=HubSpotStore)
    steps: int = 0
    _ids: dict[str, int] = field(default_factory=dict, repr=False)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # lookups (rebuilt cheaply; the lists are the source of truth)
    def rep(self, key: str) -> Rep:
        return self._index("reps", self.reps)[key]

    def company(self, key: str) -> Company:
        return self._index("companies", self.companies)[key]

    def person(self, key: str) -> Person:
        return self._index("people", self.people)[key]

    def deal(self, key: str) -> Deal:
        return self._index("deals", self.deals)[key]

    def _index(self, name, items):
        cache = self._cache
        idx = cache.get(name)
        if idx is None or len(idx) != len(items):
            idx = {x.key: x for x in items}
            cache[name] = idx
        return idx

    def deal_truth(self, d: Deal) -> DealTruth:
        """The truth row of a deal as of now (outcome, owner and team at close, tier, EUR amount)."""
        return deal_truth(d, self._index("reps", self.reps), self._index("companies", self.companies), self.as_of)

    def next_hubspot_id(self, object_type: str) -> str:
        bucket = "engagements" if object_type in ENGAGEMENT_TYPES else object_type
        self._ids[bucket] += 1
        return str(self._ids[bucket])

    def advance(self, step: int = 1) -> ChangeSet:
        """Apply `step` days of deterministic changes after as_of; returns what changed (see sandbox/advance)."""
        from sandbox.advance import advance_world
        return advance_world(self, step)

    def summary(self) -> dict[str, int]:
        out = {
            "reps": len(self.reps), "companies": len(self.companies), "people": len(self.people),
            "deals": len(self.deals), "activities": len(self.activities),
            "company_records.hubspot": sum(r.vendor == "hubspot" for r in self.company_records),
            "company_records.koban": sum(r.vendor == "koban" for r in self.company_records),
            "contact_records.hubspot": sum(r.vendor == "hubspot" for r in self.contact_records),
            "contact_records.koban": sum(r.vendor == "koban" for r in self.contact_records),
            "deals.koban": sum(d.koban_id is not None for d in self.deals),
            "activities.koban": sum(a.koban_id is not None for a in self.activities),
            "stripe.customers": len(self.billing.customers), "stripe.invoices": len(self.billing.invoices),
            "stripe.subscriptions": len(self.billing.subscriptions),
            "stripe.credit_notes": len(self.billing.credit_notes),
            "registry.entities": len(self.registry), "inputs.marketing_spend": len(self.inputs.marketing_spend),
            "inputs.rep_costs": len(self.inputs.rep_costs),
        }
        for obj, recs in self.hubspot.objects.items():
            out[f"hubspot.{obj}"] = len(recs)
            out[f"hubspot.{obj}.archived"] = sum(1 for r in recs.values() if r["archived"])
        out["hubspot.owners"] = len(self.hubspot.owners)
        out["hubspot.associations"] = sum(len(v) for v in self.hubspot.associations.values())
        out["truth.duplicate_pairs"] = len(self.truth.duplicate_pairs)
        out["truth.records_missing_fields"] = len(self.truth.missing_fields)
        return out


ENGAGEMENT_TYPES = ("calls", "meetings", "emails", "notes", "tasks")
KIND_TO_OBJECT = {"call": "calls", "meeting": "meetings", "email": "emails", "note": "notes", "task": "tasks"}
# First HubSpot id of each object family (ids grow with creation date, as in a real portal).
ID_BASES = {"contacts": 10_000_000, "companies": 20_000_000, "deals": 30_000_000, "engagements": 40_000_000}


def generate_world(seed: int = 42, size: str = "demo", **overrides) -> World:
    """Build the world. `overrides` may set any SizeSpec field (companies=..., deals=...) or WorldConfig field."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {sorted(SIZES)}")
    bad = set(overrides) - _SIZE_FIELDS - _CONFIG_FIELDS
    if bad:
        raise TypeError(f"unknown overrides: {sorted(bad)}")
    spec = dataclasses.replace(SIZES[size], **{k: v for k, v in overrides.items() if k in _SIZE_FIELDS})
    config = WorldConfig(**{k: v for k, v in overrides.items() if k in _CONFIG_FIELDS})
    gen = _Generator(seed, size, spec, config)
    world = gen.run()
    from sandbox.hubspot_render import render_hubspot
    render_hubspot(world)
    return world


class _Generator:
    def __init__(self, seed: int, size: str, spec: SizeSpec, config: WorldConfig):
        self.seed, self.size, self.spec, self.cfg = seed, size, spec, config
        self.as_of = config.as_of
        self.start = self.as_of - timedelta(days=round(config.months * 30.44))
        self.migration = self.as_of - timedelta(days=365)
        # One stream per concern so adding draws to one part does not reshuffle the others.
        self.rng = {name: random.Random(f"{seed}:{name}") for name in (
            "reps", "companies", "people", "deals", "activities", "records", "koban", "billing", "registry",
            "inputs", "ids")}
        self.truth = Truth()
        self.seller = Seller("Vendôme Logiciels", "vendome-logiciels.fr")

    # ----------------------------------------------------------------------------------- orchestration
    def run(self) -> World:
        self.make_reps()
        self.make_companies()
        self.make_people()
        self.make_deals()
        self.make_lifecycles()
        self.make_activities()
        self.make_records()
        self.make_koban()
        self.make_billing()
        self.make_registry()
        self.make_inputs()
        self.fill_truth()
        world = World(
            seed=self.seed, size=self.size, spec=self.spec, config=self.cfg, as_of=self.as_of, start=self.start,
            migration_date=self.migration, seller=self.seller, teams=self.teams, reps=self.reps,
            companies=self.companies, people=self.people, deals=self.deals, activities=self.activities,
            company_records=self.company_records, contact_records=self.contact_records, billing=self.billing,
            registry=self.registry, inputs=self.inputs, truth=self.truth,
        )
        world._ids = dict(self.id_counters)
        return world

    # ----------------------------------------------------------------------------------- reps
    def make_reps(self):
        rng = self.rng["reps"]
        self.teams = [Team("6101", TEAM_GRANDS_COMPTES), Team("6102", TEAM_PME)]
        n = self.spec.reps
        n_gc = max(2, round(n * 0.4))
        used = set()
        self.reps = []
        skip_rates = [0.02, 0.04, 0.06, 0.08, 0.10, 0.12, 0.14, 0.18, 0.22, 0.05]
        for i in range(n):
            while True:
                female = rng.random() < 0.5
                first = rng.choice(frdata.FIRST_NAMES_F if female else frdata.FIRST_NAMES_M)
                last = rng.choice(frdata.LAST_NAMES)
                if (first, last) not in used:
                    used.add((first, last))
                    break
            team = TEAM_GRANDS_COMPTES if i < n_gc else TEAM_PME
            cost = Decimal(rng.choice([45, 50, 55, 60, 65, 70, 75, 80])) + (15 if team == TEAM_GRANDS_COMPTES else 0)
            rep = Rep(
                key=f"rep-{i + 1:02d}", owner_id=str(70_000_001 + i * 137), user_id=9_100_001 + i * 211,
                koban_id=guid(rng), first_name=first, last_name=last,
                email=f"{_email_part(first)}.{_email_part(last)}@{self.seller.domain}",
                team=team, team_history=[TeamSpell(team, self.start, None)], hourly_cost=cost,
                cost_history=[CostSpell(cost, self.start.date(), None)],
                meetings_factor=round(rng.uniform(0.6, 1.6), 2),
                preferred_tier=("Or" if rng.random() < 0.6 else "Argent") if team == TEAM_GRANDS_COMPTES
                else ("Bronze" if rng.random() < 0.6 else "Argent"),
                skip_rate=skip_rates[i % len(skip_rates)], win_skill=round(rng.uniform(-0.08, 0.08), 3),
                created_at=self.start - timedelta(days=rng.randint(30, 400)),
            )
            self.reps.append(rep)
        # One PME rep moves to the key-accounts team mid-history.
        mover = self.reps[n_gc]
        moved = self.as_of - timedelta(days=270)
        mover.team_history = [TeamSpell(TEAM_PME, self.start, moved), TeamSpell(TEAM_GRANDS_COMPTES, moved, None)]
        mover.team = TEAM_GRANDS_COMPTES
        # One rep gets a raise (loaded cost changes mid-history).
        raised = self.reps[0]
        change = (self.as_of - timedelta(days=300)).date()
        new_cost = raised.hourly_cost + 10
        raised.cost_history = [CostSpell(raised.hourly_cost, self.start.date(), change - timedelta(days=1)),
                               CostSpell(new_cost, change, None)]
        raised.hourly_cost = new_cost
        # The last rep leaves: deactivated owner; their open work goes to a teammate.
        gone = self.reps[-1]
        gone.active = False
        gone.deactivated_at = self.as_of - timedelta(days=180)
        gone.cost_history[-1].valid_to = gone.deactivated_at.date()
        self.rep_by_key = {r.key: r for r in self.reps}
        team_mates = [r for r in self.reps if r.active and r.team == gone.team] or [r for r in self.reps if r.active]
        self.replacement = {gone.key: team_mates[0].key}

    def _active_reps(self, ts: datetime) -> list[Rep]:
        return [r for r in self.reps if r.deactivated_at is None or r.deactivated_at > ts]

    def _owner_at(self, rep_key: str, ts: datetime) -> str:
        rep = self.rep_by_key[rep_key]
        if rep.deactivated_at is not None and ts >= rep.deactivated_at:
            return self.replacement[rep_key]
        return rep_key

    def _pick_owner(self, rng: random.Random, tier: str | None, ts: datetime) -> str:
        reps = self._active_reps(ts)
        weights = []
        for r in reps:
            team = r.team_at(ts)
            w = 1.0
            if tier == "Or":
                w = 4.0 if team == TEAM_GRANDS_COMPTES else 0.3
            elif tier == "Bronze":
                w = 0.3 if team == TEAM_GRANDS_COMPTES else 3.0
            if r.preferred_tier == tier:
                w *= 2
            weights.append(w)
        return rng.choices(reps, weights=weights, k=1)[0].key

    # ----------------------------------------------------------------------------------- companies
    def make_companies(self):
        rng = self.rng["companies"]
        n = self.spec.companies
        self.sirens: set[str] = set()
        domains: set[str] = set()
        names: set[str] = set()
        created = sorted(self._growth_ts(rng) for _ in range(n))
        self.companies = []
        for i in range(n):
            category = _weighted(rng, [("PME", 85), ("ETI", 12), ("GE", 3)])
            band = rng.choice(frdata.BANDS_BY_CATEGORY[category])
            lo, hi = frdata.HEADCOUNT_BANDS[band]
            form = _weighted(rng, frdata.LEGAL_FORM_WEIGHTS[category])
            if form == "SCI" and rng.random() < 0.7:
                form = "SARL"
            for attempt in range(50):
                r = rng.random()
                if r < 0.45:
                    base = rng.choice(frdata.NAME_ROOTS) + rng.choice(frdata.NAME_SUFFIXES)
                elif r < 0.8:
                    base = f"{rng.choice(frdata.NAME_PREFIXES)} {rng.choice(frdata.LAST_NAMES)}"
                else:
                    base = f"{rng.choice(frdata.LAST_NAMES)} {rng.choice(frdata.NAME_SUFFIXES).strip() or 'et Associés'}"
                if attempt > 5:
                    base = f"{base} {rng.choice(['Île-de-France', 'Atlantique', 'Méditerranée', 'Rhône-Alpes'])}"
                if attempt > 10:
                    base = f"{base} {attempt}"
                if base not in names:
                    names.add(base)
                    break
            city, postcode, dept = rng.choice(frdata.CITIES)
            slug = _slug(base).replace("-et-associes", "")
            domain = f"{slug}.{rng.choice(frdata.TLDS)}"
            k = 2
            while domain in domains:
                domain = f"{slug}{k}.fr"
                k += 1
            domains.add(domain)
            siren = new_siren(rng, self.sirens)
            naf_code, naf_label, industry = rng.choice(frdata.NAF)
            ceased = rng.random() < self.cfg.ceased_share
            creation = date(rng.randint(1965, 2022), rng.randint(1, 12), rng.randint(1, 28))
            tier = self._tier_rule(category, band)
            if rng.random() < 0.05:  # the rule is not always applied
                tier = rng.choice(["Or", "Argent", "Bronze"])
            if rng.random() < self.cfg.no_tier_share:
                tier = None
            ts = created[i]
            co = Company(
                key=f"co-{i + 1:06d}", legal_name=base, trade_name=base.split(" & ")[0],
                legal_form=form, legal_form_code=frdata.LEGAL_FORMS[form][0], siren=siren, siret=siret_for(siren),
                vat=fr_vat(siren), naf_code=naf_code, naf_label=naf_label, industry=industry, headcount_band=band,
                headcount=rng.randint(lo, hi), category=category, creation_date=creation, active=not ceased,
                closure_date=None, address=f"{rng.randint(1, 180)} {rng.choice(frdata.STREET_TYPES)} "
                                           f"{rng.choice(frdata.STREET_NAMES)}",
                postcode=postcode, city=city, domain=domain,
                phone=_phone(rng, _DEPT_PREFIX.get(dept, "09")), tier=tier,
                account_type=_weighted(rng, [("direct", 75), ("reseller", 15), ("partner", 10)]),
                owner_key=self._pick_owner(rng, tier, ts), created_at=ts,
            )
            if ceased:
                co.closure_date = _rand_between(rng, max(ts, self.start + timedelta(days=60)),
                                                self.as_of - timedelta(days=5)).date()
            co.lifecycle["lead"] = ts
            self.companies.append(co)
        self.company_by_key = {c.key: c for c in self.companies}

    @staticmethod
    def _tier_rule(category: str, band: str) -> str:
        if category in ("GE", "ETI"):
            return "Or"
        return "Argent" if band in ("21", "22", "31") else "Bronze"

    def _growth_ts(self, rng: random.Random) -> datetime:
        # Slightly more records later in the period (the company grows).
        u = rng.random() ** 0.85
        return self.start + timedelta(milliseconds=int(u * (self.as_of - self.start).total_seconds() * 1000))

    # ----------------------------------------------------------------------------------- people
    def make_people(self):
        rng = self.rng["people"]
        n = self.spec.contacts
        cos = self.companies
        weights = [{"GE": 5.0, "ETI": 3.0, "PME": 1.0}[c.category] for c in cos]
        assigned = list(cos[: min(n, len(cos))])
        if n > len(cos):
            assigned += rng.choices(cos, weights=weights, k=n - len(cos))
        rng.shuffle(assigned)
        # The company's first person arrives when the company enters the CRM; the others later.
        first_seen: set[str] = set()
        emails: set[str] = set()
        self.people = []
        self.people_by_company: dict[str, list[Person]] = {}
        marketing = [("PAID_SEARCH", 15), ("ORGANIC_SEARCH", 15), ("SOCIAL_MEDIA", 8), ("EMAIL_MARKETING", 10),
                     ("OTHER_CAMPAIGNS", 7), ("prospection", 20), ("recommandation", 10), ("client existant", 5),
                     ("unknown", 10)]
        tmp = []
        for co in assigned:
            if co.key not in first_seen:
                first_seen.add(co.key)
                ts = co.created_at
            else:
                ts = _rand_between(rng, co.created_at, self.as_of)
            tmp.append((ts, co))
        tmp.sort(key=lambda t: (t[0], t[1].key))
        for i, (ts, co) in enumerate(tmp):
            female = rng.random() < 0.5
            first = rng.choice(frdata.FIRST_NAMES_F if female else frdata.FIRST_NAMES_M)
            last = rng.choice(frdata.LAST_NAMES)
            fe, le = _email_part(first), _email_part(last.replace(" ", "").replace("'", ""))
            style = rng.random()
            local = f"{fe}.{le}" if style < 0.65 else (f"{fe[0]}.{le}" if style < 0.85 else f"{fe[0]}{le}")
            domain = co.domain
            if co.category == "PME" and rng.random() < 0.04:
                domain = rng.choice(frdata.FREE_MAIL_DOMAINS)
            email = f"{local}@{domain}"
            k = 2
            while email in emails:
                email = f"{local}{k}@{domain}"
                k += 1
            emails.add(email)
            channel = _weighted(rng, marketing)
            kind = ("marketing" if channel in frdata.MARKETING_CHANNELS else
                    "unknown" if channel == "unknown" else "sales")
            if channel == "client existant":
                kind = "sales"
            title = rng.choice(frdata.JOB_TITLES)
            if female:
                title = title.replace("Directeur", "Directrice").replace("Acheteur", "Acheteuse") \
                    .replace("Contrôleur", "Contrôleuse")
            p = Person(
                key=f"p-{i + 1:07d}", first_name=first, last_name=last, email=email,
                phone=_phone(rng, co.phone[:2]),
                mobile=_phone(rng, rng.choice(["06", "07"])) if rng.random() < 0.6 else None,
                job_title=title, company_key=co.key, owner_key=self._owner_at(co.owner_key, ts), created_at=ts,
                channel=channel, source_kind=kind, lifecycle={"lead": ts}, page_views=0, email_opens=0,
                email_clicks=0, form_submissions=0,
            )
            self.people.append(p)
            self.people_by_company.setdefault(co.key, []).append(p)
        # Shared role mailboxes: distinct people behind contact@domain.
        for co in cos:
            group = self.people_by_company.get(co.key, [])
            if len(group) >= 2 and rng.random() < self.cfg.shared_mailbox_share * 3:
                for p in group[:rng.randint(2, min(3, len(group)))]:
                    p.email = f"contact@{co.domain}"
                    p.shared_mailbox = True
        # People who left (hard bounce, or their email moved to another company's domain).
        for p in self.people:
            if p.shared_mailbox or rng.random() >= self.cfg.left_share:
                continue
            lo = p.created_at + timedelta(days=30)
            if lo >= self.as_of - timedelta(days=2):
                continue
            p.left_company = True
            p.left_at = _rand_between(rng, lo, self.as_of - timedelta(days=1))
            p.left_reason = "hard_bounce" if rng.random() < 0.7 else "moved"
            if p.left_reason == "moved":
                other = rng.choice(cos)
                p.email = f"{p.email.split('@')[0]}@{other.domain}" if other.domain != p.email.split("@")[1] \
                    else p.email
                if p.email in emails:
                    p.email = f"{p.email.split('@')[0]}.new@{other.domain}"
                emails.add(p.email)
        self.person_by_key = {p.key: p for p in self.people}

    # ----------------------------------------------------------------------------------- deals
    def make_deals(self):
        rng = self.rng["deals"]
        n = self.spec.deals
        tier_w = {"Or": 3.0, "Argent": 2.0, "Bronze": 1.2, None: 1.0}
        cands = [c for c in self.companies if c.key in self.people_by_company
                 and c.created_at < self.as_of - timedelta(days=3)]
        weights = [tier_w[c.tier] for c in cands]
        picks = rng.choices(cands, weights=weights, k=n)
        cycle_days = {"Or": 95, "Argent": 60, "Bronze": 35, None: 45}
        amount_range = {"Or": (25_000, 150_000), "Argent": (8_000, 40_000), "Bronze": (1_500, 12_000),
                        None: (3_000, 20_000)}
        tier_win = {"Or": -0.06, "Argent": 0.02, "Bronze": 0.05, None: 0.0}
        raw = []
        for co in picks:
            contact = rng.choice(self.people_by_company[co.key][:3])
            lo = contact.created_at + timedelta(days=rng.randint(2, 40))
            hi = self.as_of - timedelta(days=1)
            if co.closure_date is not None:
                hi = min(hi, datetime.combine(co.closure_date, datetime.min.time(), UTC) - timedelta(days=20))
            if lo >= hi:
                lo = contact.created_at
            if lo >= hi:
                continue
            raw.append((_work_ts(rng, lo, hi), co, contact))
        raw.sort(key=lambda t: (t[0], t[1].key, t[2].key))
        self.deals = []
        won_closed_by_company: dict[str, list[datetime]] = {}
        for i, (created, co, contact) in enumerate(raw):
            owner = self._owner_at(co.owner_key, created)
            rep = self.rep_by_key[owner]
            cyc = cycle_days[co.tier] * rng.uniform(0.5, 1.8)
            end = created + timedelta(days=cyc)
            p_win = max(0.05, min(0.7, 0.30 + rep.win_skill + tier_win[co.tier]))
            # what a company buys follows its size (the tier rule), not the tag a rep gave it: a company tagged
            # against the rule (5%, see make_companies) buys like its size, which tier suggestions should find
            lo_a, hi_a = amount_range[self._tier_rule(co.category, co.headcount_band) if co.tier else None]
            currency = _weighted(rng, [("EUR", 95), ("CHF", 3), ("USD", 2)])
            amount = _money(rng.uniform(lo_a, hi_a))
            prior_won = [t for t in won_closed_by_company.get(co.key, []) if t < created]
            deal_type = "existingbusiness" if prior_won or co.account_type != "direct" and rng.random() < 0.3 \
                else "newbusiness"
            d = Deal(
                key=f"d-{i + 1:06d}", name="", company_key=co.key, contact_key=contact.key, owner_key=owner,
                amount=amount, currency=currency, amount_eur=(amount * FX_TO_EUR[currency]).quantize(Decimal("0.01")),
                deal_type=deal_type, channel=contact.channel, created_at=created,
                expected_close=created + timedelta(days=round(cycle_days[co.tier])), closed_at=None, outcome="open",
                stage="appointmentscheduled", stage_history=[], amount_history=[], probability_history=[],
                closedate_history=[], owner_history=[(owner, created)],
            )
            product = rng.choice(["Licence", "Abonnement", "Projet", "Intégration", "Formation", "Support"])
            d.name = f"{co.trade_name} – {product} {created.year}"
            stale = False
            if end <= self.as_of - timedelta(days=1):
                if rng.random() < 0.07:
                    stale = True  # stuck: never closed, sits in a stage far beyond the expected time
                    d.outcome = "open"
                else:
                    d.outcome = "won" if rng.random() < p_win else "lost"
                    d.closed_at = end
            self._stage_path(rng, d, end, stale)
            if d.outcome == "won":
                won_closed_by_company.setdefault(co.key, []).append(d.closed_at)
            self.deals.append(d)
        self._anomalies(rng)
        for d in self.deals:
            self._deal_side_histories(rng, d)
        self.deal_by_key = {d.key: d for d in self.deals}

    def _stage_path(self, rng: random.Random, d: Deal, end: datetime, stale: bool):
        if d.outcome == "won":
            path = OPEN_STAGES[: rng.randint(3, 5)] + ["closedwon"]
            path = [OPEN_STAGES[0]] + [s for s in path[1:] if s == "closedwon" or rng.random() < 0.85]
            stop = end
        elif d.outcome == "lost":
            path = OPEN_STAGES[: rng.randint(1, 5)] + ["closedlost"]
            stop = end
        else:
            frac = min(1.0, (self.as_of - d.created_at) / max(end - d.created_at, timedelta(hours=1)))
            k = 1 + int(frac * 4.99)
            if stale:
                k = rng.randint(1, 4)
                stop = d.created_at + (end - d.created_at) * rng.uniform(0.2, 0.5)
                d.flags.add("stale")
            else:
                stop = min(self.as_of - timedelta(hours=1), d.created_at + (end - d.created_at) * frac)
            path = OPEN_STAGES[:k]
        self._timestamp_path(rng, d, path, stop)

    def _timestamp_path(self, rng: random.Random, d: Deal, path: list[str], stop: datetime):
        n = len(path)
        fr = sorted(rng.random() for _ in range(n - 1))
        span = stop - d.created_at
        ts = [d.created_at] + [d.created_at + span * f for f in fr]
        if path[-1] in ("closedwon", "closedlost"):
            ts[-1] = stop
        # strictly increasing, 1 s apart at least
        for j in range(1, n):
            if ts[j] <= ts[j - 1]:
                ts[j] = ts[j - 1] + timedelta(seconds=1)
        d.stage_history = list(zip(path, ts))
        d.stage = path[-1]
        if path[-1] in ("closedwon", "closedlost"):
            d.closed_at = ts[-1]

    def _anomalies(self, rng: random.Random):
        k = max(1, len(self.deals) // 100)
        lost = [d for d in self.deals if d.outcome == "lost" and d.closed_at < self.as_of - timedelta(days=60)]
        for d in rng.sample(lost, min(k, len(lost))):
            # Reopened after lost: back to qualifiedtobuy, then won (or still open).
            t_lost = d.closed_at
            t_re = t_lost + timedelta(days=rng.randint(10, 40))
            d.stage_history.append(("qualifiedtobuy", t_re))
            if rng.random() < 0.5:
                t_won = t_re + timedelta(days=rng.randint(10, 20))
                d.stage_history += [("contractsent", t_re + timedelta(days=5)), ("closedwon", t_won)]
                d.outcome, d.stage, d.closed_at = "won", "closedwon", t_won
            else:
                d.outcome, d.stage, d.closed_at = "open", "qualifiedtobuy", None
            d.flags.add("reopened")
        movable = [d for d in self.deals if len(d.stage_history) >= 3 and not d.flags]
        for d in rng.sample(movable, min(k, len(movable))):
            # Moved back a stage once, between two forward moves.
            (s1, t1), (s2, t2) = d.stage_history[1], d.stage_history[2]
            back = t1 + (t2 - t1) / 3
            again = t1 + (t2 - t1) * 2 / 3
            d.stage_history[2:2] = [(d.stage_history[0][0], back), (s1, again)]
            d.flags.add("moved_back")
        drop = [d for d in self.deals if len(d.stage_history) >= 3 and not d.flags]
        self._prob_drop = set(x.key for x in rng.sample(drop, min(k, len(drop))))
        # A customer won twice: make sure at least one company has two won deals.
        won_by_co: dict[str, list[Deal]] = {}
        for d in self.deals:
            if d.outcome == "won":
                won_by_co.setdefault(d.company_key, []).append(d)
        twice = [ds for ds in won_by_co.values() if len(ds) >= 2]
        if not twice:
            for d in self.deals:
                if d.outcome == "lost" and d.company_key in won_by_co and not d.flags \
                        and d.created_at > won_by_co[d.company_key][0].closed_at:
                    d.outcome = "won"
                    d.stage_history[-1] = ("closedwon", d.stage_history[-1][1])
                    d.stage = "closedwon"
                    twice = [[won_by_co[d.company_key][0], d]]
                    break
        for ds in twice:
            for d in ds[1:]:
                d.deal_type = "existingbusiness"
                d.flags.add("won_twice")

    def _deal_side_histories(self, rng: random.Random, d: Deal):
        """Probability, amount, close date and owner histories, consistent with the stage history."""
        prob = []
        for j, (stage, ts) in enumerate(d.stage_history):
            p = STAGE_PROBABILITY[stage]
            if d.key in self._prob_drop and j == 2:
                p = round(max(0.05, prob[-1][0] - 0.15), 2)  # stage advanced, probability fell
                d.flags.add("probability_drop")
            prob.append((p, ts))
        d.probability_history = prob
        # Amount: estimated at creation, revised on the way for some deals.
        final = d.amount
        hist = []
        if rng.random() < 0.35 and len(d.stage_history) >= 2:
            first = _money(float(final) * rng.uniform(0.6, 1.4))
            hist.append((first, d.created_at))
            hist.append((final, d.stage_history[min(2, len(d.stage_history) - 1)][1]))
        else:
            hist.append((final, d.created_at))
        d.amount_history = hist
        # Close date: expected at creation, sometimes pushed out, set to the actual date when closed.
        ch = [(d.expected_close, d.created_at)]
        if rng.random() < 0.25 and len(d.stage_history) >= 2:
            pushed = d.expected_close + timedelta(days=rng.randint(15, 60))
            ch.append((pushed, d.stage_history[1][1]))
            d.expected_close = pushed
        if d.closed_at is not None:
            ch.append((d.closed_at, d.closed_at))
        d.closedate_history = ch
        # Owner: the deactivated rep's deals go to a teammate on deactivation day.
        owner = d.owner_history[0][0]
        rep = self.rep_by_key[owner]
        last_ts = d.stage_history[-1][1]
        if rep.deactivated_at is not None and (d.outcome == "open" or last_ts > rep.deactivated_at) \
                and rep.deactivated_at > d.created_at:
            d.owner_history.append((self.replacement[owner], rep.deactivated_at))
        elif rng.random() < 0.03 and d.closed_at is None:
            others = [r.key for r in self._active_reps(self.as_of) if r.key != owner]
            d.owner_history.append((rng.choice(others), _rand_between(rng, d.created_at, self.as_of)))
        d.owner_history.sort(key=lambda t: t[1])
        d.owner_key = d.owner_history[-1][0]
        stamps = [t for _, t in d.stage_history] + [t for _, t in ch] + [t for _, t in d.owner_history]
        d.updated_at = min(self.as_of, max(s for s in stamps if s <= self.as_of))

    # ----------------------------------------------------------------------------------- lifecycles
    def make_lifecycles(self):
        rng = self.rng["people"]
        deals_by_contact: dict[str, list[Deal]] = {}
        for d in self.deals:
            deals_by_contact.setdefault(d.contact_key, []).append(d)
            co = self.company_by_key[d.company_key]
            if "opportunity" not in co.lifecycle or d.created_at < co.lifecycle["opportunity"]:
                co.lifecycle["opportunity"] = d.created_at
            if d.outcome == "won" and ("customer" not in co.lifecycle or d.closed_at < co.lifecycle["customer"]):
                co.lifecycle["customer"] = d.closed_at
        for co in self.companies:
            co.lifecycle = dict(sorted(co.lifecycle.items(), key=lambda kv: kv[1]))
        for p in self.people:
            lc = {"lead": p.created_at}
            ds = deals_by_contact.get(p.key)
            if ds:
                first = min(d.created_at for d in ds)
                span = first - p.created_at
                if p.source_kind == "marketing":
                    lc["marketingqualifiedlead"] = p.created_at + span * rng.uniform(0.1, 0.4)
                lc["salesqualifiedlead"] = p.created_at + span * rng.uniform(0.5, 0.9)
                lc["opportunity"] = first
                won = [d.closed_at for d in ds if d.outcome == "won"]
                if won:
                    lc["customer"] = min(won)
            else:
                room = self.as_of - p.created_at
                if p.source_kind == "marketing" and rng.random() < 0.35:
                    lc["marketingqualifiedlead"] = p.created_at + room * rng.uniform(0.05, 0.3)
                    if rng.random() < 0.3:
                        lc["salesqualifiedlead"] = p.created_at + room * rng.uniform(0.35, 0.6)
                elif p.source_kind != "marketing" and rng.random() < 0.15:
                    lc["salesqualifiedlead"] = p.created_at + room * rng.uniform(0.1, 0.5)
            p.lifecycle = lc
            depth = len(lc) - 1
            mk = p.source_kind == "marketing"
            p.page_views = rng.randint(0, 4) + depth * rng.randint(2, 9) + (rng.randint(1, 6) if mk else 0)
            p.email_opens = rng.randint(0, 3) + depth * rng.randint(1, 6)
            p.email_clicks = min(p.email_opens, rng.randint(0, 1) + depth * rng.randint(0, 3))
            p.form_submissions = (1 if mk else 0) + (rng.randint(0, 2) if depth >= 1 and mk else 0)
            self.truth.person_funnel[p.key] = dict(lc)

    # ----------------------------------------------------------------------------------- activities
    def make_activities(self):
        rng = self.rng["activities"]
        total = self.spec.activities
        tier_w = {"Or": 2.0, "Argent": 1.3, "Bronze": 0.8, None: 1.0}
        deal_w = []
        for d in self.deals:
            co = self.company_by_key[d.company_key]
            rep = self.rep_by_key[d.owner_history[0][0]]
            deal_w.append(tier_w[co.tier] * (0.6 + 0.4 * rep.meetings_factor) * (1.3 if d.outcome == "won" else 1.0))
        sw = sum(deal_w) or 1.0
        budget = total * 0.78
        acts: list[tuple] = []  # (ts, kind, owner, contact, company, deal, tier, rep)
        for d, w in zip(self.deals, deal_w):
            expected = budget * w / sw
            count = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
            co = self.company_by_key[d.company_key]
            end = d.closed_at or (d.stage_history[-1][1] + timedelta(days=10) if "stale" in d.flags else self.as_of)
            end = min(end, self.as_of)
            lo = max(d.created_at - timedelta(days=5), self.person_by_key[d.contact_key].created_at)
            contacts = self.people_by_company[co.key]
            for _ in range(count):
                ts = _work_ts(rng, lo, end)
                owner = d.owner_history[0][0]
                for o, t in d.owner_history:
                    if t <= ts:
                        owner = o
                owner = self._owner_at(owner, ts)
                c = d.contact_key if rng.random() < 0.75 else rng.choice(contacts).key
                if self.person_by_key[c].created_at > ts:
                    c = d.contact_key
                acts.append((ts, owner, c, co.key, d.key, co.tier))
        rest = total - len(acts)
        people_w = [1.0 + len(p.lifecycle) for p in self.people]
        for p in rng.choices(self.people, weights=people_w, k=max(0, rest)):
            ts = _work_ts(rng, p.created_at, self.as_of)
            co = self.company_by_key[p.company_key]
            acts.append((ts, self._owner_at(p.owner_key, ts), p.key, co.key, None, co.tier))
        acts.sort(key=lambda a: (a[0], a[2], a[4] or ""))
        self.activities = []
        miss = self.cfg.missing_duration_share
        for i, (ts, owner, contact, company, deal, tier) in enumerate(acts):
            rep = self.rep_by_key[owner]
            mf = rep.meetings_factor
            kind = _weighted(rng, [("call", 30), ("email", 30), ("meeting", 14 * mf), ("note", 12), ("task", 14)])
            a = Activity(key=f"a-{i + 1:07d}", kind=kind, timestamp=ts, duration_ms=None, owner_key=owner,
                         contact_key=contact, company_key=company, deal_key=deal, title="")
            if kind == "call":
                a.direction = "OUTBOUND" if rng.random() < 0.8 else "INBOUND"
                a.status = _weighted(rng, [("COMPLETED", 75), ("NO_ANSWER", 18), ("BUSY", 7)])
                secs = rng.randint(60, 1500) if a.status == "COMPLETED" else rng.randint(5, 40)
                a.duration_ms = None if rng.random() < miss else secs * 1000
                a.activity_type = "Découverte" if deal is None else rng.choice(["Suivi", "Négociation", "Suivi"])
                a.title = "Appel " + ("sortant" if a.direction == "OUTBOUND" else "entrant")
            elif kind == "meeting":
                in_person = {"Or": 0.5, "Argent": 0.3, "Bronze": 0.15, None: 0.25}[tier]
                a.meeting_type = _weighted(rng, [("in_person", in_person), ("video", 0.45),
                                                 ("phone", max(0.05, 0.55 - in_person))])
                a.activity_type = "Demo" if rng.random() < 0.25 else rng.choice(["Découverte", "Suivi", "Négociation"])
                mins = {"in_person": rng.choice([60, 90, 120]), "video": rng.choice([30, 45, 60]),
                        "phone": rng.choice([15, 30, 45])}[a.meeting_type]
                a.duration_ms = None if rng.random() < miss else mins * 60_000
                if ts + timedelta(minutes=mins) > self.as_of:  # the meeting has ended by as_of
                    a.timestamp = ts = self.as_of - timedelta(minutes=mins + 5)
                a.status = "COMPLETED" if rng.random() < 0.9 else rng.choice(["NO_SHOW", "RESCHEDULED", "CANCELED"])
                a.title = {"in_person": "Rendez-vous sur site", "video": "Visio", "phone": "Rendez-vous téléphonique"
                           }[a.meeting_type] + (" – démo" if a.activity_type == "Demo" else "")
            elif kind == "email":
                a.direction = "EMAIL" if rng.random() < 0.7 else "INCOMING_EMAIL"
                a.title = rng.choice(["Suite à notre échange", "Proposition commerciale", "Relance",
                                      "Documentation", "Invitation webinaire", "Re: devis"])
            elif kind == "note":
                a.title = rng.choice(["Compte rendu", "Note d'appel", "Contexte client", "Besoins identifiés"])
            else:
                a.task_type = _weighted(rng, [("CALL", 40), ("EMAIL", 30), ("TODO", 30)])
                recent = ts > self.as_of - timedelta(days=14)
                a.status = "NOT_STARTED" if recent and rng.random() < 0.6 else "COMPLETED"
                a.title = rng.choice(["Relancer", "Envoyer la proposition", "Préparer la démo", "Rappeler"])
            a.created_at = min(self.as_of, ts + timedelta(minutes=rng.randint(0, 240)))
            a.updated_at = a.created_at
            self.activities.append(a)

    # ----------------------------------------------------------------------------------- CRM records
    def _blank_some(self, rng: random.Random, rec, fields: list[str], skip_rate: float):
        if rng.random() >= skip_rate:
            return
        for f in rng.sample(fields, 2 if rng.random() < 0.3 else 1):
            setattr(rec, f, None)
            rec.missing.append(f)

    def make_records(self):
        rng = self.rng["records"]
        self.company_records: list[CompanyRecord] = []
        self.contact_records: list[ContactRecord] = []
        self.id_counters = dict(ID_BASES)
        hs_company: dict[str, CompanyRecord] = {}
        dup_company: dict[str, CompanyRecord] = {}
        recs = []
        for co in self.companies:
            rec = self._company_record(rng, co, "hubspot", "original", co.created_at)
            hs_company[co.key] = rec
            recs.append(rec)
            if rng.random() < self.cfg.company_dup_share:
                ts = _rand_between(rng, co.created_at, self.as_of)
                dup = self._company_record(rng, co, "hubspot", "duplicate", ts)
                dup.name = self._dirty_company_name(rng, co)
                dup.lifecycle = {"lead": ts}
                if rng.random() < 0.4:
                    dup.domain = None
                    dup.missing.append("domain")
                elif rng.random() < 0.3 and dup.domain:
                    dup.domain = "www." + dup.domain
                if dup.phone and rng.random() < 0.5:
                    dup.phone = "+33" + dup.phone.replace(" ", "")[1:]
                dup_company[co.key] = dup
                recs.append(dup)
        recs.sort(key=lambda r: (r.created_at, r.company_key, r.variant != "original"))
        for r in recs:
            r.record_id = self._next("companies")
        self.company_records.extend(recs)
        self.hs_company = hs_company

        crecs = []
        used_emails = {p.email for p in self.people}
        for p in self.people:
            co = self.company_by_key[p.company_key]
            company_rec = hs_company[co.key]
            dup_co = dup_company.get(co.key)
            if dup_co is not None and p.created_at > dup_co.created_at and rng.random() < 0.3:
                company_rec = dup_co
            rec = self._contact_record(rng, p, "hubspot", "original", p.created_at, company_rec)
            rec.lifecycle = dict(p.lifecycle)
            rec.page_views, rec.email_opens = p.page_views, p.email_opens
            rec.email_clicks, rec.form_submissions = p.email_clicks, p.form_submissions
            crecs.append(rec)
            if not p.shared_mailbox and rng.random() < self.cfg.person_dup_share:
                for _ in range(1 if rng.random() < 0.8 else 2):
                    ts = _rand_between(rng, p.created_at + timedelta(days=1), self.as_of)
                    dup = self._contact_record(rng, p, "hubspot", "duplicate", ts, company_rec)
                    self._dirty_contact(rng, dup, p, co, used_emails)
                    dup.owner_key = self._owner_at(dup.owner_key if rng.random() < 0.7
                                                   else rng.choice(self.reps).key, ts)
                    dup.source = "OFFLINE"
                    dup.lead_source = None
                    dup.lifecycle = {"lead": ts}
                    crecs.append(dup)
        crecs.sort(key=lambda r: (r.created_at, r.person_key, r.variant != "original"))
        for r in crecs:
            r.record_id = self._next("contacts")
        self.contact_records.extend(crecs)
        self.hs_contact_original = {r.person_key: r for r in crecs if r.variant == "original"}

        # Deals: ids by creation date, deliberate blanks on mandatory fields.
        for d in self.deals:
            d.hubspot_id = self._next("deals")
            d.hubspot_company_record_id = hs_company[d.company_key].record_id
            d.hubspot_contact_record_id = self.hs_contact_original[d.contact_key].record_id
            rep = self.rep_by_key[d.owner_key]
            if rng.random() < rep.skip_rate:
                d.hubspot_missing = rng.sample(list(MANDATORY_FIELDS["deals"]), 1)
        for a in self.activities:
            a.hubspot_id = self._next(KIND_TO_OBJECT[a.kind])
        self._archive_some(rng)
        if self.cfg.malformed:
            victim = crecs[len(crecs) // 2]
            victim.malformed = "createdate"
            self.truth.malformed.append(("hubspot", "contacts", victim.record_id, "createdate"))

    def _next(self, object_type: str) -> str:
        bucket = "engagements" if object_type in ENGAGEMENT_TYPES else object_type
        self.id_counters[bucket] += 1
        return str(self.id_counters[bucket])

    def _company_record(self, rng, co: Company, vendor: str, variant: str, ts: datetime) -> CompanyRecord:
        rec = CompanyRecord(
            vendor=vendor, record_id="", company_key=co.key, variant=variant,
            name=co.trade_name if rng.random() < 0.6 else f"{co.trade_name} {co.legal_form}",
            domain=co.domain, phone=co.phone, address=co.address, postcode=co.postcode, city=co.city,
            industry=co.industry, headcount=co.headcount, siren=co.siren,
            tier=co.tier, account_type=co.account_type, owner_key=self._owner_at(co.owner_key, ts), created_at=ts,
            updated_at=ts, lifecycle=dict(co.lifecycle),
        )
        rep = self.rep_by_key[co.owner_key]
        self._blank_some(rng, rec, ["domain", "phone", "city", "industry", "headcount", "siren"], rep.skip_rate)
        stamps = [ts] + [t for t in rec.lifecycle.values() if t >= ts]
        rec.updated_at = max(stamps)
        return rec

    def _dirty_company_name(self, rng, co: Company) -> str:
        kind = rng.choice(["form", "ste", "case", "typo"])
        name = co.trade_name
        if kind == "form":
            return f"{name} {co.legal_form}" if rng.random() < 0.5 else f"{name} ({co.legal_form})"
        if kind == "ste":
            return f"Ste {name}"
        if kind == "case":
            return name.upper()
        return _typo(rng, name)

    def _contact_record(self, rng, p: Person, vendor: str, variant: str, ts: datetime,
                        company_rec: CompanyRecord | None) -> ContactRecord:
        co = self.company_by_key[p.company_key]
        marketing_source = p.channel if p.source_kind == "marketing" else "OFFLINE"
        rec = ContactRecord(
            vendor=vendor, record_id="", person_key=p.key, variant=variant, dirt=[], first_name=p.first_name,
            last_name=p.last_name, email=p.email, phone=p.phone, mobile=p.mobile, job_title=p.job_title,
            company_name=co.trade_name, company_record_id=company_rec.record_id if company_rec else None,
            owner_key=self._owner_at(p.owner_key, ts), created_at=ts, updated_at=ts, source=marketing_source,
            lead_source=p.channel if p.source_kind == "sales" else None, lifecycle={"lead": ts}, page_views=0,
            email_opens=0, email_clicks=0, form_submissions=0,
            bounce_reason="UNKNOWN_USER" if p.left_reason == "hard_bounce" else None,
        )
        rep = self.rep_by_key[p.owner_key]
        self._blank_some(rng, rec, ["email", "phone", "job_title", "company_name"], rep.skip_rate)
        if variant == "original":
            stamps = [ts] + list(p.lifecycle.values())
            if p.left_at and p.left_reason == "hard_bounce":
                stamps.append(p.left_at)
            rec.updated_at = max(s for s in stamps if s <= self.as_of)
        return rec

    def _dirty_contact(self, rng, rec: ContactRecord, p: Person, co: Company, used: set[str]):
        kinds = rng.sample(["case", "accents", "typo", "swapped", "phone_format"], rng.randint(1, 2))
        for k in kinds:
            if k == "case" and rec.last_name:
                rec.last_name = rec.last_name.upper() if rng.random() < 0.6 else rec.last_name.lower()
            elif k == "accents":
                rec.first_name = _ascii(rec.first_name or "") or None
                rec.last_name = _ascii(rec.last_name or "") or None
            elif k == "typo" and rec.last_name:
                rec.last_name = _typo(rng, rec.last_name)
            elif k == "swapped":
                rec.first_name, rec.last_name = rec.last_name, rec.first_name
            elif k == "phone_format":
                src = rec.mobile or rec.phone
                if src:
                    digits = src.replace(" ", "")
                    fmt = "+33" + digits[1:] if rng.random() < 0.5 else "0033 " + digits[1] + " " + " ".join(
                        digits[i:i + 2] for i in range(2, 10, 2))
                    if rec.mobile:
                        rec.mobile = fmt
                    else:
                        rec.phone = fmt
            rec.dirt.append(k)
        # HubSpot refuses two contacts with one email: the duplicate carries another address (or none).
        local, _, dom = p.email.partition("@")
        ek = rng.choice(["alias", "gmail", "none"])
        if ek == "alias":
            rec.email = f"{local}+crm@{dom}"
        elif ek == "gmail":
            rec.email = f"{_email_part(p.first_name)}.{_email_part(p.last_name.replace(' ', ''))}" \
                        f"{rng.randint(1, 99)}@gmail.com"
        else:
            rec.email = None
        if rec.email in used:
            rec.email = f"{local}+crm{len(rec.dirt)}{rng.randint(2, 9)}@{dom}"
            if rec.email in used:
                rec.email = None
        if rec.email:
            used.add(rec.email)
        if rec.email is None and "email" not in rec.missing:
            rec.missing.append("email")
        elif rec.email is not None and "email" in rec.missing:
            rec.missing.remove("email")
        rec.dirt.append(ek)

    def _archive_some(self, rng):
        share = self.cfg.archived_share

        def pick(items):
            k = max(2, round(len(items) * share))
            return rng.sample(items, min(k, len(items)))

        hs_contacts = [r for r in self.contact_records if r.vendor == "hubspot"]
        for r in pick(hs_contacts):
            r.archived = True
            r.archived_at = _rand_between(rng, r.updated_at, self.as_of)
        hs_dup_cos = [r for r in self.company_records if r.vendor == "hubspot" and r.variant == "duplicate"]
        for r in pick(hs_dup_cos or [r for r in self.company_records if r.vendor == "hubspot"]):
            r.archived = True
            r.archived_at = _rand_between(rng, r.updated_at, self.as_of)
        for d in pick([d for d in self.deals if d.outcome != "won"]):
            d.archived = True
            d.archived_at = _rand_between(rng, d.updated_at, self.as_of)
        by_kind: dict[str, list[Activity]] = {}
        for a in self.activities:
            by_kind.setdefault(a.kind, []).append(a)
        for kind in sorted(by_kind):
            for a in pick(by_kind[kind]):
                a.archived = True
                a.archived_at = _rand_between(rng, a.updated_at, self.as_of)

    # ----------------------------------------------------------------------------------- koban
    def make_koban(self):
        rng = self.rng["koban"]
        pre = [c for c in self.companies if c.created_at < self.migration]
        want = round(len(self.companies) * self.cfg.koban_share)
        chosen = set(c.key for c in rng.sample(pre, min(want, len(pre))))
        kco: dict[str, CompanyRecord] = {}
        for co in self.companies:
            if co.key not in chosen:
                continue
            co.in_koban = True
            rec = self._company_record(rng, co, "koban", "koban", co.created_at)
            rec.record_id = guid(rng)
            rec.name = rng.choice([co.trade_name.upper(), f"{co.trade_name} {co.legal_form}", co.legal_name,
                                   _ascii(co.trade_name)])
            rec.lifecycle = {k: v for k, v in co.lifecycle.items() if v < self.migration}
            rec.updated_at = min(self.migration, max([rec.created_at] + list(rec.lifecycle.values())))
            rec.owner_key = self._owner_at(co.owner_key, rec.created_at)
            kco[co.key] = rec
            self.company_records.append(rec)
        for p in self.people:
            if p.company_key not in kco or p.created_at >= self.migration:
                continue
            rec = self._contact_record(rng, p, "koban", "koban", p.created_at, kco[p.company_key])
            rec.record_id = guid(rng)
            r = rng.random()
            if r < 0.3:
                rec.first_name, rec.last_name = _ascii(p.first_name), _ascii(p.last_name)
                rec.dirt.append("accents")
            elif r < 0.5:
                rec.last_name = p.last_name.upper()
                rec.dirt.append("case")
            rec.lifecycle = {k: v for k, v in p.lifecycle.items() if v < self.migration}
            rec.updated_at = min(self.migration, max([rec.created_at] + list(rec.lifecycle.values())))
            self.contact_records.append(rec)
        for d in self.deals:
            if d.company_key in kco and d.created_at < self.migration:
                d.koban_id = guid(rng)
        for a in self.activities:
            if a.company_key in kco and a.timestamp < self.migration:
                a.koban_id = guid(rng)

    # ----------------------------------------------------------------------------------- billing (Stripe)
    def make_billing(self):
        rng = self.rng["billing"]
        self.billing = Billing()
        won_by_co: dict[str, list[Deal]] = {}
        for d in self.deals:
            if d.outcome == "won":
                won_by_co.setdefault(d.company_key, []).append(d)
        no_deal = [c for c in self.companies if c.key not in won_by_co and c.active]
        extra_crm = rng.sample(no_deal, min(len(no_deal), max(1, len(won_by_co) // 30)))
        inv_seq = [0]
        cust_list: list[tuple[StripeCustomer, list[Deal]]] = []
        for co_key in sorted(won_by_co, key=lambda k: won_by_co[k][0].closed_at):
            co = self.company_by_key[co_key]
            deals = sorted(won_by_co[co_key], key=lambda d: d.closed_at)
            cust = self._stripe_customer(rng, co, deals[0].closed_at + timedelta(days=rng.randint(1, 10)),
                                         deals[0].currency)
            cust_list.append((cust, deals))
        for co in extra_crm:  # paid invoices with no won deal in the CRM
            cust_list.append((self._stripe_customer(rng, co, _rand_between(rng, co.created_at, self.as_of), "EUR"), []))
        n_outside = max(1, len(won_by_co) // 25)
        for _ in range(n_outside):  # customers the CRM never heard of
            name = f"{rng.choice(frdata.NAME_PREFIXES)} {rng.choice(frdata.LAST_NAMES)}"
            city, pc, _d = rng.choice(frdata.CITIES)
            cust = StripeCustomer(id=stripe_id(rng, "cus"), company_key=None, name=name,
                                  email=f"compta@{_slug(name)}.fr", link="none", crm_company_id=None, vat=None,
                                  currency="eur", address=f"{rng.randint(1, 99)} rue {rng.choice(frdata.STREET_NAMES)}",
                                  postcode=pc, city=city, created_at=_rand_between(rng, self.start, self.as_of))
            cust_list.append((cust, []))
        cust_list.sort(key=lambda t: (t[0].created_at, t[0].id))
        for cust, deals in cust_list:
            if cust.created_at > self.as_of:
                cust.created_at = self.as_of - timedelta(hours=1)
            self.billing.customers.append(cust)
            if deals:
                for d in deals:
                    self._bill_deal(rng, cust, d, inv_seq)
            else:
                amt = int(_money(rng.uniform(1_000, 15_000)) * 100)
                self._invoice(rng, cust, None, None, [("Prestation", amt, cust.created_at, cust.created_at)],
                              cust.created_at, inv_seq, force_paid=True)
        self.billing.invoices.sort(key=lambda i: (i.created_at, i.id))
        # Credit notes on a few paid invoices.
        paid = [i for i in self.billing.invoices if i.status == "paid"]
        for n, inv in enumerate(rng.sample(paid, min(len(paid), max(1, len(paid) // 33)))):
            created = _rand_between(rng, inv.paid_at, min(self.as_of, inv.paid_at + timedelta(days=60)))
            self.billing.credit_notes.append(StripeCreditNote(
                id=stripe_id(rng, "cn"), number=f"{inv.number}-CN-01", invoice_id=inv.id, customer_id=inv.customer_id,
                amount=max(100, int(inv.total * rng.choice([0.1, 0.2, 0.5, 1.0]))), currency=inv.currency,
                reason=rng.choice(["duplicate", "order_change", "product_unsatisfactory"]), created_at=created))
        self.billing.credit_notes.sort(key=lambda c: (c.created_at, c.id))

    def _stripe_customer(self, rng, co: Company, created: datetime, currency: str) -> StripeCustomer:
        created = min(created, self.as_of - timedelta(hours=1))
        link = _weighted(rng, [("metadata", 70), ("tax_id", 15), ("email_domain", 10), ("none", 5)])
        hs = self.hs_company[co.key]
        name = co.trade_name if rng.random() < 0.5 else f"{co.legal_name} {co.legal_form}".upper()
        return StripeCustomer(
            id=stripe_id(rng, "cus"), company_key=co.key, name=name,
            email=f"compta@{co.domain}" if link in ("metadata", "email_domain") or rng.random() < 0.5 else None,
            link=link, crm_company_id=hs.record_id if link == "metadata" else None,
            vat=co.vat if link in ("metadata", "tax_id") and (link == "tax_id" or rng.random() < 0.5) else None,
            currency=currency.lower(), address=co.address, postcode=co.postcode, city=co.city, created_at=created)

    def _bill_deal(self, rng, cust: StripeCustomer, d: Deal, inv_seq):
        minor = int(d.amount * 100)
        cur = d.currency.lower()
        start = max(cust.created_at, d.closed_at)
        if rng.random() < 0.4:
            # Monthly subscription: the deal amount spread over 12 months.
            unit = max(100, minor // 12)
            sub = StripeSubscription(
                id=stripe_id(rng, "sub"), customer_id=cust.id, deal_key=d.key, status="active", currency=cur,
                unit_amount=unit, product_name=f"Abonnement {d.name.split('– ')[-1]}", created_at=start,
                start_date=start, current_period_start=start, current_period_end=start + timedelta(days=30),
                canceled_at=None, ended_at=None)
            if rng.random() < 0.12:
                sub.canceled_at = _rand_between(rng, start, self.as_of)
                sub.ended_at = sub.canceled_at
                sub.status = "canceled"
            period = start
            stop = sub.ended_at or self.as_of
            while period <= stop:
                end = period + timedelta(days=30)
                self._invoice(rng, cust, d, sub.id, [(sub.product_name, unit, period, end)], period, inv_seq)
                sub.current_period_start, sub.current_period_end = period, end
                period = end
            self.billing.subscriptions.append(sub)
        else:
            parts = 2 if rng.random() < 0.3 else 1
            for k in range(parts):
                when = start + timedelta(days=45 * k)
                if when > self.as_of:
                    break
                self._invoice(rng, cust, d, None, [(d.name, minor // parts, when, when)], when, inv_seq)

    def _invoice(self, rng, cust, d, sub_id, lines, created, inv_seq, force_paid=False):
        inv_seq[0] += 1
        cur = cust.currency
        subtotal = sum(a for _, a, _, _ in lines)
        tax = round(subtotal * 0.2) if cur == "eur" else 0
        total = subtotal + tax
        due = created + timedelta(days=30)
        age = (self.as_of - created).days
        if force_paid:
            status = "paid"
        elif age < 3 and sub_id is not None and rng.random() < 0.5:
            status = "draft"
        else:
            status = _weighted(rng, [("paid", 88), ("open", 6), ("void", 3), ("uncollectible", 3)])
            if status == "paid" and age < 20 and rng.random() < 0.6:
                status = "open"
        inv = StripeInvoice(
            id=stripe_id(rng, "in"), number=f"VDL-{created.year}-{inv_seq[0]:05d}", customer_id=cust.id,
            subscription_id=sub_id, deal_key=d.key if d else None, status=status, currency=cur,
            lines=[InvoiceLine(id=stripe_id(rng, "il"), description=desc, amount=a, quantity=1, period_start=ps,
                               period_end=pe, subscription_id=sub_id) for desc, a, ps, pe in lines],
            subtotal=subtotal, tax=tax, total=total, amount_paid=0, amount_due=total, amount_remaining=total,
            created_at=created, finalized_at=None if status == "draft" else created + timedelta(hours=1),
            due_date=None if status == "draft" else due, paid_at=None, voided_at=None, marked_uncollectible_at=None)
        if status == "paid":
            inv.paid_at = min(self.as_of, created + timedelta(days=rng.randint(0, 45), hours=2))
            inv.amount_paid, inv.amount_remaining = total, 0
        elif status == "void":
            inv.voided_at = min(self.as_of, created + timedelta(days=rng.randint(1, 20)))
            inv.amount_remaining = 0
        elif status == "uncollectible":
            inv.marked_uncollectible_at = min(self.as_of, created + timedelta(days=rng.randint(60, 120)))
        self.billing.invoices.append(inv)

    # ----------------------------------------------------------------------------------- registry
    def make_registry(self):
        rng = self.rng["registry"]
        ents = []
        for co in self.companies:
            legal = co.legal_name.upper() if rng.random() < 0.8 else f"{co.legal_name.upper()} ({co.legal_form})"
            band = co.headcount_band if rng.random() < 0.9 else rng.choice(frdata.BANDS_BY_CATEGORY[co.category])
            ents.append(RegistryEntity(
                siren=co.siren, siret=co.siret, legal_name=legal, naf_code=co.naf_code, naf_label=co.naf_label,
                headcount_band=band, legal_form_code=co.legal_form_code, category=co.category,
                creation_date=co.creation_date, etat="A" if co.active else "C", closure_date=co.closure_date,
                address=co.address.upper(), postcode=co.postcode, city=co.city.upper(), vat=co.vat,
                company_key=co.key, updated_at=_rand_between(rng, self.start, self.as_of)))
        for _ in range(2 * len(self.companies)):
            siren = new_siren(rng, self.sirens)
            cat = _weighted(rng, [("PME", 95), ("ETI", 4), ("GE", 1)])
            form = _weighted(rng, frdata.LEGAL_FORM_WEIGHTS[cat])
            naf_code, naf_label, _ind = rng.choice(frdata.NAF)
            city, pc, _d = rng.choice(frdata.CITIES)
            ceased = rng.random() < 0.1
            name = f"{rng.choice(frdata.NAME_ROOTS)}{rng.choice(frdata.NAME_SUFFIXES)}".upper()
            ents.append(RegistryEntity(
                siren=siren, siret=siret_for(siren, rng.choice([1, 1, 1, 2, 12])), legal_name=name,
                naf_code=naf_code, naf_label=naf_label, headcount_band=rng.choice(frdata.BANDS_BY_CATEGORY[cat]),
                legal_form_code=frdata.LEGAL_FORMS[form][0], category=cat,
                creation_date=date(rng.randint(1970, 2025), rng.randint(1, 12), rng.randint(1, 28)),
                etat="C" if ceased else "A",
                closure_date=date(rng.randint(2020, 2026), rng.randint(1, 9), rng.randint(1, 28)) if ceased else None,
                address=f"{rng.randint(1, 150)} {rng.choice(frdata.STREET_TYPES)} {rng.choice(frdata.STREET_NAMES)}"
                .upper(), postcode=pc, city=city.upper(), vat=fr_vat(siren), company_key=None,
                updated_at=_rand_between(rng, self.start, self.as_of)))
        ents.sort(key=lambda e: e.siren)
        self.registry = ents

    # ----------------------------------------------------------------------------------- inputs
    def make_inputs(self):
        rng = self.rng["inputs"]
        scale = max(0.05, self.spec.companies / 600)
        rows = []
        m = date(self.start.year, self.start.month, 1)
        last = date(self.as_of.year, self.as_of.month, 1)
        base = {"PAID_SEARCH": (2500, 6000), "ORGANIC_SEARCH": (900, 1500), "SOCIAL_MEDIA": (1200, 3000),
                "EMAIL_MARKETING": (200, 600), "OTHER_CAMPAIGNS": (300, 900)}
        while m <= last:
            for ch in frdata.MARKETING_CHANNELS:
                for camp in frdata.CAMPAIGNS[ch]:
                    lo, hi = base[ch]
                    if camp.startswith("Salon"):
                        if m.month not in ((3, 10) if "Big Data" in camp else (6, 11)):
                            continue
                        lo, hi = 8000, 15000
                    rows.append(MarketingSpend(m, ch, camp, _money(rng.uniform(lo, hi) * scale)))
            m = date(m.year + (m.month == 12), m.month % 12 + 1, 1)
        self.inputs = Inputs(marketing_spend=rows, rep_costs=[
            RepCost(r.email, s.hourly_cost, s.valid_from, s.valid_to) for r in self.reps for s in r.cost_history])

    # ----------------------------------------------------------------------------------- truth
    def fill_truth(self):
        t = self.truth
        for r in self.contact_records:
            t.contact_person[(r.vendor, r.record_id)] = r.person_key
            if r.missing:
                names = MANDATORY_FIELDS["contacts"]
                t.missing_fields[(r.vendor, "contacts", r.record_id)] = {
                    (names[f] if r.vendor == "hubspot" else f): r.owner_key for f in r.missing}
        for r in self.company_records:
            t.company_entity[(r.vendor, r.record_id)] = r.company_key
            if r.missing:
                names = MANDATORY_FIELDS["companies"]
                t.missing_fields[(r.vendor, "companies", r.record_id)] = {
                    (names[f] if r.vendor == "hubspot" else f): r.owner_key for f in r.missing}
        for c in self.billing.customers:
            t.company_entity[("stripe", c.id)] = c.company_key
        for e in self.registry:
            t.company_entity[("registry", e.siren)] = e.company_key
        for d in self.deals:
            t.deals[d.key] = self.deal_truth(d)
            t.deal_records[("hubspot", d.hubspot_id)] = d.key
            if d.koban_id:
                t.deal_records[("koban", d.koban_id)] = d.key
            if d.hubspot_missing:
                t.missing_fields[("hubspot", "deals", d.hubspot_id)] = {
                    MANDATORY_FIELDS["deals"][f]: d.owner_key for f in d.hubspot_missing}
        t.duplicate_pairs = duplicate_pairs(self.contact_records, self.company_records)

    def deal_truth(self, d: Deal) -> DealTruth:
        return deal_truth(d, self.rep_by_key, self.company_by_key, self.as_of)


def deal_truth(d: Deal, reps: dict[str, Rep], companies: dict[str, Company], now: datetime) -> DealTruth:
    at = d.closed_at or now
    owner = d.owner_history[0][0]
    for o, t in d.owner_history:
        if t <= at:
            owner = o
    return DealTruth(outcome=d.outcome, closed_at=d.closed_at, owner_key=owner, team=reps[owner].team_at(at),
                     tier=companies[d.company_key].tier or "unknown", amount_eur=d.amount_eur,
                     created_at=d.created_at)


def duplicate_pairs(contact_records, company_records):
    pairs = set()
    for obj, recs, attr in (("contacts", contact_records, "person_key"),
                            ("companies", company_records, "company_key")):
        groups: dict[str, list[tuple[str, str, str]]] = {}
        for r in recs:
            groups.setdefault(getattr(r, attr), []).append((r.vendor, obj, r.record_id))
        for members in groups.values():
            if len(members) < 2:
                continue
            members.sort()
            for i in range(len(members)):
                for j in range(i + 1, len(members)):
                    pairs.add((members[i], members[j]))
    return pairs


def _typo(rng: random.Random, s: str) -> str:
    if len(s) < 4:
        return s + s[-1]
    i = rng.randint(1, len(s) - 3)
    if rng.random() < 0.5:
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]  # swap two letters
    return s[:i] + s[i + 1:]  # drop one letter


# --------------------------------------------------------------------------------------------- CLI

def dump_store(store: HubSpotStore) -> str:
    """A canonical JSON dump of a HubSpot store (for determinism checks and debugging)."""
    data = {
        "objects": store.objects, "property_history": store.property_history,
        "associations": {f"{a}->{b}": v for (a, b), v in sorted(store.associations.items())},
        "owners": store.owners, "pipelines": store.pipelines, "property_definitions": store.property_definitions,
    }
    return json.dumps(data, sort_keys=True, ensure_ascii=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate the sandbox world.")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--size", default="demo", choices=sorted(SIZES))
    ap.add_argument("--summary", action="store_true", help="print counts per object")
    ap.add_argument("--advance", type=int, default=0, help="apply N advance steps after generating")
    ap.add_argument("--dump", help="write the HubSpot store as JSON to this path")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    world = generate_world(seed=args.seed, size=args.size)
    took = time.perf_counter() - t0
    for step in range(args.advance):
        cs = world.advance()
        print(f"advance step {cs.step}: {len(cs.changes)} changes up to {iso(cs.end)}")
    if args.summary or not args.dump:
        print(f"seed={args.seed} size={args.size} as_of={iso(world.as_of)} generated in {took:.2f}s")
        for k, v in world.summary().items():
            print(f"  {k:40s} {v:>9,}")
    if args.dump:
        with open(args.dump, "w", encoding="utf-8") as fh:
            fh.write(dump_store(world.hubspot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
