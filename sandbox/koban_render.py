"""Render the neutral world's Koban part into a KobanStore, and derive Koban's daily changes.

What comes from the world (sandbox/generator.py `make_koban`): Koban company and contact records (CompanyRecord /
ContactRecord with vendor "koban" and Guid ids), deals and activities with a `koban_id` (those created before
the migration date), reps' `koban_id` (Koban user Guid). Koban froze at the migration to HubSpot, so deals show
their state as of the migration date (stage, amount, probability, forecast date, owner then).

Derived here, deterministically from the world seed and the record Guid (the world has no such data):
- users (ncUser) from reps created before the migration, their team as a Koban "Structure";
- the deal process "Processus commercial" (Extcode VENTE) whose Steps are the pipeline's open stages
  (Koban holds the outcome in the deal's Result, not in a step);
- SLEEP results for deals left open and stale at the migration;
- leads (ncLead, "pistes"): one converted lead per Koban contact of a marketing-sourced person, created up to
  20 days before the contact;
- invoices (ncInvoice): one per won Koban deal;
- dirt in OfficialNumber (SIRET, sometimes the SIREN or spaced digits) and VAT;
- World.advance does not touch Koban (sandbox/advance.py is HubSpot only), so `apply_koban_steps` derives the
  Koban side of each advanced day: a few updated accounts, contacts and deals (old open deals put to sleep), one
  new contact (a person of a Koban account typed in Koban too), one new note, one contact and one action made
  Obsolete. It is keyed on world.steps, so a store rendered after the world advanced catches up identically.
"""
from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from sandbox.ids import guid
from sandbox.koban_store import KobanStore
from sandbox.model import STAGE_LABEL, STAGE_PROBABILITY, Activity, CompanyRecord, ContactRecord, Deal

UTC = timezone.utc
PROCESS_GUID_SALT = "koban-process"

# Open pipeline stages -> Koban deal step codes (Steps of the process, in order).
STEP_CODES = {
    "appointmentscheduled": "RDV",
    "qualifiedtobuy": "QUALIF",
    "presentationscheduled": "PRESENTATION",
    "decisionmakerboughtin": "DECIDEUR",
    "contractsent": "CONTRAT",
}
PROCESS_CODE = "VENTE"
PROCESS_LABEL = "Processus commercial"

# Person / deal channel -> Koban "Origin" list value (Code, Label).
ORIGINS: dict[str, tuple[str, str] | None] = {
    "PAID_SEARCH": ("ADWORDS", "Google Ads"),
    "ORGANIC_SEARCH": ("WEB", "Site web"),
    "DIRECT_TRAFFIC": ("WEB", "Site web"),
    "SOCIAL_MEDIA": ("RESEAUX", "Réseaux sociaux"),
    "PAID_SOCIAL": ("RESEAUXPAY", "Réseaux sociaux sponsorisés"),
    "EMAIL_MARKETING": ("EMAILING", "E-mailing"),
    "OTHER_CAMPAIGNS": ("SALON", "Salon / événement"),
    "REFERRALS": ("PARTENAIRE", "Site partenaire"),
    "prospection": ("PROSPECTION", "Prospection"),
    "recommandation": ("RECOMMANDATION", "Recommandation"),
    "client existant": ("CLIENT", "Client existant"),
    "unknown": None,
}

# Neutral activity -> Koban ActionType (Code, Label, Onagenda).
ACTION_TYPES = {
    "call": ("APPEL", "Appel téléphonique", False),
    "meeting_in_person": ("RDV", "Rendez-vous", True),
    "meeting_phone": ("RDVTEL", "Rendez-vous téléphonique", True),
    "meeting_video": ("VISIO", "Visioconférence", True),
    "demo": ("DEMO", "Démonstration", True),
    "email": ("EMAIL", "E-mail", False),
    "note": ("NOTE", "Note", False),
    "task": ("TACHE", "Tâche", False),
}
_COLORS = {"APPEL": "#3c8dbc", "RDV": "#00a65a", "RDVTEL": "#39cccc", "VISIO": "#605ca8", "DEMO": "#f39c12",
           "EMAIL": "#d2d6de", "NOTE": "#777777", "TACHE": "#dd4b39"}


