"""HubSpot constants: objects, curated property lists, history properties, API paths per version.

Property lists are the HubSpot-defined properties the project's marts need (lifecycle, source, owner, stage,
amounts, activity timing). They are intersected with the portal's property definitions at run time, so a
name the portal lacks is never requested. Custom properties are opt-in (`custom_properties` config).
"""
from __future__ import annotations

from typing import Dict, List, Tuple

DEFAULT_BASE_URL = "https://api.hubapi.com"
DEFAULT_API_VERSION = "2026-03"  # date-based version (DBV); "v3" selects the legacy /crm/v3 paths
LEGACY_API_VERSION = "v3"

CRM_OBJECTS: Tuple[str, ...] = ("contacts", "companies", "deals")
ENGAGEMENT_OBJECTS: Tuple[str, ...] = ("calls", "meetings", "emails", "notes", "tasks")
ALL_OBJECTS: Tuple[str, ...] = CRM_OBJECTS + ENGAGEMENT_OBJECTS

SINGULAR = {
    "contacts": "contact",
    "companies": "company",
    "deals": "deal",
    "calls": "call",
    "meetings": "meeting",
    "emails": "email",
    "notes": "note",
    "tasks": "task",
}

# The search cursor: contacts use `lastmodifieddate`, every other object `hs_lastmodifieddate`
# (using the wrong one silently loses data: airbyte PR #85019).
def last_modified_property(object_type: str) -> str:
    return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"


def created_property(object_type: str) -> str:
    return "createdate" if object_type in CRM_OBJECTS else "hs_createdate"


_ENGAGEMENT_COMMON = ["hs_object_id", "hs_createdate", "hs_lastmodifieddate", "hs_timestamp", "hubspot_owner_id",
                      "hs_activity_type"]

DEFAULT_PROPERTIES: Dict[str, List[str]] = {
    "contacts": [
        "hs_object_id", "createdate", "lastmodifieddate", "email", "firstname", "lastname", "phone", "mobilephone",
        "jobtitle", "company", "associatedcompanyid", "hubspot_owner_id", "lifecyclestage", "hs_lead_status",
        "hs_analytics_source", "hs_analytics_source_data_1", "hs_analytics_source_data_2", "hs_latest_source",
        "hs_lifecyclestage_subscriber_date", "hs_lifecyclestage_lead_date",
        "hs_lifecyclestage_marketingqualifiedlead_date", "hs_lifecyclestage_salesqualifiedlead_date",
        "hs_lifecyclestage_opportunity_date", "hs_lifecyclestage_customer_date",
        "hs_lifecyclestage_evangelist_date", "hs_lifecyclestage_other_date",
        "hs_analytics_num_page_views", "hs_analytics_num_visits", "hs_email_open", "hs_email_click",
        "hs_email_delivered", "num_conversion_events", "num_unique_conversion_events",
        "hs_email_hard_bounce_reason_enum", "hs_email_bounce", "hs_email_bad_address", "hs_email_domain",
        "hs_email_optout", "hs_merged_object_ids", "address", "city", "zip", "country",
    ],
    "companies": [
        "hs_object_id", "createdate", "hs_lastmodifieddate", "name", "domain", "website", "phone", "address",
        "city", "zip", "country", "industry", "numberofemployees", "annualrevenue", "type", "lifecyclestage",
        "hubspot_owner_id", "hs_analytics_source", "hs_merged_object_ids", "hs_num_child_companies",
        "hs_parent_company_id", "first_deal_created_date", "hs_lifecyclestage_customer_date",
    ],
    "deals": [
        "hs_object_id", "createdate", "hs_lastmodifieddate", "dealname", "amount", "deal_currency_code",
        "amount_in_home_currency", "dealstage", "pipeline", "closedate", "hubspot_owner_id",
        "hs_deal_stage_probability", "hs_forecast_probability", "dealtype", "hs_analytics_source",
        "hs_is_closed", "hs_is_closed_won", "hs_closed_amount", "hs_projected_amount", "closed_lost_reason",
        "closed_won_reason", "hs_merged_object_ids", "description",
    ],
    "calls": _ENGAGEMENT_COMMON + [
        "hs_call_title", "hs_call_direction", "hs_call_disposition", "hs_call_status", "hs_call_duration",
    ],
    "meetings": _ENGAGEMENT_COMMON + [
        "hs_meeting_title", "hs_meeting_start_time", "hs_meeting_end_time", "hs_meeting_outcome",
        "hs_meeting_location", "hs_meeting_location_type",
    ],
    "emails": _ENGAGEMENT_COMMON + ["hs_email_subject", "hs_email_direction", "hs_email_status"],
    "notes": _ENGAGEMENT_COMMON + ["hs_note_body"],
    "tasks": _ENGAGEMENT_COMMON + [
        "hs_task_subject", "hs_task_status", "hs_task_priority", "hs_task_type", "hs_task_completion_date",
    ],
}

