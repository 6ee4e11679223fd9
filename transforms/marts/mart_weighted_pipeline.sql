-- Weighted pipeline per day x team x rep x pipeline stage x segment, from the daily snapshot: open deals, amount,
-- weighted amount by CRM probability and by the calibrated stage-to-win rate, stale and inconsistent deals.
-- Team rows: rep_key = 'all'.
with agg as (
    select
        snapshot_date, team_name,
        case when grouping(rep_key) = 1 then 'all' else rep_key end as rep_key,
        pipeline_id, stage_id, tier,
        min(stage_order) as stage_order,
        count(*) as open_deals,
        sum(amount_home) as amount_home,
        sum(weighted_amount_home) as weighted_amount_home,
        sum(weighted_amount_calibrated_home) as weighted_amount_calibrated_home,
        count(*) filter (where is_stale) as stale_deals,
        sum(case when is_stale then amount_home else 0 end) as stale_amount_home,
        count(*) filter (where probability_inconsistent) as probability_inconsistent_deals
    from marts.mart_pipeline_daily
    group by grouping sets ((snapshot_date, team_name, rep_key, pipeline_id, stage_id, tier),
                            (snapshot_date, team_name, pipeline_id, stage_id, tier))
)
select
    snapshot_date,
    cast(extract(isoyear from snapshot_date) as integer) as iso_year,
    cast(extract(week from snapshot_date) as integer) as iso_week,
    cast(date_trunc('month', snapshot_date) as date) as month,
    cast(date_trunc('quarter', snapshot_date) as date) as quarter,
    team_name, rep_key, pipeline_id, stage_id, stage_order, tier,
    open_deals,
    cast(amount_home as numeric(18,2)) as amount_home,
    cast(weighted_amount_home as numeric(18,2)) as weighted_amount_home,
    cast(weighted_amount_calibrated_home as numeric(18,2)) as weighted_amount_calibrated_home,
    stale_deals,
    cast(stale_amount_home as numeric(18,2)) as stale_amount_home,
    probability_inconsistent_deals
from agg
