-- HubSpot engagements as sales activities. Meetings are typed by location (in person / phone / video), or `demo`
-- when the call-and-meeting type says so; durations: calls in ms, meetings end - start; emails, notes and tasks
-- carry none (the sales model's default duration applies downstream).
-- optional columns: raw_hubspot.calls(koban_id, hs_timestamp, hubspot_owner_id, hs_call_duration, hs_activity_type)
-- optional columns: raw_hubspot.meetings(koban_id, hs_timestamp, hubspot_owner_id, hs_meeting_start_time, hs_meeting_end_time, hs_meeting_location_type, hs_activity_type)
-- optional columns: raw_hubspot.emails(koban_id, hs_timestamp, hubspot_owner_id)
-- optional columns: raw_hubspot.notes(koban_id, hs_timestamp, hubspot_owner_id)
-- optional columns: raw_hubspot.tasks(koban_id, hs_timestamp, hubspot_owner_id)
-- optional table: raw_hubspot.calls(id, koban_id, hs_timestamp, hubspot_owner_id, hs_call_duration, hs_activity_type, created_at, archived)
-- optional table: raw_hubspot.meetings(id, koban_id, hs_timestamp, hubspot_owner_id, hs_meeting_start_time, hs_meeting_end_time, hs_meeting_location_type, hs_activity_type, created_at, archived)
-- optional table: raw_hubspot.emails(id, koban_id, hs_timestamp, hubspot_owner_id, created_at, archived)
-- optional table: raw_hubspot.notes(id, koban_id, hs_timestamp, hubspot_owner_id, created_at, archived)
-- optional table: raw_hubspot.tasks(id, koban_id, hs_timestamp, hubspot_owner_id, created_at, archived)
-- optional table: raw_hubspot.associations_engagement_company(from_object_type, from_id, to_id)
-- optional table: raw_hubspot.associations_engagement_contact(from_object_type, from_id, to_id)
-- optional table: raw_hubspot.associations_engagement_deal(from_object_type, from_id, to_id)
with engagements as (
    select 'call' as kind, id, 'call' as activity_type, hs_timestamp as ts_text, hubspot_owner_id,
           staging.safe_double(hs_call_duration) / 60000.0 as duration_minutes, koban_id, archived
    from raw_hubspot.calls
    union all
    select 'meeting', id,
           case when lower(trim(hs_activity_type)) in ('demo', 'démo', 'demonstration', 'démonstration') then 'demo'
                when upper(hs_meeting_location_type) = 'PHONE' then 'meeting_phone'
                when upper(hs_meeting_location_type) = 'VIDEO' then 'meeting_video'
                else 'meeting_in_person' end,
           coalesce(hs_timestamp, hs_meeting_start_time), hubspot_owner_id,
           extract(epoch from (staging.safe_ts(hs_meeting_end_time) - staging.safe_ts(hs_meeting_start_time))) / 60.0,
           koban_id, archived
    from raw_hubspot.meetings
    union all
    select 'email', id, 'email', hs_timestamp, hubspot_owner_id, cast(null as double precision), koban_id, archived from raw_hubspot.emails
    union all
    select 'note', id, 'note', hs_timestamp, hubspot_owner_id, cast(null as double precision), koban_id, archived from raw_hubspot.notes
    union all
    select 'task', id, 'task', hs_timestamp, hubspot_owner_id, cast(null as double precision), koban_id, archived from raw_hubspot.tasks
), companies as (
    select from_object_type, from_id, min(to_id) as company_id from raw_hubspot.associations_engagement_company group by 1, 2
), contacts as (
    select from_object_type, from_id, min(to_id) as contact_id from raw_hubspot.associations_engagement_contact group by 1, 2
), deals as (
    select from_object_type, from_id, min(to_id) as deal_id from raw_hubspot.associations_engagement_deal group by 1, 2
)
select
    'hubspot' as source_system,
    e.kind || ':' || e.id as activity_id,
    e.activity_type,
    staging.safe_ts(e.ts_text) as occurred_at,
    case when e.duration_minutes >= 0 then e.duration_minutes end as duration_minutes,
    nullif(trim(e.hubspot_owner_id), '') as owner_id,
    co.company_id,
    ct.contact_id,
    d.deal_id,
    case when nullif(trim(e.koban_id), '') is not null then 'koban:' || trim(e.koban_id) end as imported_from,
    coalesce(cast(e.archived as boolean), false) as is_deleted
from engagements e
left join companies co on co.from_object_type = e.kind and co.from_id = e.id
left join contacts ct on ct.from_object_type = e.kind and ct.from_id = e.id
left join deals d on d.from_object_type = e.kind and d.from_id = e.id
