-- The daily flash: one row per day (UTC) from the first deal or activity to the as-of. Deals won / lost and revenue
-- won that day and month to date, win rate month to date, hours spent, new customers and the cost of the month's
-- acquisition so far (the month's marketing spend, counted whole from the 1st, plus pre-acquisition sales cost to
-- date), and the completeness of the deals created this month (amount, expected close date, company and rep filled).
with bounds as (
    select
        least((select cast(min(created_at) at time zone 'UTC' as date) from core.fct_deals),
              (select cast(min(occurred_at) at time zone 'UTC' as date) from core.fct_activities)) as lo,
        ao.as_of_date as hi,
        ao.as_of_at
    from core.as_of ao
),
days as (
    select cast(g.d as date) as day
    from bounds b
    join lateral generate_series(cast(b.lo as timestamp), cast(b.hi as timestamp), interval '1 day') as g(d) on true
),
closes as (
    select cast(closed_at at time zone 'UTC' as date) as day,
           count(*) filter (where is_won) as won, count(*) filter (where not is_won) as lost,
           sum(case when is_won then amount_home else 0 end) as amount_won
    from core.fct_deals where is_closed and closed_at is not null group by 1
),
created as (
    select cast(created_at at time zone 'UTC' as date) as day, count(*) as checked,
           count(*) filter (where amount_home is not null and close_date is not null
                            and company_key is not null and rep_key is not null) as complete
    from core.fct_deals group by 1
),
hours as (
    select a.occurred_date as day, sum(a.hours) as hours, count(*) as activities
    from core.fct_activities a cross join bounds b
    where a.occurred_at <= b.as_of_at group by 1
),
effort as (
    select activity_date as day, sum(cost_home) as sales_cost from core.fct_acquisition_effort group by 1
),
acquired as (
    select cast(acquired_at at time zone 'UTC' as date) as day, count(*) as new_customers
    from core.dim_company where acquired_at is not null group by 1
),
spend as (
    select cast(date_trunc('month', ms.month) as date) as month,
           sum(cast(ms.amount as double precision) * fx.rate_to_home) as spend
    from staging.marketing_spend ms
    left join staging.cfg_fx_rates fx on upper(fx.currency) = upper(ms.currency)
    group by 1
),
daily as (
    select
        d.day,
        cast(date_trunc('month', d.day) as date) as month,
        coalesce(c.won, 0) as won, coalesce(c.lost, 0) as lost, coalesce(c.amount_won, 0) as amount_won,
        coalesce(h.hours, 0) as hours, coalesce(h.activities, 0) as activities,
        coalesce(e.sales_cost, 0) as sales_cost,
        coalesce(a.new_customers, 0) as new_customers,
        coalesce(cr.checked, 0) as checked, coalesce(cr.complete, 0) as complete
    from days d
    left join closes c on c.day = d.day
    left join hours h on h.day = d.day
    left join effort e on e.day = d.day
    left join acquired a on a.day = d.day
    left join created cr on cr.day = d.day
),
mtd as (
    select
        daily.*,
        sum(won) over w as won_mtd, sum(lost) over w as lost_mtd, sum(amount_won) over w as amount_won_mtd,
        sum(hours) over w as hours_mtd, sum(sales_cost) over w as sales_cost_mtd,
        sum(new_customers) over w as new_customers_mtd,
        sum(checked) over w as checked_mtd, sum(complete) over w as complete_mtd
    from daily
    window w as (partition by month order by day rows between unbounded preceding and current row)
)
select
    m.day,
    cast(extract(isoyear from m.day) as integer) as iso_year,
    cast(extract(week from m.day) as integer) as iso_week,
    m.month,
    cast(date_trunc('quarter', m.day) as date) as quarter,
    cast(m.won as bigint) as deals_won,
    cast(m.lost as bigint) as deals_lost,
    cast(m.amount_won as numeric(18,2)) as revenue_won_home,
    cast(m.won_mtd as bigint) as deals_won_mtd,
    cast(m.lost_mtd as bigint) as deals_lost_mtd,
    cast(m.amount_won_mtd as numeric(18,2)) as revenue_won_mtd_home,
    cast(round(cast(cast(m.won_mtd as double precision) / nullif(m.won_mtd + m.lost_mtd, 0) as numeric(38,12)), 6) as double precision) as win_rate_mtd,
    cast(m.activities as bigint) as activities,
    cast(round(cast(m.hours as numeric(38,12)), 6) as double precision) as hours,
    cast(round(cast(m.hours_mtd as numeric(38,12)), 6) as double precision) as hours_mtd,
    cast(m.new_customers as bigint) as new_customers,
    cast(m.new_customers_mtd as bigint) as new_customers_mtd,
    cast(round(cast(coalesce(s.spend, 0) as numeric(18,6)), 2) as numeric(18,2)) as marketing_spend_month_home,
    cast(m.sales_cost_mtd as numeric(18,2)) as sales_cost_mtd_home,
    cast(round(cast(coalesce(s.spend, 0) as numeric(18,6)), 2) + m.sales_cost_mtd as numeric(18,2)) as acquisition_cost_mtd_home,
    cast(round(cast((coalesce(s.spend, 0) + cast(m.sales_cost_mtd as double precision)) / nullif(m.new_customers_mtd, 0) as numeric(18,6)), 2) as numeric(18,2)) as cac_mtd_home,
    cast(m.checked_mtd as bigint) as deals_checked_mtd,
    cast(m.complete_mtd as bigint) as deals_complete_mtd,
    cast(round(cast(cast(m.complete_mtd as double precision) / nullif(m.checked_mtd, 0) as numeric(38,12)), 6) as double precision) as deal_completeness_mtd
from mtd m
left join spend s on s.month = m.month
