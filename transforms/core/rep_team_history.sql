-- Team membership periods per CRM user record, with the current team as an open period when the CRM gave no
-- history; marts credit a deal or an activity to the team of that day.
select h.source_system, h.owner_id, x.rep_key, coalesce(h.team_name, 'unknown') as team_name, h.valid_from, h.valid_to
from staging.owner_team_history h
left join core.rep_crosswalk x on x.source_system = h.source_system and x.owner_id = h.owner_id
union all
select o.source_system, o.owner_id, x.rep_key, coalesce(o.team_name, 'unknown'), cast(null as timestamptz), cast(null as timestamptz)
from staging.owners o
left join core.rep_crosswalk x on x.source_system = o.source_system and x.owner_id = o.owner_id
where not exists (
    select 1 from staging.owner_team_history h where h.source_system = o.source_system and h.owner_id = o.owner_id
)
