-- Stage velocity per quarter x pipeline x open stage, following the stays that began in the quarter: entries, exits
-- forward (to a later stage or won), back (to an earlier stage), to lost, still there at the as-of; median and p75
-- days in stage, where stays still open count up to the as-of (censored) and are counted apart.
with stays as (
    select
        s.*,
        cast(date_trunc('quarter', s.entered_at at time zone 'UTC') as date) as quarter,
        -- the difference of the UTC wall-clock times: the same interval, but DuckDB subtracts plain timestamps
        -- directly where timestamptz goes through its calendar library (4x slower)
        extract(epoch from ((coalesce(s.exited_at, ao.as_of_at) at time zone 'UTC') - (s.entered_at at time zone 'UTC'))) / 86400.0 as days_in_stage
    from core.fct_deal_stages s
    cross join core.as_of ao
    where not s.is_closed and s.entered_at <= ao.as_of_at
)
select
    st.quarter,
    cast(extract(year from st.quarter) as integer) as year,
    st.source_system,
    st.pipeline_id,
    st.stage_id,
    min(ps.stage_label) as stage_label,
    min(st.stage_order) as stage_order,
    count(*) as entries,
    count(distinct st.deal_key) as deals_entered,
    count(*) filter (where st.exit_kind in ('forward', 'won')) as exits_forward,
    count(*) filter (where st.exit_kind = 'won') as exits_to_won,
    count(*) filter (where st.exit_kind = 'back') as exits_back,
    count(*) filter (where st.exit_kind = 'lost') as exits_to_lost,
    count(*) filter (where st.exit_kind is null) as still_open,
    cast(round(cast(cast(count(*) filter (where st.exit_kind in ('forward', 'won')) as double precision) / nullif(count(*), 0) as numeric(38,12)), 6) as double precision) as forward_rate,
    cast(round(cast(cast(count(*) filter (where st.exit_kind = 'lost') as double precision) / nullif(count(*), 0) as numeric(38,12)), 6) as double precision) as lost_rate,
    cast(round(cast(cast(percentile_cont(0.5) within group (order by st.days_in_stage) as double precision) as numeric(38,12)), 6) as double precision) as median_days_in_stage,
    cast(round(cast(cast(percentile_cont(0.75) within group (order by st.days_in_stage) as double precision) as numeric(38,12)), 6) as double precision) as p75_days_in_stage,
    min(cs.expected_days) as expected_days
from stays st
left join staging.pipeline_stages ps
    on ps.source_system = st.source_system and ps.pipeline_id = st.pipeline_id and ps.stage_id = st.stage_id
left join staging.cfg_stages cs on cs.pipeline_id = st.pipeline_id and cs.stage_id = st.stage_id
group by st.quarter, st.source_system, st.pipeline_id, st.stage_id
