-- Koban keeps no field history: the only values known with a date are the current ones, valid at the deal's
-- LastUpdateDate (stamped then, not back-dated to creation, so as-of reconstructions see no look-ahead values).
with d as (
    select id, updated_at, amountprev, probability, d_prev, d_result, result, assigned_to__guid, status__code
    from raw_koban.deals
)
select 'koban' as source_system, id as deal_id, 'amount' as property, cast(amountprev as text) as value, updated_at as changed_at
from d where amountprev is not null
union all
select 'koban', id, 'probability', cast(case when probability > 1 then probability / 100.0 else probability end as text), updated_at
from d where probability is not null
union all
select 'koban', id, 'close_date', cast(coalesce(case when result is not null then d_result end, d_prev) as text), updated_at
from d where coalesce(case when result is not null then d_result end, d_prev) is not null
union all
select 'koban', id, 'owner_id', assigned_to__guid, updated_at from d where assigned_to__guid is not null
union all
select 'koban', id, 'stage_id', coalesce(upper(nullif(trim(result), '')), status__code), updated_at
from d where coalesce(nullif(trim(result), ''), status__code) is not null
