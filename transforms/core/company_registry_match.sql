-- Which registry legal unit (SIREN) every resolved company is, and how sure we are. Identifiers first: a SIREN,
-- else a SIRET, else a French VAT number (CRM records of the company, and the SIREN in its Stripe customers' VAT),
-- each checked (Luhn; La Poste's SIRETs: digit sum multiple of 5) before it is trusted. A company with no valid
-- identifier is matched on the registry's name + postcode candidates only when the best one reaches the gate
-- (cfg_settings enrichment_name_match_min_score, sales_model.yaml `enrichment`), and no other SIREN comes
-- close; otherwise it is listed for review and never enriched. match_score for a candidate = share of name
-- tokens in common (Jaccard; accents, punctuation and legal forms such as SAS/SARL left out) x 0.9 when the
-- candidate's head office is not in the CRM postcode. (mod(), not the percent sign: psycopg2 reads it as a marker.)
with settings as (
    select
        coalesce(max(case when key = 'enrichment_name_match_min_score' then cast(value as double precision) end), 0.8) as min_score
    from staging.cfg_settings
),
records as (
    select
        coalesce(x.entity_key, c.source_system || ':' || c.company_id) as company_key,
        c.source_system, c.company_id, c.name, c.updated_at,
        regexp_replace(coalesce(c.postcode, ''), '[^0-9A-Za-z]', '', 'g') as postcode_key,
        regexp_replace(coalesce(c.siren, ''), '[^0-9]', '', 'g') as siren,
        regexp_replace(coalesce(c.siret, ''), '[^0-9]', '', 'g') as siret,
        upper(regexp_replace(coalesce(c.vat_number, ''), '[^0-9A-Za-z]', '', 'g')) as vat
    from staging.companies c
    left join core.company_crosswalk x on x.source_system = c.source_system and x.source_id = c.company_id
    where not coalesce(c.is_deleted, false)
),
keys as (
    select entity_key as company_key from core.company_crosswalk
    union
    select company_key from records
),
typed as (
    -- every identifier a person or a system typed, as the digits to check (kind_rank: siren > siret > vat)
    select company_key, 'siren' as kind, 1 as kind_rank, siren as digits, updated_at from records where siren <> ''
    union all
    select company_key, 'siret', 2, siret, updated_at from records where siret <> ''
    union all
    select company_key, 'vat', 3, case when vat like 'FR%' then substr(vat, 5) else vat end, updated_at
    from records where vat <> ''
    union all
    select x.entity_key, 'vat', 3, regexp_replace(d.siren, '[^0-9]', '', 'g'), cast(null as timestamptz)
    from staging.billing_customer_details d
    join core.company_crosswalk x on x.source_system = d.source_system and x.source_id = d.customer_id
    where d.siren is not null and not coalesce(d.is_deleted, false)
),
checked as (
    select
        t.company_key, t.kind, t.kind_rank, t.digits, t.updated_at,
        sum(case when mod(length(t.digits) - p.i, 2) = 1
                 then case when cast(substr(t.digits, p.i, 1) as integer) >= 5
                           then cast(substr(t.digits, p.i, 1) as integer) * 2 - 9
                           else cast(substr(t.digits, p.i, 1) as integer) * 2 end
                 else cast(substr(t.digits, p.i, 1) as integer) end) as luhn_sum,
        sum(cast(substr(t.digits, p.i, 1) as integer)) as digit_sum
    from typed t
    join (values (1), (2), (3), (4), (5), (6), (7), (8), (9), (10), (11), (12), (13), (14)) as p(i)
      on p.i <= length(t.digits)
    where length(t.digits) = case when t.kind = 'siret' then 14 else 9 end
      and regexp_replace(t.digits, '[0-9]', '', 'g') = ''
    group by t.company_key, t.kind, t.kind_rank, t.digits, t.updated_at
),
valid as (
    select c.company_key, c.kind, c.kind_rank, substr(c.digits, 1, 9) as siren, c.updated_at
    from checked c
    where mod(c.luhn_sum, 10) = 0
       or (c.kind = 'siret' and c.digits like '356000000%' and mod(c.digit_sum, 5) = 0)
),
typed_summary as (
    select t.company_key,
           count(*) as typed_count,
           count(distinct v.siren) as valid_sirens
    from typed t
    left join valid v on v.company_key = t.company_key
    group by t.company_key
),
identified as (
    -- the identifier used: one the registry knows first, then siren > siret > vat, then the freshest record
    select v.company_key, v.kind, v.siren,
           row_number() over (
               partition by v.company_key
               order by case when r.siren is not null then 0 else 1 end, v.kind_rank, v.updated_at desc nulls last, v.siren
           ) as rn
    from valid v
    left join staging.registry_companies r on r.siren = v.siren
),
-- name + postcode candidates, for companies without a valid identifier --------------------------------------
searched as (
    select distinct r.company_key, r.postcode_key, cand.siren as cand_siren, cand.legal_name as cand_name,
           cand.rank as api_rank,
           regexp_replace(coalesce(cand.postcode, ''), '[^0-9A-Za-z]', '', 'g') as cand_postcode_key,
           trim(regexp_replace(lower(translate(replace(replace(replace(replace(replace(r.name, '.', ''),
               'œ', 'oe'), 'Œ', 'OE'), 'æ', 'ae'), 'Æ', 'AE'),
               'ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿ',
               'AAAAAACEEEEIIIINOOOOOUUUUYaaaaaaceeeeiiiinooooouuuuyy')), '[^a-z0-9]+', ' ', 'g')) as crm_fold,
           trim(regexp_replace(lower(translate(replace(replace(replace(replace(replace(cand.legal_name, '.', ''),
               'œ', 'oe'), 'Œ', 'OE'), 'æ', 'ae'), 'Æ', 'AE'),
               'ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿ',
               'AAAAAACEEEEIIIINOOOOOUUUUYaaaaaaceeeeiiiinooooouuuuyy')), '[^a-z0-9]+', ' ', 'g')) as cand_fold
    from records r
    join staging.registry_candidates cand
      on regexp_replace(coalesce(cand.query_postcode, ''), '[^0-9A-Za-z]', '', 'g') = r.postcode_key
     and trim(regexp_replace(lower(translate(replace(replace(replace(replace(replace(cand.query_name, '.', ''),
             'œ', 'oe'), 'Œ', 'OE'), 'æ', 'ae'), 'Æ', 'AE'),
             'ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿ',
             'AAAAAACEEEEIIIINOOOOOUUUUYaaaaaaceeeeiiiinooooouuuuyy')), '[^a-z0-9]+', ' ', 'g'))
       = trim(regexp_replace(lower(translate(replace(replace(replace(replace(replace(r.name, '.', ''),
             'œ', 'oe'), 'Œ', 'OE'), 'æ', 'ae'), 'Æ', 'AE'),
             'ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿ',
             'AAAAAACEEEEIIIINOOOOOUUUUYaaaaaaceeeeiiiinooooouuuuyy')), '[^a-z0-9]+', ' ', 'g'))
    where r.name is not null and cand.siren is not null
      and not exists (select 1 from valid v where v.company_key = r.company_key)
),
legal_forms as (
    -- transforms.normalize.LEGAL_FORM_TOKENS, folded (a test keeps the two lists equal)
    select tok from (values ('ag'), ('bv'), ('cie'), ('compagnie'), ('earl'), ('ei'), ('eirl'), ('et'),
        ('etablissements'), ('ets'), ('eurl'), ('gaec'), ('gie'), ('gmbh'), ('inc'), ('llc'), ('ltd'), ('nv'),
        ('sa'), ('sarl'), ('sas'), ('sasu'), ('sca'), ('sci'), ('scic'), ('scm'), ('scop'), ('scp'), ('scs'),
        ('sel'), ('selafa'), ('selarl'), ('selas'), ('sem'), ('snc'), ('soc'), ('societe'), ('spa'), ('ste')) as l(tok)
),
folds as (
    select crm_fold as f from searched union select cand_fold from searched
),
tokens as (
    select distinct t.f, t.tok
    from (select f, unnest(string_to_array(f, ' ')) as tok from folds) t
    where t.tok <> '' and t.tok not in (select tok from legal_forms)
),
token_counts as (
    select f, count(*) as n from tokens group by f
),
scored as (
    select s.company_key, s.cand_siren, s.cand_name, s.api_rank,
           cast(round(cast(
               cast((select count(*) from tokens a join tokens b on b.tok = a.tok
                     where a.f = s.crm_fold and b.f = s.cand_fold) as double precision)
               / nullif(coalesce(ca.n, 0) + coalesce(cb.n, 0)
                        - (select count(*) from tokens a join tokens b on b.tok = a.tok
                           where a.f = s.crm_fold and b.f = s.cand_fold), 0)
               * case when s.cand_postcode_key = s.postcode_key and s.postcode_key <> '' then 1.0 else 0.9 end
           as numeric(18, 6)), 4) as double precision) as score
    from searched s
    left join token_counts ca on ca.f = s.crm_fold
    left join token_counts cb on cb.f = s.cand_fold
),
best_per_siren as (
    select company_key, cand_siren, max(cand_name) as cand_name, max(coalesce(score, 0)) as score, min(api_rank) as api_rank
    from scored group by company_key, cand_siren
),
ranked as (
    select b.*,
           row_number() over (partition by company_key order by score desc, api_rank, cand_siren) as rn,
           count(*) over (partition by company_key) as n_candidates
    from best_per_siren b
),
candidate as (
    select b.company_key, b.cand_siren, b.cand_name, b.score, b.n_candidates,
           (select max(o.score) from ranked o where o.company_key = b.company_key and o.rn > 1) as runner_up_score
    from ranked b
    where b.rn = 1
),
decided as (
    select
        k.company_key,
        i.siren as id_siren,
        i.kind as id_kind,
        coalesce(ts.typed_count, 0) as typed_count,
        coalesce(ts.valid_sirens, 0) as valid_sirens,
        c.cand_siren, c.cand_name, c.score as cand_score, c.runner_up_score, coalesce(c.n_candidates, 0) as n_candidates,
        s.min_score
    from keys k
    cross join settings s
    left join identified i on i.company_key = k.company_key and i.rn = 1
    left join typed_summary ts on ts.company_key = k.company_key
    left join candidate c on c.company_key = k.company_key
),
verdict as (
    select d.*,
        case
            when d.valid_sirens > 1 then 'conflicting_identifiers'
            when d.id_siren is not null then null
            when d.cand_siren is not null and d.cand_score < d.min_score then 'below_gate'
            when d.cand_siren is not null and d.runner_up_score >= d.min_score and d.runner_up_score >= d.cand_score - 0.1
                then 'ambiguous'
            when d.cand_siren is not null then null
            when d.typed_count > 0 then 'invalid_identifier'
        end as review_reason
    from decided d
)
select
    v.company_key,
    case when v.review_reason is null then coalesce(v.id_siren, v.cand_siren) end as siren,
    case when v.review_reason is not null then 'none'
         when v.id_siren is not null then v.id_kind
         when v.cand_siren is not null then 'name_postcode'
         else 'none' end as match_method,
    case when v.id_siren is not null and v.review_reason is null then cast(1.0 as double precision)
         else v.cand_score end as match_score,
    v.min_score,
    v.cand_siren as candidate_siren,
    v.cand_name as candidate_legal_name,
    v.n_candidates as candidates,
    (v.review_reason is not null) as needs_review,
    v.review_reason,
    case when v.review_reason is not null then 'needs_review'
         when r.siren is not null then 'enriched'
         when coalesce(v.id_siren, v.cand_siren) is not null then 'not_found'
         else 'no_identifier' end as enrichment_status,
    case when v.review_reason is null then r.fetched_at end as registry_fetched_at
from verdict v
left join staging.registry_companies r on r.siren = case when v.review_reason is null then coalesce(v.id_siren, v.cand_siren) end
