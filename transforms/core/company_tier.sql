-- The segment (tier) of every resolved company: the one definition of the tier rule (METRICS.md "Segment (tier) =
-- the company's Or / Argent / Bronze tag, or the rule in the sales model file"). Everything that needs a company's
-- tier reads this table (fct_deals, fct_activities, dim_company, the marts, the deal_segment quality rule).
-- 1. Tag: the most recently updated Or / Argent / Bronze tag among its CRM records (case-insensitive, spelled as in
--    sales_model.yaml `segments`; a tier with `tagged: false` takes no tag) wins, whatever the headcount: a company
--    tagged Bronze with 998 staff is Bronze.
-- 2. Untagged: the first tier, in file order, whose headcount range holds the company's headcount: the most recently
--    typed one in the CRM, else the lower bound of its registry band (INSEE tranches break at 50 and 250 like the
--    shipped tiers, so a band never straddles them).
-- 3. Neither: 'unknown', never dropped.
-- indexes: (company_key)
with records as (
    select
        coalesce(x.entity_key, c.source_system || ':' || c.company_id) as company_key,
        s.tier,
        c.headcount,
        c.updated_at
    from staging.companies c
    left join core.company_crosswalk x on x.source_system = c.source_system and x.source_id = c.company_id
    left join staging.cfg_segments s
      on lower(s.tier) = lower(trim(c.tier)) and s.tier <> 'unknown' and coalesce(s.tagged, true)
    where not coalesce(c.is_deleted, false)
),
tagged as (
    select company_key, tier,
        row_number() over (partition by company_key order by case when tier is null then 1 else 0 end, updated_at desc nulls last, tier) as rn
    from records
),
typed as (
    select company_key, headcount,
        row_number() over (partition by company_key order by updated_at desc nulls last, headcount desc) as rn
    from records
    where headcount is not null and headcount >= 0
),
registry_band as (
    -- lower bound of the INSEE tranche d'effectif; NN (no employee on record) reads as 0
    select m.company_key,
        case r.headcount_band
            when 'NN' then 0 when '00' then 0 when '01' then 1 when '02' then 3 when '03' then 6
            when '11' then 10 when '12' then 20 when '21' then 50 when '22' then 100 when '31' then 200
            when '32' then 250 when '41' then 500 when '42' then 1000 when '51' then 2000 when '52' then 5000
            when '53' then 10000
        end as headcount
    from core.company_registry_match m
    join staging.registry_companies r on r.siren = m.siren
    where m.siren is not null
),
companies as (
    select t.company_key, t.tier as tag_tier,
        coalesce(h.headcount, b.headcount) as headcount,
        case when h.headcount is not null then 'crm' when b.headcount is not null then 'registry' end as headcount_source
    from tagged t
    left join typed h on h.company_key = t.company_key and h.rn = 1
    left join registry_band b on b.company_key = t.company_key
    where t.rn = 1
),
by_headcount as (
    select c.company_key, s.tier,
        row_number() over (partition by c.company_key order by s.sort_order) as rn
    from companies c
    join staging.cfg_segments s
      on s.tier <> 'unknown'
     and (s.min_headcount is not null or s.max_headcount is not null)
     and c.headcount >= coalesce(s.min_headcount, 0)
     and (s.max_headcount is null or c.headcount <= s.max_headcount)
    where c.tag_tier is null
)
select
    c.company_key,
    coalesce(c.tag_tier, h.tier, 'unknown') as tier,
    case when c.tag_tier is not null then 'tag'
         when h.tier is not null then 'headcount_' || c.headcount_source
         else 'none' end as tier_rule,
    c.headcount
from companies c
left join by_headcount h on h.company_key = c.company_key and h.rn = 1