# ------------------------------------------------------------------------------------------- helpers

def epoch_ms(ts: datetime) -> int:
    return int(round(ts.astimezone(UTC).timestamp() * 1000))


def dotnet_date(ts: datetime | None) -> str | None:
    """.NET JSON date, as Koban sends them: "/Date(1579771515726)/"."""
    return None if ts is None else f"/Date({epoch_ms(ts)})/"


_DOTNET = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def parse_dotnet_date(value: str) -> datetime:
    """"/Date(ms)/" or "/Date(ms+0100)/" (the offset is display-only: ms are UTC) -> aware datetime."""
    m = _DOTNET.match(value)
    if not m:
        raise ValueError(f"not a .NET JSON date: {value!r}")
    return datetime.fromtimestamp(int(m.group(1)) / 1000, tz=UTC)


def _rng(world: Any, *parts: Any) -> random.Random:
    return random.Random(":".join(str(p) for p in (world.seed, "koban", *parts)))


def _base(record_guid: str, created: datetime, updated: datetime, obsolete: bool = False,
          extcode: str | None = None) -> dict[str, Any]:
    return {
        "Guid": record_guid,
        "Extcode": extcode,
        "CreationDate": dotnet_date(created),
        "LastUpdateDate": dotnet_date(updated),
        "DCreated": int(created.timestamp()),
        "DUpdated": int(updated.timestamp()),
        "Obsolete": obsolete,
    }


def _user_ref(store: KobanStore, users: dict[str, dict[str, Any]], rep_key: str) -> dict[str, Any] | None:
    u = users.get(rep_key)
    if u is None:
        return None
    return {"Guid": u["Guid"], "FullName": u["FullName"], "Extcode": u["Extcode"], "EMail": u["EMail"]}


def _last_before(history: list[tuple[Any, datetime]], when: datetime) -> tuple[Any, datetime] | None:
    out = None
    for value, ts in history:
        if ts < when:
            out = (value, ts)
    return out


# ------------------------------------------------------------------------------------------- rendering

