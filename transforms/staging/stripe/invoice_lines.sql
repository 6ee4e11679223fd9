-- Stripe invoice lines (every page), amounts converted once: invoice currency and home currency (cfg_fx_rates).
-- optional columns: raw_stripe.invoice_lines(description, quantity, subscription_id, period_start, period_end, proration, tax_amount, line_type)
-- optional table: raw_stripe.deleted_objects(object_type, id)
with exponents as (
    select * from (values ('BIF', 0), ('CLP', 0), ('DJF', 0), ('GNF', 0), ('JPY', 0), ('KMF', 0), ('KRW', 0),
        ('MGA', 0), ('PYG', 0), ('RWF', 0), ('UGX', 0), ('VND', 0), ('VUV', 0), ('XAF', 0), ('XOF', 0), ('XPF', 0),
        ('BHD', 3), ('JOD', 3), ('KWD', 3), ('OMR', 3), ('TND', 3)) as t(code, exponent)
), lines as (
    select
        l.*,
        i.customer as customer_id,
        (coalesce(i.deleted, false) or d.id is not null) as invoice_deleted,
        case coalesce(e.exponent, 2) when 0 then 1 when 3 then 1000 else 100 end as divisor
    from raw_stripe.invoice_lines l
    join raw_stripe.invoices i on i.id = l.invoice_id
    left join exponents e on e.code = upper(l.currency)
    left join raw_stripe.deleted_objects d on d.object_type = 'invoices' and d.id = l.invoice_id
)
select
    'stripe' as source_system,
    l.id as invoice_line_id,
    l.invoice_id,
    l.customer_id,
    l.subscription_id,
    l.line_type,
    nullif(trim(l.description), '') as description,
    cast(l.quantity as integer) as quantity,
    upper(l.currency) as currency,
    cast(l.amount as numeric(20,0)) / l.divisor as amount,
    cast(round(cast(cast(l.amount as numeric(20,0)) / l.divisor * fx.rate_to_home as numeric(18,6)), 2) as numeric(18,2)) as amount_home,
    cast(coalesce(l.tax_amount, 0) as numeric(20,0)) / l.divisor as tax_amount,
    staging.safe_ts(cast(l.period_start as text)) as period_start,
    staging.safe_ts(cast(l.period_end as text)) as period_end,
    coalesce(l.proration, false) as is_proration,
    l.invoice_deleted as is_deleted
from lines l
left join staging.cfg_fx_rates fx on upper(fx.currency) = upper(l.currency)
