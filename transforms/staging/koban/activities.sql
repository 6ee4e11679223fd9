-- Koban actions (ncAction). Types by ActionType code (the usual Koban codes), else by label keywords; duration
-- = DEnd - DStart when both are set (Koban's only duration); the activity time is DStart (DTerm for tasks).
-- Deleted = Obsolete, or hard-deleted in Koban (gone_records).
-- optional table: raw_koban.gone_records(object_type, id)
with a as (
    select x.*, upper(coalesce(x.action_type__code, '')) as code, lower(coalesce(x.action_type__label, '')) as lbl
    from raw_koban.actions x
)
select
    'koban' as source_system,
    a.id as activity_id,
    case
        when a.code in ('APPEL', 'CALL', 'TEL') then 'call'
        when a.code in ('RDV', 'RDVPHY', 'VISITE') then 'meeting_in_person'
        when a.code in ('RDVTEL') then 'meeting_phone'
        when a.code in ('VISIO', 'RDVVISIO') then 'meeting_video'
        when a.code in ('DEMO') then 'demo'
        when a.code in ('EMAIL', 'MAIL') then 'email'
        when a.code in ('NOTE') then 'note'
        when a.code in ('TACHE', 'TASK') then 'task'
        when a.lbl like '%démo%' or a.lbl like '%demo%' then 'demo'
        when a.lbl like '%visio%' then 'meeting_video'
        when a.lbl like '%rendez-vous t%' then 'meeting_phone'
        when a.lbl like '%rendez%' or a.lbl like '%rdv%' then 'meeting_in_person'
        when a.lbl like '%appel%' or a.lbl like '%téléphone%' then 'call'
        when a.lbl like '%mail%' then 'email'
        when a.lbl like '%tâche%' or a.lbl like '%tache%' then 'task'
        else 'note'
    end as activity_type,
    coalesce(a.d_start, a.d_term, a.created_at) as occurred_at,
    case when a.d_end > a.d_start then extract(epoch from (a.d_end - a.d_start)) / 60.0 end as duration_minutes,
    nullif(trim(a.assigned_to__guid), '') as owner_id,
    nullif(trim(a.third__guid), '') as company_id,
    nullif(trim(a.contact__guid), '') as contact_id,
    nullif(trim(a.deal__guid), '') as deal_id,
    coalesce(a.is_deleted, false) or g.id is not null as is_deleted
from a
left join raw_koban.gone_records g on g.object_type = 'actions' and g.id = a.id
