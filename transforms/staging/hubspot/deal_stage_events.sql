-- Every stage a HubSpot deal entered (dealstage history), with when it left it.
-- optional table: raw_hubspot.deals_property_history(object_id, property, value, timestamp)
with entries as (
    select object_id as deal_id, value as stage_id, staging.safe_ts(cast("timestamp" as text)) as entered_at
    from raw_hubspot.deals_property_history
    where property = 'dealstage' and nullif(value, '') is not null
)
select
    'hubspot' as source_system,
    deal_id,
    stage_id,
    entered_at,
    lead(entered_at) over (partition by deal_id order by entered_at) as exited_at
from entries
where entered_at is not null
