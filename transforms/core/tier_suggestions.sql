-- Tier requalification suggestions: a company that engages and buys like the companies of a higher tier. For each
-- tier, the medians and upper quartiles over its companies of (a) engagement per contact (mean lead score of the
-- company's people, core.lead_scores) and (b) the company's median won deal (home currency); a tier's figure counts
-- only when at least cfg_settings tier_suggestion_min_peers of its companies have it.
-- A figure compares a company with a higher tier only when it tells the two apart: the higher tier's median is above
-- the upper quartile of the company's own tier (of all companies when its own tier has too few peers, or none).
-- Otherwise reaching that median says nothing: when Or accounts engage no more than Bronze ones, half of the Bronze
-- accounts would "engage like Or" (the sandbox demo: 184 of 600 companies suggested Or, nearly all on engagement).
-- A company is suggested the highest tier (cfg_segments order) above its current one whose medians it reaches on
-- every figure that compares (engages and buys like that tier; a company with no won deal is judged on engagement
-- alone) ('unknown' is below every tier). Only rows where the suggestion differs from the current tier; never a
-- downgrade (a quiet large account is still a large account).
-- Each row says why: suggested_on names the figures that reached the suggested tier's median ('engagement',
-- 'won_deals'), and only those figures' tier medians are shown (tier_engagement_median is null unless the company's
-- engagement per contact is at or above the tier's median and that comparison counts); reason spells them out, the
-- number of won deals the median rests on included, and says why a figure the company has was not compared.
with settings as (
    select coalesce(max(case when key = 'tier_suggestion_min_peers' then cast(value as integer) end), 3) as min_peers
    from staging.cfg_settings
),
tiers as (
    select tier, sort_order from staging.cfg_segments where tier <> 'unknown'
),
engagement as (
    select company_key, count(*) as contacts, avg(score) as engagement_per_contact
    from core.lead_scores where company_key is not null group by company_key
),
deals as (
    select company_key, count(*) as won_deals,
           percentile_cont(0.5) within group (order by cast(amount_home as double precision)) as median_won_amount_home
    from core.fct_deals where is_won and company_key is not null and amount_home is not null
    group by company_key
),
companies as (
    select c.company_key, c.tier as current_tier,
           coalesce(t.sort_order, 1000000) as current_order,
           e.contacts, e.engagement_per_contact, d.won_deals, d.median_won_amount_home
    from core.dim_company c
    left join tiers t on t.tier = c.tier
    left join engagement e on e.company_key = c.company_key
    left join deals d on d.company_key = c.company_key
),
tier_medians as (
    select t.tier, t.sort_order,
           count(c.engagement_per_contact) as engagement_peers,
           percentile_cont(0.5) within group (order by c.engagement_per_contact) as engagement_median,
           percentile_cont(0.75) within group (order by c.engagement_per_contact) as engagement_p75,
           count(c.median_won_amount_home) as deal_peers,
           percentile_cont(0.5) within group (order by c.median_won_amount_home) as deal_median,
           percentile_cont(0.75) within group (order by c.median_won_amount_home) as deal_p75
    from tiers t
    left join companies c on c.current_tier = t.tier
    group by t.tier, t.sort_order
),
all_companies as (
    select percentile_cont(0.75) within group (order by engagement_per_contact) as engagement_p75,
           percentile_cont(0.75) within group (order by median_won_amount_home) as deal_p75
    from companies
),
-- each company's baseline: the upper quartiles of its own tier, or of all companies when the tier cannot tell
baseline as (
    select c.*,
           case when o.engagement_peers >= s.min_peers then o.tier else 'all companies' end as own_engagement_group,
           case when o.engagement_peers >= s.min_peers then o.engagement_p75 else a.engagement_p75 end
               as own_engagement_p75,
           case when o.deal_peers >= s.min_peers then o.tier else 'all companies' end as own_deal_group,
           case when o.deal_peers >= s.min_peers then o.deal_p75 else a.deal_p75 end as own_deal_p75
    from companies c
    cross join settings s
    cross join all_companies a
    left join tier_medians o on o.tier = c.current_tier
),
reached as (
    select
        c.*,
        m.tier as candidate_tier, m.sort_order as candidate_order, s.min_peers,
        m.engagement_median, m.engagement_peers, m.deal_median, m.deal_peers,
        -- null = the figure cannot be compared (the company lacks it, the tier has too few peers with it, or the
        -- tier's median does not stand above the company's own tier's upper quartile)
        case when m.engagement_peers >= s.min_peers and c.engagement_per_contact is not null
                  and m.engagement_median > c.own_engagement_p75
             then c.engagement_per_contact > 0 and c.engagement_per_contact >= m.engagement_median end as by_engagement,
        case when m.deal_peers >= s.min_peers and c.median_won_amount_home is not null
                  and m.deal_median > c.own_deal_p75
             then c.median_won_amount_home >= m.deal_median end as by_deals
    from baseline c
    cross join settings s
    join tier_medians m on m.sort_order < c.current_order
),
best as (
    select r.*, row_number() over (partition by r.company_key order by r.candidate_order) as rn
    from reached r
    -- every figure that can be compared reaches the tier's median, and at least one can
    where coalesce(r.by_engagement, true) and coalesce(r.by_deals, true)
      and (r.by_engagement is not null or r.by_deals is not null)
)
select
    company_key,
    current_tier,
    candidate_tier as suggested_tier,
    concat_ws(', ', case when by_engagement then 'engagement' end, case when by_deals then 'won_deals' end)
        as suggested_on,
    contacts,
    cast(round(cast(engagement_per_contact as numeric(18, 6)), 2) as double precision) as engagement_per_contact,
    -- a tier's median is shown only beside the figure that reached it: it backs the suggestion
    case when by_engagement then cast(round(cast(engagement_median as numeric(18, 6)), 2) as double precision) end
        as tier_engagement_median,
    won_deals,
    cast(round(cast(median_won_amount_home as numeric(18, 6)), 2) as numeric(18, 2)) as median_won_amount_home,
    case when by_deals then cast(round(cast(deal_median as numeric(18, 6)), 2) as numeric(18, 2)) end
        as tier_median_won_amount_home,
    concat_ws('; ',
        case when by_engagement then 'engages like ' || candidate_tier || ': engagement per contact '
            || cast(cast(round(cast(engagement_per_contact as numeric(18, 6)), 1) as numeric(18, 1)) as text)
            || ' (' || cast(contacts as text) || case when contacts = 1 then ' contact' else ' contacts' end
            || ') >= ' || candidate_tier || ' median ' || cast(cast(round(cast(engagement_median as numeric(18, 6)), 1) as numeric(18, 1)) as text)
            || ' (' || cast(engagement_peers as text) || ' companies), above the ' || own_engagement_group
            || ' upper quartile ' || cast(cast(round(cast(own_engagement_p75 as numeric(18, 6)), 1) as numeric(18, 1)) as text) end,
        case when by_deals then 'buys like ' || candidate_tier || ': median won deal '
            || cast(cast(round(cast(median_won_amount_home as numeric(18, 6)), 0) as numeric(18, 0)) as text)
            || ' (' || cast(won_deals as text) || case when won_deals = 1 then ' won deal' else ' won deals' end
            || ') >= ' || candidate_tier || ' median ' || cast(cast(round(cast(deal_median as numeric(18, 6)), 0) as numeric(18, 0)) as text)
            || ' (' || cast(deal_peers as text) || ' companies), above the ' || own_deal_group
            || ' upper quartile ' || cast(cast(round(cast(own_deal_p75 as numeric(18, 6)), 0) as numeric(18, 0)) as text) end,
        -- a figure the company has that was not compared: say why, so it is not read as backing the suggestion
        case when by_engagement is null and engagement_per_contact is not null then 'engagement not compared: '
            || case when engagement_peers < min_peers
                    then 'fewer than ' || cast(min_peers as text) || ' ' || candidate_tier || ' companies have it'
                    else candidate_tier || ' median ' || cast(cast(round(cast(engagement_median as numeric(18, 6)), 1) as numeric(18, 1)) as text)
                         || ' is not above the ' || own_engagement_group || ' upper quartile '
                         || cast(cast(round(cast(own_engagement_p75 as numeric(18, 6)), 1) as numeric(18, 1)) as text) end end,
        case when by_deals is null and median_won_amount_home is not null then 'won deals not compared: '
            || case when deal_peers < min_peers
                    then 'fewer than ' || cast(min_peers as text) || ' ' || candidate_tier || ' companies have them'
                    else candidate_tier || ' median ' || cast(cast(round(cast(deal_median as numeric(18, 6)), 0) as numeric(18, 0)) as text)
                         || ' is not above the ' || own_deal_group || ' upper quartile '
                         || cast(cast(round(cast(own_deal_p75 as numeric(18, 6)), 0) as numeric(18, 0)) as text) end end
    ) as reason
from best
where rn = 1
