-- Name + postcode searches in the registry: the API's candidates, ranked, with its score. Choosing one (the
-- confidence gate) is the identity step's job; nothing here is a match.
-- optional table: raw_registry.candidates(query_key, query_name, query_postcode, rank, score, total_results, siren, siret_head_office, legal_name, naf_code, postcode, city, etat_administratif, fetched_at)
select
    cast(c.query_key as text) as query_key,
    cast(c.query_name as text) as query_name,
    cast(c.query_postcode as text) as query_postcode,
    staging.safe_int(cast(c.rank as text)) as rank,
    cast(c.siren as text) as siren,
    staging.safe_double(cast(c.score as text)) as score,
    staging.safe_int(cast(c.total_results as text)) as total_results,
    cast(c.legal_name as text) as legal_name,
    cast(c.siret_head_office as text) as siret_head_office,
    regexp_replace(upper(trim(cast(c.naf_code as text))), '^([0-9]{2})\.?([0-9]{2}[A-Z])$', '\1.\2') as naf_code,
    cast(c.postcode as text) as postcode,
    cast(c.city as text) as city,
    coalesce(cast(c.etat_administratif as text) = 'C', false) as is_ceased,
    staging.safe_ts(cast(c.fetched_at as text)) as fetched_at
from raw_registry.candidates c
