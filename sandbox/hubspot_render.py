"""Render the neutral world into a sandbox.stores.HubSpotStore (HubSpot CRM v3 shapes, string property values).

Record-level functions (`contact_record`, `company_record`, `deal_record`, `engagement_record`) are reused by
`World.advance` to re-render what changed.
"""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sandbox.model import STAGE_LABEL, STAGES, Activity, CompanyRecord, ContactRecord, Deal
from sandbox.stores import HubSpotStore

# HubSpot-defined association type ids (v4), from -> to.
ASSOC_TYPE = {
    ("contacts", "companies"): 1,  # primary company
    ("deals", "companies"): 5,  # primary company
    ("deals", "contacts"): 3,
    ("calls", "contacts"): 194, ("calls", "companies"): 182, ("calls", "deals"): 206,
    ("emails", "contacts"): 198, ("emails", "companies"): 186, ("emails", "deals"): 210,
    ("meetings", "contacts"): 200, ("meetings", "companies"): 188, ("meetings", "deals"): 212,
    ("notes", "contacts"): 202, ("notes", "companies"): 190, ("notes", "deals"): 214,
    ("tasks", "contacts"): 204, ("tasks", "companies"): 192, ("tasks", "deals"): 216,
}
MEETING_LOCATION_TYPE = {"in_person": "IN_PERSON", "phone": "PHONE", "video": "VIDEO"}
ACCOUNT_TYPE = {"direct": "DIRECT", "reseller": "RESELLER", "partner": "PARTNER"}
KIND_TO_OBJECT = {"call": "calls", "meeting": "meetings", "email": "emails", "note": "notes", "task": "tasks"}


def iso(ts) -> str:
    """2026-10-31T18:00:00.000Z (ts is a UTC datetime)."""
    return ts.isoformat(timespec="milliseconds")[:23] + "Z"


def num(d: Decimal | None) -> str | None:
    """HubSpot number string: no exponent, no trailing zeros ("12000", "1234.5")."""
    if d is None:
        return None
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def prob(p: float) -> str:
    return str(float(p))


def _hist(value, ts, source_type="CRM_UI", source_id=None) -> dict:
    return {"value": value, "timestamp": iso(ts), "sourceType": source_type, "sourceId": source_id}


def _obj(rid: str, props: dict, created: str, updated: str, archived: bool, archived_at) -> dict:
    return {"id": rid, "properties": props, "createdAt": created, "updatedAt": updated,
            "archived": archived, "archivedAt": iso(archived_at) if archived_at else None}


# ------------------------------------------------------------------------------------------- records

def contact_record(world, rec: ContactRecord) -> tuple[dict, dict]:
    owner = world.rep(rec.owner_key)
    updated = max(rec.updated_at, rec.archived_at) if rec.archived_at else rec.updated_at
    stage = next(reversed(rec.lifecycle)) if rec.lifecycle else None
    created, updated_s = iso(rec.created_at), iso(updated)
    p = {
        "email": rec.email, "firstname": rec.first_name, "lastname": rec.last_name, "phone": rec.phone,
        "mobilephone": rec.mobile, "jobtitle": rec.job_title, "company": rec.company_name,
        "associatedcompanyid": rec.company_record_id, "lifecyclestage": stage,
        "hs_analytics_source": rec.source, "lead_source": rec.lead_source,
        "hs_analytics_num_page_views": str(rec.page_views), "hs_email_open": str(rec.email_opens),
        "hs_email_click": str(rec.email_clicks), "num_conversion_events": str(rec.form_submissions),
        "hs_email_hard_bounce_reason_enum": rec.bounce_reason, "hubspot_owner_id": owner.owner_id,
        "createdate": created, "lastmodifieddate": updated_s, "hs_object_id": rec.record_id,
    }
    for st, ts in rec.lifecycle.items():
        p[f"hs_lifecyclestage_{st}_date"] = iso(ts)
    if rec.malformed:
        p[rec.malformed] = "31/02/2026 25:61"
    hist = {"lifecyclestage": [_hist(st, ts, "CRM_UI" if i == 0 else "AUTOMATION_PLATFORM")
                               for i, (st, ts) in enumerate(rec.lifecycle.items())][::-1]}
    return _obj(rec.record_id, p, created, updated_s, rec.archived, rec.archived_at), hist


