-- Golden contact records, one per resolved person: the identity step's survivorship for names, e-mail and phones
-- (core.contact_golden), the resolved company of the person's most recent record, its owner (as a rep key), the
-- furthest lifecycle stage any of the person's records reached, the original source, and the first creation date.
with records as (
    select
        x.entity_key,
        c.*,
        row_number() over (
            partition by x.entity_key order by c.updated_at desc nulls last, c.source_system, c.contact_id
        ) as rn,
        case c.lifecycle_stage
            when 'subscriber' then 1 when 'lead' then 2 when 'mql' then 3 when 'sql' then 4
            when 'opportunity' then 5 when 'customer' then 6 when 'evangelist' then 7 else 0
        end as stage_rank
    from staging.contacts c
    join core.contact_crosswalk x on x.source_system = c.source_system and x.source_id = c.contact_id
    where not c.is_deleted
),
per_person as (
    select entity_key, min(created_at) as created_at, max(stage_rank) as furthest_rank
    from records
    group by entity_key
),
furthest as (
    select entity_key, min(lifecycle_stage) as lifecycle_stage
    from records r
    where stage_rank = (select p.furthest_rank from per_person p where p.entity_key = r.entity_key)
    group by entity_key
),
first_source as (
    select entity_key, min(source_channel) as source_channel
    from records r
    where source_channel is not null
      and created_at = (select min(r2.created_at) from records r2
                        where r2.entity_key = r.entity_key and r2.source_channel is not null)
    group by entity_key
)
select
    g.entity_key as contact_key,
    g.email,
    g.first_name,
    g.last_name,
    coalesce(g.mobile_phone, g.phone) as phone_e164,
    cx.entity_key as company_key,
    coalesce(rx.rep_key, case when r.owner_id is not null then r.source_system || ':' || r.owner_id end) as owner_id,
    f.lifecycle_stage,
    s.source_channel,
    p.created_at
from core.contact_golden g
join records r on r.entity_key = g.entity_key and r.rn = 1
join per_person p on p.entity_key = g.entity_key
left join furthest f on f.entity_key = g.entity_key
left join first_source s on s.entity_key = g.entity_key
left join core.company_crosswalk cx on cx.source_system = r.source_system and cx.source_id = r.company_id
left join core.rep_crosswalk rx on rx.source_system = r.source_system and rx.owner_id = r.owner_id
