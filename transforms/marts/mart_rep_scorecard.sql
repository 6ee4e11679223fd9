-- Rep scorecard per month: revenue won, average deal, win rate, activity mix and effort per won deal, each beside
-- the median of the reps of the same team that month (team = the rep's team at month end), with the segment mix of
-- the rep's hours and the territory (most worked postcode department) so gaps can be explained.
with deals as (
    select
        cast(date_trunc('month', closed_at at time zone 'UTC') as date) as month,
        coalesce(rep_key, 'unassigned') as rep_key,
        count(*) filter (where is_won) as deals_won,
        count(*) filter (where not is_won) as deals_lost,
        sum(case when is_won then amount_home else 0 end) as revenue_won_home
    from core.fct_deals
    where is_closed and closed_at is not null
    group by 1, 2
),
acts as (
    -- the rep rows of mart_effort_per_target (month x team x rep x segment, activities up to the as-of) added up per
    -- month and rep: the same counts as from the 5M activities, without a second pass over them; a month with
    -- only won deals (no activity) has no row here, as before
    select
        e.month, e.rep_key,
        sum(e.activities) as activities,
        sum(e.meetings) as meetings,
        sum(e.calls) as calls,
        sum(e.emails) as emails,
        sum(e.demos) as demos,
        sum(e.hours) as hours,
        sum(case when e.tier = 'Or' then e.hours else 0 end) as hours_or,
        sum(case when e.tier = 'Argent' then e.hours else 0 end) as hours_argent,
        sum(case when e.tier = 'Bronze' then e.hours else 0 end) as hours_bronze,
        sum(case when e.tier not in ('Or', 'Argent', 'Bronze') then e.hours else 0 end) as hours_unknown
    from marts.mart_effort_per_target e
    where e.team_name <> 'all' and e.rep_key <> 'all'
    group by e.month, e.rep_key
    having sum(e.activities) > 0
),
territory as (
    select month, rep_key, department from (
        select
            cast(date_trunc('month', a.occurred_date) as date) as month,
            coalesce(a.rep_key, 'unassigned') as rep_key,
            substr(c.postcode, 1, 2) as department,
            row_number() over (
                partition by cast(date_trunc('month', a.occurred_date) as date), coalesce(a.rep_key, 'unassigned')
                order by count(*) desc, substr(c.postcode, 1, 2)
            ) as rn
        from core.fct_activities a
        join core.dim_company c on c.company_key = a.company_key
        where c.postcode is not null and c.postcode <> ''
        group by 1, 2, 3
    ) ranked
    where rn = 1
),
grain as (
    select month, rep_key from deals union select month, rep_key from acts
),
per_rep as (
    select
        g.month, g.rep_key,
        coalesce(
            (select min(h.team_name) from core.rep_team_history h
             where h.source_system || ':' || h.owner_id = g.rep_key
               and (h.valid_from is null
                    or h.valid_from < cast(cast(cast(g.month + interval '1 month' as date) as timestamp) at time zone 'UTC' as timestamptz))
               and (h.valid_to is null
                    or h.valid_to >= cast(cast(cast(g.month + interval '1 month' as date) as timestamp) at time zone 'UTC' as timestamptz))),
            r.team_name, 'unknown') as team_name,
        coalesce(d.deals_won, 0) as deals_won,
        coalesce(d.deals_lost, 0) as deals_lost,
        coalesce(d.deals_won, 0) + coalesce(d.deals_lost, 0) as deals_closed,
        coalesce(d.revenue_won_home, 0) as revenue_won_home,
        cast(d.revenue_won_home as double precision) / nullif(d.deals_won, 0) as average_deal_home,
        cast(d.deals_won as double precision) / nullif(d.deals_won + d.deals_lost, 0) as win_rate_count,
        coalesce(a.activities, 0) as activities,
        coalesce(a.meetings, 0) as meetings,
        coalesce(a.calls, 0) as calls,
        coalesce(a.emails, 0) as emails,
        coalesce(a.demos, 0) as demos,
        coalesce(a.hours, 0) as hours,
        cast(a.activities as double precision) / nullif(d.deals_won, 0) as activities_per_won_deal,
        cast(a.meetings as double precision) / nullif(d.deals_won, 0) as meetings_per_won_deal,
        a.hours / nullif(d.deals_won, 0) as hours_per_won_deal,
        a.hours_or / nullif(a.hours, 0) as hours_share_or,
        a.hours_argent / nullif(a.hours, 0) as hours_share_argent,
        a.hours_bronze / nullif(a.hours, 0) as hours_share_bronze,
        a.hours_unknown / nullif(a.hours, 0) as hours_share_unknown,
        t.department as territory
    from grain g
    left join deals d on d.month = g.month and d.rep_key = g.rep_key
    left join acts a on a.month = g.month and a.rep_key = g.rep_key
    left join territory t on t.month = g.month and t.rep_key = g.rep_key
    left join core.dim_rep r on r.rep_key = g.rep_key
),
team as (
    select
        month, team_name,
        count(*) as team_reps,
        percentile_cont(0.5) within group (order by cast(revenue_won_home as double precision)) as m_revenue,
        percentile_cont(0.5) within group (order by average_deal_home) as m_average_deal,
        percentile_cont(0.5) within group (order by win_rate_count) as m_win_rate,
        percentile_cont(0.5) within group (order by cast(activities as double precision)) as m_activities,
        percentile_cont(0.5) within group (order by activities_per_won_deal) as m_activities_per_won,
        percentile_cont(0.5) within group (order by meetings_per_won_deal) as m_meetings_per_won,
        percentile_cont(0.5) within group (order by hours_per_won_deal) as m_hours_per_won
    from per_rep
    group by month, team_name
)
select
    p.month,
    cast(date_trunc('quarter', p.month) as date) as quarter,
    cast(extract(year from p.month) as integer) as year,
    p.rep_key,
    r.full_name as rep_name,
    p.team_name,
    p.territory,
    cast(p.deals_won as bigint) as deals_won,
    cast(p.deals_lost as bigint) as deals_lost,
    cast(p.deals_closed as bigint) as deals_closed,
    cast(p.revenue_won_home as numeric(18,2)) as revenue_won_home,
    cast(round(cast(tm.m_revenue as numeric(18,6)), 2) as numeric(18,2)) as team_median_revenue_won_home,
    cast(round(cast(p.average_deal_home as numeric(18,6)), 2) as numeric(18,2)) as average_deal_home,
    cast(round(cast(tm.m_average_deal as numeric(18,6)), 2) as numeric(18,2)) as team_median_average_deal_home,
    cast(round(cast(p.win_rate_count as numeric(38,12)), 6) as double precision) as win_rate_count,
    cast(round(cast(tm.m_win_rate as numeric(38,12)), 6) as double precision) as team_median_win_rate_count,
    cast(p.activities as bigint) as activities,
    cast(round(cast(tm.m_activities as numeric(38,12)), 6) as double precision) as team_median_activities,
    cast(p.meetings as bigint) as meetings,
    cast(p.calls as bigint) as calls,
    cast(p.emails as bigint) as emails,
    cast(p.demos as bigint) as demos,
    cast(round(cast(p.hours as numeric(38,12)), 6) as double precision) as hours,
    cast(round(cast(p.activities_per_won_deal as numeric(38,12)), 6) as double precision) as activities_per_won_deal,
    cast(round(cast(tm.m_activities_per_won as numeric(38,12)), 6) as double precision) as team_median_activities_per_won_deal,
    cast(round(cast(p.meetings_per_won_deal as numeric(38,12)), 6) as double precision) as meetings_per_won_deal,
    cast(round(cast(tm.m_meetings_per_won as numeric(38,12)), 6) as double precision) as team_median_meetings_per_won_deal,
    cast(round(cast(p.hours_per_won_deal as numeric(38,12)), 6) as double precision) as hours_per_won_deal,
    cast(round(cast(tm.m_hours_per_won as numeric(38,12)), 6) as double precision) as team_median_hours_per_won_deal,
    cast(round(cast(p.hours_share_or as numeric(38,12)), 6) as double precision) as hours_share_or,
    cast(round(cast(p.hours_share_argent as numeric(38,12)), 6) as double precision) as hours_share_argent,
    cast(round(cast(p.hours_share_bronze as numeric(38,12)), 6) as double precision) as hours_share_bronze,
    cast(round(cast(p.hours_share_unknown as numeric(38,12)), 6) as double precision) as hours_share_unknown,
    tm.team_reps
from per_rep p
join team tm on tm.month = p.month and tm.team_name = p.team_name
left join core.dim_rep r on r.rep_key = p.rep_key
