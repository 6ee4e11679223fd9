-- Forecast accuracy per month x horizon x rep. Forecast = weighted pipeline (amount x CRM probability, and x the
-- calibrated rate) of the deals open at the end of the day before (month start - horizon_days) whose expected close
-- date, as known that day, falls in the month (read from mart_pipeline_daily); actual = deals won in the month.
-- accuracy = 1 - |actual - forecast| / actual (null when nothing was won), bias = (forecast - actual) / actual.
-- Calibration of the same forecast deals once closed (y = 1 if finally won): Brier score on the 'all' bucket row and
-- a reliability table on the probability_bucket rows; amount error = final - estimated amount of the won ones.
-- Rows with rep_key = 'all' total every rep.
with horizons as (
    select 0 as horizon_days union all select 30 union all select 60 union all select 90
),
snapshot_range as (
    select min(snapshot_date) as lo, max(snapshot_date) as hi from marts.mart_pipeline_daily
),
forecast_days as (
    -- the few snapshot days a forecast is read from (month start - horizon - 1), so the snapshot is joined on its
    -- day (an index on PostgreSQL, a tiny hash table on DuckDB) instead of testing every row against every horizon
    select c.month, c.horizon_days, c.snapshot_date
    from (
        select cast(g.m as date) as month, h.horizon_days, cast(g.m as date) - (h.horizon_days + 1) as snapshot_date
        from snapshot_range r
        join lateral generate_series(cast(date_trunc('month', r.lo) as timestamp),
                                     cast(date_trunc('month', r.hi) as timestamp) + interval '4 month',
                                     interval '1 month') as g(m) on true
        cross join horizons h
    ) c
    cross join snapshot_range r
    where c.snapshot_date between r.lo and r.hi
),
fc as (
    select
        f.month,
        f.horizon_days,
        p.snapshot_date,
        -- an unowned deal is 'unassigned' on both sides, so its forecast meets its actual
        coalesce(p.rep_key, 'unassigned') as rep_key,
        p.deal_key, p.amount_home, p.probability, p.weighted_amount_home, p.weighted_amount_calibrated_home
    from forecast_days f
    join marts.mart_pipeline_daily p
      on p.snapshot_date = f.snapshot_date
     and cast(date_trunc('month', p.expected_close_date) as date) = f.month
),
scored as (
    select fc.*,
        case when d.is_closed then case when d.is_won then 1 else 0 end end as outcome,
        case when d.is_won then d.amount_home end as final_amount_home,
        case when fc.probability >= 0.8 then '0.8-1.0' when fc.probability >= 0.6 then '0.6-0.8'
             when fc.probability >= 0.4 then '0.4-0.6' when fc.probability >= 0.2 then '0.2-0.4' else '0.0-0.2' end as bucket
    from fc
    join core.fct_deals d on d.deal_key = fc.deal_key
),
fc_agg as (
    select
        month, horizon_days, min(snapshot_date) as snapshot_date,
        case when grouping(rep_key) = 1 then 'all' else rep_key end as rep_key,
        case when grouping(bucket) = 1 then 'all' else bucket end as probability_bucket,
        count(*) as forecast_deals,
        sum(amount_home) as forecast_amount_home,
        sum(weighted_amount_home) as forecast_weighted_home,
        sum(weighted_amount_calibrated_home) as forecast_calibrated_home,
        count(outcome) as scored_deals,
        avg(case when outcome is not null then (probability - outcome) * (probability - outcome) end) as brier_score,
        avg(case when outcome is not null then probability end) as mean_predicted_probability,
        avg(cast(outcome as double precision)) as observed_win_rate,
        count(final_amount_home) as won_forecast_deals,
        sum(case when final_amount_home is not null then amount_home end) as estimated_amount_won_home,
        sum(final_amount_home) as final_amount_won_home,
        sum(abs(final_amount_home - amount_home)) as amount_abs_error_home
    from scored
    group by grouping sets ((month, horizon_days, rep_key, bucket), (month, horizon_days, rep_key),
                            (month, horizon_days, bucket), (month, horizon_days))
),
actuals as (
    select
        month,
        case when grouping(rep_key) = 1 then 'all' else rep_key end as rep_key,
        count(*) as actual_won_deals,
        sum(amount_home) as actual_won_home
    from (select cast(date_trunc('month', closed_at at time zone 'UTC') as date) as month,
                 coalesce(rep_key, 'unassigned') as rep_key, amount_home
          from core.fct_deals where is_won and closed_at is not null) w
    group by grouping sets ((month, rep_key), (month))
),
grid as (
    -- every month x horizon whose snapshot exists, for the reps forecast then or winning in the month
    select distinct f.month, f.horizon_days, f.snapshot_date, f.rep_key, f.probability_bucket
    from fc_agg f
    union
    select m.month, m.horizon_days, m.snapshot_date, a.rep_key, 'all'
    from (select distinct month, horizon_days, snapshot_date from fc_agg) m
    join actuals a on a.month = m.month
)
select
    g.month,
    cast(date_trunc('quarter', g.month) as date) as quarter,
    g.horizon_days,
    g.snapshot_date,
    g.rep_key,
    g.probability_bucket,
    coalesce(f.forecast_deals, 0) as forecast_deals,
    cast(coalesce(f.forecast_amount_home, 0) as numeric(18,2)) as forecast_amount_home,
    cast(coalesce(f.forecast_weighted_home, 0) as numeric(18,2)) as forecast_weighted_home,
    cast(coalesce(f.forecast_calibrated_home, 0) as numeric(18,2)) as forecast_calibrated_home,
    case when g.probability_bucket = 'all' then coalesce(a.actual_won_deals, 0) end as actual_won_deals,
    case when g.probability_bucket = 'all' then cast(coalesce(a.actual_won_home, 0) as numeric(18,2)) end as actual_won_home,
    case when g.probability_bucket = 'all' then
        cast(round(cast(1 - abs(cast(coalesce(a.actual_won_home, 0) - coalesce(f.forecast_weighted_home, 0) as double precision))
                  / nullif(cast(a.actual_won_home as double precision), 0) as numeric(38,12)), 6) as double precision) end as accuracy,
    case when g.probability_bucket = 'all' then
        cast(round(cast(cast(coalesce(f.forecast_weighted_home, 0) - coalesce(a.actual_won_home, 0) as double precision)
              / nullif(cast(a.actual_won_home as double precision), 0) as numeric(38,12)), 6) as double precision) end as bias,
    coalesce(f.scored_deals, 0) as scored_deals,
    cast(round(cast(f.brier_score as numeric(38,12)), 6) as double precision) as brier_score,
    cast(round(cast(f.mean_predicted_probability as numeric(38,12)), 6) as double precision) as mean_predicted_probability,
    cast(round(cast(f.observed_win_rate as numeric(38,12)), 6) as double precision) as observed_win_rate,
    coalesce(f.won_forecast_deals, 0) as won_forecast_deals,
    cast(f.estimated_amount_won_home as numeric(18,2)) as estimated_amount_won_home,
    cast(f.final_amount_won_home as numeric(18,2)) as final_amount_won_home,
    cast(f.final_amount_won_home - f.estimated_amount_won_home as numeric(18,2)) as amount_error_home,
    cast(round(cast(cast(f.amount_abs_error_home as double precision) / nullif(cast(f.final_amount_won_home as double precision), 0) as numeric(38,12)), 6) as double precision) as amount_abs_pct_error
from grid g
left join fc_agg f on f.month = g.month and f.horizon_days = g.horizon_days and f.rep_key = g.rep_key
                  and f.probability_bucket = g.probability_bucket
left join actuals a on a.month = g.month and a.rep_key = g.rep_key
