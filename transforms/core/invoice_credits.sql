-- What issued credit notes gave back, per invoice: the one definition of a credit note that counts (issued, not
-- voided, not deleted), shared by fct_invoices (revenue net of credit notes) and dim_company (an invoice credited in
-- full makes nobody a customer). amount: tax included, in the credit notes' currency (as the invoice's amount_paid);
-- credited_excl_tax_home: excluding tax, summed per currency and converted once (cfg_fx_rates).
-- indexes: (source_system, invoice_id)
with by_currency as (
    select cn.source_system, cn.invoice_id, sum(cn.amount) as amount,
           sum(cn.amount_excluding_tax) * max(fx.rate_to_home) as credited_home,
           max(cn.created_at) as last_credited_at
    from staging.credit_notes cn
    left join staging.cfg_fx_rates fx on upper(fx.currency) = upper(cn.currency)
    where cn.status = 'issued' and cn.voided_at is null and not coalesce(cn.is_deleted, false)
    group by cn.source_system, cn.invoice_id, upper(cn.currency)
)
select
    source_system,
    invoice_id,
    cast(sum(amount) as numeric(18,2)) as amount,
    cast(sum(cast(round(cast(credited_home as numeric(18,6)), 2) as numeric(18,2))) as numeric(18,2))
        as credited_excl_tax_home,
    max(last_credited_at) as last_credited_at
from by_currency
group by source_system, invoice_id
