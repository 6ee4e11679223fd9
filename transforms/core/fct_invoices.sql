-- One row per invoice (not deleted), linked to the resolved company through the crosswalk (null when the billing
-- customer is not linked), with paid and due amounts converted to the home currency (cfg_fx_rates).
-- amount_paid / amount_paid_home: the cash received, tax included (what finance reconciles with the bank).
-- Revenue, excluding tax and net of credit notes (what the marts sum): amount_excl_tax_home = the invoice's total
-- after discounts excluding tax (staging.invoices.amount_excluding_tax), else Σ of its lines (staging.invoice_lines
-- amounts exclude tax but come before discounts; proration lines count as Stripe counts them; null when neither
-- is loaded), credited_excl_tax_home = what its credit notes gave back excluding tax (core.invoice_credits);
-- revenue_home = amount_excl_tax_home - credited_excl_tax_home for a paid invoice, 0 for any other status (nothing
-- received). Both sides are after discounts and before tax, and Stripe caps an invoice's credit notes at its total,
-- so revenue_home is never below 0 (not clamped). A credit note counts against its invoice, in the invoice's
-- payment period (paid_at), not in the month it was issued: a period's basket stays made of whole invoices, and a
-- credit note issued later restates that period (last_credited_at says when it last changed).
-- indexes: (company_key, paid_at)
with lines as (
    select source_system, invoice_id, sum(amount) as amount_excl_tax
    from staging.invoice_lines
    where not coalesce(is_deleted, false)
    group by source_system, invoice_id
),
invoices as (
    select
        i.source_system || ':' || i.invoice_id as invoice_key,
        x.entity_key as company_key,
        coalesce(c.tier, 'unknown') as tier,
        coalesce(c.account_type, 'unknown') as account_type,
        i.status,
        upper(i.currency) as currency,
        cast(i.amount_paid as numeric(18,2)) as amount_paid,
        cast(round(cast(i.amount_paid * fx.rate_to_home as numeric(18,6)), 2) as numeric(18,2)) as amount_paid_home,
        cast(round(cast(i.amount_due * fx.rate_to_home as numeric(18,6)), 2) as numeric(18,2)) as amount_due_home,
        -- the invoice's own total after discounts (line amounts are before them), else its lines
        cast(round(cast(coalesce(i.amount_excluding_tax, l.amount_excl_tax) * fx.rate_to_home as numeric(18,6)), 2)
             as numeric(18,2)) as amount_excl_tax_home,
        cast(coalesce(cr.credited_excl_tax_home, 0) as numeric(18,2)) as credited_excl_tax_home,
        cr.last_credited_at,
        i.created_at,
        i.paid_at
    from staging.invoices i
    left join core.company_crosswalk x on x.source_system = i.source_system and x.source_id = i.customer_id
    left join core.dim_company c on c.company_key = x.entity_key
    left join staging.cfg_fx_rates fx on upper(fx.currency) = upper(i.currency)
    left join lines l on l.source_system = i.source_system and l.invoice_id = i.invoice_id
    left join core.invoice_credits cr on cr.source_system = i.source_system and cr.invoice_id = i.invoice_id
    where not coalesce(i.is_deleted, false)
)
select
    invoice_key, company_key, tier, account_type, status, currency,
    amount_paid, amount_paid_home, amount_due_home,
    amount_excl_tax_home,
    credited_excl_tax_home,
    cast(case when status = 'paid' then amount_excl_tax_home - credited_excl_tax_home else 0 end as numeric(18,2))
        as revenue_home,
    last_credited_at,
    created_at,
    paid_at
from invoices