# Stage-calculated properties (hs_v2_date_entered_<stage> ...) are requested when the portal defines them.
DYNAMIC_PROPERTY_PREFIXES: Dict[str, Tuple[str, ...]] = {
    "contacts": ("hs_v2_date_entered_", "hs_v2_date_exited_"),
    "companies": ("hs_v2_date_entered_", "hs_v2_date_exited_"),
    "deals": ("hs_v2_date_entered_", "hs_v2_date_exited_"),
}

DEFAULT_HISTORY_PROPERTIES: Dict[str, List[str]] = {
    "contacts": ["lifecyclestage"],
    "deals": ["dealstage", "amount", "hs_deal_stage_probability", "closedate", "hubspot_owner_id"],
    "companies": ["lifecyclestage"],
}

# Associations read from the "owning" side, so a record created or changed brings its links with it.
# (from object, to object) -> warehouse table.
ASSOCIATIONS: List[Tuple[str, str, str]] = [
    ("contacts", "companies", "associations_contact_company"),
    ("deals", "companies", "associations_deal_company"),
    ("deals", "contacts", "associations_deal_contact"),
] + [
    (eng, to, f"associations_engagement_{SINGULAR[to]}")
    for eng in ENGAGEMENT_OBJECTS
    for to in ("contacts", "companies", "deals")
]

PIPELINE_OBJECTS: Tuple[str, ...] = ("deals",)

# Page sizes (HubSpot maxima).
LIST_PAGE_SIZE = 100
LIST_PAGE_SIZE_WITH_HISTORY = 50  # a larger page with propertiesWithHistory is a 400
SEARCH_PAGE_SIZE = 200
BATCH_READ_SIZE = 100
BATCH_READ_SIZE_WITH_HISTORY = 50
ASSOCIATION_BATCH_SIZE = 1000
SEARCH_RESULT_CAP = 10_000  # search pages past this offset are a 400

# Keep GET URLs well under the ~2,000-character limit some proxies enforce (dlt uses the same bound);
# properties that do not fit go through POST batch/read bodies instead.
MAX_URL_LENGTH = 2000

# Rate limits: private apps on Professional/Enterprise: 190 requests per 10 s; search: 5/s per account
# (4/s keeps a margin).
DEFAULT_RATE_LIMIT_CALLS = 190
DEFAULT_RATE_LIMIT_PERIOD = 10.0
DEFAULT_SEARCH_RATE_PER_SECOND = 4


class ApiPaths:
    """URL paths for one API version: "v3" (legacy /crm/v3, associations /crm/v4) or a date version
    such as "2026-03" (/crm/objects/2026-03/...)."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.legacy = version.lower() == LEGACY_API_VERSION

    def _crm(self, api: str, rest: str, legacy_version: str = "v3") -> str:
        if self.legacy:
            return f"/crm/{legacy_version}/{api}{rest}"
        return f"/crm/{api}/{self.version}{rest}"

    def objects(self, object_type: str) -> str:
        return self._crm("objects", f"/{object_type}")

    def search(self, object_type: str) -> str:
        return self._crm("objects", f"/{object_type}/search")

    def batch_read(self, object_type: str) -> str:
        return self._crm("objects", f"/{object_type}/batch/read")

    def properties(self, object_type: str) -> str:
        return self._crm("properties", f"/{object_type}")

    def pipelines(self, object_type: str) -> str:
        return self._crm("pipelines", f"/{object_type}")

    def owners(self) -> str:
        return self._crm("owners", "")

    def associations_batch_read(self, from_type: str, to_type: str) -> str:
        # Legacy associations with type ids live in v4 (v3 has no typeId/category).
        return self._crm("associations", f"/{from_type}/{to_type}/batch/read", legacy_version="v4")
