-- Marketing-to-sales funnel, cohort view: of the leads (people, after identity resolution) created in the cohort
-- month, how many ever reached MQL, SQL, opportunity and customer; conversion per step, median days between steps,
-- by source channel (raw) and channel group (marketing / sales / unknown, cfg_channels) and segment. A person who
-- skipped a stage but reached a later one counts as having reached it (the funnel is monotone); days between steps
-- only use people with both dates. Opportunities (deals) created in the month, by the same source, sit beside.
with settings as (
    select coalesce(cast(max(case when key = 'cohort_window_days' then value end) as integer), 180) as window_days
    from staging.cfg_settings
),
contacts as (
    select
        coalesce(x.entity_key, c.source_system || ':' || c.contact_id) as person_key,
        c.source_system, c.contact_id, c.created_at, c.source_channel, c.lead_source, c.company_id,
        row_number() over (partition by coalesce(x.entity_key, c.source_system || ':' || c.contact_id)
                           order by c.created_at, c.source_system, c.contact_id) as rn
    from staging.contacts c
    left join core.contact_crosswalk x on x.source_system = c.source_system and x.source_id = c.contact_id
    where not coalesce(c.is_deleted, false)
),
first_contacts as (
    -- each person's earliest record gives the source and the company
    select person_key, source_system, contact_id, created_at,
           upper(coalesce(nullif(trim(source_channel), ''), 'UNKNOWN')) as source_channel, lead_source, company_id
    from contacts
    where rn = 1
),
stage_dates as (
    select
        c.person_key,
        min(case when e.stage = 'lead' then e.entered_at end) as lead_at,
        min(case when e.stage = 'mql' then e.entered_at end) as mql_at,
        min(case when e.stage = 'sql' then e.entered_at end) as sql_at,
        min(case when e.stage = 'opportunity' then e.entered_at end) as opportunity_at,
        min(case when e.stage = 'customer' then e.entered_at end) as customer_at,
        min(case when e.stage in ('lead', 'mql', 'sql', 'opportunity', 'customer') then e.entered_at end) as first_funnel_at
    from contacts c
    join staging.lifecycle_events e on e.source_system = c.source_system and e.contact_id = c.contact_id
    group by c.person_key
),
exact_channels as (
    select upper(source_channel) as source_channel, lead_source, min(channel_group) as channel_group
    from staging.cfg_channels where lead_source <> '*' group by upper(source_channel), lead_source
),
wildcard_channels as (
    select upper(source_channel) as source_channel, min(channel_group) as channel_group
    from staging.cfg_channels where lead_source = '*' group by upper(source_channel)
),
people as (
    select
        c.person_key,
        coalesce(sd.lead_at, sd.first_funnel_at, c.created_at) as lead_created_at,
        sd.lead_at, sd.mql_at, sd.sql_at, sd.opportunity_at, sd.customer_at,
        c.source_channel,
        -- exact (channel, lead_source) first, then the channel's '*' row
        coalesce(e.channel_group, w.channel_group, 'unknown') as channel_group,
        coalesce(ct.tier, 'unknown') as tier,
        case when sd.customer_at is not null then 5 when sd.opportunity_at is not null then 4
             when sd.sql_at is not null then 3 when sd.mql_at is not null then 2 else 1 end as furthest
    from first_contacts c
    left join stage_dates sd on sd.person_key = c.person_key
    left join core.company_crosswalk cx on cx.source_system = c.source_system and cx.source_id = c.company_id
    left join core.company_tier ct
        on ct.company_key = coalesce(cx.entity_key, case when c.company_id is not null then c.source_system || ':' || c.company_id end)
    left join exact_channels e on e.source_channel = c.source_channel and e.lead_source = c.lead_source
    left join wildcard_channels w on w.source_channel = c.source_channel
),
cohorts as (
    select
        cast(date_trunc('month', p.lead_created_at at time zone 'UTC') as date) as cohort_month,
        p.source_channel, p.channel_group, p.tier,
        count(*) as leads,
        count(*) filter (where p.furthest >= 2) as reached_mql,
        count(*) filter (where p.furthest >= 3) as reached_sql,
        count(*) filter (where p.furthest >= 4) as reached_opportunity,
        count(*) filter (where p.furthest >= 5) as reached_customer,
        -- days between steps from the UTC wall-clock times (the same interval; DuckDB subtracts plain timestamps
        -- directly where timestamptz goes through its calendar library, 4x slower)
        percentile_cont(0.5) within group (order by extract(epoch from ((p.mql_at at time zone 'UTC') - (p.lead_created_at at time zone 'UTC'))) / 86400.0) as d_lead_mql,
        percentile_cont(0.5) within group (order by extract(epoch from ((p.sql_at at time zone 'UTC') - (p.mql_at at time zone 'UTC'))) / 86400.0) as d_mql_sql,
        percentile_cont(0.5) within group (order by extract(epoch from ((p.opportunity_at at time zone 'UTC') - (p.sql_at at time zone 'UTC'))) / 86400.0) as d_sql_opp,
        percentile_cont(0.5) within group (order by extract(epoch from ((p.customer_at at time zone 'UTC') - (p.opportunity_at at time zone 'UTC'))) / 86400.0) as d_opp_cust
    from people p
    group by 1, 2, 3, 4
),
deal_channels as (
    select
        cast(date_trunc('month', d.created_at at time zone 'UTC') as date) as cohort_month,
        upper(coalesce(nullif(trim(d.source_channel), ''), 'UNKNOWN')) as source_channel,
        d.lead_source, d.tier
    from core.fct_deals d
),
opps as (
    select dc.cohort_month, dc.source_channel,
           coalesce(e.channel_group, w.channel_group, 'unknown') as channel_group, dc.tier
    from deal_channels dc
    left join exact_channels e on e.source_channel = dc.source_channel and e.lead_source = dc.lead_source
    left join wildcard_channels w on w.source_channel = dc.source_channel
),
opp_counts as (
    select cohort_month, source_channel, channel_group, tier, count(*) as opportunities_created
    from opps group by 1, 2, 3, 4
),
grain as (
    select cohort_month, source_channel, channel_group, tier from cohorts
    union select cohort_month, source_channel, channel_group, tier from opp_counts
),
joined as (
    select g.*, c.leads, c.reached_mql, c.reached_sql, c.reached_opportunity, c.reached_customer,
           c.d_lead_mql, c.d_mql_sql, c.d_sql_opp, c.d_opp_cust,
           coalesce(o.opportunities_created, 0) as opportunities_created
    from grain g
    left join cohorts c on c.cohort_month = g.cohort_month and c.source_channel = g.source_channel
                       and c.channel_group = g.channel_group and c.tier = g.tier
    left join opp_counts o on o.cohort_month = g.cohort_month and o.source_channel = g.source_channel
                          and o.channel_group = g.channel_group and o.tier = g.tier
),
month_opps as (
    select cohort_month,
           sum(opportunities_created) as month_opportunities,
           sum(case when channel_group = 'marketing' then opportunities_created else 0 end) as month_marketing_opportunities
    from opp_counts group by cohort_month
)
select
    j.cohort_month,
    cast(date_trunc('quarter', j.cohort_month) as date) as quarter,
    j.source_channel, j.channel_group, j.tier,
    coalesce(j.leads, 0) as leads,
    coalesce(j.reached_mql, 0) as reached_mql,
    coalesce(j.reached_sql, 0) as reached_sql,
    coalesce(j.reached_opportunity, 0) as reached_opportunity,
    coalesce(j.reached_customer, 0) as reached_customer,
    cast(round(cast(cast(j.reached_mql as double precision) / nullif(j.leads, 0) as numeric(38,12)), 6) as double precision) as rate_lead_to_mql,
    cast(round(cast(cast(j.reached_sql as double precision) / nullif(j.reached_mql, 0) as numeric(38,12)), 6) as double precision) as rate_mql_to_sql,
    cast(round(cast(cast(j.reached_opportunity as double precision) / nullif(j.reached_sql, 0) as numeric(38,12)), 6) as double precision) as rate_sql_to_opportunity,
    cast(round(cast(cast(j.reached_customer as double precision) / nullif(j.reached_opportunity, 0) as numeric(38,12)), 6) as double precision) as rate_opportunity_to_customer,
    cast(round(cast(cast(j.reached_customer as double precision) / nullif(j.leads, 0) as numeric(38,12)), 6) as double precision) as rate_lead_to_customer,
    cast(round(cast(cast(j.d_lead_mql as double precision) as numeric(38,12)), 6) as double precision) as median_days_lead_to_mql,
    cast(round(cast(cast(j.d_mql_sql as double precision) as numeric(38,12)), 6) as double precision) as median_days_mql_to_sql,
    cast(round(cast(cast(j.d_sql_opp as double precision) as numeric(38,12)), 6) as double precision) as median_days_sql_to_opportunity,
    cast(round(cast(cast(j.d_opp_cust as double precision) as numeric(38,12)), 6) as double precision) as median_days_opportunity_to_customer,
    cast(j.cohort_month + interval '1 month' as date) + st.window_days <= ao.as_of_date as cohort_mature,
    j.opportunities_created,
    cast(coalesce(mo.month_marketing_opportunities, 0) as bigint) as month_marketing_opportunities,
    cast(coalesce(mo.month_opportunities, 0) as bigint) as month_opportunities,
    cast(round(cast(cast(mo.month_marketing_opportunities as double precision) / nullif(mo.month_opportunities, 0) as numeric(38,12)), 6) as double precision) as month_marketing_opportunity_share
from joined j
cross join settings st
cross join core.as_of ao
left join month_opps mo on mo.cohort_month = j.cohort_month
