-- Labels of the registry's nomenclatures (NAF codes, legal forms, headcount bands), one row per code. NAF codes
-- are normalised to the dotted form (6201Z -> 62.01Z), as in registry_companies, so a typed code finds its label.
-- optional table: raw_registry.code_labels(nomenclature, code, label)
with labels as (
    select cast(l.nomenclature as text) as nomenclature,
           case when cast(l.nomenclature as text) = 'naf'
                then regexp_replace(upper(trim(cast(l.code as text))), '^([0-9]{2})\.?([0-9]{2}[A-Z])$', '\1.\2')
                else trim(cast(l.code as text)) end as code,
           nullif(trim(cast(l.label as text)), '') as label
    from raw_registry.code_labels l
    where l.nomenclature is not null and l.code is not null
)
select nomenclature, code, max(label) as label
from labels
where label is not null
group by nomenclature, code
