-- Every deal's full state (stage, amount, probability, expected close date, owner) as periods during which nothing
-- changed: valid_from = a change (stage entry or property change), valid_to = the next one (null = still so).
-- Built once from the stage and property histories so a daily snapshot is a single range join, not a lookup per
-- day and deal. A field the CRM kept no history for takes its current value (probability: the current one while
-- the deal is in its current stage, else the stage's default). Amounts in the home currency (cfg_fx_rates).
-- One sort: each period carries the instant of the latest change of each field (a running max), and the values are
-- joined back by that instant; changes at the same instant merge (max), the way peers of a window frame do.
-- indexes: (deal_key, valid_from); (valid_to)
with deals as (
    select d.deal_key, d.source_system, d.stage_id, d.probability, d.pipeline_id, d.company_key, d.tier, d.rep_key,
           -- no currency = the home currency; a currency missing from cfg_fx_rates gives null, as in staging
           d.owner_id, d.amount_home, case when sd.currency is null then 1 else fx.rate_to_home end as rate_to_home,
           cast(d.close_date at time zone 'UTC' as date) as close_date
    from core.fct_deals d
    left join staging.deals sd on sd.source_system = d.source_system and sd.deal_id = d.deal_id
    left join staging.cfg_fx_rates fx on upper(fx.currency) = upper(sd.currency)
),
stage_points as (
    select deal_key, entered_at, max(stage_id) as stage_id, max(stage_order) as stage_order,
           bool_or(is_closed) as is_closed, max(prev_stage_order) as prev_stage_order,
           max(probability_before_entry) as probability_before_entry,
           cast(entered_at at time zone 'UTC' as date) as entered_date
    from core.fct_deal_stages
    group by deal_key, entered_at
),
prop_points as (
    select p.deal_key, p.valid_from,
           max(case when p.property = 'amount' then p.value end) as amount,
           max(case when p.property = 'probability' then p.value end) as probability,
           max(case when p.property = 'close_date' then p.value end) as close_date,
           max(case when p.property = 'owner_id' then p.value end) as owner_id
    from core.deal_property_periods p
    where p.property in ('amount', 'probability', 'close_date', 'owner_id')
      and exists (select 1 from core.fct_deals d where d.deal_key = p.deal_key)
    group by p.deal_key, p.valid_from
),
points as (
    select deal_key, t, max(stage_at) as stage_at, max(amount_at) as amount_at, max(probability_at) as probability_at,
           max(close_date_at) as close_date_at, max(owner_at) as owner_at
    from (
        select deal_key, entered_at as t, entered_at as stage_at, cast(null as timestamptz) as amount_at,
               cast(null as timestamptz) as probability_at, cast(null as timestamptz) as close_date_at,
               cast(null as timestamptz) as owner_at
        from stage_points
        union all
        select deal_key, valid_from, null,
               case when amount is not null then valid_from end,
               case when probability is not null then valid_from end,
               case when close_date is not null then valid_from end,
               case when owner_id is not null then valid_from end
        from prop_points
    ) changes
    group by deal_key, t
),
periods as (
    select deal_key, t as valid_from, lead(t) over w as valid_to,
           max(stage_at) over w as stage_at, max(amount_at) over w as amount_at,
           max(probability_at) over w as probability_at, max(close_date_at) over w as close_date_at,
           max(owner_at) over w as owner_at
    from points
    window w as (partition by deal_key order by t rows between unbounded preceding and current row)
),
resolved as (
select
    p.deal_key,
    p.valid_from,
    p.valid_to,
    s.stage_id,
    s.stage_order,
    coalesce(s.is_closed, false) as is_closed,
    s.entered_at as stage_entered_at,
    s.entered_date as stage_entered_date,
    coalesce(rx.rep_key, case when po.owner_id is not null then d.source_system || ':' || po.owner_id end, d.rep_key) as rep_key,
    coalesce(po.owner_id, d.owner_id) as owner_id,
    d.source_system,
    d.pipeline_id,
    d.company_key,
    d.tier,
    case when pa.amount is not null then cast(pa.amount as double precision) * d.rate_to_home
         else cast(d.amount_home as double precision) end as amount_home,
    coalesce(cast(pp.probability as double precision),
             case when s.stage_id = d.stage_id then d.probability end,
             ps.probability) as probability,
    ps.probability as stage_probability,
    sc.calibrated_win_rate,
    coalesce(cast(cast(pc.close_date as timestamptz) at time zone 'UTC' as date), d.close_date) as expected_close_date,
    cs.expected_days,
    s.prev_stage_order,
    s.probability_before_entry
from periods p
join deals d on d.deal_key = p.deal_key
left join stage_points s on s.deal_key = p.deal_key and s.entered_at = p.stage_at
left join prop_points pa on pa.deal_key = p.deal_key and pa.valid_from = p.amount_at
left join prop_points pp on pp.deal_key = p.deal_key and pp.valid_from = p.probability_at
left join prop_points pc on pc.deal_key = p.deal_key and pc.valid_from = p.close_date_at
left join prop_points po on po.deal_key = p.deal_key and po.valid_from = p.owner_at
left join core.rep_crosswalk rx on rx.source_system = d.source_system and rx.owner_id = po.owner_id
left join staging.pipeline_stages ps
    on ps.source_system = d.source_system and ps.pipeline_id = d.pipeline_id and ps.stage_id = s.stage_id
left join staging.cfg_stages cs on cs.pipeline_id = d.pipeline_id and cs.stage_id = s.stage_id
left join core.stage_calibration sc
    on sc.source_system = d.source_system and sc.pipeline_id = d.pipeline_id and sc.stage_id = s.stage_id
)
select
    deal_key, valid_from, valid_to, stage_id, stage_order, is_closed, stage_entered_at, stage_entered_date,
    rep_key, owner_id, source_system, pipeline_id, company_key, tier,
    cast(round(cast(amount_home as numeric(18,6)), 2) as numeric(18,2)) as amount_home,
    cast(round(cast(probability as numeric(38,12)), 6) as double precision) as probability,
    cast(round(cast(stage_probability as numeric(38,12)), 6) as double precision) as stage_probability,
    calibrated_win_rate,
    cast(round(cast(amount_home * probability as numeric(18,6)), 2) as numeric(18,2)) as weighted_amount_home,
    cast(round(cast(amount_home * calibrated_win_rate as numeric(18,6)), 2) as numeric(18,2)) as weighted_amount_calibrated_home,
    expected_close_date, expected_days,
    -- (a close is no advance: a lost deal's probability falls to 0 by definition)
    (not is_closed and prev_stage_order is not null and stage_order > prev_stage_order
        and probability_before_entry is not null and probability < probability_before_entry) as probability_inconsistent
from resolved
