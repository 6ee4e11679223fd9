-- Sales effort per month x rep x segment against the result: activity counts by type, hours, companies and deals
-- worked, deals and revenue won (credited to the team of the rep at close), effort per won deal, and the segment's
-- share of the rep's hours against the planned share (sales_model.yaml). Team rows (rep_key = 'all') and company rows
-- (team_name = 'all', rep_key = 'all') let a rep be read against the team.
-- Shape: the activities are aggregated once per rep row (additive counts) and once per distinct (rep row, company)
-- and (rep row, deal) pair; team and company rows add up the rep rows, and count their distinct companies and deals
-- from those pairs, never from the activities again (distinct counts over grouping sets cost 20x more); one final
-- sum over every level's parts.
with settings as (
    select coalesce(cast(max(case when key = 'effort_flag_threshold' then value end) as double precision), 0.10) as threshold
    from staging.cfg_settings
),
as_of as (
    select as_of_at from core.as_of
),
rep_activity as (
    select
        cast(date_trunc('month', a.occurred_date) as date) as month,
        a.team_name, coalesce(a.rep_key, 'unassigned') as rep_key, a.tier,
        count(*) filter (where a.activity_type = 'call') as calls,
        count(*) filter (where a.activity_type = 'meeting_in_person') as meetings_in_person,
        count(*) filter (where a.activity_type = 'meeting_phone') as meetings_phone,
        count(*) filter (where a.activity_type = 'meeting_video') as meetings_video,
        count(*) filter (where a.activity_type = 'email') as emails,
        count(*) filter (where a.activity_type = 'demo') as demos,
        count(*) filter (where a.activity_type = 'task') as tasks,
        count(*) filter (where a.activity_type = 'note') as notes,
        count(*) filter (where coalesce(t.is_meeting, false)) as meetings,
        count(*) as activities,
        sum(a.hours) as hours
    from core.fct_activities a
    left join staging.cfg_activity_types t on t.activity_type = a.activity_type
    where a.occurred_at <= (select as_of_at from as_of)
    group by 1, 2, 3, 4
),
rep_companies as (
    select distinct cast(date_trunc('month', a.occurred_date) as date) as month,
           a.team_name, coalesce(a.rep_key, 'unassigned') as rep_key, a.tier, a.company_key
    from core.fct_activities a
    where a.occurred_at <= (select as_of_at from as_of) and a.company_key is not null
),
rep_deals as (
    select distinct cast(date_trunc('month', a.occurred_date) as date) as month,
           a.team_name, coalesce(a.rep_key, 'unassigned') as rep_key, a.tier, a.deal_key
    from core.fct_activities a
    where a.occurred_at <= (select as_of_at from as_of) and a.deal_key is not null
),
team_companies as (
    select distinct month, team_name, tier, company_key from rep_companies
),
team_deals as (
    select distinct month, team_name, tier, deal_key from rep_deals
),
-- (distinct rows, then count: PostgreSQL counts distinct values by sorting each group's)
all_companies as (
    select distinct month, tier, company_key from team_companies
),
all_deals as (
    select distinct month, tier, deal_key from team_deals
),
rep_won as (
    select
        cast(date_trunc('month', d.closed_at at time zone 'UTC') as date) as month,
        d.team_name, coalesce(d.rep_key, 'unassigned') as rep_key, d.tier,
        count(*) as deals_won, sum(coalesce(d.amount_home, 0)) as revenue_won_home
    from core.fct_deals d
    where d.is_won and d.closed_at is not null
    group by 1, 2, 3, 4
),
additive as (
    -- the measures that add up from rep to team to company: activities and wins (0 where a branch has none)
    select month, team_name, rep_key, tier, calls, meetings_in_person, meetings_phone, meetings_video, emails, demos,
           tasks, notes, meetings, activities, hours, 0 as deals_won, cast(0 as numeric(18,2)) as revenue_won_home
    from rep_activity
    union all
    select month, team_name, rep_key, tier, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, deals_won, revenue_won_home
    from rep_won
),
parts as (
    -- every row of the mart at its level (rep; team: rep_key 'all'; company: team_name and rep_key 'all'): the
    -- additive measures at each level, and the companies and deals worked counted from that level's distinct pairs
    select month, team_name, rep_key, tier, calls, meetings_in_person, meetings_phone, meetings_video, emails, demos,
           tasks, notes, meetings, activities, hours, 0 as companies_worked, 0 as deals_worked, deals_won, revenue_won_home
    from additive
    union all
    select month, team_name, 'all', tier, calls, meetings_in_person, meetings_phone, meetings_video, emails, demos,
           tasks, notes, meetings, activities, hours, 0, 0, deals_won, revenue_won_home
    from additive
    union all
    select month, 'all', 'all', tier, calls, meetings_in_person, meetings_phone, meetings_video, emails, demos,
           tasks, notes, meetings, activities, hours, 0, 0, deals_won, revenue_won_home
    from additive
    union all
    select month, team_name, rep_key, tier, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, count(*), 0, 0, 0
    from rep_companies group by month, team_name, rep_key, tier
    union all
    select month, team_name, 'all', tier, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, count(*), 0, 0, 0
    from team_companies group by month, team_name, tier
    union all
    select month, 'all', 'all', tier, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, count(*), 0, 0, 0
    from all_companies group by month, tier
    union all
    select month, team_name, rep_key, tier, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, count(*), 0, 0
    from rep_deals group by month, team_name, rep_key, tier
    union all
    select month, team_name, 'all', tier, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, count(*), 0, 0
    from team_deals group by month, team_name, tier
    union all
    select month, 'all', 'all', tier, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, count(*), 0, 0
    from all_deals group by month, tier
),
agg as (
    select month, team_name, rep_key, tier,
           cast(sum(calls) as bigint) as calls, cast(sum(meetings_in_person) as bigint) as meetings_in_person,
           cast(sum(meetings_phone) as bigint) as meetings_phone, cast(sum(meetings_video) as bigint) as meetings_video,
           cast(sum(emails) as bigint) as emails, cast(sum(demos) as bigint) as demos, cast(sum(tasks) as bigint) as tasks,
           cast(sum(notes) as bigint) as notes, cast(sum(meetings) as bigint) as meetings,
           cast(sum(activities) as bigint) as activities, sum(hours) as hours,
           cast(sum(companies_worked) as bigint) as companies_worked, cast(sum(deals_worked) as bigint) as deals_worked,
           cast(sum(deals_won) as bigint) as deals_won, sum(revenue_won_home) as revenue_won_home
    from parts
    group by month, team_name, rep_key, tier
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