def company_record(world, rec: CompanyRecord) -> tuple[dict, dict]:
    owner = world.rep(rec.owner_key)
    updated = max(rec.updated_at, rec.archived_at) if rec.archived_at else rec.updated_at
    stage = next(reversed(rec.lifecycle)) if rec.lifecycle else None
    created, updated_s = iso(rec.created_at), iso(updated)
    p = {
        "name": rec.name, "domain": rec.domain, "phone": rec.phone, "address": rec.address, "zip": rec.postcode,
        "city": rec.city, "country": "France", "industry": rec.industry,
        "numberofemployees": str(rec.headcount) if rec.headcount is not None else None,
        "lifecyclestage": stage, "type": ACCOUNT_TYPE[rec.account_type], "hubspot_owner_id": owner.owner_id,
        "tier": rec.tier, "siren": rec.siren, "createdate": created, "hs_lastmodifieddate": updated_s,
        "hs_object_id": rec.record_id,
    }
    for st, ts in rec.lifecycle.items():
        p[f"hs_lifecyclestage_{st}_date"] = iso(ts)
    hist = {"lifecyclestage": [_hist(st, ts, "CRM_UI" if i == 0 else "AUTOMATION_PLATFORM")
                               for i, (st, ts) in enumerate(rec.lifecycle.items())][::-1]}
    return _obj(rec.record_id, p, created, updated_s, rec.archived, rec.archived_at), hist


def deal_record(world, d: Deal) -> tuple[dict, dict]:
    owner = world.rep(d.owner_key)
    contact = world.person(d.contact_key)
    updated = max(d.updated_at, d.archived_at) if d.archived_at else d.updated_at
    closed = d.stage in ("closedwon", "closedlost")
    closedate = d.closed_at if closed else d.expected_close
    created, updated_s = iso(d.created_at), iso(updated)
    p = {
        "dealname": d.name, "amount": num(d.amount), "deal_currency_code": d.currency, "dealstage": d.stage,
        "pipeline": "default", "closedate": iso(closedate), "createdate": created,
        "hubspot_owner_id": owner.owner_id, "hs_deal_stage_probability": prob(d.probability),
        "hs_is_closed": "true" if closed else "false", "hs_is_closed_won": "true" if d.stage == "closedwon" else "false",
        "dealtype": d.deal_type,
        "hs_analytics_source": contact.channel if contact.source_kind == "marketing" else "OFFLINE",
        "lead_source": contact.channel if contact.source_kind == "sales" else None,
        "hs_lastmodifieddate": updated_s, "hs_object_id": d.hubspot_id,
        # Deals imported from Koban at the migration keep their Koban id, as migration tools do.
        "koban_id": d.koban_id,
    }
    entered: dict[str, object] = {}
    for st, ts in d.stage_history:
        entered[st] = ts
    for st, ts in entered.items():
        p[f"hs_v2_date_entered_{st}"] = iso(ts)
    neutral_to_prop = {"amount": "amount", "closedate": "closedate", "deal_type": "dealtype"}
    for f in d.hubspot_missing:
        p[neutral_to_prop[f]] = None

    def uid(rep_key):
        return f"userId:{world.rep(rep_key).user_id}"

    def owner_at(ts):
        o = d.owner_history[0][0]
        for k, t in d.owner_history:
            if t <= ts:
                o = k
        return o

    hist = {
        "dealstage": [_hist(st, ts, "CRM_UI", uid(owner_at(ts))) for st, ts in d.stage_history][::-1],
        "hs_deal_stage_probability": [_hist(prob(v), ts, "CRM_UI", uid(owner_at(ts)))
                                      for v, ts in d.probability_history][::-1],
        "amount": [_hist(num(v), ts, "CRM_UI", uid(owner_at(ts))) for v, ts in d.amount_history][::-1],
        "closedate": [_hist(iso(v), ts, "CRM_UI", uid(owner_at(ts))) for v, ts in d.closedate_history][::-1],
        "hubspot_owner_id": [_hist(world.rep(k).owner_id, ts, "CRM_UI") for k, ts in d.owner_history][::-1],
    }
    if "amount" in d.hubspot_missing:
        hist["amount"] = []
    if "closedate" in d.hubspot_missing:
        hist["closedate"] = []
    return _obj(d.hubspot_id, p, created, updated_s, d.archived, d.archived_at), hist


