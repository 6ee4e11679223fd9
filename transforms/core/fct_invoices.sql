-- One row per invoice (not deleted), linked to the resolved company through the crosswalk (null when the billing
-- customer is not linked), with paid and due amounts converted to the home currency (cfg_fx_rates).
-- indexes: (company_key, paid_at)
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
    i.created_at,
    i.paid_at
from staging.invoices i
left join core.company_crosswalk x on x.source_system = i.source_system and x.source_id = i.customer_id
left join core.dim_company c on c.company_key = x.entity_key
left join staging.cfg_fx_rates fx on upper(fx.currency) = upper(i.currency)
where not coalesce(i.is_deleted, false)
