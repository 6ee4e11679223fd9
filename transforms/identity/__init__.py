"""Entity resolution for contacts and companies: normalise, link (deterministic rules, then
Splink), cluster, crosswalk, golden records. Pure Python/SQL over DuckDB; no Dagster.

    from transforms.identity import resolve_contacts
    res = resolve_contacts(df)            # or a table name / DuckDB relation
    res.crosswalk_df(); res.golden_df()   # or query res.crosswalk / res.golden in res.con
"""
from .companies import resolve_companies, update_companies
from .config import CompaniesConfig, ContactsConfig, MatchConfig, SurvivorshipConfig
from .contacts import resolve_contacts, update_contacts
from .core import Resolution

__all__ = [
    "resolve_contacts", "update_contacts", "resolve_companies", "update_companies", "Resolution",
    "ContactsConfig", "CompaniesConfig", "MatchConfig", "SurvivorshipConfig",
]
