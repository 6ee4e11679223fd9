-- HubSpot deals, typed, with the primary company and contact; probability as 0-1 (a 0-100 value is divided by 100);
-- closed_at = when the deal entered the closed stage it is in (stage history), else its close date.
-- `koban_id` is the legacy id migration tools keep on records imported from Koban (custom property, opt-in).
-- optional columns: raw_hubspot.deals(koban_id, dealname, amount, deal_currency_code, dealstage, pipeline, closedate, hubspot_owner_id, hs_deal_stage_probability, hs_is_closed, hs_is_closed_won, dealtype, hs_analytics_source, lead_source)
-- optional table: raw_hubspot.associations_deal_company(from_id, to_id, type_id)
-- optional table: raw_hubspot.associations_deal_contact(from_id, to_id, type_id)
-- optional table: raw_hubspot.deals_property_history(object_id, property, value, timestamp)
with first_company as (
    select from_id, min(to_id) as company_id from raw_hubspot.associations_deal_company group by from_id
), first_contact as (
    select from_id, min(to_id) as contact_id from raw_hubspot.associations_deal_contact group by from_id
), stage_entries as (
    select object_id as deal_id, value as stage_id, max(staging.safe_ts(cast("timestamp" as text))) as entered_at
    from raw_hubspot.deals_property_history
    where property = 'dealstage'
    group by object_id, value
), typed as (
    select
        d.*,
        staging.safe_num(d.amount) as amount_num,
        upper(coalesce(nullif(trim(d.deal_currency_code), ''), (select value from staging.cfg_settings where key = 'home_currency'))) as currency_code,
        staging.safe_double(d.hs_deal_stage_probability) as prob_raw,
        ps.is_closed as stage_closed,
        ps.is_won as stage_won
    from raw_hubspot.deals d
    left join staging.pipeline_stages ps
        on ps.source_system = 'hubspot' and ps.pipeline_id = coalesce(d.pipeline, 'default') and ps.stage_id = d.dealstage
)
select
    'hubspot' as source_system,
    t.id as deal_id,
    nullif(trim(t.dealname), '') as deal_name,
    coalesce(nullif(trim(t.pipeline), ''), 'default') as pipeline_id,
    t.dealstage as stage_id,
    t.amount_num as amount,
    t.currency_code as currency,
    cast(t.amount_num * fx.rate_to_home as numeric(18,2)) as amount_home,
    case when t.prob_raw > 1 then t.prob_raw / 100 else t.prob_raw end as probability,
    coalesce(t.stage_closed, staging.safe_bool(t.hs_is_closed), false) as is_closed,
    coalesce(t.stage_won, staging.safe_bool(t.hs_is_closed_won), false) as is_won,
    t.created_at,
    staging.safe_ts(t.closedate) as close_date,
    case when coalesce(t.stage_closed, staging.safe_bool(t.hs_is_closed), false)
         then coalesce(se.entered_at, staging.safe_ts(t.closedate)) end as closed_at,
    nullif(trim(t.hubspot_owner_id), '') as owner_id,
    fco.company_id,
    fct.contact_id,
    nullif(trim(t.hs_analytics_source), '') as source_channel,
    nullif(trim(t.lead_source), '') as lead_source,
    lower(nullif(trim(t.dealtype), '')) as deal_type,
    case when nullif(trim(t.koban_id), '') is not null then 'koban:' || trim(t.koban_id) end as imported_from,
    t.updated_at,
    coalesce(t.archived, false) as is_deleted
from typed t
left join staging.cfg_fx_rates fx on fx.currency = t.currency_code
left join first_company fco on fco.from_id = t.id
left join first_contact fct on fct.from_id = t.id
left join stage_entries se on se.deal_id = t.id and se.stage_id = t.dealstage
