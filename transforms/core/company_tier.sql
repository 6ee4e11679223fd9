-- The segment (tier) of every resolved company: the most recently updated Or / Argent / Bronze tag among its CRM
-- records (case-insensitive, spelled as in sales_model.yaml); 'unknown' when none, never dropped.
-- indexes: (company_key)
with records as (
    select
        coalesce(x.entity_key, c.source_system || ':' || c.company_id) as company_key,
        s.tier,
        c.updated_at
    from staging.companies c
    left join core.company_crosswalk x on x.source_system = c.source_system and x.source_id = c.company_id
    left join staging.cfg_segments s on lower(s.tier) = lower(trim(c.tier)) and s.tier <> 'unknown'
    where not coalesce(c.is_deleted, false)
),
ranked as (
    select company_key, tier,
        row_number() over (partition by company_key order by case when tier is null then 1 else 0 end, updated_at desc nulls last, tier) as rn
    from records
)
select company_key, coalesce(tier, 'unknown') as tier
from ranked
where rn = 1
