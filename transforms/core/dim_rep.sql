-- Sales reps across CRMs (matched by email), with their current team (from the main record).
with members as (
    select x.rep_key, o.*
    from core.rep_crosswalk x
    join staging.owners o on o.source_system = x.source_system and o.owner_id = x.owner_id
)
select
    m.rep_key,
    nullif(lower(trim(m.email)), '') as email,
    coalesce(m.full_name, trim(coalesce(m.first_name, '') || ' ' || coalesce(m.last_name, ''))) as full_name,
    coalesce(m.team_name, 'unknown') as team_name,
    (select bool_or(coalesce(a.is_active, false)) from members a where a.rep_key = m.rep_key) as is_active
from members m
where m.source_system || ':' || m.owner_id = m.rep_key
