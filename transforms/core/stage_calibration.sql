-- Calibrated stage-to-win rate: of the closed deals that ever entered a stage, the share that was won. Uses every
-- deal closed by the as-of (a snapshot day recomputed now is judged with today's calibration; accumulated days keep
-- the calibration of the run that took them).
select
    s.source_system, s.pipeline_id, s.stage_id,
    count(distinct s.deal_key) as closed_deals_entered,
    count(distinct case when d.is_won then s.deal_key end) as won_deals_entered,
    cast(round(cast(cast(count(distinct case when d.is_won then s.deal_key end) as double precision)
          / nullif(count(distinct s.deal_key), 0) as numeric(38,12)), 6) as double precision) as calibrated_win_rate
from core.fct_deal_stages s
join core.fct_deals d on d.deal_key = s.deal_key
where d.is_closed
group by s.source_system, s.pipeline_id, s.stage_id
