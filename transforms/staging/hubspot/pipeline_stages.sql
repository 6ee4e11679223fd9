-- HubSpot deal pipelines and stages; won = closed with probability 1.
select
    'hubspot' as source_system,
    s.pipeline_id,
    p.label as pipeline_label,
    s.id as stage_id,
    s.label as stage_label,
    staging.safe_int(cast(s.display_order as text)) as stage_order,
    case when staging.safe_double(s.probability) > 1 then staging.safe_double(s.probability) / 100
         else staging.safe_double(s.probability) end as probability,
    coalesce(staging.safe_bool(s.is_closed), false) as is_closed,
    coalesce(staging.safe_bool(s.is_closed), false) and staging.safe_double(s.probability) >= 1 as is_won
from raw_hubspot.pipeline_stages s
left join raw_hubspot.pipelines p on p.id = s.pipeline_id and p.object_type = s.object_type
where s.object_type = 'deals' and not coalesce(s.archived, false)
