-- One row per deal and stage stay (the stage history), with the stage's position, where the deal went next
-- (forward, back, won, lost) and the CRM probability in force just before it entered the stage.
-- indexes: (deal_key, entered_at)
with ev as (
    select
        d.deal_key, d.source_system, d.deal_id, d.pipeline_id, e.stage_id, e.entered_at, e.exited_at,
        s.stage_order, coalesce(s.is_closed, false) as is_closed, coalesce(s.is_won, false) as is_won,
        s.probability as stage_probability,
        row_number() over (partition by d.deal_key order by e.entered_at) as visit_no
    from staging.deal_stage_events e
    join core.fct_deals d on d.source_system = e.source_system and d.deal_id = e.deal_id
    left join staging.pipeline_stages s
        on s.source_system = e.source_system and s.pipeline_id = d.pipeline_id and s.stage_id = e.stage_id
    union all
    -- a deal the CRM gave no stage history for: one stay in its current stage since creation (or close)
    select
        d.deal_key, d.source_system, d.deal_id, d.pipeline_id, d.stage_id, coalesce(d.closed_at, d.created_at), null,
        s.stage_order, coalesce(s.is_closed, false), coalesce(s.is_won, false), s.probability, 1
    from core.fct_deals d
    left join staging.pipeline_stages s
        on s.source_system = d.source_system and s.pipeline_id = d.pipeline_id and s.stage_id = d.stage_id
    where not exists (
        select 1 from staging.deal_stage_events e where e.source_system = d.source_system and e.deal_id = d.deal_id
    )
),
linked as (
    select
        ev.*,
        lag(ev.stage_order) over (partition by ev.deal_key order by ev.entered_at) as prev_stage_order,
        lag(ev.stage_probability) over (partition by ev.deal_key order by ev.entered_at) as prev_stage_probability,
        lead(ev.stage_id) over (partition by ev.deal_key order by ev.entered_at) as next_stage_id,
        lead(ev.stage_order) over (partition by ev.deal_key order by ev.entered_at) as next_stage_order,
        lead(ev.is_closed) over (partition by ev.deal_key order by ev.entered_at) as next_is_closed,
        lead(ev.is_won) over (partition by ev.deal_key order by ev.entered_at) as next_is_won
    from ev
)
select
    l.deal_key, l.source_system, l.deal_id, l.pipeline_id, l.stage_id, l.stage_order, l.is_closed, l.is_won,
    l.visit_no, l.entered_at, l.exited_at, l.prev_stage_order, l.next_stage_id,
    case
        when l.next_stage_id is null then null
        when l.next_is_won then 'won'
        when l.next_is_closed then 'lost'
        when l.next_stage_order > l.stage_order then 'forward'
        when l.next_stage_order < l.stage_order then 'back'
        else 'same'
    end as exit_kind,
    coalesce(cast(p.value as double precision), l.prev_stage_probability) as probability_before_entry
from linked l
-- the probability period in force just before the entry (periods of one deal and property do not overlap)
left join core.deal_property_periods p
    on p.deal_key = l.deal_key and p.property = 'probability'
   and p.valid_from < l.entered_at
   and coalesce(p.valid_to, cast('9999-12-31 00:00:00+00' as timestamptz)) >= l.entered_at
