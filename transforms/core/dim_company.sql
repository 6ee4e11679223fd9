-- Golden company records, one per resolved company. The name is the identity step's golden name (core.company_golden:
-- survivorship over the CRM and billing records, as sales_model.yaml identity.companies sets it; there each field
-- says which source it came from); the other CRM fields come from the most recently updated CRM record (domain,
-- postcode and city from the golden record when it has none). Records deleted in the CRM are left out.
-- acquired_at = first closed-won deal, else first paid invoice: the moment a company became a customer.
-- Registry enrichment (core.company_registry_match, core.company_enrichment): legal and registry fields of the
-- matched legal unit; naf_code, headcount_band, postcode and city are golden values (what a person typed wins,
-- the registry fills gaps); siren is the golden one there (typed and valid, else the registry's), else the one the
-- registry match trusted, else the identity step's golden SIREN (valid ones only): a typed SIREN that fails its
-- check digit never shows here (core.company_enrichment keeps it). Registry fields stay null unless
-- enrichment_status = 'enriched'.
with records as (
    select
        coalesce(x.entity_key, c.source_system || ':' || c.company_id) as company_key,
        c.*,
        coalesce(rx.rep_key, case when c.owner_id is not null then c.source_system || ':' || c.owner_id end) as rep_key,
        row_number() over (
            partition by coalesce(x.entity_key, c.source_system || ':' || c.company_id)
            order by c.updated_at desc nulls last, c.source_system, c.company_id
        ) as rn
    from staging.companies c
    left join core.company_crosswalk x on x.source_system = c.source_system and x.source_id = c.company_id
    left join core.rep_crosswalk rx on rx.source_system = c.source_system and rx.owner_id = c.owner_id
    -- a record deleted in the CRM (often merged into another) is no company of its own
    where not coalesce(c.is_deleted, false)
),
keys as (
    select entity_key as company_key from core.company_crosswalk
    union
    select company_key from records
),
agg as (
    select company_key, min(created_at) as created_at
    from records group by company_key
),
won as (
    select company_key, min(closed_at) as first_won_at
    from core.fct_deals where is_won and company_key is not null group by company_key
),
golden as (
    select company_key,
           max(case when field = 'siren' then golden_value end) as siren,
           max(case when field = 'naf_code' then golden_value end) as naf_code,
           max(case when field = 'naf_label' then golden_value end) as naf_label,
           max(case when field = 'headcount_band' then golden_value end) as headcount_band,
           max(case when field = 'postcode' then golden_value end) as postcode,
           max(case when field = 'city' then golden_value end) as city
    from core.company_enrichment group by company_key
),
registry as (
    select m.company_key, m.siren, m.enrichment_status, m.registry_fetched_at, r.legal_name,
           coalesce(r.legal_form_label, r.legal_form_code) as legal_form, r.category, r.created_on, r.is_ceased,
           r.ceased_on, r.address
    from core.company_registry_match m
    left join staging.registry_companies r on r.siren = m.siren and m.enrichment_status = 'enriched'
),
paid as (
    select x.entity_key as company_key, min(i.paid_at) as first_paid_at
    from staging.invoices i
    join core.company_crosswalk x on x.source_system = i.source_system and x.source_id = i.customer_id
    -- an invoice its credit notes gave back in full (a duplicate, a cancelled order) made nobody a customer
    left join core.invoice_credits cr on cr.source_system = i.source_system and cr.invoice_id = i.invoice_id
    where i.status = 'paid' and i.paid_at is not null and not coalesce(i.is_deleted, false)
      and (cr.amount is null or cr.amount < i.amount_paid)
    group by x.entity_key
)
select
    k.company_key,
    coalesce(cg.name, r.name) as name,
    coalesce(e.siren, g.siren, cg.siren) as siren,
    -- (a company known only from billing, or whose latest CRM record lacks them: the golden record's)
    coalesce(r.domain, cg.domain) as domain,
    coalesce(r.postcode, e.postcode, cg.postcode) as postcode,
    coalesce(r.city, e.city, cg.city) as city,
    coalesce(t.tier, 'unknown') as tier,
    coalesce(r.account_type, 'unknown') as account_type,
    r.rep_key as owner_id,
    g.is_ceased,
    w.first_won_at,
    p.first_paid_at,
    coalesce(w.first_won_at, p.first_paid_at) as acquired_at,
    a.created_at,
    g.legal_name,
    e.naf_code,
    e.naf_label,
    e.headcount_band,
    g.legal_form,
    g.category,
    g.created_on as creation_date,
    g.ceased_on,
    g.address as head_office_address,
    g.registry_fetched_at,
    coalesce(g.enrichment_status, 'no_identifier') as enrichment_status
from keys k
left join records r on r.company_key = k.company_key and r.rn = 1
left join agg a on a.company_key = k.company_key
left join core.company_tier t on t.company_key = k.company_key
left join won w on w.company_key = k.company_key
left join paid p on p.company_key = k.company_key
left join golden e on e.company_key = k.company_key
left join registry g on g.company_key = k.company_key
left join core.company_golden cg on cg.entity_key = k.company_key
