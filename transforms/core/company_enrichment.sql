-- The registry's fields next to what the CRM holds, one row per resolved company and field, so a filter on
-- `conflict` lists every disagreement. The CRM value is the most recently updated non-empty one among the
-- company's CRM records (deleted records left out); the registry value is the matched legal unit's
-- (core.company_registry_match, enriched companies only). Golden value: what a person typed wins, the registry
-- fills the gaps; nothing is written back, both stay visible. A typed SIREN wins only when it is a valid one (the
-- SIREN the registry match trusted, core.company_registry_match, or the identity step's golden SIREN,
-- core.company_golden, validated with python-stdnum): one that fails its check digit never does, its conflict
-- with the registry's shows. Comparisons ignore case, accents and spacing;
-- headcount compares the INSEE band of the typed number; a CRM industry that is not a NAF code is shown but
-- neither wins nor conflicts; naf_label is the label of the golden NAF code (the registry's own when that code
-- is the registry's, else staging.code_labels'), with that code's source; an address conflicts when the head
-- office is in another postcode (street spellings vary too much to compare).
with records as (
    select
        coalesce(x.entity_key, c.source_system || ':' || c.company_id) as company_key,
        c.source_system || ':' || c.company_id as crm_record,
        c.*
    from staging.companies c
    left join core.company_crosswalk x on x.source_system = c.source_system and x.source_id = c.company_id
    where not coalesce(c.is_deleted, false)
),
crm_values as (
    select company_key, crm_record, updated_at, 'siren' as field,
           nullif(regexp_replace(coalesce(siren, ''), '[^0-9]', '', 'g'), '') as value from records
    union all select company_key, crm_record, updated_at, 'naf_code', nullif(trim(naf_code), '') from records
    union all select company_key, crm_record, updated_at, 'headcount_band', cast(headcount as text) from records
    union all select company_key, crm_record, updated_at, 'address', nullif(trim(address), '') from records
    union all select company_key, crm_record, updated_at, 'postcode', nullif(trim(postcode), '') from records
    union all select company_key, crm_record, updated_at, 'city', nullif(trim(city), '') from records
),
crm_ranked as (
    select v.*,
           row_number() over (partition by company_key, field order by updated_at desc nulls last, crm_record) as rn
    from crm_values v
    where v.value is not null
),
matched as (
    select m.company_key, r.*
    from core.company_registry_match m
    join staging.registry_companies r on r.siren = m.siren
    where m.enrichment_status = 'enriched'
),
registry_values as (
    select company_key, fetched_at, source, 'siren' as field, siren as value from matched
    union all select company_key, fetched_at, source, 'legal_name', legal_name from matched
    union all select company_key, fetched_at, source, 'naf_code', naf_code from matched
    union all select company_key, fetched_at, source, 'naf_label', naf_label from matched
    union all select company_key, fetched_at, source, 'headcount_band', headcount_band from matched
    union all select company_key, fetched_at, source, 'legal_form', coalesce(legal_form_label, legal_form_code) from matched
    union all select company_key, fetched_at, source, 'category', category from matched
    union all select company_key, fetched_at, source, 'creation_date', cast(created_on as text) from matched
    union all select company_key, fetched_at, source, 'is_ceased', case when is_ceased then 'true' else 'false' end from matched
    union all select company_key, fetched_at, source, 'ceased_on', cast(ceased_on as text) from matched
    union all select company_key, fetched_at, source, 'address', address from matched
    union all select company_key, fetched_at, source, 'postcode', postcode from matched
    union all select company_key, fetched_at, source, 'city', city from matched
),
joined as (
    select
        coalesce(c.company_key, r.company_key) as company_key,
        coalesce(c.field, r.field) as field,
        c.value as crm_value,
        c.crm_record,
        c.updated_at as crm_updated_at,
        r.value as registry_value,
        r.fetched_at as registry_fetched_at,
        r.source as registry_source
    from (select * from crm_ranked where rn = 1) c
    full outer join (select * from registry_values where value is not null) r
      on r.company_key = c.company_key and r.field = c.field
),
shaped as (
    select j.*,
        -- the CRM value in the registry's form, null when it cannot be compared (an industry name, not a NAF code)
        case j.field
            when 'siren' then j.crm_value
            when 'naf_code' then
                case when regexp_replace(upper(trim(j.crm_value)), '^[0-9]{2}\.?[0-9]{2}[A-Z]$', '') = ''
                     then regexp_replace(upper(trim(j.crm_value)), '^([0-9]{2})\.?([0-9]{2}[A-Z])$', '\1.\2') end
            when 'headcount_band' then
                -- (no typed headcount: no band; the open-ended else below must not read it as 10,000+)
                case when j.crm_value is null then null
                     when cast(j.crm_value as integer) <= 0 then '00'
                     when cast(j.crm_value as integer) <= 2 then '01'
                     when cast(j.crm_value as integer) <= 5 then '02'
                     when cast(j.crm_value as integer) <= 9 then '03'
                     when cast(j.crm_value as integer) <= 19 then '11'
                     when cast(j.crm_value as integer) <= 49 then '12'
                     when cast(j.crm_value as integer) <= 99 then '21'
                     when cast(j.crm_value as integer) <= 199 then '22'
                     when cast(j.crm_value as integer) <= 249 then '31'
                     when cast(j.crm_value as integer) <= 499 then '32'
                     when cast(j.crm_value as integer) <= 999 then '41'
                     when cast(j.crm_value as integer) <= 1999 then '42'
                     when cast(j.crm_value as integer) <= 4999 then '51'
                     when cast(j.crm_value as integer) <= 9999 then '52'
                     else '53' end
            else j.crm_value
        end as crm_comparable
    from joined j
),
trusted as (
    -- the CRM value when it may be the golden one: a typed SIREN must be a valid one (see the header)
    select s.*,
        case when s.field <> 'siren' then s.crm_comparable
             when s.crm_comparable = m.siren or s.crm_comparable = g.siren then s.crm_comparable end as crm_golden
    from shaped s
    left join core.company_registry_match m on m.company_key = s.company_key
    left join core.company_golden g on g.entity_key = s.company_key
),
compared as (
    select s.*,
        case
            when s.crm_comparable is null or s.registry_value is null then false
            when s.field = 'headcount_band' then
                not (s.crm_comparable = s.registry_value or (s.crm_comparable = '00' and s.registry_value = 'NN'))
            when s.field in ('postcode', 'address') then
                regexp_replace(coalesce(p.crm_value, ''), '[^0-9A-Za-z]', '', 'g')
                    <> regexp_replace(coalesce(p.registry_value, ''), '[^0-9A-Za-z]', '', 'g')
                and p.crm_value is not null and p.registry_value is not null
            when s.field = 'city' then
                trim(regexp_replace(lower(translate(s.crm_value,
                    'ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿ',
                    'AAAAAACEEEEIIIINOOOOOUUUUYaaaaaaceeeeiiiinooooouuuuyy')), '[^a-z0-9]+', ' ', 'g'))
                <> trim(regexp_replace(lower(translate(s.registry_value,
                    'ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿ',
                    'AAAAAACEEEEIIIINOOOOOUUUUYaaaaaaceeeeiiiinooooouuuuyy')), '[^a-z0-9]+', ' ', 'g'))
            else upper(s.crm_comparable) <> upper(s.registry_value)
        end as conflict
    from trusted s
    left join shaped p on p.company_key = s.company_key and p.field = 'postcode'
),
naf as (
    -- the golden NAF code, where it comes from, and its label in the code labels
    select n.company_key, n.registry_value,
           coalesce(n.crm_golden, n.registry_value) as code,
           case when n.crm_golden is not null then 'crm' when n.registry_value is not null then 'registry' end as source,
           cl.label
    from trusted n
    left join staging.code_labels cl
      on cl.nomenclature = 'naf' and cl.code = upper(coalesce(n.crm_golden, n.registry_value))
    where n.field = 'naf_code'
),
-- a company whose NAF code only the CRM holds gets a naf_label row too (the typed code's label, when the
-- code labels know it)
crm_and_registry as (
    select company_key, field, crm_value, crm_record, crm_updated_at, registry_value, registry_fetched_at,
           registry_source, crm_comparable, crm_golden, conflict
    from compared
    union all
    select n.company_key, 'naf_label', cast(null as text), cast(null as text), cast(null as timestamptz),
           cast(null as text), cast(null as timestamptz), cast(null as text), cast(null as text),
           cast(null as text), false
    from compared n
    where n.field = 'naf_code'
      and not exists (select 1 from compared l where l.company_key = n.company_key and l.field = 'naf_label')
      and exists (select 1 from naf x where x.company_key = n.company_key and x.label is not null)
)
select
    c.company_key,
    c.field,
    c.crm_value,
    c.registry_value,
    case when c.field = 'naf_label' and n.code is not null then
             -- the registry's label describes the registry's code: the golden code's label otherwise
             case when upper(n.code) = upper(n.registry_value) then coalesce(c.registry_value, n.label) else n.label end
         when c.crm_golden is not null then c.crm_golden
         else c.registry_value end as golden_value,
    case when c.field = 'naf_label' and n.code is not null then
             case when upper(n.code) = upper(n.registry_value) and c.registry_value is not null then 'registry'
                  when n.label is not null then n.source end
         when c.crm_golden is not null then 'crm'
         when c.registry_value is not null then 'registry' end as golden_source,
    c.conflict,
    c.crm_record,
    c.crm_updated_at,
    c.registry_source,
    c.registry_fetched_at
from crm_and_registry c
left join naf n on n.company_key = c.company_key
