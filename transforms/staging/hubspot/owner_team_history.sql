-- HubSpot keeps no team history: one spell per rep, from the rep's creation, in the current team.
-- (A team change is seen from the next sync on; see docs for the limits.)
select source_system, owner_id, team_id, team_name, created_at as valid_from, cast(null as timestamptz) as valid_to
from staging.owners
where source_system = 'hubspot' and team_id is not null
