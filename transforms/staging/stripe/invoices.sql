-- Stripe invoices; amounts from integer minor units to decimals in the invoice currency, by the currency's exponent
-- (Stripe's zero-decimal currencies such as JPY: 0; BHD, JOD, KWD, OMR, TND: 3; every other one: 2).
-- optional columns: raw_stripe.invoices(customer, status, currency, amount_due, amount_paid, total_excluding_tax, status_transitions__paid_at)
-- optional table: raw_stripe.deleted_objects(object_type, id)
with exponents as (
    select * from (values ('BIF', 0), ('CLP', 0), ('DJF', 0), ('GNF', 0), ('JPY', 0), ('KMF', 0), ('KRW', 0),
        ('MGA', 0), ('PYG', 0), ('RWF', 0), ('UGX', 0), ('VND', 0), ('VUV', 0), ('XAF', 0), ('XOF', 0), ('XPF', 0),
        ('BHD', 3), ('JOD', 3), ('KWD', 3), ('OMR', 3), ('TND', 3)) as t(code, exponent)
)
select
    'stripe' as source_system,
    i.id as invoice_id,
    i.customer as customer_id,
    i.status,
    upper(i.currency) as currency,
    case coalesce(e.exponent, 2) when 0 then cast(i.amount_due as numeric(20,0))
         when 3 then cast(i.amount_due as numeric(20,0)) / 1000 else cast(i.amount_due as numeric(20,0)) / 100 end as amount_due,
    case coalesce(e.exponent, 2) when 0 then cast(i.amount_paid as numeric(20,0))
         when 3 then cast(i.amount_paid as numeric(20,0)) / 1000 else cast(i.amount_paid as numeric(20,0)) / 100 end as amount_paid,
    -- after discounts, before tax: what the invoice is worth (null from a raw table that lacks it)
    case coalesce(e.exponent, 2) when 0 then cast(i.total_excluding_tax as numeric(20,0))
         when 3 then cast(i.total_excluding_tax as numeric(20,0)) / 1000
         else cast(i.total_excluding_tax as numeric(20,0)) / 100 end as amount_excluding_tax,
    staging.safe_ts(cast(i.created as text)) as created_at,
    staging.safe_ts(cast(i.status_transitions__paid_at as text)) as paid_at,
    (coalesce(i.deleted, false) or d.id is not null) as is_deleted
from raw_stripe.invoices i
left join exponents e on e.code = upper(i.currency)
left join raw_stripe.deleted_objects d on d.object_type = 'invoices' and d.id = i.id
