-- Koban keeps no stage-change dates; what it shows honestly: a contact was a lead from its lead's creation (the
-- lead with the same e-mail) or its own creation, an opportunity from its first deal's creation, a customer from
-- its first won deal's result date. Deleted leads and deals (Obsolete, or hard-deleted: gone_records) date nothing.
-- optional table: raw_koban.leads(id, e_mail, created_at, is_deleted)
-- optional table: raw_koban.deals(id, contact__guid, result, created_at, d_result, is_deleted)
-- optional table: raw_koban.gone_records(object_type, id)
with contacts as (
    select id, lower(trim(e_mail)) as email, created_at from raw_koban.contacts
), lead_dates as (
    select lower(trim(e_mail)) as email, min(created_at) as created_at
    from raw_koban.leads
    where nullif(trim(e_mail), '') is not null and not coalesce(is_deleted, false)
      and id not in (select id from raw_koban.gone_records where object_type = 'leads')
    group by lower(trim(e_mail))
), events as (
    select c.id as contact_id, 'lead' as stage,
           case when l.created_at is not null and l.created_at < c.created_at then l.created_at else c.created_at end as entered_at
    from contacts c left join lead_dates l on l.email = c.email
    union all
    select contact__guid, 'opportunity', created_at
    from raw_koban.deals where contact__guid is not null and not coalesce(is_deleted, false)
      and id not in (select id from raw_koban.gone_records where object_type = 'deals')
    union all
    select contact__guid, 'customer', d_result
    from raw_koban.deals where contact__guid is not null and result = 'WON' and not coalesce(is_deleted, false)
      and id not in (select id from raw_koban.gone_records where object_type = 'deals')
)
select 'koban' as source_system, e.contact_id, e.stage, min(e.entered_at) as entered_at
from events e
where e.entered_at is not null and e.contact_id in (select id from contacts)
group by e.contact_id, e.stage
