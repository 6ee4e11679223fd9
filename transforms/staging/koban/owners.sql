-- Koban users as reps; the team is the user's Koban structure (group).
-- optional columns: raw_koban.users(e_mail, login, first_name, name, structure__code, structure__label)
select
    'koban' as source_system,
    u.id as owner_id,
    lower(trim(coalesce(u.e_mail, u.login))) as email,
    nullif(trim(u.first_name), '') as first_name,
    nullif(trim(u.name), '') as last_name,
    trim(coalesce(u.first_name, '') || ' ' || coalesce(u.name, '')) as full_name,
    nullif(trim(u.structure__code), '') as team_id,
    nullif(trim(u.structure__label), '') as team_name,
    coalesce(u.is_active, true) as is_active,
    u.created_at,
    u.updated_at
from raw_koban.users u
