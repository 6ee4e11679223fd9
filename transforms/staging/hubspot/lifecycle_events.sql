-- When each HubSpot contact first entered each lifecycle stage: the "became a ... date" properties, completed by
-- the lifecycle stage history (robust when stages were skipped or set back).
-- optional columns: raw_hubspot.contacts(hs_lifecyclestage_subscriber_date, hs_lifecyclestage_lead_date, hs_lifecyclestage_marketingqualifiedlead_date, hs_lifecyclestage_salesqualifiedlead_date, hs_lifecyclestage_opportunity_date, hs_lifecyclestage_customer_date, hs_lifecyclestage_evangelist_date, hs_lifecyclestage_other_date)
-- optional table: raw_hubspot.contacts_property_history(object_id, property, value, timestamp)
with dates as (
    select id as contact_id, 'subscriber' as stage, staging.safe_ts(hs_lifecyclestage_subscriber_date) as entered_at from raw_hubspot.contacts
    union all select id, 'lead', staging.safe_ts(hs_lifecyclestage_lead_date) from raw_hubspot.contacts
    union all select id, 'mql', staging.safe_ts(hs_lifecyclestage_marketingqualifiedlead_date) from raw_hubspot.contacts
    union all select id, 'sql', staging.safe_ts(hs_lifecyclestage_salesqualifiedlead_date) from raw_hubspot.contacts
    union all select id, 'opportunity', staging.safe_ts(hs_lifecyclestage_opportunity_date) from raw_hubspot.contacts
    union all select id, 'customer', staging.safe_ts(hs_lifecyclestage_customer_date) from raw_hubspot.contacts
    union all select id, 'evangelist', staging.safe_ts(hs_lifecyclestage_evangelist_date) from raw_hubspot.contacts
    union all select id, 'other', staging.safe_ts(hs_lifecyclestage_other_date) from raw_hubspot.contacts
    union all
    select object_id,
           case lower(value) when 'marketingqualifiedlead' then 'mql' when 'salesqualifiedlead' then 'sql' else lower(value) end,
           staging.safe_ts(cast("timestamp" as text))
    from raw_hubspot.contacts_property_history
    where property = 'lifecyclestage' and nullif(value, '') is not null
)
select 'hubspot' as source_system, contact_id, stage, min(entered_at) as entered_at
from dates
where entered_at is not null
group by contact_id, stage
