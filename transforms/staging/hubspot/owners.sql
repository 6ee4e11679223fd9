-- HubSpot owners (active and deactivated) with their primary team.
-- optional table: raw_hubspot.owners__teams(_dlt_parent_id, _dlt_list_idx, id, name, primary)
with team as (
    select _dlt_parent_id, id, name,
           row_number() over (
               partition by _dlt_parent_id
               order by case when cast("primary" as text) in ('true', 'True', '1') then 0 else 1 end, _dlt_list_idx
           ) as rn
    from raw_hubspot.owners__teams
)
select
    'hubspot' as source_system,
    o.id as owner_id,
    lower(trim(o.email)) as email,
    o.first_name,
    o.last_name,
    trim(coalesce(o.first_name, '') || ' ' || coalesce(o.last_name, '')) as full_name,
    t.id as team_id,
    t.name as team_name,
    not coalesce(o.archived, false) as is_active,
    o.created_at,
    o.updated_at
from raw_hubspot.owners o
left join team t on t._dlt_parent_id = o._dlt_id and t.rn = 1
