"""The sandbox world's neutral model: plain dataclasses saying what really happened.

Entities (Rep, Company, Person, Deal, Activity) hold the truth. CRM *records* (CompanyRecord, ContactRecord) hold
what a CRM shows for an entity (HubSpot or Koban, possibly several records per entity, with dirt and deliberate
blanks). Deals and activities have one neutral object each, carrying the CRM ids they have in each vendor
(`hubspot_id`, `koban_id`) and the fields blanked on purpose in HubSpot (`hubspot_missing`).
All datetimes are timezone-aware UTC; dates are `datetime.date`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

# Deal pipeline: (stage id, French label, probability, is_closed), in display order.
STAGES: list[tuple[str, str, float, bool]] = [
    ("appointmentscheduled", "Rendez-vous planifié", 0.2, False),
    ("qualifiedtobuy", "Qualifié", 0.4, False),
    ("presentationscheduled", "Présentation", 0.6, False),
    ("decisionmakerboughtin", "Décideur convaincu", 0.8, False),
    ("contractsent", "Contrat envoyé", 0.9, False),
    ("closedwon", "Gagné", 1.0, True),
    ("closedlost", "Perdu", 0.0, True),
]
OPEN_STAGES = [s[0] for s in STAGES[:5]]
STAGE_PROBABILITY = {s[0]: s[2] for s in STAGES}
STAGE_LABEL = {s[0]: s[1] for s in STAGES}

# Fixed conversion rates used for `Deal.amount_eur` (1 unit of the currency = rate EUR).
FX_TO_EUR = {"EUR": Decimal("1"), "CHF": Decimal("1.06"), "USD": Decimal("0.92")}

TEAM_GRANDS_COMPTES = "Équipe Grands Comptes"
TEAM_PME = "Équipe PME"

# Mandatory fields per CRM object (neutral name -> HubSpot property). The generator blanks some on purpose
# (recorded in Truth.missing_fields); the sales model file's mandatory-field rules should list the same ones.
MANDATORY_FIELDS = {
    "contacts": {"email": "email", "phone": "phone", "job_title": "jobtitle", "company_name": "company"},
    "companies": {"domain": "domain", "phone": "phone", "city": "city", "industry": "industry",
                  "headcount": "numberofemployees", "siren": "siren"},
    "deals": {"amount": "amount", "closedate": "closedate", "deal_type": "dealtype"},
}


@dataclass
class Seller:
    """The fictional company whose CRM this is."""
    name: str
    domain: str


@dataclass
class Team:
    id: str  # HubSpot team id (numeric string)
    name: str


@dataclass
class TeamSpell:
    team: str  # team name
    start: datetime
    end: datetime | None  # None = still in that team


@dataclass
class CostSpell:
    hourly_cost: Decimal  # EUR, loaded
    valid_from: date
    valid_to: date | None  # inclusive last day; None = open


@dataclass
class Rep:
    key: str  # "rep-01"
    owner_id: str  # HubSpot owner id (hubspot_owner_id values)
    user_id: int  # HubSpot user id
    koban_id: str  # Koban user Guid
    first_name: str
    last_name: str
    email: str  # @seller domain
    team: str  # current team name
    team_history: list[TeamSpell]
    hourly_cost: Decimal  # current loaded hourly cost (EUR)
    cost_history: list[CostSpell]
    meetings_factor: float  # >1: holds more meetings per deal than the average rep
    preferred_tier: str  # "Or" | "Argent" | "Bronze"
    skip_rate: float  # probability a record they own misses some mandatory field
    win_skill: float  # additive effect on win probability
    created_at: datetime
    active: bool = True
    deactivated_at: datetime | None = None

    def team_at(self, ts: datetime) -> str:
        """The team the rep belonged to at `ts`."""
        for spell in self.team_history:
            if spell.start <= ts and (spell.end is None or ts < spell.end):
                return spell.team
        return self.team_history[0].team if ts < self.team_history[0].start else self.team


@dataclass
class Company:
    """A real company (entity). CRM views of it are CompanyRecord objects."""
    key: str  # "co-000001"
    legal_name: str  # registry denomination (mixed case, no legal form)
    trade_name: str  # the name people use
    legal_form: str  # SAS, SARL, SA, SASU, EURL, SCI
    legal_form_code: str  # INSEE catégorie juridique
    siren: str
    siret: str  # head office
    vat: str
    naf_code: str
    naf_label: str
    industry: str  # HubSpot industry enum value
    headcount_band: str  # INSEE tranche d'effectif code
    headcount: int
    category: str  # PME | ETI | GE
    creation_date: date
    active: bool
    closure_date: date | None
    address: str
    postcode: str
    city: str
    domain: str
    phone: str  # French national format "01 23 45 67 89"
    tier: str | None  # Or | Argent | Bronze | None
    account_type: str  # direct | reseller | partner
    owner_key: str
    created_at: datetime  # entered the CRM
    lifecycle: dict[str, datetime] = field(default_factory=dict)  # lead/opportunity/customer -> date reached
    in_koban: bool = False


@dataclass
class Person:
    """A real person (entity). CRM views of them are ContactRecord objects."""
    key: str  # "p-0000001"
    first_name: str
    last_name: str
    email: str  # their work email (a shared role mailbox for shared_mailbox people)
    phone: str | None  # direct line, French national format
    mobile: str | None  # "06 12 34 56 78"
    job_title: str
    company_key: str
    owner_key: str
    created_at: datetime
    channel: str  # PAID_SEARCH ... OTHER_CAMPAIGNS | prospection | recommandation | client existant | unknown
    source_kind: str  # marketing | sales | unknown
    lifecycle: dict[str, datetime]  # true funnel: stage -> date reached, in funnel order
    page_views: int
    email_opens: int
    email_clicks: int
    form_submissions: int
    left_company: bool = False
    left_reason: str | None = None  # hard_bounce | moved
    left_at: datetime | None = None
    shared_mailbox: bool = False


@dataclass
class CompanyRecord:
    """A company as one CRM shows it (field values as stored there; None = empty)."""
    vendor: str  # hubspot | koban
    record_id: str
    company_key: str
    variant: str  # original | duplicate | koban
    name: str
    domain: str | None
    phone: str | None
    address: str | None
    postcode: str | None
    city: str | None
    industry: str | None
    headcount: int | None
    siren: str | None
    tier: str | None
    account_type: str
    owner_key: str
    created_at: datetime
    updated_at: datetime
    lifecycle: dict[str, datetime]
    missing: list[str] = field(default_factory=list)  # neutral mandatory field names blanked on purpose
    archived: bool = False
    archived_at: datetime | None = None


@dataclass
class ContactRecord:
    """A contact as one CRM shows it (a person may have 2-3 records: duplicates)."""
    vendor: str  # hubspot | koban
    record_id: str
    person_key: str
    variant: str  # original | duplicate | koban
    dirt: list[str]  # variations applied: case, accents, typo, swapped, alias, gmail, phone_format
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    mobile: str | None
    job_title: str | None
    company_name: str | None
    company_record_id: str | None  # the CRM company record it is attached to (same vendor)
    owner_key: str
    created_at: datetime
    updated_at: datetime
    source: str  # HubSpot hs_analytics_source value
    lead_source: str | None  # custom property
    lifecycle: dict[str, datetime]  # stages as this record shows them
    page_views: int
    email_opens: int
    email_clicks: int
    form_submissions: int
    bounce_reason: str | None
    missing: list[str] = field(default_factory=list)
    archived: bool = False
    archived_at: datetime | None = None
    malformed: str | None = None  # property holding garbage on purpose (quarantine tests)


@dataclass
class Deal:
    key: str  # "d-000001"
    name: str
    company_key: str
    contact_key: str  # primary contact (person key)
    owner_key: str  # current owner
    amount: Decimal  # final amount in `currency`
    currency: str  # EUR | CHF | USD
    amount_eur: Decimal
    deal_type: str  # newbusiness | existingbusiness
    channel: str  # the primary contact's channel
    created_at: datetime
    expected_close: datetime  # current expected close date (HubSpot closedate while open)
    closed_at: datetime | None
    outcome: str  # won | lost | open
    stage: str  # current stage id
    stage_history: list[tuple[str, datetime]]  # oldest first
    amount_history: list[tuple[Decimal, datetime]]
    probability_history: list[tuple[float, datetime]]
    closedate_history: list[tuple[datetime, datetime]]  # (value, when set)
    owner_history: list[tuple[str, datetime]]  # (rep key, when set)
    flags: set[str] = field(default_factory=set)  # stale, reopened, moved_back, probability_drop, won_twice
    hubspot_id: str | None = None
    hubspot_company_record_id: str | None = None
    hubspot_contact_record_id: str | None = None
    koban_id: str | None = None
    hubspot_missing: list[str] = field(default_factory=list)  # neutral mandatory field names blank in HubSpot
    archived: bool = False
    archived_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def probability(self) -> float:
        return self.probability_history[-1][0]


@dataclass
class Activity:
    key: str  # "a-0000001"
    kind: str  # call | meeting | email | note | task
    timestamp: datetime
    duration_ms: int | None  # calls and meetings; None when not logged (~8%); always None for email/note/task
    owner_key: str
    contact_key: str | None
    company_key: str | None
    deal_key: str | None
    title: str
    meeting_type: str | None = None  # in_person | phone | video
    activity_type: str | None = None  # Découverte | Demo | Suivi | Négociation (calls and meetings)
    direction: str | None = None  # calls: INBOUND/OUTBOUND; emails: EMAIL/INCOMING_EMAIL
    status: str | None = None  # calls: COMPLETED/NO_ANSWER/BUSY; tasks: COMPLETED/NOT_STARTED; meetings: outcome
    task_type: str | None = None  # CALL | EMAIL | TODO
    created_at: datetime | None = None
    updated_at: datetime | None = None
    hubspot_id: str | None = None
    koban_id: str | None = None
    archived: bool = False
    archived_at: datetime | None = None


@dataclass
class StripeCustomer:
    id: str  # cus_...
    company_key: str | None  # None = not in the CRM at all
    name: str
    email: str | None
    link: str  # metadata | tax_id | email_domain | none : what ties it to the CRM company
    crm_company_id: str | None  # metadata crm_company_id (HubSpot company record id) when link == metadata
    vat: str | None  # tax id (eu_vat) when present
    currency: str  # lower-case iso
    address: str
    postcode: str
    city: str
    created_at: datetime


@dataclass
class InvoiceLine:
    id: str  # il_...
    description: str
    amount: int  # minor units, excl. tax
    quantity: int
    period_start: datetime
    period_end: datetime
    subscription_id: str | None


@dataclass
class StripeInvoice:
    id: str  # in_...
    number: str
    customer_id: str
    subscription_id: str | None
    deal_key: str | None
    status: str  # draft | open | paid | void | uncollectible
    currency: str  # lower-case iso (eur, chf, usd)
    lines: list[InvoiceLine]
    subtotal: int  # minor units
    tax: int
    total: int
    amount_paid: int
    amount_due: int
    amount_remaining: int
    created_at: datetime
    finalized_at: datetime | None
    due_date: datetime | None
    paid_at: datetime | None
    voided_at: datetime | None
    marked_uncollectible_at: datetime | None


@dataclass
class StripeSubscription:
    id: str  # sub_...
    customer_id: str
    deal_key: str | None
    status: str  # active | canceled
    currency: str
    unit_amount: int  # minor units per month, excl. tax
    product_name: str
    created_at: datetime
    start_date: datetime
    current_period_start: datetime
    current_period_end: datetime
    canceled_at: datetime | None
    ended_at: datetime | None


@dataclass
class StripeCreditNote:
    id: str  # cn_...
    number: str
    invoice_id: str
    customer_id: str
    amount: int  # minor units (incl. tax)
    currency: str
    reason: str  # duplicate | order_change | product_unsatisfactory
    created_at: datetime


@dataclass
class Billing:
    customers: list[StripeCustomer] = field(default_factory=list)
    invoices: list[StripeInvoice] = field(default_factory=list)
    subscriptions: list[StripeSubscription] = field(default_factory=list)
    credit_notes: list[StripeCreditNote] = field(default_factory=list)


@dataclass
class RegistryEntity:
    """The registry's (Sirene / Recherche d'entreprises) view of a legal unit."""
    siren: str
    siret: str  # head office
    legal_name: str  # upper-case denomination, may differ from the CRM name
    naf_code: str
    naf_label: str
    headcount_band: str
    legal_form_code: str
    category: str  # PME | ETI | GE
    creation_date: date
    etat: str  # A (active) | C (ceased)
    closure_date: date | None
    address: str
    postcode: str
    city: str
    vat: str
    company_key: str | None  # None = noise entity, not a CRM company
    updated_at: datetime


@dataclass
class MarketingSpend:
    month: date  # first day of the month
    channel: str  # HubSpot source channel (PAID_SEARCH, ...)
    campaign: str
    amount_eur: Decimal


@dataclass
class RepCost:
    rep_email: str
    hourly_cost: Decimal
    valid_from: date
    valid_to: date | None  # inclusive; None = open


@dataclass
class Inputs:
    marketing_spend: list[MarketingSpend] = field(default_factory=list)
    rep_costs: list[RepCost] = field(default_factory=list)


@dataclass
class DealTruth:
    outcome: str  # won | lost | open
    closed_at: datetime | None
    owner_key: str  # owner at close (or now, if open)
    team: str  # that owner's team at close (or now)
    tier: str  # company tier or "unknown"
    amount_eur: Decimal
    created_at: datetime


@dataclass
class Truth:
    """What really is, for tests and benchmarks.

    contact_person: (vendor, record id) -> person key, for every CRM contact record (hubspot, koban).
    company_entity: (vendor, id) -> company key (or None) for every CRM company record, every Stripe customer
        (vendor "stripe", customer id) and every registry entity (vendor "registry", SIREN).
    deals: deal key -> DealTruth; deal_records: (vendor, record id) -> deal key.
    missing_fields: (vendor, object type, record id) -> {field: owner key}; hubspot fields use HubSpot property
        names, koban fields the neutral names of MANDATORY_FIELDS.
    duplicate_pairs: sorted pairs of (vendor, object type, record id) that are the same entity (contacts and
        companies, within and across CRMs).
    person_funnel: person key -> {stage: date reached}.
    malformed: list of (vendor, object type, record id, property).
    """
    contact_person: dict[tuple[str, str], str] = field(default_factory=dict)
    company_entity: dict[tuple[str, str], str | None] = field(default_factory=dict)
    deals: dict[str, DealTruth] = field(default_factory=dict)
    deal_records: dict[tuple[str, str], str] = field(default_factory=dict)
    missing_fields: dict[tuple[str, str, str], dict[str, str]] = field(default_factory=dict)
    duplicate_pairs: set[tuple[tuple[str, str, str], tuple[str, str, str]]] = field(default_factory=set)
    person_funnel: dict[str, dict[str, datetime]] = field(default_factory=dict)
    malformed: list[tuple[str, str, str, str]] = field(default_factory=list)


@dataclass
class Change:
    vendor: str  # hubspot
    object_type: str  # contacts | companies | deals | calls | meetings | emails | notes | tasks
    id: str  # vendor record id
    kind: str  # created | updated | archived
    properties: tuple[str, ...] = ()  # properties changed (updated)


@dataclass
class ChangeSet:
    step: int
    start: datetime  # previous as_of
    end: datetime  # new as_of
    changes: list[Change] = field(default_factory=list)

    def ids(self, object_type: str, kind: str | None = None) -> set[str]:
        return {c.id for c in self.changes if c.object_type == object_type and (kind is None or c.kind == kind)}
