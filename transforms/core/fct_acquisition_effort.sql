-- Pre-acquisition sales effort: activities on companies that were not yet customers when they happened (never
-- acquired, or before acquired_at), up to the as-of, valued at the rep's loaded hourly cost of that day: the rep
-- cost files' row (staging.rep_costs, by rep email, valid_from..valid_to inclusive), else the sales model file's
-- (cfg_rep_costs, "used until the cost-inputs files say otherwise"), else cfg_settings default_hourly_cost.
with settings as (
    select cast(max(case when key = 'default_hourly_cost' then value end) as double precision) as default_hourly_cost
    from staging.cfg_settings
),
rep_costs as (
    -- one cost per rep, source and period (overlapping rows of one source: the highest cost), keyed by rep_key so
    -- the activities meet one small table instead of dim_rep and then the cost rows
    select r.rep_key, rc.priority, rc.valid_from, rc.valid_to, max(rc.hourly_cost) as hourly_cost
    from (
        select rep_email, 1 as priority, cast(valid_from as date) as valid_from, cast(valid_to as date) as valid_to,
               cast(hourly_cost as double precision) as hourly_cost
        from staging.rep_costs
        union all
        select lower(rep_email), 2, cast(valid_from as date), cast(valid_to as date),
               cast(hourly_cost as double precision)
        from staging.cfg_rep_costs
    ) rc
    join core.dim_rep r on r.email = rc.rep_email
    group by r.rep_key, rc.priority, rc.valid_from, rc.valid_to
),
companies as (
    -- acquisition instant and channel per company, joined to the activities once
    select c.company_key, c.acquired_at, coalesce(ch.acquisition_channel, 'UNKNOWN') as channel
    from core.dim_company c
    left join core.company_channel ch on ch.company_key = c.company_key
),
effort as (
    select
        a.activity_key,
        a.occurred_at,
        a.occurred_date as activity_date,
        a.rep_key,
        a.team_name,
        a.company_key,
        a.tier,
        c.channel,
        a.hours
    from core.fct_activities a
    cross join core.as_of ao
    join companies c on c.company_key = a.company_key
    where a.occurred_at <= ao.as_of_at
      and (c.acquired_at is null or a.occurred_at < c.acquired_at)
),
costed as (
    select
        e.*,
        coalesce(rc.hourly_cost, s.default_hourly_cost, 0) as hourly_cost,
        -- the cost files' row before the sales model's
        row_number() over (partition by e.activity_key order by rc.priority, rc.hourly_cost desc) as cost_rank
    from effort e
    cross join settings s
    left join rep_costs rc
        on rc.rep_key = e.rep_key
       and coalesce(rc.valid_from, cast('1900-01-01' as date)) <= e.activity_date
       and e.activity_date <= coalesce(rc.valid_to, cast('9999-12-31' as date))
)
select
    activity_key, occurred_at, activity_date, rep_key, team_name, company_key, tier, channel, hours, hourly_cost,
    cast(round(cast(hours * hourly_cost as numeric(18,6)), 2) as numeric(18,2)) as cost_home
from costed
where cost_rank = 1
