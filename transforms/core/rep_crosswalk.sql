-- Every CRM user record -> the rep it belongs to. One person in several CRMs shares a (lower-cased) email; the
-- rep's main record is the active, earliest-created one. Records without email stay their own rep.
with owners as (
    select
        source_system,
        owner_id,
        coalesce(nullif(lower(trim(email)), ''), source_system || ':' || owner_id) as person,
        is_active,
        created_at
    from staging.owners
),
ranked as (
    select
        owners.*,
        row_number() over (
            partition by person
            order by case when is_active then 0 else 1 end, created_at nulls last, source_system, owner_id
        ) as rn
    from owners
)
select r.source_system, r.owner_id, m.source_system || ':' || m.owner_id as rep_key
from ranked r
join ranked m on m.person = r.person and m.rn = 1
