-- Pipeline snapshot: one row per day x deal open at the end of that day (UTC), reconstructed from the stage history
-- and the property history (amount, probability, close date, owner as they were that day; the current value when
-- the CRM kept no history), through core.deal_state_periods. Days: cfg_settings pipeline_snapshot_from ..
-- pipeline_snapshot_to when set (the partitioned pipeline sets one day), else every day from the first deal's
-- creation to the as-of. Weighted value = amount x CRM probability, and x the calibrated stage-to-win rate beside
-- it. Stale: days in the current stage > expected_days x stale_factor. probability_inconsistent: the deal advanced
-- to its current stage yet its probability is lower than before it entered it.
-- unique: (snapshot_date, deal_key)
with settings as (
    select
        cast(max(case when key = 'pipeline_snapshot_from' and value <> '' then value end) as date) as snap_from,
        cast(max(case when key = 'pipeline_snapshot_to' and value <> '' then value end) as date) as snap_to,
        coalesce(cast(max(case when key = 'stale_factor' then value end) as double precision), 2.0) as stale_factor
    from staging.cfg_settings
),
bounds as (
    -- the days to snapshot (a partition run of pipelines/pipeline_snapshot.py puts its own day here)
    select
        coalesce(s.snap_from, (select cast(min(created_at) at time zone 'UTC' as date) from core.fct_deals)) as lo,
        least(coalesce(s.snap_to, ao.as_of_date), ao.as_of_date) as hi
    from settings s cross join core.as_of ao
),
instants as (
    -- end of day D = start of D + 1, UTC
    select cast(g.d as date) as snapshot_date,
           cast(cast(cast(g.d as date) + 1 as timestamp) at time zone 'UTC' as timestamptz) as cutoff,
           cast(extract(isoyear from cast(g.d as date)) as integer) as iso_year,
           cast(extract(week from cast(g.d as date)) as integer) as iso_week,
           cast(date_trunc('month', cast(g.d as date)) as date) as month,
           cast(date_trunc('quarter', cast(g.d as date)) as date) as quarter
    from bounds b
    join lateral generate_series(cast(b.lo as timestamp), cast(b.hi as timestamp), interval '1 day') as g(d) on true
),
owner_days as (
    -- team of every CRM user with a team history on every snapshot day ('unknown' on a day no period covers; small:
    -- users x days), numbered so that the days of one unchanged team form one run
    select ot.*,
           row_number() over (partition by ot.source_system, ot.owner_id order by ot.snapshot_date)
           - row_number() over (partition by ot.source_system, ot.owner_id, ot.team_name order by ot.snapshot_date) as run
    from (
        select i.snapshot_date, u.source_system, u.owner_id,
               coalesce(min(th.team_name), 'unknown') as team_name
        from instants i
        cross join (select distinct source_system, owner_id from core.rep_team_history) u
        left join core.rep_team_history th
          on th.source_system = u.source_system and th.owner_id = u.owner_id
         and coalesce(th.valid_from, cast('1900-01-01 00:00:00+00' as timestamptz)) < i.cutoff
         and coalesce(th.valid_to, cast('9999-12-31 00:00:00+00' as timestamptz)) >= i.cutoff
        group by i.snapshot_date, u.source_system, u.owner_id
    ) ot
),
owner_spans as (
    -- the same as day spans: every snapshot day of such a user lies in exactly one span
    select source_system, owner_id, team_name, min(snapshot_date) as span_from, max(snapshot_date) as span_to
    from owner_days
    group by source_system, owner_id, team_name, run
),
open_periods as (
    -- a period is in force at the end of day D when valid_from < D + 1 <= valid_to, i.e. for D from the UTC date of
    -- valid_from to the day before the UTC date of valid_to: each period is expanded to its days, no range join
    select p.*,
           greatest(cast(p.valid_from at time zone 'UTC' as date), b.lo) as first_day,
           least(coalesce(cast(p.valid_to at time zone 'UTC' as date) - 1, b.hi), b.hi) as last_day
    from core.deal_state_periods p
    cross join bounds b
    where p.stage_id is not null and not p.is_closed
      and p.valid_from < cast(cast(b.hi + 1 as timestamp) at time zone 'UTC' as timestamptz)
      and (p.valid_to is null or p.valid_to >= cast(cast(b.lo + 1 as timestamp) at time zone 'UTC' as timestamptz))
),
team_pieces as (
    -- each period cut where its owner's team changes (a user without team history: one piece, team unknown), so
    -- the team is decided per piece, before the days are generated
    select o.*, coalesce(s.team_name, 'unknown') as team_name,
           greatest(o.first_day, coalesce(s.span_from, o.first_day)) as piece_from,
           least(o.last_day, coalesce(s.span_to, o.last_day)) as piece_to,
           o.expected_days * st.stale_factor as stale_after_days
    from open_periods o
    cross join settings st
    left join owner_spans s
      on s.source_system = o.source_system and s.owner_id = o.owner_id
     and s.span_from <= o.last_day and s.span_to >= o.first_day
),
open_days as (
    select cast(g.d as date) as snapshot_date, o.*
    from team_pieces o
    join lateral generate_series(cast(o.piece_from as timestamp), cast(o.piece_to as timestamp), interval '1 day') as g(d) on true
)
select
    o.snapshot_date,
    i.iso_year,
    i.iso_week,
    i.month,
    i.quarter,
    o.deal_key,
    o.rep_key,
    o.team_name,
    o.company_key,
    o.tier,
    o.pipeline_id,
    o.stage_id,
    o.stage_order,
    o.stage_entered_at,
    cast(o.snapshot_date - o.stage_entered_date as integer) as days_in_stage,
    o.expected_days,
    (o.expected_days is not null and o.snapshot_date - o.stage_entered_date > o.stale_after_days) as is_stale,
    o.amount_home,
    o.probability,
    o.stage_probability,
    o.calibrated_win_rate,
    o.weighted_amount_home,
    o.weighted_amount_calibrated_home,
    o.expected_close_date,
    o.probability_inconsistent
from open_days o
-- the calendar columns come from the (few) days, not per row
join instants i on i.snapshot_date = o.snapshot_date
