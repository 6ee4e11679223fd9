-- Customer-acquisition cost per month x channel x segment: marketing spend of the month plus the cost of the reps'
-- pre-acquisition time in the month, over the customers acquired in the month (period basis, blended).
-- Spend not tagged with a segment is allocated to segments in proportion to the channel's new customers of the months
-- around the spend's month (fewer than spend_allocation_window_months before or after it): the segment mix a channel
-- brings is read over a window, as one month of a channel rarely holds a new customer and spend brings its customers
-- months later (allocating by the spend's month alone left 66% of the demo's spend in 'unknown'). With no new
-- customer of the channel in the window it stays in segment 'unknown' ('unallocated'). The row keeps the spend in its
-- month: only the split between segments reads the window.
-- The value side (first-year revenue) follows the customers acquired in the row and is shown only once the cohort
-- is mature: every one of them has had first_year_window_months of invoices before the as-of. Revenue is
-- core.fct_invoices.revenue_home of the invoices paid in the window: excluding tax, net of their credit notes.
with settings as (
    select coalesce(cast(max(case when key = 'first_year_window_months' then value end) as integer), 12) as fy_months,
           coalesce(cast(max(case when key = 'spend_allocation_window_months' then value end) as integer), 12)
               as allocation_months
    from staging.cfg_settings
),
customers as (
    select
        c.company_key,
        c.acquired_at,
        cast(date_trunc('month', c.acquired_at at time zone 'UTC') as date) as month,
        coalesce(ch.acquisition_channel, 'UNKNOWN') as channel,
        c.tier
    from core.dim_company c
    left join core.company_channel ch on ch.company_key = c.company_key
    where c.acquired_at is not null
),
new_customers as (
    select month, channel, tier, count(*) as new_customers
    from customers group by month, channel, tier
),
spend as (
    select
        cast(date_trunc('month', ms.month) as date) as month,
        upper(trim(ms.channel)) as channel,
        seg.tier,
        cast(ms.amount as double precision) * fx.rate_to_home as amount_home
    from staging.marketing_spend ms
    left join staging.cfg_fx_rates fx on upper(fx.currency) = upper(ms.currency)
    left join staging.cfg_segments seg on lower(seg.tier) = lower(trim(ms.tier))
),
-- per month and channel of untagged spend: the channel's new customers per segment in the months around it
spend_mix as (
    select s.month, s.channel, n.tier, sum(n.new_customers) as new_customers
    from (select distinct month, channel from spend where tier is null) s
    cross join settings st
    join new_customers n
      on n.channel = s.channel
     and n.month > s.month - st.allocation_months * interval '1 month'
     and n.month < s.month + st.allocation_months * interval '1 month'
    group by s.month, s.channel, n.tier
),
mix_total as (
    select month, channel, sum(new_customers) as channel_new_customers from spend_mix group by month, channel
),
spend_rows as (
    -- tagged spend stays in its segment
    select month, channel, tier, amount_home as tagged, cast(0 as double precision) as allocated,
           cast(0 as double precision) as unallocated
    from spend where tier is not null
    union all
    -- untagged spend, split by the channel's new customers per segment over the window
    select s.month, s.channel, n.tier, 0, s.amount_home * n.new_customers / cc.channel_new_customers, 0
    from spend s
    join mix_total cc on cc.month = s.month and cc.channel = s.channel
    join spend_mix n on n.month = s.month and n.channel = s.channel
    where s.tier is null
    union all
    select s.month, s.channel, 'unknown', 0, 0, s.amount_home
    from spend s
    where s.tier is null
      and not exists (select 1 from mix_total cc where cc.month = s.month and cc.channel = s.channel)
),
marketing as (
    select month, channel, tier, sum(tagged) as tagged, sum(allocated) as allocated, sum(unallocated) as unallocated
    from spend_rows group by month, channel, tier
),
sales as (
    select cast(date_trunc('month', activity_date) as date) as month, channel, tier,
           sum(hours) as sales_hours, sum(cost_home) as sales_cost_home
    from core.fct_acquisition_effort
    group by 1, 2, 3
),
revenue as (
    select cu.month, cu.channel, cu.tier, sum(i.revenue_home) as first_year_revenue_home
    from customers cu
    cross join settings st
    join core.fct_invoices i
      on i.company_key = cu.company_key and i.status = 'paid'
     and i.paid_at >= cu.acquired_at and i.paid_at < cu.acquired_at + st.fy_months * interval '1 month'
    group by cu.month, cu.channel, cu.tier
),
grain as (
    select month, channel, tier from new_customers
    union select month, channel, tier from marketing
    union select month, channel, tier from sales
),
joined as (
    select
        g.month, g.channel, g.tier,
        cast(round(cast(coalesce(m.tagged, 0) + coalesce(m.allocated, 0) + coalesce(m.unallocated, 0) as numeric(18,6)), 2) as numeric(18,2)) as marketing_spend_home,
        cast(round(cast(coalesce(m.tagged, 0) as numeric(18,6)), 2) as numeric(18,2)) as marketing_spend_tagged_home,
        cast(round(cast(coalesce(m.allocated, 0) + coalesce(m.unallocated, 0) as numeric(18,6)), 2) as numeric(18,2)) as marketing_spend_untagged_home,
        case
            when m.month is null then 'none'
            when coalesce(m.unallocated, 0) <> 0 then 'unallocated_no_new_customers'
            when coalesce(m.allocated, 0) <> 0 and coalesce(m.tagged, 0) <> 0 then 'tagged_and_allocated_by_new_customers'
            when coalesce(m.allocated, 0) <> 0 then 'allocated_by_new_customers'
            else 'tagged'
        end as spend_allocation_method,
        cast(round(cast(coalesce(s.sales_hours, 0) as numeric(38,12)), 6) as double precision) as sales_hours,
        cast(coalesce(s.sales_cost_home, 0) as numeric(18,2)) as sales_cost_home,
        coalesce(n.new_customers, 0) as new_customers,
        r.first_year_revenue_home,
        cast(g.month + (st.fy_months + 1) * interval '1 month' as date) <= ao.as_of_date as cohort_mature
    from grain g
    cross join settings st
    cross join core.as_of ao
    left join marketing m on m.month = g.month and m.channel = g.channel and m.tier = g.tier
    left join sales s on s.month = g.month and s.channel = g.channel and s.tier = g.tier
    left join new_customers n on n.month = g.month and n.channel = g.channel and n.tier = g.tier
    left join revenue r on r.month = g.month and r.channel = g.channel and r.tier = g.tier
),
final as (
    select
        j.*,
        j.marketing_spend_home + j.sales_cost_home as acquisition_cost_home,
        case when j.cohort_mature and j.new_customers > 0
             then cast(coalesce(j.first_year_revenue_home, 0) as numeric(18,2)) end as first_year_revenue_mature_home
    from joined j
)
select
    f.month,
    cast(date_trunc('quarter', f.month) as date) as quarter,
    cast(extract(year from f.month) as integer) as year,
    f.channel,
    coalesce(w.channel_group, 'unknown') as channel_group,
    f.tier,
    f.marketing_spend_home,
    f.marketing_spend_tagged_home,
    f.marketing_spend_untagged_home,
    f.spend_allocation_method,
    f.sales_hours,
    f.sales_cost_home,
    cast(f.acquisition_cost_home as numeric(18,2)) as acquisition_cost_home,
    f.new_customers,
    cast(round(cast(f.acquisition_cost_home / nullif(f.new_customers, 0) as numeric(18,6)), 2) as numeric(18,2)) as cac_home,
    cast(round(cast(f.marketing_spend_home / nullif(f.new_customers, 0) as numeric(18,6)), 2) as numeric(18,2)) as cac_marketing_only_home,
    cast(round(cast(f.sales_cost_home / nullif(f.new_customers, 0) as numeric(18,6)), 2) as numeric(18,2)) as cac_sales_only_home,
    f.cohort_mature,
    f.first_year_revenue_mature_home as first_year_revenue_home,
    cast(round(cast(cast(f.first_year_revenue_mature_home as double precision) / nullif(cast(f.acquisition_cost_home as double precision), 0) as numeric(38,12)), 6) as double precision) as revenue_to_cac,
    cast(round(cast(cast(f.acquisition_cost_home as double precision) * (select fy_months from settings)
          / nullif(cast(f.first_year_revenue_mature_home as double precision), 0) as numeric(38,12)), 6) as double precision) as payback_months
from final f
left join (
    select upper(source_channel) as channel, min(channel_group) as channel_group
    from staging.cfg_channels where lead_source = '*' group by upper(source_channel)
) w on w.channel = f.channel
