-- History of the deal properties the forecast marts reconstruct as of a past date (neutral names).
-- optional table: raw_hubspot.deals_property_history(object_id, property, value, timestamp)
select
    'hubspot' as source_system,
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
  and staging.safe_ts(cast("timestamp" as text)) is not null
