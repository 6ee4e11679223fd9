-- Win (transformation) rate per month of close x rep / team x segment, by count and by value, with n shown.
-- Rows: a rep in a team (team_name, rep_key); the team (rep_key = 'all'); the company (team_name = 'all',
-- rep_key = 'all'); and each of those over all segments (tier = 'all'). A deal is credited to the team its rep was
-- in when it closed. Open deals are excluded; a deal reopened and closed again counts once, at its final close.
with closed as (
    select
        cast(date_trunc('month', closed_at at time zone 'UTC') as date) as month,
        team_name,
        coalesce(rep_key, 'unassigned') as rep_key,
        tier,
        is_won,
        coalesce(amount_home, 0) as amount_home,
        reached_proposal
    from core.fct_deals
    where is_closed and closed_at is not null
),
agg as (
    select
        month,
        case when grouping(team_name) = 1 then 'all' else team_name end as team_name,
        case when grouping(rep_key) = 1 then 'all' else rep_key end as rep_key,
        case when grouping(tier) = 1 then 'all' else tier end as tier,
        count(*) filter (where is_won) as deals_won,
        count(*) filter (where not is_won) as deals_lost,
        count(*) as deals_closed,
        coalesce(sum(amount_home) filter (where is_won), 0) as amount_won_home,
        coalesce(sum(amount_home) filter (where not is_won), 0) as amount_lost_home,
        count(*) filter (where reached_proposal) as deals_reached_proposal,
        count(*) filter (where reached_proposal and is_won) as deals_won_after_proposal
    from closed
    group by grouping sets (
        (month, team_name, rep_key, tier), (month, team_name, tier), (month, tier),
        (month, team_name, rep_key), (month, team_name), (month)
    )
)
select
    month,
    cast(date_trunc('quarter', month) as date) as quarter,
    cast(extract(year from month) as integer) as year,
    team_name,
    rep_key,
    tier,
    deals_won,
    deals_lost,
    deals_closed,
    cast(round(cast(cast(deals_won as double precision) / nullif(deals_closed, 0) as numeric(38,12)), 6) as double precision) as win_rate_count,
    cast(amount_won_home as numeric(18,2)) as amount_won_home,
    cast(amount_lost_home as numeric(18,2)) as amount_lost_home,
    cast(amount_won_home + amount_lost_home as numeric(18,2)) as amount_closed_home,
    cast(round(cast(cast(amount_won_home as double precision) / nullif(cast(amount_won_home + amount_lost_home as double precision), 0) as numeric(38,12)), 6) as double precision) as win_rate_value,
    deals_reached_proposal,
    deals_won_after_proposal,
    cast(round(cast(cast(deals_won_after_proposal as double precision) / nullif(deals_reached_proposal, 0) as numeric(38,12)), 6) as double precision) as proposal_success_rate
from agg