class _Renderer:
    def __init__(self, world: Any) -> None:
        self.w = world
        self.m: datetime = world.migration_date
        self.store = KobanStore()
        self.users: dict[str, dict[str, Any]] = {}  # rep key -> user record
        self.thirds: dict[str, dict[str, Any]] = {}  # company key -> ncThird
        self.contacts_by_person: dict[str, dict[str, Any]] = {}  # person key -> ncContact

    def run(self) -> KobanStore:
        self.make_users()
        self.make_process()
        for rec in self.w.company_records:
            if rec.vendor == "koban":
                self.put_third(rec)
        for rec in self.w.contact_records:
            if rec.vendor == "koban":
                self.put_contact(rec)
        for d in self.w.deals:
            if d.koban_id:
                self.put_deal(d)
        for a in self.w.activities:
            if a.koban_id:
                self.put_action(a)
        return self.store

    def make_users(self) -> None:
        for rep in self.w.reps:
            if rep.created_at >= self.m:
                continue
            team = rep.team_at(self.m - timedelta(seconds=1))
            team_id = next((t.id for t in self.w.teams if t.name == team), None)
            deactivated = rep.deactivated_at if (not rep.active and rep.deactivated_at) else None
            user = {
                "Guid": rep.koban_id, "Extcode": rep.key.upper().replace("-", ""),
                "FirstName": rep.first_name, "Name": rep.last_name,
                "FullName": f"{rep.first_name} {rep.last_name}", "Login": rep.email, "EMail": rep.email,
                "IsActive": deactivated is None,
                "Structure": {"Code": f"STR{team_id}", "Label": team},
                "CreationDate": dotnet_date(rep.created_at),
                "LastUpdateDate": dotnet_date(deactivated or rep.created_at),
            }
            self.users[rep.key] = user
            self.store.users.append(user)

    def make_process(self) -> None:
        rng = _rng(self.w, PROCESS_GUID_SALT)
        steps = [{"Guid": guid(rng), "Extcode": code, "Label": STAGE_LABEL[stage], "Order": i}
                 for i, (stage, code) in enumerate(STEP_CODES.items())]
        self.store.processes.append({
            "Guid": guid(rng), "Extcode": PROCESS_CODE, "Label": PROCESS_LABEL, "Regroup": None,
            "IsActive": True, "IsActiveDeals": True, "Steps": steps,
        })

    def step_ref(self, stage: str) -> dict[str, Any]:
        code = STEP_CODES[stage]
        step = next(s for s in self.store.processes[0]["Steps"] if s["Extcode"] == code)
        return {"Guid": step["Guid"], "Code": code, "Label": step["Label"]}

    def process_ref(self) -> dict[str, Any]:
        p = self.store.processes[0]
        return {"Guid": p["Guid"], "Code": p["Extcode"], "Label": p["Label"]}

    # -- accounts -------------------------------------------------------------------------------
    def put_third(self, rec: CompanyRecord, updated: datetime | None = None, obsolete: bool = False) -> dict:
        co = self.w.company(rec.company_key)
        rng = _rng(self.w, rec.record_id)
        official = None
        if rec.siren:
            r = rng.random()
            if r < 0.7:
                official = co.siret
            elif r < 0.85:
                official = rec.siren
            else:
                s = co.siret
                official = f"{s[:3]} {s[3:6]} {s[6:9]} {s[9:]}"
        vat = co.vat if rec.siren and rng.random() < 0.6 else None
        if vat and rng.random() < 0.2:
            vat = f"{vat[:4]} {vat[4:]}"
        customer = "customer" in rec.lifecycle
        partner = rec.account_type in ("partner", "reseller")
        tags = []
        if rec.tier:
            tags.append({"TagCategoryCode": "SEGMENT", "Label": rec.tier})
        if rec.industry:
            tags.append({"TagCategoryCode": "ACTIVITY", "Label": rec.industry})
        third = {
            **_base(rec.record_id, rec.created_at, updated or rec.updated_at, obsolete),
            "Label": rec.name, "FirstName": None, "Gender": None, "StructCode": None,
            "Status": {"Code": "CLI", "Label": "Client"} if customer else {"Code": "PROS", "Label": "Prospect"},
            "Type": ({"Code": "PART", "Label": "Partenaire"} if rec.account_type == "partner"
                     else {"Code": "REV", "Label": "Revendeur"} if partner
                     else {"Code": "PRO", "Label": "Professionnel"}),
            "AccountingCode": f"411{rec.record_id[:5].upper()}" if customer else None,
            "Address": {"Street": rec.address, "Compl": None, "ZipCode": rec.postcode, "City": rec.city,
                        "Country": "FR"} if (rec.address or rec.city) else None,
            "Website": f"www.{rec.domain}" if rec.domain else None,
            "Phone": rec.phone, "Cell": None, "Fax": None,
            "EMail": f"contact@{rec.domain}" if rec.domain and rng.random() < 0.5 else None,
            "OfficialNumber": official, "Vat": vat, "Unsuscribe": False, "TaxRate": 20.0,
            "AssignedTo": _user_ref(self.store, self.users, rec.owner_key),
            "Tags": tags,
            "MoreFields": [{"FieldId": "5583bc220dc3610a94746d3b", "Value": str(rec.headcount)}]
            if rec.headcount is not None else [],
            "Origin": None, "UTMSource": None, "UTMMedium": None, "UTMCampaign": None, "Optin": False,
        }
        self.thirds[rec.company_key] = third
        self.store.put("ncThird", third, epoch_ms(updated or rec.updated_at))
        return third

    def third_ref(self, company_key: str | None) -> dict[str, Any] | None:
        t = self.thirds.get(company_key) if company_key else None
        return None if t is None else {"Guid": t["Guid"], "Label": t["Label"], "Extcode": t["Extcode"]}

    # -- contacts and leads -----------------------------------------------------------------------
    def put_contact(self, rec: ContactRecord, updated: datetime | None = None, obsolete: bool = False,
                    with_lead: bool = True) -> dict:
        p = self.w.person(rec.person_key)
        origin = ORIGINS.get(p.channel)
        contact = {
            **_base(rec.record_id, rec.created_at, updated or rec.updated_at, obsolete),
            "Label": " ".join(x for x in (rec.first_name, rec.last_name) if x) or rec.email,
            "Name": rec.last_name, "FirstName": rec.first_name, "Function": rec.job_title,
            "EMail": rec.email, "Phone": rec.phone, "Cell": rec.mobile, "Fax": None, "Gender": None,
            "Third": self.third_ref(p.company_key),
            "AssignedTo": _user_ref(self.store, self.users, rec.owner_key),
            "Origin": {"Code": origin[0], "Label": origin[1]} if origin else None,
            "InvalidMail": rec.bounce_reason is not None, "Unsuscribe": False, "Optin": p.source_kind == "marketing",
            "CanDecide": False, "CanBuy": False, "Tags": [], "MoreFields": [],
        }
        self.contacts_by_person[rec.person_key] = contact
        self.store.put("ncContact", contact, epoch_ms(updated or rec.updated_at))
        if with_lead and p.source_kind == "marketing":
            self.put_lead(rec, p, origin)
        return contact

    def put_lead(self, rec: ContactRecord, p: Any, origin: tuple[str, str] | None) -> None:
        rng = _rng(self.w, rec.record_id, "lead")
        created = max(self.w.start, rec.created_at - timedelta(days=rng.randint(0, 20), hours=rng.randint(0, 9)))
        co = self.w.company(p.company_key)
        lead = {
            **_base(guid(rng), created, rec.created_at),
            "SalesStatus": {"Code": "CONVERTED", "Label": "Convertie"},
            "Company": co.trade_name, "EMail": rec.email, "FirstName": rec.first_name, "Name": rec.last_name,
            "Phone": rec.phone, "Mobile": rec.mobile, "Comments": None, "IsNewsletter": False, "Unsuscribe": False,
            "Origin": {"Code": origin[0], "Label": origin[1]} if origin else None, "Gender": None,
            "Address": {"ZipCode": co.postcode, "City": co.city, "Country": "FR"},
            "AssignedTo": _user_ref(self.store, self.users, rec.owner_key), "Tags": [], "MoreFields": [],
            "Optin": True, "UTMSource": None, "UTMCampaign": None, "UTMMedium": None,
        }
        self.store.put("ncLead", lead, epoch_ms(rec.created_at))

    def contact_ref(self, person_key: str | None) -> dict[str, Any] | None:
        c = self.contacts_by_person.get(person_key) if person_key else None
        return None if c is None else {"Guid": c["Guid"], "Label": c["Label"]}

    # -- deals ------------------------------------------------------------------------------------
    def put_deal(self, d: Deal) -> dict:
        m = self.m
        stage_at = _last_before(d.stage_history, m) or (d.stage_history[0][0], d.created_at)
        open_stages = [(s, t) for s, t in d.stage_history if t < m and s in STEP_CODES]
        step = open_stages[-1][0] if open_stages else "appointmentscheduled"
        result, d_result = None, None
        if stage_at[0] == "closedwon":
            result, d_result = "WON", stage_at[1]
        elif stage_at[0] == "closedlost":
            result, d_result = "LOST", stage_at[1]
        elif "stale" in d.flags:
            result, d_result = "SLEEP", min(m - timedelta(days=1), stage_at[1] + timedelta(days=90))
        amount = (_last_before(d.amount_history, m) or (d.amount, d.created_at))[0]
        prob = (_last_before(d.probability_history, m) or (STAGE_PROBABILITY[step], d.created_at))[0]
        if result == "WON":
            prob = 1.0
        elif result in ("LOST", "SLEEP"):
            prob = 0.0
        dprev = (_last_before(d.closedate_history, m) or (d.expected_close, d.created_at))[0]
        owner = (_last_before(d.owner_history, m) or (d.owner_key, d.created_at))[0]
        stamps = [t for _, t in d.stage_history if t < m] + [t for _, t in d.amount_history if t < m]
        stamps += [t for _, t in d.closedate_history if t < m] + [d.created_at]
        updated = max(stamps + ([d_result] if d_result else []))
        origin = ORIGINS.get(d.channel)
        symbol = {"EUR": "€", "CHF": "CHF", "USD": "$"}.get(d.currency, d.currency)
        deal = {
            **_base(d.koban_id, d.created_at, updated),
            "Label": d.name, "GridLabel": d.name, "Description": None, "Comments": None,
            "Process": self.process_ref(), "ProcessLabel": PROCESS_LABEL,
            "Status": self.step_ref(step),
            "Third": self.third_ref(d.company_key), "Contact": self.contact_ref(d.contact_key),
            "Amountprev": float(amount),
            "Amount": {"Currency": {"Symbol": symbol, "Label": d.currency, "Code": d.currency},
                       "cent": int(round(float(amount) * 100))},
            "Probability": int(round(prob * 100)),
            "Result": result, "DPrev": dotnet_date(dprev), "DResult": dotnet_date(d_result),
            "Origin": {"Code": origin[0], "Label": origin[1]} if origin else None,
            "AssignedTo": _user_ref(self.store, self.users, owner),
            "Products": [], "Tags": [{"TagCategoryCode": "DEALTYPE", "Label": d.deal_type}], "MoreFields": [],
        }
        self.store.put("ncDeal", deal, epoch_ms(updated))
        if result == "WON":
            self.put_invoice(d, deal, d_result)
        return deal

    def put_invoice(self, d: Deal, deal: dict, when: datetime) -> None:
        rng = _rng(self.w, d.koban_id, "invoice")
        number = f"FA{when:%y%m}-{len(self.store.objects['ncInvoice']) + 1:04d}"
        ht = float(d.amount) if d.amount else 0.0
        paid = when + timedelta(days=rng.randint(15, 60))
        status = "CLOSED" if paid < self.m else "PENDING"
        updated = paid if status == "CLOSED" else when
        inv = {
            **_base(guid(rng), when, updated),
            "Number": number, "Status": status, "InvoiceDate": dotnet_date(when),
            "DueDate": dotnet_date(when + timedelta(days=30)),
            "Third": deal["Third"], "Contact": deal["Contact"], "Order": None,
            "PaymentMode": {"Code": "VIR", "Label": "Virement"},
            "Amount": round(ht, 2), "AmountTtc": round(ht * 1.2, 2), "CurrencyCode": d.currency,
            "Origin": None,
            "Lines": [{"Label": d.name, "Extcode": None, "Ht": round(ht, 2), "Quantity": 1, "Red": 0,
                       "Vat": 20, "Ttc": round(ht * 1.2, 2), "UnitPrice": round(ht, 2),
                       "Product": {"Reference": "LIC", "Label": "Licence"}}],
        }
        self.store.put("ncInvoice", inv, epoch_ms(updated))

    # -- actions ------------------------------------------------------------------------------------
    def put_action(self, a: Activity, updated: datetime | None = None, obsolete: bool = False) -> dict:
        if a.kind == "meeting":
            kind = "demo" if (a.activity_type or "").lower() in ("demo", "démo") else f"meeting_{a.meeting_type}"
        else:
            kind = a.kind
        code, label, onagenda = ACTION_TYPES.get(kind, ACTION_TYPES["note"])
        start = a.timestamp
        end = start + timedelta(milliseconds=a.duration_ms) if a.duration_ms and a.kind in ("call", "meeting") \
            else None
        done = a.status not in ("NOT_STARTED", "CANCELED", "RESCHEDULED")
        deal = self.store.objects["ncDeal"].get(self.w.deal(a.deal_key).koban_id) if a.deal_key else None
        action = {
            **_base(a.koban_id, a.created_at or start, updated or a.updated_at or start, obsolete),
            "RecCode": None, "Label": a.title, "Status": "DONE" if done else "TODO", "Place": None,
            "Comments": None, "Priority": {"Code": "NORMAL", "Label": "Normale"},
            "AssignedTo": _user_ref(self.store, self.users, a.owner_key),
            "ActionType": {"Code": code, "Label": label, "Color": _COLORS[code], "Onagenda": onagenda},
            "DStart": dotnet_date(start), "DEnd": dotnet_date(end),
            "DTerm": dotnet_date(start) if a.kind == "task" else None,
            "IsPeriod": end is not None, "IsGuest": False, "IsPrivate": False,
            "Deal": {"Guid": deal["Guid"], "Label": deal["Label"]} if deal else None,
            "Third": self.third_ref(a.company_key), "Contact": self.contact_ref(a.contact_key),
            "Lead": None, "Project": None, "Invoice": None, "Tags": [], "MoreFields": [],
        }
        self.store.put("ncAction", action, epoch_ms(updated or a.updated_at or start))
        return action


