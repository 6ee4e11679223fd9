-- Every deal's full state (stage, amount, probability, expected close date, owner) as periods during which nothing
-- changed: valid_from = a change (stage entry or property change), valid_to = the next one (null = still so).
-- Built once from the stage and property histories so a daily snapshot is a single range join, not a lookup per
-- day and deal. A field the CRM kept no history for takes its current value (probability: the current one while
-- the deal is in its current stage, else the stage's default). Amounts in the home currency (cfg_fx_rates).
with timeline as (
    select s.deal_key, s.entered_at as t, s.stage_id, s.stage_order, s.is_closed, s.entered_at as stage_entered_at,
           s.prev_stage_order, s.probability_before_entry,
           cast(null as text) as amount, cast(null as text) as probability, cast(null as text) as close_date,
           cast(null as text) as owner_id
    from core.fct_deal_stages s
    union all
    select p.deal_key, p.valid_from, null, null, null, null, null, null,
           case when p.property = 'amount' then p.value end,
           case when p.property = 'probability' then p.value end,
           case when p.property = 'close_date' then p.value end,
           case when p.property = 'owner_id' then p.value end
    from core.deal_property_periods p
    join core.fct_deals d on d.deal_key = p.deal_key
    where p.property in ('amount', 'probability', 'close_date', 'owner_id')
),
grouped as (
    -- the k-th change of each field so far (peers at the same instant included): a "last value" group
    select timeline.*,
        count(stage_entered_at) over w as g_stage,
        count(amount) over w as g_amount,
        count(probability) over w as g_probability,
        count(close_date) over w as g_close_date,
        count(owner_id) over w as g_owner
    from timeline
    window w as (partition by deal_key order by t)
),
filled as (
    select deal_key, t,
        max(stage_id) over (partition by deal_key, g_stage) as stage_id,
        max(stage_order) over (partition by deal_key, g_stage) as stage_order,
        bool_or(is_closed) over (partition by deal_key, g_stage) as is_closed,
        max(stage_entered_at) over (partition by deal_key, g_stage) as stage_entered_at,
        max(prev_stage_order) over (partition by deal_key, g_stage) as prev_stage_order,
        max(probability_before_entry) over (partition by deal_key, g_stage) as probability_before_entry,
        max(amount) over (partition by deal_key, g_amount) as amount,
        max(probability) over (partition by deal_key, g_probability) as probability,
        max(close_date) over (partition by deal_key, g_close_date) as close_date,
        max(owner_id) over (partition by deal_key, g_owner) as owner_id
    from grouped
),
points as (
    select deal_key, t, max(stage_id) as stage_id, max(stage_order) as stage_order, bool_or(is_closed) as is_closed,
           max(stage_entered_at) as stage_entered_at, max(prev_stage_order) as prev_stage_order,
           max(probability_before_entry) as probability_before_entry,
           max(amount) as amount, max(probability) as probability, max(close_date) as close_date, max(owner_id) as owner_id
    from filled
    group by deal_key, t
),
periods as (
    select
        deal_key,
        t as valid_from,
        lead(t) over (partition by deal_key order by t) as valid_to,
        stage_id, stage_order, is_closed, stage_entered_at, prev_stage_order, probability_before_entry,
        amount, probability, close_date, owner_id
    from points
),
resolved as (
select
    p.deal_key,
    p.valid_from,
    p.valid_to,
    p.stage_id,
    p.stage_order,
    coalesce(p.is_closed, false) as is_closed,
    p.stage_entered_at,
    coalesce(rx.rep_key, case when p.owner_id is not null then d.source_system || ':' || p.owner_id end, d.rep_key) as rep_key,
    coalesce(p.owner_id, d.owner_id) as owner_id,
    d.source_system,
    d.pipeline_id,
    d.company_key,
    d.tier,
    case when p.amount is not null then cast(p.amount as double precision) * coalesce(fx.rate_to_home, 1)
         else cast(d.amount_home as double precision) end as amount_home,
    coalesce(cast(p.probability as double precision),
             case when p.stage_id = d.stage_id then d.probability end,
             ps.probability) as probability,
    ps.probability as stage_probability,
    sc.calibrated_win_rate,
    coalesce(cast(cast(p.close_date as timestamptz) at time zone 'UTC' as date),
             cast(d.close_date at time zone 'UTC' as date)) as expected_close_date,
    cs.expected_days,
    (p.prev_stage_order is not null and p.stage_order > p.prev_stage_order and p.probability_before_entry is not null
        and coalesce(cast(p.probability as double precision),
                     case when p.stage_id = d.stage_id then d.probability end, ps.probability) < p.probability_before_entry
    ) as probability_inconsistent
from periods p
join core.fct_deals d on d.deal_key = p.deal_key
left join staging.deals sd on sd.source_system = d.source_system and sd.deal_id = d.deal_id
left join staging.cfg_fx_rates fx on upper(fx.currency) = upper(sd.currency)
left join core.rep_crosswalk rx on rx.source_system = d.source_system and rx.owner_id = p.owner_id
left join staging.pipeline_stages ps
    on ps.source_system = d.source_system and ps.pipeline_id = d.pipeline_id and ps.stage_id = p.stage_id
left join staging.cfg_stages cs on cs.pipeline_id = d.pipeline_id and cs.stage_id = p.stage_id
left join core.stage_calibration sc
    on sc.source_system = d.source_system and sc.pipeline_id = d.pipeline_id and sc.stage_id = p.stage_id
)
select
    deal_key, valid_from, valid_to, stage_id, stage_order, is_closed, stage_entered_at,
    cast(stage_entered_at at time zone 'UTC' as date) as stage_entered_date,
    rep_key, owner_id, source_system, pipeline_id, company_key, tier,
    cast(round(cast(amount_home as numeric(18,6)), 2) as numeric(18,2)) as amount_home,
    cast(round(cast(probability as numeric(38,12)), 6) as double precision) as probability,
    cast(round(cast(stage_probability as numeric(38,12)), 6) as double precision) as stage_probability,
    calibrated_win_rate,
    cast(round(cast(amount_home * probability as numeric(18,6)), 2) as numeric(18,2)) as weighted_amount_home,
    cast(round(cast(amount_home * calibrated_win_rate as numeric(18,6)), 2) as numeric(18,2)) as weighted_amount_calibrated_home,
    expected_close_date, expected_days, probability_inconsistent
from resolved
