-- Koban deals (ncDeal), typed. The stage is the result when there is one (WON / LOST / SLEEP, closed stages of
-- pipeline_stages), else the current step; the pipeline is the deal process (its Extcode). Probability is 0-100
-- in Koban. close_date = result date when closed, else the forecast date (DPrev). Deleted = Obsolete, or
-- hard-deleted in Koban (gone_records).
-- optional table: raw_koban.deals__tags(_dlt_parent_id, tag_category_code, label)
-- optional table: raw_koban.gone_records(object_type, id)
with tags as (
    select _dlt_parent_id, min(case when upper(tag_category_code) = 'DEALTYPE' then label end) as deal_type
    from raw_koban.deals__tags group by _dlt_parent_id
), typed as (
    select d.*,
           upper(coalesce(nullif(trim(d.amount__currency__code), ''), (select value from staging.cfg_settings where key = 'home_currency'))) as currency_code,
           upper(nullif(trim(d.result), '')) as result_code
    from raw_koban.deals d
)
select
    'koban' as source_system,
    t.id as deal_id,
    nullif(trim(t.label), '') as deal_name,
    coalesce(nullif(trim(t.process__code), ''), t.process__guid) as pipeline_id,
    coalesce(t.result_code, nullif(trim(t.status__code), ''), t.status__guid) as stage_id,
    cast(t.amountprev as numeric(18,2)) as amount,
    t.currency_code as currency,
    cast(cast(t.amountprev as numeric(18,2)) * fx.rate_to_home as numeric(18,2)) as amount_home,
    case when t.probability > 1 then t.probability / 100.0 else t.probability end as probability,
    t.result_code is not null as is_closed,
    coalesce(t.result_code = 'WON', false) as is_won,
    t.created_at,
    case when t.result_code is not null then coalesce(t.d_result, t.d_prev) else t.d_prev end as close_date,
    case when t.result_code is not null then coalesce(t.d_result, t.updated_at) end as closed_at,
    nullif(trim(t.assigned_to__guid), '') as owner_id,
    nullif(trim(t.third__guid), '') as company_id,
    nullif(trim(t.contact__guid), '') as contact_id,
    nullif(trim(t.origin__code), '') as source_channel,
    case upper(t.origin__code) when 'PROSPECTION' then 'prospecting' when 'RECOMMANDATION' then 'referral'
         when 'CLIENT' then 'existing_customer' end as lead_source,
    lower(nullif(trim(g.deal_type), '')) as deal_type,
    t.updated_at,
    coalesce(t.is_deleted, false) or gone.id is not null as is_deleted
from typed t
left join staging.cfg_fx_rates fx on fx.currency = t.currency_code
left join tags g on g._dlt_parent_id = t._dlt_id
left join raw_koban.gone_records gone on gone.object_type = 'deals' and gone.id = t.id