def render_koban(world: Any) -> KobanStore:
    """The Koban store for `world`, rendered once per world (cached on it) and caught up with world.advance."""
    store = world.__dict__.get("_koban_store")
    if store is None:
        r = _Renderer(world)
        store = r.run()
        store._renderer = r  # type: ignore[attr-defined]
        world.__dict__["_koban_store"] = store
    apply_koban_steps(world, store)
    return store


# ------------------------------------------------------------------------------------------- time passes

def apply_koban_steps(world: Any, store: KobanStore) -> list[tuple[int, str, str, str]]:
    """Apply the Koban side of every world step the store has not seen yet; returns the changes applied."""
    applied: list[tuple[int, str, str, str]] = []
    with store.lock:
        target = int(getattr(world, "steps", 0))
        while store.step < target:
            store.step += 1
            applied += _koban_day(world, store, store.step)
        store.changes += applied
    return applied


def _koban_day(world: Any, store: KobanStore, step: int) -> list[tuple[int, str, str, str]]:
    r: _Renderer = store._renderer  # type: ignore[attr-defined]
    rng = random.Random(f"{world.seed}:koban-advance:{step}")
    day_end = world.config.as_of + timedelta(days=step)
    day_start = day_end - timedelta(days=1)
    span = int((day_end - day_start).total_seconds() * 1000)
    out: list[tuple[int, str, str, str]] = []

    def ts() -> datetime:
        return day_start + timedelta(milliseconds=1 + int(rng.random() * (span - 2)))

    def touch(ctrl: str, rec: dict, when: datetime) -> None:
        rec["LastUpdateDate"] = dotnet_date(when)
        rec["DUpdated"] = int(when.timestamp())
        store.updated_ms[ctrl][rec["Guid"]] = epoch_ms(when)

    def live(ctrl: str) -> list[dict]:
        return sorted((x for x in store.objects[ctrl].values() if not x["Obsolete"]), key=lambda x: x["Guid"])

    thirds = live("ncThird")
    for t in rng.sample(thirds, min(len(thirds), max(1, round(len(thirds) * 0.02)))):
        if t["Status"]["Code"] == "PROS" and rng.random() < 0.3:
            t["Status"] = {"Code": "CLI", "Label": "Client"}
        else:
            t["Phone"] = "0" + str(rng.randint(1, 5)) + "".join(f" {rng.randint(0, 99):02d}" for _ in range(4))
        touch("ncThird", t, ts())
        out.append((step, "ncThird", t["Guid"], "updated"))
    contacts = live("ncContact")
    for c in rng.sample(contacts, min(len(contacts), max(1, round(len(contacts) * 0.02)))):
        c["Function"] = rng.choice(["Directeur commercial", "Responsable achats", "DAF", "DSI", "Gérant",
                                    "Office manager", "Responsable marketing"])
        touch("ncContact", c, ts())
        out.append((step, "ncContact", c["Guid"], "updated"))
    open_deals = [d for d in live("ncDeal") if d["Result"] is None]
    for d in rng.sample(open_deals, min(len(open_deals), max(1, round(len(open_deals) * 0.05)))):
        when = ts()
        d["Result"], d["DResult"], d["Probability"] = "SLEEP", dotnet_date(when), 0
        touch("ncDeal", d, when)
        out.append((step, "ncDeal", d["Guid"], "updated"))
    # one new contact: a person of a Koban account, without a Koban record yet, typed in Koban too
    have = {rec.person_key for rec in world.contact_records if rec.vendor == "koban"}
    have |= set(r.contacts_by_person)
    koban_cos = {rec.company_key for rec in world.company_records if rec.vendor == "koban"}
    cands = sorted((p for p in world.people if p.company_key in koban_cos and p.key not in have), key=lambda p: p.key)
    if cands:
        p = rng.choice(cands)
        when = ts()
        rec = ContactRecord(
            vendor="koban", record_id=guid(rng), person_key=p.key, variant="koban", dirt=[],
            first_name=p.first_name, last_name=p.last_name.upper(), email=p.email, phone=p.phone, mobile=p.mobile,
            job_title=p.job_title, company_name=world.company(p.company_key).trade_name,
            company_record_id=r.thirds[p.company_key]["Guid"] if p.company_key in r.thirds else None,
            owner_key=p.owner_key, created_at=when, updated_at=when, source="OFFLINE", lead_source=None,
            lifecycle={}, page_views=0, email_opens=0, email_clicks=0, form_submissions=0, bounce_reason=None,
        )
        r.put_contact(rec, with_lead=False)
        world.truth.contact_person[("koban", rec.record_id)] = p.key
        out.append((step, "ncContact", rec.record_id, "created"))
    # one new note on a live account
    if thirds:
        t = rng.choice(thirds)
        when = ts()
        owner = next((k for k, u in r.users.items() if u["IsActive"]), None)
        note = {
            **_base(guid(rng), when, when), "RecCode": None, "Label": "Compte repris dans HubSpot",
            "Status": "DONE", "Place": None, "Comments": None, "Priority": {"Code": "NORMAL", "Label": "Normale"},
            "AssignedTo": _user_ref(store, r.users, owner) if owner else None,
            "ActionType": {"Code": "NOTE", "Label": "Note", "Color": _COLORS["NOTE"], "Onagenda": False},
            "DStart": dotnet_date(when), "DEnd": None, "DTerm": None, "IsPeriod": False, "IsGuest": False,
            "IsPrivate": False, "Deal": None, "Third": {"Guid": t["Guid"], "Label": t["Label"], "Extcode": None},
            "Contact": None, "Lead": None, "Project": None, "Invoice": None, "Tags": [], "MoreFields": [],
        }
        store.put("ncAction", note, epoch_ms(when))
        out.append((step, "ncAction", note["Guid"], "created"))
    # deletions: Koban keeps the record and sets Obsolete
    touched = {g for _, _, g, _ in out}
    for ctrl in ("ncContact", "ncAction"):
        cands2 = [x for x in live(ctrl) if x["Guid"] not in touched]
        if cands2:
            x = rng.choice(cands2)
            x["Obsolete"] = True
            touch(ctrl, x, ts())
            out.append((step, ctrl, x["Guid"], "obsolete"))
    return out
