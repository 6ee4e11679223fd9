-- HubSpot keeps no team history: the connector records each owner's primary team at the first sync, then at every
-- sync that sees it changed (raw_hubspot.owner_team_changes, append-only). The first team seen runs from the
-- owner's creation (what came before the first sync is unknown), each change from the sync that saw it (a move is
-- dated to the sync after it, not to the day it was made), the last one stays open. A period with no team (the
-- owner left every team) is kept, team null, so the previous team ends there.
-- An owner never observed (a warehouse loaded before the connector recorded teams) keeps one period, from its
-- creation, in its current team.
-- optional table: raw_hubspot.owner_team_changes(owner_id, team_id, team_name, observed_at)
with obs as (
    select cast(c.owner_id as text) as owner_id, cast(c.team_id as text) as team_id,
           cast(c.team_name as text) as team_name, cast(c.observed_at as timestamptz) as observed_at
    from raw_hubspot.owner_team_changes c
),
ordered as (
    select obs.*,
           row_number() over w as n,
           lag(team_id) over w as prev_team_id,
           lag(team_name) over w as prev_team_name
    from obs
    window w as (partition by owner_id order by observed_at)
),
changes as (
    -- a rerun from scratch (pipeline state dropped) records every owner again: same team, no new period
    select owner_id, team_id, team_name, observed_at, n
    from ordered
    where n = 1 or team_id is distinct from prev_team_id or team_name is distinct from prev_team_name
)
select
    'hubspot' as source_system,
    c.owner_id,
    c.team_id,
    c.team_name,
    case when c.n = 1 then least(coalesce(o.created_at, c.observed_at), c.observed_at) else c.observed_at end
        as valid_from,
    lead(c.observed_at) over (partition by c.owner_id order by c.observed_at) as valid_to
from changes c
left join staging.owners o on o.source_system = 'hubspot' and o.owner_id = c.owner_id
union all
select o.source_system, o.owner_id, o.team_id, o.team_name, o.created_at as valid_from,
       cast(null as timestamptz) as valid_to
from staging.owners o
where o.source_system = 'hubspot' and o.team_id is not null
  and not exists (select 1 from obs where obs.owner_id = o.owner_id)
