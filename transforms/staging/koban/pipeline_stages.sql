-- Koban deal processes: their steps in order (open; Koban publishes no per-step probability), then the deal
-- results as closed stages: WON (probability 1), LOST and SLEEP ("en sommeil", out of the pipeline: closed, not won).
with processes as (
    select id, coalesce(nullif(trim(extcode), ''), id) as pipeline_id, label from raw_koban.deal_processes
), steps as (
    select p.pipeline_id, p.label as pipeline_label, coalesce(nullif(trim(s.extcode), ''), s.id) as stage_id,
           s.label as stage_label, cast(s.step_order as integer) as stage_order
    from raw_koban.deal_process_steps s join processes p on p.id = s.process_id
), n as (
    select pipeline_id, max(stage_order) as last_order from steps group by pipeline_id
)
select 'koban' as source_system, pipeline_id, pipeline_label, stage_id, stage_label, stage_order,
       cast(null as double precision) as probability, false as is_closed, false as is_won
from steps
union all
select 'koban', p.pipeline_id, p.label, r.stage_id, r.stage_label, coalesce(n.last_order, -1) + r.k,
       r.probability, true, r.stage_id = 'WON'
from processes p
left join n on n.pipeline_id = p.pipeline_id
cross join (
    select 'WON' as stage_id, 'Gagné' as stage_label, 1 as k, cast(1.0 as double precision) as probability
    union all select 'LOST', 'Perdu', 2, cast(0.0 as double precision)
    union all select 'SLEEP', 'En sommeil', 3, cast(0.0 as double precision)
) r
