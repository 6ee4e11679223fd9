"""The source systems crm-etl syncs, with their schedules and freshness expectations (DESIGN.md section 8)."""

import importlib
import os
from datetime import timedelta

from .ingest import SourceSpec


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
    ),
    "stripe": SourceSpec(
        name="stripe",
        make_source=_lazy("connectors.stripe", "stripe_source"),
        definition_kwargs={"secret_key": "definition-time-placeholder"},
        cron="30 * * * *",  # hourly through /v1/events; open and recent invoices re-listed daily inside these runs
        fail_window=timedelta(hours=50),
        description="Stripe billing: customers, invoices and lines, subscriptions, credit notes (events-driven).",
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
