-- Golden company records, one per resolved company (first SQL version: the most recently updated CRM record wins
-- for each descriptive field; the identity step may replace this table with a richer survivorship, same columns).
-- acquired_at = first closed-won deal, else first paid invoice: the moment a company became a customer.
with records as (
    select
        coalesce(x.entity_key, c.source_system || ':' || c.company_id) as company_key,
        c.*,
        coalesce(rx.rep_key, case when c.owner_id is not null then c.source_system || ':' || c.owner_id end) as rep_key,
        row_number() over (
            partition by coalesce(x.entity_key, c.source_system || ':' || c.company_id)
            order by coalesce(c.is_deleted, false), c.updated_at desc nulls last, c.source_system, c.company_id
        ) as rn
    from staging.companies c
    left join core.company_crosswalk x on x.source_system = c.source_system and x.source_id = c.company_id
    left join core.rep_crosswalk rx on rx.source_system = c.source_system and rx.owner_id = c.owner_id
),
keys as (
    select entity_key as company_key from core.company_crosswalk
    union
    select company_key from records
),
agg as (
    select company_key, max(siren) as siren, min(created_at) as created_at
    from records group by company_key
),
won as (
    select company_key, min(closed_at) as first_won_at
    from core.fct_deals where is_won and company_key is not null group by company_key
),
paid as (
    select x.entity_key as company_key, min(i.paid_at) as first_paid_at
    from staging.invoices i
    join core.company_crosswalk x on x.source_system = i.source_system and x.source_id = i.customer_id
    where i.status = 'paid' and i.paid_at is not null and not coalesce(i.is_deleted, false)
    group by x.entity_key
)
select
    k.company_key,
    r.name,
    coalesce(r.siren, a.siren) as siren,
    r.domain,
    r.postcode,
    r.city,
    coalesce(t.tier, 'unknown') as tier,
    coalesce(r.account_type, 'unknown') as account_type,
    r.rep_key as owner_id,
    cast(null as boolean) as is_ceased,
    w.first_won_at,
    p.first_paid_at,
    coalesce(w.first_won_at, p.first_paid_at) as acquired_at,
    a.created_at
from keys k
left join records r on r.company_key = k.company_key and r.rn = 1
left join agg a on a.company_key = k.company_key
left join core.company_tier t on t.company_key = k.company_key
left join won w on w.company_key = k.company_key
left join paid p on p.company_key = k.company_key
