-- Marketing spend from the inputs files: rows of files still in the folder, at the content last loaded (a file
-- edited then emptied, or removed, stops counting). Rows with the same key in several files add up.
-- optional columns: raw_inputs.marketing_spend(tier)
select
    m.month,
    upper(trim(m.channel)) as channel,
    trim(m.campaign) as campaign,
    nullif(trim(m.tier), '') as tier,
    sum(m.amount) as amount,
    upper(m.currency) as currency
from raw_inputs.marketing_spend m
join raw_inputs.input_files f
    on f.kind = 'marketing_spend' and f.source_file = m.source_file and f.file_hash = m.file_hash
where not coalesce(f.is_deleted, false)
group by m.month, upper(trim(m.channel)), trim(m.campaign), nullif(trim(m.tier), ''), upper(m.currency)