def engagement_record(world, a: Activity) -> dict:
    owner = world.rep(a.owner_key)
    updated = max(a.updated_at, a.archived_at) if a.archived_at else a.updated_at
    created, updated_s, stamp = iso(a.created_at), iso(updated), iso(a.timestamp)
    p = {"hs_timestamp": stamp, "hubspot_owner_id": owner.owner_id, "hs_createdate": created,
         "hs_lastmodifieddate": updated_s, "hs_object_id": a.hubspot_id, "koban_id": a.koban_id}
    if a.kind == "call":
        p.update({"hs_call_title": a.title, "hs_call_direction": a.direction, "hs_call_status": a.status,
                  "hs_call_duration": str(a.duration_ms) if a.duration_ms is not None else None,
                  "hs_activity_type": a.activity_type})
    elif a.kind == "meeting":
        end = a.timestamp + timedelta(milliseconds=a.duration_ms) if a.duration_ms is not None else None
        co = world.company(a.company_key) if a.company_key else None
        location = {"in_person": co.city if co else "Sur site", "video": "Microsoft Teams",
                    "phone": "Téléphone"}[a.meeting_type]
        p.update({"hs_meeting_title": a.title, "hs_meeting_start_time": stamp,
                  "hs_meeting_end_time": iso(end) if end else None,
                  "hs_meeting_location_type": MEETING_LOCATION_TYPE[a.meeting_type],
                  "hs_meeting_location": location, "hs_meeting_outcome": a.status,
                  "hs_activity_type": a.activity_type})
    elif a.kind == "email":
        p.update({"hs_email_subject": a.title, "hs_email_direction": a.direction, "hs_email_status": "SENT"})
    elif a.kind == "note":
        p.update({"hs_note_body": f"<p>{a.title}</p>"})
    else:
        p.update({"hs_task_subject": a.title, "hs_task_status": a.status, "hs_task_type": a.task_type,
                  "hs_task_priority": "MEDIUM"})
    return _obj(a.hubspot_id, p, created, updated_s, a.archived, a.archived_at)


# ------------------------------------------------------------------------------------------- store

def render_hubspot(world) -> HubSpotStore:
    store = HubSpotStore()
    objs = {t: {} for t in ("contacts", "companies", "deals", "calls", "meetings", "emails", "notes", "tasks")}
    hist = {t: {} for t in ("contacts", "companies", "deals")}
    assoc: dict[tuple[str, str], list[tuple[str, str, int]]] = {k: [] for k in ASSOC_TYPE}
    for rec in world.company_records:
        if rec.vendor == "hubspot":
            objs["companies"][rec.record_id], hist["companies"][rec.record_id] = company_record(world, rec)
    original_contact: dict[str, str] = {}
    for rec in world.contact_records:
        if rec.vendor != "hubspot":
            continue
        objs["contacts"][rec.record_id], hist["contacts"][rec.record_id] = contact_record(world, rec)
        if rec.company_record_id:
            assoc[("contacts", "companies")].append((rec.record_id, rec.company_record_id, 1))
        if rec.variant == "original":
            original_contact[rec.person_key] = rec.record_id
    original_company = {r.company_key: r.record_id for r in world.company_records
                        if r.vendor == "hubspot" and r.variant == "original"}
    for d in world.deals:
        objs["deals"][d.hubspot_id], hist["deals"][d.hubspot_id] = deal_record(world, d)
        assoc[("deals", "companies")].append((d.hubspot_id, d.hubspot_company_record_id, 5))
        assoc[("deals", "contacts")].append((d.hubspot_id, d.hubspot_contact_record_id, 3))
    for a in world.activities:
        obj = KIND_TO_OBJECT[a.kind]
        objs[obj][a.hubspot_id] = engagement_record(world, a)
        add_engagement_associations(assoc, obj, a, original_contact, original_company, world)
    store.objects = objs
    store.property_history = hist
    store.associations = assoc
    store.owners = render_owners(world)
    store.pipelines = {"deals": [render_pipeline(world)]}
    store.property_definitions = property_definitions(world)
    world.hubspot = store
    return store


