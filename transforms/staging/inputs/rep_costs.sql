-- Reps' loaded hourly cost by period from the inputs files (monthly cost / hours already divided by the
-- connector), rows of files still in the folder at the content last loaded. Periods never overlap (the
-- connector refuses files where they do).
-- optional columns: raw_inputs.rep_costs(valid_to)
select
    lower(trim(r.rep_email)) as rep_email,
    r.hourly_cost,
    r.valid_from,
    r.valid_to,
    r.source_file
from raw_inputs.rep_costs r
join raw_inputs.input_files f
    on f.kind = 'rep_costs' and f.source_file = r.source_file and f.file_hash = r.file_hash
where not coalesce(f.is_deleted, false)
