-- One row per sales activity (not deleted): rep and team of the day, resolved company (from the activity, else its
-- deal), segment, and hours = logged duration, else the activity type's default from sales_model.yaml. Its deal is
-- a core.fct_deals one: the record a migrated deal became, none when the deal was deleted.
with migrated as (
    -- an activity migrated to another CRM (named in the new record's imported_from) counts once, as the new record;
    -- the (few) migrated keys are collected once and anti-joined by hash, not looked up per activity
    select distinct imported_from from staging.activities
    where imported_from is not null and not coalesce(is_deleted, false)
),
acts as (
    select a.* from staging.activities a
    left join migrated m on m.imported_from = a.source_system || ':' || a.activity_id
    where not coalesce(a.is_deleted, false) and m.imported_from is null
),
successor as (
    -- a deal migrated to another CRM: its activities follow it to the record that names it in imported_from
    select imported_from, min(source_system || ':' || deal_id) as deal_key
    from staging.deals
    where imported_from is not null and not coalesce(is_deleted, false)
    group by imported_from
),
based as (
    select
        a.*,
        coalesce(rx.rep_key, case when a.owner_id is not null then a.source_system || ':' || a.owner_id end) as rep_key,
        coalesce(
            x.entity_key,
            case when a.company_id is not null then a.source_system || ':' || a.company_id end,
            d.company_key
        ) as company_key,
        d.deal_key,  -- null when the deal was deleted (no fct_deals row to point at)
        t.default_minutes
    from acts a
    left join core.rep_crosswalk rx on rx.source_system = a.source_system and rx.owner_id = a.owner_id
    left join core.company_crosswalk x on x.source_system = a.source_system and x.source_id = a.company_id
    left join successor sd on sd.imported_from = a.source_system || ':' || a.deal_id
    left join core.fct_deals d on d.deal_key = coalesce(sd.deal_key, a.source_system || ':' || a.deal_id)
    left join staging.cfg_activity_types t on t.activity_type = a.activity_type
)
select
    b.source_system || ':' || b.activity_id as activity_key,
    b.activity_type,
    b.occurred_at,
    cast(b.occurred_at at time zone 'UTC' as date) as occurred_date,
    -- rounded to 6 places through numeric(18,6): numeric(38,12) is a 128-bit decimal, 10x slower per row
    cast(cast(cast(coalesce(b.duration_minutes, b.default_minutes, 0) as double precision) / 60.0 as numeric(18,6)) as double precision) as hours,
    (b.duration_minutes is not null) as duration_logged,
    b.rep_key,
    b.company_key,
    coalesce(ct.tier, 'unknown') as tier,
    b.deal_key,
    coalesce(th.team_name, o.team_name, 'unknown') as team_name,
    b.source_system
from based b
left join core.company_tier ct on ct.company_key = b.company_key
left join staging.owners o on o.source_system = b.source_system and o.owner_id = b.owner_id
left join core.rep_team_history th
    on th.source_system = b.source_system and th.owner_id = b.owner_id
   and coalesce(th.valid_from, cast('1900-01-01 00:00:00+00' as timestamptz)) <= b.occurred_at
   and b.occurred_at < coalesce(th.valid_to, cast('9999-12-31 00:00:00+00' as timestamptz))
