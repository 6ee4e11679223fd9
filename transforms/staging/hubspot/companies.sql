-- HubSpot companies, typed. `tier` and `siren` are the portal's custom properties (opt-in in the connector config).
-- optional columns: raw_hubspot.companies(tier, siren, domain, website, phone, address, city, zip, country, industry, numberofemployees, type, lifecyclestage, hubspot_owner_id)
select
    'hubspot' as source_system,
    c.id as company_id,
    nullif(trim(c.name), '') as name,
    nullif(lower(regexp_replace(regexp_replace(trim(coalesce(c.domain, c.website, '')), '^(https?://)?(www\.)?', ''), '/.*$', '')), '') as domain,
    nullif(regexp_replace(coalesce(c.siren, ''), '[^0-9]', '', 'g'), '') as siren,
    cast(null as text) as siret,
    cast(null as text) as vat_number,
    nullif(trim(c.phone), '') as phone,
    nullif(trim(c.address), '') as address,
    nullif(trim(c.zip), '') as postcode,
    nullif(trim(c.city), '') as city,
    nullif(trim(c.country), '') as country,
    nullif(trim(c.industry), '') as naf_code,
    staging.safe_int(c.numberofemployees) as headcount,
    nullif(trim(c.tier), '') as tier,
    lower(nullif(trim(c.type), '')) as account_type,
    case lower(c.lifecyclestage)
        when 'marketingqualifiedlead' then 'mql' when 'salesqualifiedlead' then 'sql'
        else lower(nullif(trim(c.lifecyclestage), ''))
    end as lifecycle_stage,
    nullif(trim(c.hubspot_owner_id), '') as owner_id,
    c.created_at,
    c.updated_at,
    coalesce(c.archived, false) as is_deleted
from raw_hubspot.companies c
