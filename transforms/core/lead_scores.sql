-- Lead score of every resolved person from the behaviour the CRM tracked (page views, marketing e-mail opens and
-- clicks, form submissions), summed over the person's CRM records, with the points and the hand-off threshold of
-- sales_model.yaml `lead_scoring` (cfg_settings lead_points_<signal>, lead_score_handoff_threshold; a signal with
-- no points scores 0). qualifies_for_handoff: score at or above the threshold. handed_off / handed_off_at: the CRM
-- shows the hand-off (lifecycle reached sql, opportunity or beyond; at = first time it did). handoff_pending:
-- qualifies but the CRM has not handed the person to sales yet, and the person is not likely gone (every record
-- flagged in core.contact_flags: bounced, company ceased, domain no longer the company's): the list for marketing
-- ops.
with settings as (
    select
        coalesce(max(case when key = 'lead_points_page_view' then cast(value as double precision) end), 0) as pts_view,
        coalesce(max(case when key = 'lead_points_email_open' then cast(value as double precision) end), 0) as pts_open,
        coalesce(max(case when key = 'lead_points_email_click' then cast(value as double precision) end), 0) as pts_click,
        coalesce(max(case when key = 'lead_points_form_submission' then cast(value as double precision) end), 0) as pts_form,
        max(case when key = 'lead_score_handoff_threshold' then cast(value as double precision) end) as threshold
    from staging.cfg_settings
),
stages as (
    select stage, stage_rank from (values ('subscriber', 1), ('lead', 2), ('mql', 3), ('sql', 4), ('opportunity', 5),
        ('customer', 6), ('evangelist', 7)) as s(stage, stage_rank)
),
records as (
    select
        c.source_system,
        c.contact_id,
        coalesce(cx.entity_key, c.source_system || ':' || c.contact_id) as contact_key,
        dco.company_key,  -- the contact's company, when it is one of dim_company's (not a deleted record)
        nullif(lower(trim(c.email)), '') as email,
        lower(c.lifecycle_stage) as lifecycle_stage,
        st.stage_rank,
        coalesce(c.page_views, 0) as page_views,
        coalesce(c.email_opens, 0) as email_opens,
        coalesce(c.email_clicks, 0) as email_clicks,
        coalesce(c.form_submissions, 0) as form_submissions,
        row_number() over (
            partition by coalesce(cx.entity_key, c.source_system || ':' || c.contact_id)
            order by c.updated_at desc nulls last, c.source_system, c.contact_id
        ) as rn
    from staging.contacts c
    left join core.contact_crosswalk cx on cx.source_system = c.source_system and cx.source_id = c.contact_id
    left join core.company_crosswalk x on x.source_system = c.source_system and x.source_id = c.company_id
    left join core.dim_company dco
        on dco.company_key = coalesce(x.entity_key, c.source_system || ':' || c.company_id)
    left join stages st on st.stage = lower(c.lifecycle_stage)
    where not coalesce(c.is_deleted, false)
),
people as (
    select
        contact_key,
        count(*) as records,
        sum(page_views) as page_views,
        sum(email_opens) as email_opens,
        sum(email_clicks) as email_clicks,
        sum(form_submissions) as form_submissions,
        max(stage_rank) as stage_rank
    from records
    group by contact_key
),
handoff as (
    select r.contact_key, min(e.entered_at) as handed_off_at
    from records r
    join staging.lifecycle_events e on e.source_system = r.source_system and e.contact_id = r.contact_id
    join stages st on st.stage = lower(e.stage)
    where st.stage_rank >= 4
    group by r.contact_key
),
emails as (
    -- the freshest record that has an e-mail (for a person the identity step has no golden record of)
    select contact_key, email,
           row_number() over (partition by contact_key order by rn) as email_rn
    from records where email is not null
),
main as (
    -- the freshest record names the company (else any record that has one); the e-mail is the golden one
    -- (core.contact_golden, as core.dim_contact), else the freshest record's that has one
    select r.contact_key,
           coalesce(max(case when r.rn = 1 then r.company_key end), max(r.company_key)) as company_key,
           coalesce(max(g.email), max(e.email)) as email
    from records r
    left join core.contact_golden g on g.entity_key = r.contact_key
    left join emails e on e.contact_key = r.contact_key and e.email_rn = 1
    group by r.contact_key
),
gone as (
    -- likely gone (core.contact_flags) when every CRM record of the person is: a hand-off would reach nobody
    select contact_key, bool_and(likely_gone) as likely_gone,
           case when bool_and(likely_gone) then string_agg(distinct reasons, '; ' order by reasons) end as reasons
    from core.contact_flags
    group by contact_key
),
scored as (
    select
        p.*,
        m.company_key,
        m.email,
        cast(round(cast(p.page_views * s.pts_view + p.email_opens * s.pts_open + p.email_clicks * s.pts_click
                        + p.form_submissions * s.pts_form as numeric(18, 6)), 2) as double precision) as score,
        s.threshold,
        h.handed_off_at,
        coalesce(gn.likely_gone, false) as likely_gone,
        gn.reasons as likely_gone_reasons
    from people p
    cross join settings s
    join main m on m.contact_key = p.contact_key
    left join handoff h on h.contact_key = p.contact_key
    left join gone gn on gn.contact_key = p.contact_key
)
select
    contact_key,
    company_key,
    email,
    records,
    page_views,
    email_opens,
    email_clicks,
    form_submissions,
    score,
    threshold as handoff_threshold,
    coalesce(score >= threshold, false) as qualifies_for_handoff,
    (handed_off_at is not null or coalesce(stage_rank, 0) >= 4) as handed_off,
    handed_off_at,
    (coalesce(score >= threshold, false) and not (handed_off_at is not null or coalesce(stage_rank, 0) >= 4)
     and not likely_gone) as handoff_pending,
    (select max(st.stage) from stages st where st.stage_rank = scored.stage_rank) as lifecycle_stage,
    likely_gone,
    likely_gone_reasons
from scored
