-- Stripe customers (one row each, deleted ones flagged: a deletion event, or gone from a full re-scan).
-- optional columns: raw_stripe.customers(email, name)
-- optional table: raw_stripe.deleted_objects(object_type, id)
select
    'stripe' as source_system,
    c.id as customer_id,
    lower(nullif(trim(c.email), '')) as email,
    nullif(trim(c.name), '') as name,
    staging.safe_ts(cast(c.created as text)) as created_at,
    (coalesce(c.deleted, false) or d.id is not null) as is_deleted
from raw_stripe.customers c
left join raw_stripe.deleted_objects d on d.object_type = 'customers' and d.id = c.id
