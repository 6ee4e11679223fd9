-- History of the deal properties the forecast marts reconstruct as of a past date (neutral names).
-- HubSpot can record two values of one property at the same millisecond (workflows, imports); the API gives no
-- order between them once stored, so one is kept deterministically (the lowest value).
-- optional table: raw_hubspot.deals_property_history(object_id, property, value, timestamp)
with changes as (
    select
        object_id as deal_id,
        case property
            when 'amount' then 'amount'
            when 'hs_deal_stage_probability' then 'probability'
            when 'closedate' then 'close_date'
            when 'hubspot_owner_id' then 'owner_id'
            when 'dealstage' then 'stage_id'
        end as property,
        case when property = 'hs_deal_stage_probability' and staging.safe_double(value) > 1
             then cast(staging.safe_double(value) / 100 as text)
             else nullif(value, '') end as value,
        staging.safe_ts(cast("timestamp" as text)) as changed_at
    from raw_hubspot.deals_property_history
    where property in ('amount', 'hs_deal_stage_probability', 'closedate', 'hubspot_owner_id', 'dealstage')
)
select 'hubspot' as source_system, deal_id, property, min(value) as value, changed_at
from changes
where changed_at is not null
group by deal_id, property, changed_at