def add_engagement_associations(assoc, obj, a: Activity, original_contact, original_company, world):
    if a.contact_key and a.contact_key in original_contact:
        assoc[(obj, "contacts")].append((a.hubspot_id, original_contact[a.contact_key], ASSOC_TYPE[(obj, "contacts")]))
    if a.company_key:
        assoc[(obj, "companies")].append((a.hubspot_id, original_company[a.company_key],
                                          ASSOC_TYPE[(obj, "companies")]))
    if a.deal_key:
        assoc[(obj, "deals")].append((a.hubspot_id, world.deal(a.deal_key).hubspot_id, ASSOC_TYPE[(obj, "deals")]))


def render_owners(world) -> list[dict]:
    team_id = {t.name: t.id for t in world.teams}
    out = []
    for r in world.reps:
        updated = r.created_at
        if len(r.team_history) > 1:
            updated = r.team_history[-1].start
        if r.deactivated_at:
            updated = max(updated, r.deactivated_at)
        out.append({
            "id": r.owner_id, "email": r.email, "type": "PERSON", "firstName": r.first_name, "lastName": r.last_name,
            "userId": r.user_id, "userIdIncludingInactive": r.user_id, "createdAt": iso(r.created_at),
            "updatedAt": iso(updated), "archived": not r.active,
            "teams": [{"id": team_id[r.team], "name": r.team, "primary": True}],
        })
    return out


def render_pipeline(world) -> dict:
    created = iso(world.start - timedelta(days=400))
    return {
        "id": "default", "label": "Pipeline commercial", "displayOrder": 0, "archived": False,
        "createdAt": created, "updatedAt": created,
        "stages": [{"id": sid, "label": label, "displayOrder": i, "archived": False, "createdAt": created,
                    "updatedAt": created, "writePermissions": "CRUD_ALL",
                    "metadata": {"isClosed": "true" if closed else "false", "probability": prob(p)}}
                   for i, (sid, label, p, closed) in enumerate(STAGES)],
    }


def _opts(pairs):
    return [{"label": label, "value": value, "displayOrder": i, "hidden": False}
            for i, (value, label) in enumerate(pairs)]


