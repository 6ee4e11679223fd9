"""The source systems crm-etl syncs, with their schedules and freshness expectations (DESIGN.md section 8)."""

import importlib
import os
from datetime import timedelta

from .ingest import SourceSpec


def _registry_kwargs(wh) -> dict:
    """The CRM companies to enrich, and what the warehouse already holds (only missing or stale ones are asked)."""
    wanted = []
    if wh.table_exists("staging", "companies"):
        wanted = wh.query(
            "select distinct siren, siret, vat_number as vat, name, postcode from staging.companies "
            "where not is_deleted and (siren is not null or siret is not null or vat_number is not null "
            "or (name is not null and postcode is not null))"
        )
        wanted = [{k: v for k, v in row.items() if v is not None} for row in wanted]
    cached: dict = {}
    for table, key in (("lookups", "lookup_key"), ("stock_companies", "siren")):
        if wh.table_exists("raw_registry", table):
            for row in wh.query(f"select {key} as k, max(fetched_at) as f from raw_registry.{table} group by {key}"):
                if row["k"] and (row["k"] not in cached or row["f"] > cached[row["k"]]):
                    cached[row["k"]] = row["f"]
    return {"wanted": wanted, "cached": cached}


def _inputs_kwargs(wh) -> dict:
    """Rep emails the CRMs know, so a cost row for an unknown rep fails its file with the line."""
    if not wh.table_exists("staging", "owners"):
        return {}
    return {"known_reps": [r["email"] for r in wh.query("select distinct email from staging.owners where email is not null")]}


def _lazy(module: str, attr: str):
    def make(**kwargs):
        return getattr(importlib.import_module(module), attr)(**kwargs)

    make.__name__ = attr
    return make


_HUBSPOT_ENGAGEMENTS = ("calls", "meetings", "emails", "notes", "tasks")
_HUBSPOT_TABLES = {
    **{f"{o}_property_history": [o] for o in ("contacts", "companies", "deals")},
    "associations_contact_company": ["contacts"],
    "associations_deal_company": ["deals"],
    "associations_deal_contact": ["deals"],
    **{f"associations_engagement_{t}": list(_HUBSPOT_ENGAGEMENTS) for t in ("company", "contact", "deal")},
}

ALL_SOURCES: dict[str, SourceSpec] = {
    "hubspot": SourceSpec(
        name="hubspot",
        make_source=_lazy("connectors.hubspot", "hubspot_source"),
        definition_kwargs={"access_token": "definition-time-placeholder", "discover_properties": False},
        cron="0 * * * *",  # CRM hourly
        fail_window=timedelta(hours=3),
        description="HubSpot CRM: contacts, companies, deals, owners, pipelines, activities, history.",
        table_resources=_HUBSPOT_TABLES,
    ),
    "koban": SourceSpec(
        name="koban",
        make_source=_lazy("connectors.koban", "koban_source"),
        definition_kwargs={"api_key": "definition-time-placeholder", "user_key": "definition-time-placeholder"},
        cron="0 5 * * *",  # daily, before the working day
        fail_window=timedelta(hours=72),
        description="Koban CRM: accounts, contacts, leads, deals, actions, invoices, users, deal processes.",
        # hard-deleted records found by any object resource's reconciliation
        table_resources={"gone_records": ["accounts", "contacts", "leads", "deals", "actions", "invoices"]},
    ),
    "stripe": SourceSpec(
        name="stripe",
        make_source=_lazy("connectors.stripe", "stripe_source"),
        definition_kwargs={"secret_key": "definition-time-placeholder"},
        cron="30 * * * *",  # hourly through /v1/events; open and recent invoices re-listed daily inside these runs
        fail_window=timedelta(hours=50),
        description="Stripe billing: customers, invoices and lines, subscriptions, credit notes (events-driven).",
    ),
    "registry": SourceSpec(
        name="registry",
        make_source=_lazy("connectors.registry", "registry_source"),
        cron="0 3 * * 1",  # weekly; look-ups are cached with their fetch date and refreshed after 30 days
        fail_window=timedelta(days=14),
        description="French company registry (Recherche d'entreprises API; Sirene stock files when configured).",
        runtime_kwargs=_registry_kwargs,
        upstream=(("staging", "companies"),),
    ),
    "inputs": SourceSpec(
        name="inputs",
        make_source=_lazy("connectors.inputs", "inputs_source"),
        definition_kwargs={"folder": "."},
        cron="0 6 * * *",  # daily; the inputs sensor also runs it when a file in the folder changes
        fail_window=timedelta(days=62),
        description="Cost inputs: marketing spend and rep loaded cost files (CSV / Excel) from a folder.",
        runtime_kwargs=_inputs_kwargs,
        upstream=(("staging", "owners"),),
    ),
}


def enabled_sources() -> list[SourceSpec]:
    """CRM_ETL_SOURCES=hubspot,stripe,... selects sources; default: all that are implemented."""
    wanted = os.environ.get("CRM_ETL_SOURCES")
    names = [n.strip() for n in wanted.split(",") if n.strip()] if wanted else list(ALL_SOURCES)
    unknown = [n for n in names if n not in ALL_SOURCES]
    if unknown:
        raise ValueError(f"CRM_ETL_SOURCES names unknown source(s) {unknown}; known: {sorted(ALL_SOURCES)}")
    return [ALL_SOURCES[n] for n in names]
