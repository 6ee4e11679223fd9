-- Pipeline snapshot: one row per day x deal open at the end of that day (UTC), reconstructed from the stage history
-- and the property history (amount, probability, close date, owner as they were that day; the current value when
-- the CRM kept no history). Days: cfg_settings pipeline_snapshot_from .. pipeline_snapshot_to when set (the
-- partitioned pipeline sets one day), else every day from the first deal's creation to the as-of.
-- Weighted value = amount x CRM probability, and x the calibrated stage-to-win rate beside it. Stale: days in the
-- current stage > expected_days x stale_factor. probability_inconsistent: the deal advanced to its current stage
-- yet its probability is lower than before it entered it.
with settings as (
    select
        cast(max(case when key = 'pipeline_snapshot_from' and value <> '' then value end) as date) as snap_from,
        cast(max(case when key = 'pipeline_snapshot_to' and value <> '' then value end) as date) as snap_to,
        coalesce(cast(max(case when key = 'stale_factor' then value end) as double precision), 2.0) as stale_factor
    from staging.cfg_settings
),
bounds as (
    select
        coalesce(s.snap_from, (select cast(min(created_at) at time zone 'UTC' as date) from core.fct_deals)) as lo,
        least(coalesce(s.snap_to, ao.as_of_date), ao.as_of_date) as hi
    from settings s cross join core.as_of ao
),
days as (
    select cast(g.d as date) as snapshot_date, cast(g.d as date) + 1 as next_day
    from bounds b
    join lateral generate_series(cast(b.lo as timestamp), cast(b.hi as timestamp), interval '1 day') as g(d) on true
),
instants as (
    -- end of day D = start of D + 1, UTC
    select snapshot_date, cast(cast(next_day as timestamp) at time zone 'UTC' as timestamptz) as cutoff
    from days
),
deal_days as (
    select i.snapshot_date, i.cutoff, d.*
    from instants i
    join core.fct_deals d
      on d.created_at < i.cutoff
),
staged as (
    select dd.*, st.stage_id as stage_at, st.stage_order as stage_order_at, st.entered_at as stage_entered_at,
           st.is_closed as stage_closed_at, st.prev_stage_order, st.probability_before_entry
    from deal_days dd
    join core.fct_deal_stages st
      on st.deal_key = dd.deal_key and st.entered_at < dd.cutoff
     and (st.exited_at is null or st.exited_at >= dd.cutoff)
),
open_days as (
    select * from staged where not stage_closed_at
),
props as (
    select
        o.*,
        (select max(p.value) from core.deal_property_periods p
         where p.deal_key = o.deal_key and p.property = 'amount'
           and p.valid_from < o.cutoff and (p.valid_to is null or p.valid_to >= o.cutoff)) as amount_then,
        (select max(p.value) from core.deal_property_periods p
         where p.deal_key = o.deal_key and p.property = 'probability'
           and p.valid_from < o.cutoff and (p.valid_to is null or p.valid_to >= o.cutoff)) as probability_then,
        (select max(p.value) from core.deal_property_periods p
         where p.deal_key = o.deal_key and p.property = 'close_date'
           and p.valid_from < o.cutoff and (p.valid_to is null or p.valid_to >= o.cutoff)) as close_date_then,
        (select max(p.value) from core.deal_property_periods p
         where p.deal_key = o.deal_key and p.property = 'owner_id'
           and p.valid_from < o.cutoff and (p.valid_to is null or p.valid_to >= o.cutoff)) as owner_then
    from open_days o
),
valued as (
    select
        p.snapshot_date, p.cutoff, p.deal_key, p.source_system, p.pipeline_id, p.stage_at as stage_id, p.stage_order_at as stage_order,
        p.stage_entered_at, p.tier, p.company_key, p.prev_stage_order, p.probability_before_entry,
        coalesce(rx.rep_key, case when p.owner_then is not null then p.source_system || ':' || p.owner_then end, p.rep_key) as rep_key,
        coalesce(p.owner_then, p.owner_id) as owner_id_then,
        case when p.amount_then is not null
             then cast(p.amount_then as double precision) * coalesce(fx.rate_to_home, 1)
             else cast(p.amount_home as double precision) end as amount_home,
        coalesce(cast(p.probability_then as double precision),
                 case when p.stage_at = p.stage_id then p.probability end,
                 ps.probability) as probability,
        ps.probability as stage_probability,
        sc.calibrated_win_rate,
        coalesce(cast(cast(p.close_date_then as timestamptz) at time zone 'UTC' as date),
                 cast(p.close_date at time zone 'UTC' as date)) as expected_close_date,
        cs.expected_days,
        p.snapshot_date - cast(p.stage_entered_at at time zone 'UTC' as date) as days_in_stage
    from props p
    left join staging.deals sd on sd.source_system = p.source_system and sd.deal_id = p.deal_id
    left join staging.cfg_fx_rates fx on upper(fx.currency) = upper(sd.currency)
    left join core.rep_crosswalk rx on rx.source_system = p.source_system and rx.owner_id = p.owner_then
    left join staging.pipeline_stages ps
        on ps.source_system = p.source_system and ps.pipeline_id = p.pipeline_id and ps.stage_id = p.stage_at
    left join staging.cfg_stages cs on cs.pipeline_id = p.pipeline_id and cs.stage_id = p.stage_at
    left join core.stage_calibration sc
        on sc.source_system = p.source_system and sc.pipeline_id = p.pipeline_id and sc.stage_id = p.stage_at
)
select
    v.snapshot_date,
    cast(extract(isoyear from v.snapshot_date) as integer) as iso_year,
    cast(extract(week from v.snapshot_date) as integer) as iso_week,
    cast(date_trunc('month', v.snapshot_date) as date) as month,
    cast(date_trunc('quarter', v.snapshot_date) as date) as quarter,
    v.deal_key,
    v.rep_key,
    coalesce(
        (select min(h.team_name) from core.rep_team_history h
         where h.source_system = v.source_system and h.owner_id = v.owner_id_then
           and (h.valid_from is null or h.valid_from < v.cutoff)
           and (h.valid_to is null or h.valid_to >= v.cutoff)),
        'unknown'
    ) as team_name,
    v.company_key,
    v.tier,
    v.pipeline_id,
    v.stage_id,
    v.stage_order,
    v.stage_entered_at,
    cast(v.days_in_stage as integer) as days_in_stage,
    v.expected_days,
    (v.expected_days is not null and v.days_in_stage > v.expected_days * st.stale_factor) as is_stale,
    cast(round(cast(v.amount_home as numeric(18,6)), 2) as numeric(18,2)) as amount_home,
    cast(round(cast(v.probability as numeric(38,12)), 6) as double precision) as probability,
    cast(round(cast(v.stage_probability as numeric(38,12)), 6) as double precision) as stage_probability,
    v.calibrated_win_rate,
    cast(round(cast(v.amount_home * v.probability as numeric(18,6)), 2) as numeric(18,2)) as weighted_amount_home,
    cast(round(cast(v.amount_home * v.calibrated_win_rate as numeric(18,6)), 2) as numeric(18,2)) as weighted_amount_calibrated_home,
    v.expected_close_date,
    (v.prev_stage_order is not null and v.stage_order > v.prev_stage_order
        and v.probability_before_entry is not null and v.probability < v.probability_before_entry) as probability_inconsistent
from valued v
cross join settings st
