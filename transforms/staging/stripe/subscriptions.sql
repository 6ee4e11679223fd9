-- Stripe subscriptions (status=all, canceled included); the monthly amount sums the items (unit amount x quantity),
-- normalised to a month from the price's interval, in the subscription currency and the home currency.
-- optional columns: raw_stripe.subscriptions(canceled_at, ended_at, current_period_start, current_period_end, start_date)
-- optional table: raw_stripe.subscriptions__items(_dlt_parent_id, _dlt_list_idx, nickname, unit_amount, quantity, interval, interval_count)
with exponents as (
    select * from (values ('BIF', 0), ('CLP', 0), ('DJF', 0), ('GNF', 0), ('JPY', 0), ('KMF', 0), ('KRW', 0),
        ('MGA', 0), ('PYG', 0), ('RWF', 0), ('UGX', 0), ('VND', 0), ('VUV', 0), ('XAF', 0), ('XOF', 0), ('XPF', 0),
        ('BHD', 3), ('JOD', 3), ('KWD', 3), ('OMR', 3), ('TND', 3)) as t(code, exponent)
), items as (
    select
        it._dlt_parent_id,
        max(case when it._dlt_list_idx = 0 then it.nickname end) as plan_name,
        sum(cast(it.unit_amount as numeric(20,0)) * coalesce(cast(it.quantity as numeric(20,0)), 1)
            * case it.interval when 'day' then 365.0 / 12 when 'week' then 52.0 / 12 when 'year' then 1.0 / 12
                               else 1.0 end
            / coalesce(nullif(cast(it.interval_count as numeric(20,0)), 0), 1)) as monthly_minor,
        sum(coalesce(cast(it.quantity as integer), 1)) as quantity
    from raw_stripe.subscriptions__items it
    group by it._dlt_parent_id
)
select
    'stripe' as source_system,
    s.id as subscription_id,
    s.customer as customer_id,
    s.status,
    upper(s.currency) as currency,
    it.plan_name,
    it.quantity,
    it.monthly_minor / case coalesce(e.exponent, 2) when 0 then 1 when 3 then 1000 else 100 end as monthly_amount,
    cast(round(cast(it.monthly_minor / case coalesce(e.exponent, 2) when 0 then 1 when 3 then 1000 else 100 end
                    * fx.rate_to_home as numeric(18,6)), 2) as numeric(18,2)) as monthly_amount_home,
    staging.safe_ts(cast(s.created as text)) as created_at,
    staging.safe_ts(cast(s.start_date as text)) as start_date,
    staging.safe_ts(cast(s.current_period_start as text)) as current_period_start,
    staging.safe_ts(cast(s.current_period_end as text)) as current_period_end,
    staging.safe_ts(cast(s.canceled_at as text)) as canceled_at,
    staging.safe_ts(cast(s.ended_at as text)) as ended_at,
    coalesce(s.deleted, false) as is_deleted
from raw_stripe.subscriptions s
left join items it on it._dlt_parent_id = s._dlt_id
left join exponents e on e.code = upper(s.currency)
left join staging.cfg_fx_rates fx on upper(fx.currency) = upper(s.currency)
