-- Koban contacts (ncContact), typed. Koban has no lifecycle field on contacts: the stage is derived from the
-- contact's deals (won -> customer, any -> opportunity, else lead), as in lifecycle_events. Origin codes are the
-- raw source; sales origins also give the finer lead source. Deleted = Obsolete, or hard-deleted in Koban
-- (gone_records).
-- optional table: raw_koban.deals(id, contact__guid, result, created_at, d_result, is_deleted)
-- optional table: raw_koban.gone_records(object_type, id)
with deal_stage as (
    select contact__guid as contact_id,
           max(case when result = 'WON' then 1 else 0 end) as has_won
    from raw_koban.deals
    where contact__guid is not null and not coalesce(is_deleted, false)
      and id not in (select id from raw_koban.gone_records where object_type = 'deals')
    group by contact__guid
)
select
    'koban' as source_system,
    c.id as contact_id,
    nullif(trim(c.e_mail), '') as email,
    nullif(trim(c.first_name), '') as first_name,
    nullif(trim(c.name), '') as last_name,
    nullif(trim(c.phone), '') as phone,
    nullif(trim(c.cell), '') as mobile_phone,
    nullif(trim(c.function), '') as job_title,
    nullif(trim(c.third__guid), '') as company_id,
    nullif(trim(c.third__label), '') as company_name,
    nullif(trim(c.assigned_to__guid), '') as owner_id,
    case when ds.has_won = 1 then 'customer' when ds.contact_id is not null then 'opportunity' else 'lead' end as lifecycle_stage,
    nullif(trim(c.origin__code), '') as source_channel,
    case upper(c.origin__code) when 'PROSPECTION' then 'prospecting' when 'RECOMMANDATION' then 'referral'
         when 'CLIENT' then 'existing_customer' end as lead_source,
    cast(null as text) as city,
    cast(null as text) as postcode,
    cast(null as integer) as page_views,
    cast(null as integer) as email_opens,
    cast(null as integer) as email_clicks,
    cast(null as integer) as form_submissions,
    coalesce(c.invalid_mail, false) as hard_bounced,
    c.created_at,
    c.updated_at,
    coalesce(c.is_deleted, false) or g.id is not null as is_deleted
from raw_koban.contacts c
left join deal_stage ds on ds.contact_id = c.id
left join raw_koban.gone_records g on g.object_type = 'contacts' and g.id = c.id
