-- One row per deal (not deleted): resolved company and segment, rep and the rep's team when the deal closed (now,
-- when open), stage position, and whether it ever reached the proposal stage. A deal reopened after a loss is
-- judged on its final state: closed_at is when it last entered its current closed stage. A deal migrated from one
-- CRM to another counts once (the new record).
-- indexes: (deal_key)
with deals as (
    -- a record migrated to another CRM (the new record names it in imported_from) is superseded by the new one
    select d.* from staging.deals d
    where not coalesce(d.is_deleted, false)
      and not exists (
          select 1 from staging.deals n
          where n.imported_from = d.source_system || ':' || d.deal_id and not coalesce(n.is_deleted, false)
      )
),
stages as (
    select ps.source_system, ps.pipeline_id, ps.stage_id, ps.stage_order, ps.is_closed, ps.is_won,
           coalesce(cs.is_proposal, false) as is_proposal
    from staging.pipeline_stages ps
    left join staging.cfg_stages cs on cs.pipeline_id = ps.pipeline_id and cs.stage_id = ps.stage_id
),
proposal as (
    select source_system, pipeline_id, min(stage_order) as proposal_order
    from stages where is_proposal and not coalesce(is_closed, false)
    group by source_system, pipeline_id
),
history as (
    select e.source_system, e.deal_id,
           max(case when not coalesce(s.is_closed, false) then s.stage_order end) as max_open_order_reached,
           max(case when e.stage_id = d.stage_id and e.exited_at is null then e.entered_at end) as current_stage_entered_at
    from staging.deal_stage_events e
    join deals d on d.source_system = e.source_system and d.deal_id = e.deal_id
    left join stages s on s.source_system = e.source_system and s.pipeline_id = d.pipeline_id and s.stage_id = e.stage_id
    group by e.source_system, e.deal_id
),
base as (
    select
        d.*,
        s.stage_order,
        case when d.is_closed then coalesce(h.current_stage_entered_at, d.closed_at, d.close_date) end as final_closed_at,
        h.max_open_order_reached,
        p.proposal_order,
        coalesce(x.entity_key, case when d.company_id is not null then d.source_system || ':' || d.company_id end) as company_key,
        coalesce(rx.rep_key, case when d.owner_id is not null then d.source_system || ':' || d.owner_id end) as rep_key
    from deals d
    left join stages s on s.source_system = d.source_system and s.pipeline_id = d.pipeline_id and s.stage_id = d.stage_id
    left join history h on h.source_system = d.source_system and h.deal_id = d.deal_id
    left join proposal p on p.source_system = d.source_system and p.pipeline_id = d.pipeline_id
    left join core.company_crosswalk x on x.source_system = d.source_system and x.source_id = d.company_id
    left join core.rep_crosswalk rx on rx.source_system = d.source_system and rx.owner_id = d.owner_id
)
select
    b.source_system || ':' || b.deal_id as deal_key,
    b.source_system,
    b.deal_id,
    b.company_key,
    coalesce(t.tier, 'unknown') as tier,
    b.rep_key,
    coalesce(th.team_name, o.team_name, 'unknown') as team_name,
    b.pipeline_id,
    b.stage_id,
    b.stage_order,
    cast(b.amount_home as numeric(18,2)) as amount_home,
    b.probability,
    coalesce(b.is_closed, false) as is_closed,
    coalesce(b.is_won, false) as is_won,
    b.created_at,
    b.close_date,
    b.final_closed_at as closed_at,
    b.source_channel,
    (coalesce(b.is_won, false)
        or (b.proposal_order is not null and (b.max_open_order_reached >= b.proposal_order
                                               or (not coalesce(b.is_closed, false) and b.stage_order >= b.proposal_order)))
    ) as reached_proposal,
    b.lead_source,
    b.deal_type,
    b.owner_id
from base b
left join core.company_tier t on t.company_key = b.company_key
left join staging.owners o on o.source_system = b.source_system and o.owner_id = b.owner_id
left join core.rep_team_history th
    on th.source_system = b.source_system and th.owner_id = b.owner_id and b.final_closed_at is not null
   and coalesce(th.valid_from, cast('1900-01-01 00:00:00+00' as timestamptz)) <= b.final_closed_at
   and b.final_closed_at < coalesce(th.valid_to, cast('9999-12-31 00:00:00+00' as timestamptz))
