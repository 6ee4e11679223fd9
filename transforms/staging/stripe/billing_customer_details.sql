-- What links a Stripe customer to a CRM company (identity step): metadata crm_company_id (the HubSpot company id),
-- the FR VAT number from its tax ids (and the SIREN inside it), the e-mail domain, the billing address.
-- optional columns: raw_stripe.customers(email, metadata__crm_company_id, address__line1, address__postal_code, address__city, address__country, currency)
-- optional table: raw_stripe.customers__tax_ids(_dlt_parent_id, _dlt_list_idx, type, value, country)
-- optional table: raw_stripe.deleted_objects(object_type, id)
with vat as (
    select t._dlt_parent_id, min(upper(replace(trim(t.value), ' ', ''))) as vat_number
    from raw_stripe.customers__tax_ids t
    where t.type = 'eu_vat'
    group by t._dlt_parent_id
)
select
    'stripe' as source_system,
    c.id as customer_id,
    case when strpos(coalesce(c.email, ''), '@') > 0
         then lower(trim(substr(c.email, strpos(c.email, '@') + 1))) end as email_domain,
    nullif(trim(c.address__line1), '') as address_line1,
    nullif(trim(c.address__postal_code), '') as postal_code,
    nullif(trim(c.address__city), '') as city,
    upper(nullif(trim(c.address__country), '')) as country,
    v.vat_number,
    case when length(v.vat_number) = 13 and substr(v.vat_number, 1, 2) = 'FR'
         then substr(v.vat_number, 5, 9) end as siren,
    nullif(trim(cast(c.metadata__crm_company_id as text)), '') as crm_company_id,
    upper(nullif(trim(c.currency), '')) as currency,
    (coalesce(c.deleted, false) or d.id is not null) as is_deleted
from raw_stripe.customers c
left join vat v on v._dlt_parent_id = c._dlt_id
left join raw_stripe.deleted_objects d on d.object_type = 'customers' and d.id = c.id
