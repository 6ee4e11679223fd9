-- Stripe credit notes (amount incl. tax), converted once to the note's currency and the home currency.
-- optional columns: raw_stripe.credit_notes(number, reason, voided_at, subtotal, total_excluding_tax)
with exponents as (
    select * from (values ('BIF', 0), ('CLP', 0), ('DJF', 0), ('GNF', 0), ('JPY', 0), ('KMF', 0), ('KRW', 0),
        ('MGA', 0), ('PYG', 0), ('RWF', 0), ('UGX', 0), ('VND', 0), ('VUV', 0), ('XAF', 0), ('XOF', 0), ('XPF', 0),
        ('BHD', 3), ('JOD', 3), ('KWD', 3), ('OMR', 3), ('TND', 3)) as t(code, exponent)
), notes as (
    select c.*, case coalesce(e.exponent, 2) when 0 then 1 when 3 then 1000 else 100 end as divisor
    from raw_stripe.credit_notes c
    left join exponents e on e.code = upper(c.currency)
)
select
    'stripe' as source_system,
    n.id as credit_note_id,
    n.invoice as invoice_id,
    n.customer as customer_id,
    n.number,
    n.status,
    n.reason,
    upper(n.currency) as currency,
    cast(n.amount as numeric(20,0)) / n.divisor as amount,
    -- after discounts, as the invoice's amount_excluding_tax (Stripe's subtotal comes before them)
    cast(coalesce(n.total_excluding_tax, n.subtotal) as numeric(20,0)) / n.divisor as amount_excluding_tax,
    cast(round(cast(cast(n.amount as numeric(20,0)) / n.divisor * fx.rate_to_home as numeric(18,6)), 2) as numeric(18,2)) as amount_home,
    staging.safe_ts(cast(n.created as text)) as created_at,
    staging.safe_ts(cast(n.voided_at as text)) as voided_at,
    coalesce(n.deleted, false) as is_deleted
from notes n
left join staging.cfg_fx_rates fx on upper(fx.currency) = upper(n.currency)
