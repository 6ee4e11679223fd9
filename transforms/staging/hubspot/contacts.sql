-- HubSpot contacts, typed; the primary company is the associated company (else the first association).
-- optional columns: raw_hubspot.contacts(email, firstname, lastname, phone, mobilephone, jobtitle, company, associatedcompanyid, hubspot_owner_id, lifecyclestage, hs_analytics_source, lead_source, city, zip, hs_analytics_num_page_views, hs_email_open, hs_email_click, num_conversion_events, hs_email_hard_bounce_reason_enum)
-- optional table: raw_hubspot.associations_contact_company(from_id, to_id, type_id)
with first_company as (
    select from_id, min(to_id) as company_id
    from raw_hubspot.associations_contact_company
    group by from_id
)
select
    'hubspot' as source_system,
    c.id as contact_id,
    nullif(trim(c.email), '') as email,
    nullif(trim(c.firstname), '') as first_name,
    nullif(trim(c.lastname), '') as last_name,
    nullif(trim(c.phone), '') as phone,
    nullif(trim(c.mobilephone), '') as mobile_phone,
    nullif(trim(c.jobtitle), '') as job_title,
    coalesce(nullif(trim(c.associatedcompanyid), ''), fc.company_id) as company_id,
    nullif(trim(c.company), '') as company_name,
    nullif(trim(c.hubspot_owner_id), '') as owner_id,
    case lower(c.lifecyclestage)
        when 'marketingqualifiedlead' then 'mql' when 'salesqualifiedlead' then 'sql'
        else lower(nullif(trim(c.lifecyclestage), ''))
    end as lifecycle_stage,
    nullif(trim(c.hs_analytics_source), '') as source_channel,
    nullif(trim(c.lead_source), '') as lead_source,
    nullif(trim(c.city), '') as city,
    nullif(trim(c.zip), '') as postcode,
    staging.safe_int(c.hs_analytics_num_page_views) as page_views,
    staging.safe_int(c.hs_email_open) as email_opens,
    staging.safe_int(c.hs_email_click) as email_clicks,
    staging.safe_int(c.num_conversion_events) as form_submissions,
    coalesce(nullif(trim(c.hs_email_hard_bounce_reason_enum), '') is not null, false) as hard_bounced,
    c.created_at,
    c.updated_at,
    coalesce(c.archived, false) as is_deleted
from raw_hubspot.contacts c
left join first_company fc on fc.from_id = c.id
