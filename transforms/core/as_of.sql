-- The data's as-of instant: every "open at", "censored at", "matured by" figure is relative to it, never to the
-- run time. cfg_settings `as_of` wins when set (reproducible reruns); else the latest change seen in the data.
with seen as (
    select max(updated_at) as ts from staging.deals
    union all select max(entered_at) from staging.deal_stage_events
    union all select max(created_at) from staging.invoices
    union all select max(paid_at) from staging.invoices
),
cfg as (
    select max(cast(value as timestamptz)) as ts from staging.cfg_settings where key = 'as_of' and value <> ''
)
select
    coalesce((select ts from cfg), (select max(ts) from seen)) as as_of_at,
    cast(coalesce((select ts from cfg), (select max(ts) from seen)) at time zone 'UTC' as date) as as_of_date,
    case when (select ts from cfg) is not null then 'config' else 'data' end as as_of_source
