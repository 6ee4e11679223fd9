-- Sales effort per month x rep x segment against the result: activity counts by type, hours, companies and deals
-- worked, deals and revenue won (credited to the team of the rep at close), effort per won deal, and the segment's
-- share of the rep's hours against the planned share (sales_model.yaml). Team rows (rep_key = 'all') and company rows
-- (team_name = 'all', rep_key = 'all') let a rep be read against the team.
with settings as (
    select coalesce(cast(max(case when key = 'effort_flag_threshold' then value end) as double precision), 0.10) as threshold
    from staging.cfg_settings
),
facts as (
    select
        cast(date_trunc('month', a.occurred_date) as date) as month,
        a.team_name, coalesce(a.rep_key, 'unassigned') as rep_key, a.tier,
        a.activity_type, coalesce(t.is_meeting, false) as is_meeting, a.hours,
        a.company_key, a.deal_key,
        0 as won, cast(0 as numeric(18,2)) as revenue, 1 as is_activity
    from core.fct_activities a
    cross join core.as_of ao
    left join staging.cfg_activity_types t on t.activity_type = a.activity_type
    where a.occurred_at <= ao.as_of_at
    union all
    select
        cast(date_trunc('month', d.closed_at at time zone 'UTC') as date),
        d.team_name, coalesce(d.rep_key, 'unassigned'), d.tier,
        null, false, 0, null, null,
        1, coalesce(d.amount_home, 0), 0
    from core.fct_deals d
    where d.is_won and d.closed_at is not null
),
agg as (
    select
        month,
        case when grouping(team_name) = 1 then 'all' else team_name end as team_name,
        case when grouping(rep_key) = 1 then 'all' else rep_key end as rep_key,
        tier,
        count(*) filter (where activity_type = 'call') as calls,
        count(*) filter (where activity_type = 'meeting_in_person') as meetings_in_person,
        count(*) filter (where activity_type = 'meeting_phone') as meetings_phone,
        count(*) filter (where activity_type = 'meeting_video') as meetings_video,
        count(*) filter (where activity_type = 'email') as emails,
        count(*) filter (where activity_type = 'demo') as demos,
        count(*) filter (where activity_type = 'task') as tasks,
        count(*) filter (where activity_type = 'note') as notes,
        count(*) filter (where is_meeting) as meetings,
        cast(sum(is_activity) as bigint) as activities,
        sum(hours) as hours,
        count(distinct company_key) as companies_worked,
        count(distinct deal_key) as deals_worked,
        cast(sum(won) as bigint) as deals_won,
        sum(revenue) as revenue_won_home
    from facts
    group by grouping sets ((month, team_name, rep_key, tier), (month, team_name, tier), (month, tier))
),
shares as (
    select
        a.*,
        sum(hours) over (partition by month, team_name, rep_key) as rep_hours,
        sum(revenue_won_home) over (partition by month, team_name, rep_key) as rep_revenue_home
    from agg a
)
select
    s.month,
    cast(date_trunc('quarter', s.month) as date) as quarter,
    cast(extract(year from s.month) as integer) as year,
    s.team_name, s.rep_key, s.tier,
    s.calls, s.meetings_in_person, s.meetings_phone, s.meetings_video, s.emails, s.demos, s.tasks, s.notes,
    s.meetings, s.activities,
    cast(round(cast(s.hours as numeric(38,12)), 6) as double precision) as hours,
    s.companies_worked, s.deals_worked,
    s.deals_won,
    cast(s.revenue_won_home as numeric(18,2)) as revenue_won_home,
    cast(round(cast(cast(s.meetings as double precision) / nullif(s.deals_won, 0) as numeric(38,12)), 6) as double precision) as meetings_per_won_deal,
    cast(round(cast(s.hours / nullif(s.deals_won, 0) as numeric(38,12)), 6) as double precision) as hours_per_won_deal,
    cast(round(cast(cast(s.activities as double precision) / nullif(s.deals_won, 0) as numeric(38,12)), 6) as double precision) as activities_per_won_deal,
    cast(round(cast(s.rep_hours as numeric(38,12)), 6) as double precision) as rep_total_hours,
    cast(round(cast(s.hours / nullif(s.rep_hours, 0) as numeric(38,12)), 6) as double precision) as effort_share,
    seg.planned_share,
    cast(round(cast(cast(s.revenue_won_home as double precision) / nullif(cast(s.rep_revenue_home as double precision), 0) as numeric(38,12)), 6) as double precision) as revenue_share,
    case
        when s.rep_hours is null or s.rep_hours = 0 or seg.planned_share is null then null
        when s.hours / s.rep_hours - seg.planned_share > st.threshold + 1e-9 then 'over-invested'
        when seg.planned_share - s.hours / s.rep_hours > st.threshold + 1e-9 then 'under-invested'
        else 'on plan'
    end as effort_flag
from shares s
cross join settings st
left join staging.cfg_segments seg on seg.tier = s.tier
