-- The deal property history as validity periods (valid_from inclusive, valid_to exclusive, null = still valid),
-- for as-of reconstruction of amount, probability, close date and owner.
-- indexes: (deal_key, property, valid_from)
select
    h.source_system || ':' || h.deal_id as deal_key,
    h.property,
    h.value,
    h.changed_at as valid_from,
    lead(h.changed_at) over (partition by h.source_system, h.deal_id, h.property order by h.changed_at) as valid_to
from staging.deal_property_history h
