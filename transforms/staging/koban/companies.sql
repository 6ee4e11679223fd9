-- Koban accounts (ncThird), typed. OfficialNumber holds the SIRET (sometimes the SIREN, sometimes spaced): the
-- SIREN is its first 9 digits. Tier and industry are tags (categories SEGMENT and ACTIVITY). Account type from
-- the Type list value (PART partner, REV reseller, PRO direct); Status (CLI = customer) is the lifecycle stage. Headcount lives in an
-- account-specific MoreFields id, so it is not read here.
-- Deleted = Obsolete, or hard-deleted in Koban (gone_records).
-- optional table: raw_koban.accounts__tags(_dlt_parent_id, tag_category_code, label)
-- optional table: raw_koban.gone_records(object_type, id)
with tags as (
    select _dlt_parent_id,
           min(case when upper(tag_category_code) = 'SEGMENT' then label end) as tier,
           min(case when upper(tag_category_code) = 'ACTIVITY' then label end) as activity
    from raw_koban.accounts__tags
    group by _dlt_parent_id
), typed as (
    select a.*, regexp_replace(coalesce(a.official_number, ''), '[^0-9]', '', 'g') as official_digits
    from raw_koban.accounts a
)
select
    'koban' as source_system,
    a.id as company_id,
    nullif(trim(a.label), '') as name,
    nullif(lower(regexp_replace(regexp_replace(trim(coalesce(a.website, '')), '^(https?://)?(www\.)?', ''), '/.*$', '')), '') as domain,
    case when length(a.official_digits) in (9, 14) then substr(a.official_digits, 1, 9) end as siren,
    case when length(a.official_digits) = 14 then a.official_digits end as siret,
    nullif(upper(regexp_replace(coalesce(a.vat, ''), '[^0-9A-Za-z]', '', 'g')), '') as vat_number,
    nullif(trim(a.phone), '') as phone,
    nullif(trim(a.address__street), '') as address,
    nullif(trim(a.address__zip_code), '') as postcode,
    nullif(trim(a.address__city), '') as city,
    nullif(trim(a.address__country), '') as country,
    nullif(trim(t.activity), '') as naf_code,
    cast(null as integer) as headcount,
    nullif(trim(t.tier), '') as tier,
    -- HubSpot's vocabulary (direct / reseller / partner); the customer status is a lifecycle stage, not a type
    case upper(a.type__code) when 'PART' then 'partner' when 'REV' then 'reseller' when 'PRO' then 'direct'
         else lower(nullif(trim(a.type__code), '')) end as account_type,
    case when upper(a.status__code) = 'CLI' then 'customer' when a.status__code is not null then 'lead' end as lifecycle_stage,
    nullif(trim(a.assigned_to__guid), '') as owner_id,
    a.created_at,
    a.updated_at,
    coalesce(a.is_deleted, false) or g.id is not null as is_deleted
from typed a
left join tags t on t._dlt_parent_id = a._dlt_id
left join raw_koban.gone_records g on g.object_type = 'accounts' and g.id = a.id
