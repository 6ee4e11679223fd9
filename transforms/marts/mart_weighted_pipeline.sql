-- Weighted pipeline per day x team x rep x pipeline stage x segment, from the daily snapshot: open deals, amount,
-- weighted amount by CRM probability and by the calibrated stage-to-win rate, stale and inconsistent deals.
-- Team rows: rep_key = 'all'.
with rep_rows as (
    select
        snapshot_date, team_name, rep_key, pipeline_id, stage_id, tier,
        min(stage_order) as stage_order,
        count(*) as open_deals,
        sum(amount_home) as amount_home,
        sum(weighted_amount_home) as weighted_amount_home,
        sum(weighted_amount_calibrated_home) as weighted_amount_calibrated_home,
        count(*) filter (where is_stale) as stale_deals,
        sum(case when is_stale then amount_home else 0 end) as stale_amount_home,
        count(*) filter (where probability_inconsistent) as probability_inconsistent_deals
    from marts.mart_pipeline_daily
    group by snapshot_date, team_name, rep_key, pipeline_id, stage_id, tier
),
agg as (
    -- team rows add up the rep rows (one pass over the snapshot; grouping sets made PostgreSQL aggregate it twice)
    select snapshot_date, team_name, rep_key, pipeline_id, stage_id, tier, stage_order, open_deals, amount_home,
           weighted_amount_home, weighted_amount_calibrated_home, stale_deals, stale_amount_home,
           probability_inconsistent_deals
    from rep_rows
    union all
    select snapshot_date, team_name, 'all', pipeline_id, stage_id, tier, min(stage_order),
           cast(sum(open_deals) as bigint), sum(amount_home), sum(weighted_amount_home),
           sum(weighted_amount_calibrated_home), cast(sum(stale_deals) as bigint), sum(stale_amount_home),
           cast(sum(probability_inconsistent_deals) as bigint)
    from rep_rows
    group by snapshot_date, team_name, pipeline_id, stage_id, tier
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
