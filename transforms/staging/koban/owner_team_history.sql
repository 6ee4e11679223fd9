-- Koban exposes no membership history: one spell per user, from the user's creation, in the current structure.
select source_system, owner_id, team_id, team_name, created_at as valid_from, cast(null as timestamptz) as valid_to
from staging.owners
where source_system = 'koban' and team_id is not null
