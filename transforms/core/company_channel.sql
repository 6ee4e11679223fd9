-- The acquisition channel of every company that has deals: the source channel of its first won deal, else of its
-- earliest deal; 'UNKNOWN' when the CRM gave none. Upper-cased, the vocabulary of marketing_spend.channel.
-- indexes: (company_key)
with ranked as (
    select
        company_key,
        upper(coalesce(nullif(trim(source_channel), ''), 'UNKNOWN')) as channel,
        lead_source,
        row_number() over (
            partition by company_key
            order by case when is_won then 0 else 1 end, case when is_won then closed_at end, created_at, deal_key
        ) as rn
    from core.fct_deals
    where company_key is not null
)
select company_key, channel as acquisition_channel, lead_source as acquisition_lead_source
from ranked
where rn = 1
