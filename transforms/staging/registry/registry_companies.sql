-- The registry's view of each SIREN: API look-ups and Sirene stock rows, the freshest fetch per SIREN (the API wins a tie). Every column goes through
-- text first so the two branches union on DuckDB and PostgreSQL alike, and so an absent table reads as empty.
-- NAF codes are normalised to the dotted form (6201Z -> 62.01Z); labels come from the answer or code_labels.
-- A stock row has no VAT number: it is derived from the SIREN (numeric key), like the API's when DGFiP lists none.
-- (mod(), not the percent operator: psycopg2 reads that sign as a parameter marker, comments included.)
-- optional table: raw_registry.companies(siren, siret_head_office, legal_name, naf_code, naf_label, headcount_band, legal_form_code, category, created_on, ceased_on, etat_administratif, address, postcode, city, vat_number, fetched_at, source)
-- optional table: raw_registry.stock_companies(siren, siret_head_office, legal_name, naf_code, headcount_band, legal_form_code, category, created_on, ceased_on, etat_administratif, address, postcode, city, fetched_at, source)
-- optional table: raw_registry.code_labels(nomenclature, code, label)
-- optional columns: raw_registry.companies(siret_head_office, naf_code, naf_label, headcount_band, legal_form_code, category, created_on, ceased_on, etat_administratif, address, postcode, city, vat_number)
-- optional columns: raw_registry.stock_companies(siret_head_office, naf_code, headcount_band, legal_form_code, category, created_on, ceased_on, etat_administratif, address, postcode, city)
with fetched as (
    select cast(c.siren as text) as siren, cast(c.siret_head_office as text) as siret_head_office,
           cast(c.legal_name as text) as legal_name, cast(c.naf_code as text) as naf_code,
           cast(c.naf_label as text) as naf_label, cast(c.headcount_band as text) as headcount_band,
           cast(c.legal_form_code as text) as legal_form_code, cast(c.category as text) as category,
           cast(c.created_on as text) as created_on, cast(c.ceased_on as text) as ceased_on,
           cast(c.etat_administratif as text) as etat_administratif, cast(c.address as text) as address,
           cast(c.postcode as text) as postcode, cast(c.city as text) as city,
           cast(c.vat_number as text) as vat_number, cast(c.fetched_at as text) as fetched_at, 'api' as source
    from raw_registry.companies c
    union all
    select cast(s.siren as text), cast(s.siret_head_office as text), cast(s.legal_name as text),
           cast(s.naf_code as text), cast(null as text), cast(s.headcount_band as text),
           cast(s.legal_form_code as text), cast(s.category as text), cast(s.created_on as text),
           cast(s.ceased_on as text), cast(s.etat_administratif as text), cast(s.address as text),
           cast(s.postcode as text), cast(s.city as text), cast(null as text), cast(s.fetched_at as text), 'stock'
    from raw_registry.stock_companies s
),
ranked as (
    select f.*,
           staging.safe_ts(f.fetched_at) as fetched_ts,
           regexp_replace(upper(trim(f.naf_code)), '^([0-9]{2})\.?([0-9]{2}[A-Z])$', '\1.\2') as naf,
           row_number() over (
               partition by f.siren
               order by staging.safe_ts(f.fetched_at) desc, case when f.source = 'api' then 0 else 1 end
           ) as rn
    from fetched f
    where f.siren is not null
)
select
    r.siren,
    nullif(trim(r.siret_head_office), '') as siret_head_office,
    nullif(trim(r.legal_name), '') as legal_name,
    nullif(r.naf, '') as naf_code,
    coalesce(nullif(trim(r.naf_label), ''), naf.label) as naf_label,
    nullif(trim(r.headcount_band), '') as headcount_band,
    nullif(trim(r.legal_form_code), '') as legal_form_code,
    lf.label as legal_form_label,
    nullif(trim(r.category), '') as category,
    cast(staging.safe_ts(r.created_on) as date) as created_on,
    cast(staging.safe_ts(r.ceased_on) as date) as ceased_on,
    coalesce(r.etat_administratif = 'C', false) as is_ceased,
    nullif(trim(r.address), '') as address,
    nullif(trim(r.postcode), '') as postcode,
    nullif(trim(r.city), '') as city,
    coalesce(
        nullif(trim(r.vat_number), ''),
        'FR' || lpad(cast(mod(12 + 3 * mod(cast(r.siren as bigint), 97), 97) as text), 2, '0') || r.siren
    ) as vat_number,
    r.fetched_ts as fetched_at,
    r.source
from ranked r
left join raw_registry.code_labels naf on naf.nomenclature = 'naf' and naf.code = r.naf
left join raw_registry.code_labels lf on lf.nomenclature = 'legal_form' and lf.code = r.legal_form_code
where r.rn = 1
