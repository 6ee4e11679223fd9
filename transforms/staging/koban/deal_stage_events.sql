-- Koban exposes no stage history (GetUpdated returns the current record only). Derived, honestly: every deal
-- entered its process's first step when it was created; a deal with a result entered that closed stage (WON /
-- LOST / SLEEP) at its result date. Intermediate steps and their dates are unknown and not invented.
with first_step as (
    select p.id as process_guid, coalesce(nullif(trim(p.extcode), ''), p.id) as pipeline_id,
           coalesce(nullif(trim(s.extcode), ''), s.id) as stage_id
    from raw_koban.deal_processes p
    join raw_koban.deal_process_steps s on s.process_id = p.id and s.step_order = 0
), entries as (
    select d.id as deal_id, f.stage_id, d.created_at as entered_at
    from raw_koban.deals d
    join first_step f on f.process_guid = d.process__guid
    union all
    select d.id, upper(trim(d.result)), coalesce(d.d_result, d.updated_at)
    from raw_koban.deals d
    where nullif(trim(d.result), '') is not null
)
select
    'koban' as source_system,
    deal_id,
    stage_id,
    entered_at,
    lead(entered_at) over (partition by deal_id order by entered_at) as exited_at
from entries
where entered_at is not null
