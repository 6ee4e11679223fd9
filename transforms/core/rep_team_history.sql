-- Team membership periods per CRM user record, made non-overlapping (a period ends where the next one starts) so a
-- point-in-time join finds at most one team; a user without history gets its current team as one open period.
-- Marts credit a deal or an activity to the team of that day.
-- indexes: (source_system, owner_id)
with hist as (
    select
        h.source_system, h.owner_id, coalesce(h.team_name, 'unknown') as team_name, h.valid_from,
        case
            when lead(h.valid_from) over w is not null and (h.valid_to is null or h.valid_to > lead(h.valid_from) over w)
                then lead(h.valid_from) over w
            else h.valid_to
        end as valid_to
    from staging.owner_team_history h
    window w as (partition by h.source_system, h.owner_id order by h.valid_from)
)
select h.source_system, h.owner_id, x.rep_key, h.team_name, h.valid_from, h.valid_to
from hist h
left join core.rep_crosswalk x on x.source_system = h.source_system and x.owner_id = h.owner_id
union all
select o.source_system, o.owner_id, x.rep_key, coalesce(o.team_name, 'unknown'), cast(null as timestamptz), cast(null as timestamptz)
from staging.owners o
left join core.rep_crosswalk x on x.source_system = o.source_system and x.owner_id = o.owner_id
where not exists (
    select 1 from staging.owner_team_history h where h.source_system = o.source_system and h.owner_id = o.owner_id
)