def property_definitions(world) -> dict[str, list[dict]]:
    from sandbox import frdata

    def d(name, label, type_="string", field="text", group="contactinformation", hs=True, options=None):
        return {"name": name, "label": label, "type": type_, "fieldType": field, "groupName": group,
                "hubspotDefined": hs, "options": options or []}

    lifecycle = _opts([("subscriber", "Abonné"), ("lead", "Lead"), ("marketingqualifiedlead", "MQL"),
                       ("salesqualifiedlead", "SQL"), ("opportunity", "Opportunité"), ("customer", "Client"),
                       ("evangelist", "Ambassadeur"), ("other", "Autre")])
    sources = _opts([(s, s.replace("_", " ").title()) for s in (
        "ORGANIC_SEARCH", "PAID_SEARCH", "EMAIL_MARKETING", "SOCIAL_MEDIA", "REFERRALS", "OTHER_CAMPAIGNS",
        "DIRECT_TRAFFIC", "OFFLINE", "PAID_SOCIAL", "AI_REFERRALS")])
    lead_source = _opts([(s, s.capitalize()) for s in frdata.SALES_LEAD_SOURCES])
    owners = _opts([(r.owner_id, f"{r.first_name} {r.last_name}") for r in world.reps])
    tier = _opts([("Or", "Or"), ("Argent", "Argent"), ("Bronze", "Bronze")])
    dt = ("datetime", "date")
    contacts = [
        d("email", "E-mail"), d("firstname", "Prénom"), d("lastname", "Nom"), d("phone", "Téléphone", field="phonenumber"),
        d("mobilephone", "Téléphone mobile", field="phonenumber"), d("jobtitle", "Intitulé du poste"),
        d("company", "Nom de l'entreprise"), d("associatedcompanyid", "ID de l'entreprise principale", "number", "number"),
        d("lifecyclestage", "Phase du cycle de vie", "enumeration", "radio", options=lifecycle),
        *[d(f"hs_lifecyclestage_{s}_date", f"Date de passage {s}", *dt) for s in frdata.LIFECYCLE_FUNNEL],
        d("hs_analytics_source", "Source d'origine", "enumeration", "select", "analyticsinformation", options=sources),
        d("lead_source", "Source du lead (commerciale)", "enumeration", "select", hs=False, options=lead_source),
        d("hs_analytics_num_page_views", "Nombre de pages vues", "number", "number", "analyticsinformation"),
        d("hs_email_open", "E-mails marketing ouverts", "number", "number", "emailinformation"),
        d("hs_email_click", "E-mails marketing cliqués", "number", "number", "emailinformation"),
        d("num_conversion_events", "Nombre de soumissions de formulaire", "number", "number", "conversioninformation"),
        d("hs_email_hard_bounce_reason_enum", "Motif de rebond", "enumeration", "select", "emailinformation",
          options=_opts([("UNKNOWN_USER", "Utilisateur inconnu"), ("MAILBOX_FULL", "Boîte pleine"),
                         ("OTHER", "Autre")])),
        d("hubspot_owner_id", "Propriétaire du contact", "enumeration", "select", options=owners),
        d("createdate", "Date de création", *dt), d("lastmodifieddate", "Date de dernière modification", *dt),
        d("hs_object_id", "ID d'enregistrement", "number", "number"),
    ]
    g = "companyinformation"
    companies = [
        d("name", "Nom", group=g), d("domain", "Nom de domaine", group=g), d("phone", "Téléphone", group=g,
                                                                            field="phonenumber"),
        d("address", "Adresse", group=g), d("zip", "Code postal", group=g), d("city", "Ville", group=g),
        d("country", "Pays", group=g),
        d("industry", "Secteur d'activité", "enumeration", "select", g,
          options=_opts(sorted({(x[2], x[2].replace("_", " ").title()) for x in frdata.NAF}))),
        d("numberofemployees", "Nombre d'employés", "number", "number", g),
        d("lifecyclestage", "Phase du cycle de vie", "enumeration", "radio", g, options=lifecycle),
        *[d(f"hs_lifecyclestage_{s}_date", f"Date de passage {s}", *dt, group=g) for s in frdata.LIFECYCLE_FUNNEL],
        d("type", "Type de compte", "enumeration", "select", g,
          options=_opts([("DIRECT", "Client direct"), ("RESELLER", "Revendeur"), ("PARTNER", "Partenaire")])),
        d("hubspot_owner_id", "Propriétaire de l'entreprise", "enumeration", "select", g, options=owners),
        d("tier", "Segment (tier)", "enumeration", "select", g, hs=False, options=tier),
        d("siren", "SIREN", group=g, hs=False),
        d("createdate", "Date de création", *dt, group=g),
        d("hs_lastmodifieddate", "Date de dernière modification", *dt, group=g),
        d("hs_object_id", "ID d'enregistrement", "number", "number", g),
    ]
    g = "dealinformation"
    deals = [
        d("dealname", "Nom de la transaction", group=g), d("amount", "Montant", "number", "number", g),
        d("deal_currency_code", "Devise", "enumeration", "select", g,
          options=_opts([("EUR", "Euro"), ("CHF", "Franc suisse"), ("USD", "Dollar US")])),
        d("dealstage", "Phase de la transaction", "enumeration", "radio", g,
          options=_opts([(s[0], STAGE_LABEL[s[0]]) for s in STAGES])),
        d("pipeline", "Pipeline", "enumeration", "select", g, options=_opts([("default", "Pipeline commercial")])),
        d("closedate", "Date de fermeture", *dt, group=g), d("createdate", "Date de création", *dt, group=g),
        d("hubspot_owner_id", "Propriétaire de la transaction", "enumeration", "select", g, options=owners),
        d("hs_deal_stage_probability", "Probabilité de la phase", "number", "number", g),
        d("hs_is_closed", "Est fermée", "bool", "booleancheckbox", g,
          options=_opts([("true", "Oui"), ("false", "Non")])),
        d("hs_is_closed_won", "Est gagnée", "bool", "booleancheckbox", g,
          options=_opts([("true", "Oui"), ("false", "Non")])),
        d("dealtype", "Type de transaction", "enumeration", "radio", g,
          options=_opts([("newbusiness", "Nouvelle affaire"), ("existingbusiness", "Affaire existante")])),
        d("hs_analytics_source", "Source d'origine", "enumeration", "select", g, options=sources),
        d("lead_source", "Source du lead (commerciale)", "enumeration", "select", g, hs=False, options=lead_source),
        d("koban_id", "ID Koban (migration)", group=g, hs=False),
        d("hs_lastmodifieddate", "Date de dernière modification", *dt, group=g),
        d("hs_object_id", "ID d'enregistrement", "number", "number", g),
    ]
    g = "engagement"
    common = [d("hs_timestamp", "Horodatage", *dt, group=g),
              d("hubspot_owner_id", "Propriétaire de l'activité", "enumeration", "select", g, options=owners),
              d("hs_createdate", "Date de création", *dt, group=g),
              d("koban_id", "ID Koban (migration)", group=g, hs=False),
              d("hs_lastmodifieddate", "Date de dernière modification", *dt, group=g),
              d("hs_object_id", "ID d'enregistrement", "number", "number", g)]
    act_type = _opts([("Découverte", "Découverte"), ("Demo", "Démo"), ("Suivi", "Suivi"),
                      ("Négociation", "Négociation")])
    calls = common + [
        d("hs_call_title", "Titre", group=g),
        d("hs_call_direction", "Direction", "enumeration", "select", g,
          options=_opts([("INBOUND", "Entrant"), ("OUTBOUND", "Sortant")])),
        d("hs_call_status", "Statut", "enumeration", "select", g,
          options=_opts([("COMPLETED", "Terminé"), ("NO_ANSWER", "Pas de réponse"), ("BUSY", "Occupé")])),
        d("hs_call_duration", "Durée (ms)", "number", "number", g),
        d("hs_activity_type", "Type d'appel et de réunion", "enumeration", "select", g, options=act_type),
    ]
    meetings = common + [
        d("hs_meeting_title", "Titre", group=g), d("hs_meeting_start_time", "Début", *dt, group=g),
        d("hs_meeting_end_time", "Fin", *dt, group=g),
        d("hs_meeting_location_type", "Type de lieu", "enumeration", "select", g,
          options=_opts([("IN_PERSON", "En personne"), ("PHONE", "Téléphone"), ("VIDEO", "Visioconférence")])),
        d("hs_meeting_location", "Lieu", group=g),
        d("hs_meeting_outcome", "Résultat", "enumeration", "select", g,
          options=_opts([("SCHEDULED", "Planifié"), ("COMPLETED", "Terminé"), ("RESCHEDULED", "Reprogrammé"),
                         ("NO_SHOW", "Absence"), ("CANCELED", "Annulé")])),
        d("hs_activity_type", "Type d'appel et de réunion", "enumeration", "select", g, options=act_type),
    ]
    emails = common + [
        d("hs_email_subject", "Objet", group=g),
        d("hs_email_direction", "Direction", "enumeration", "select", g,
          options=_opts([("EMAIL", "E-mail envoyé"), ("INCOMING_EMAIL", "E-mail reçu"),
                         ("FORWARDED_EMAIL", "E-mail transféré")])),
        d("hs_email_status", "Statut", "enumeration", "select", g, options=_opts([("SENT", "Envoyé")])),
    ]
    notes = common + [d("hs_note_body", "Corps de la note", field="html", group=g)]
    tasks = common + [
        d("hs_task_subject", "Objet", group=g),
        d("hs_task_status", "Statut", "enumeration", "select", g,
          options=_opts([("NOT_STARTED", "Non commencée"), ("IN_PROGRESS", "En cours"), ("WAITING", "En attente"),
                         ("COMPLETED", "Terminée"), ("DEFERRED", "Reportée")])),
        d("hs_task_type", "Type", "enumeration", "select", g,
          options=_opts([("CALL", "Appel"), ("EMAIL", "E-mail"), ("TODO", "À faire")])),
        d("hs_task_priority", "Priorité", "enumeration", "select", g,
          options=_opts([("LOW", "Basse"), ("MEDIUM", "Moyenne"), ("HIGH", "Haute")])),
    ]
    return {"contacts": contacts, "companies": companies, "deals": deals, "calls": calls, "meetings": meetings,
            "emails": emails, "notes": notes, "tasks": tasks}
