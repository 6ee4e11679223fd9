"""Koban constants: controllers, their dlt tables, paging and the default (conservative) pace."""
from __future__ import annotations

from typing import Dict, Tuple

DEFAULT_BASE_URL = "https://app-koban.com/api/v1"

# dlt table -> Koban controller paged with GetUpdated
OBJECTS: Dict[str, str] = {
    "accounts": "ncThird",
    "contacts": "ncContact",
    "leads": "ncLead",
    "deals": "ncDeal",
    "actions": "ncAction",
    "invoices": "ncInvoice",
}
ALL_OBJECTS: Tuple[str, ...] = tuple(OBJECTS)

# Koban publishes no rate limit: stay gentle by default (configurable).
DEFAULT_RATE_LIMIT_CALLS = 3
DEFAULT_RATE_LIMIT_PERIOD = 1.0
PAGE_LENGTH = 100  # `l` of GetUpdated
OVERLAP_SECONDS = 300  # incremental runs re-ask this much before the cursor (`updated` has second resolution)
RECONCILE_EVERY_DAYS = 7  # hard-delete reconciliation: a full GetUpdated listing this often (0 = never)
# A reconciliation that would flag more than this share of an object's loaded records as hard-deleted marks none:
# a listing that shrank that much is far likelier an API user who lost visibility than a purge (1 = no guard).
RECONCILE_MAX_GONE_SHARE = 0.5
MAX_PASSES = 3  # offset paging re-passes when records moved during paging (see helpers.KobanClient.get_updated)

# Date fields sent as .NET JSON dates ("/Date(ms)/"), parsed to timestamps; the two record stamps are renamed.
CREATED_FIELD = "CreationDate"
UPDATED_FIELD = "LastUpdateDate"
DATE_FIELDS: Tuple[str, ...] = ("DPrev", "DResult", "DStart", "DEnd", "DTerm", "InvoiceDate", "DueDate")
# .NET's DateTime.MinValue, Koban's "no date"
DOTNET_MIN_MS = -62135596800000
