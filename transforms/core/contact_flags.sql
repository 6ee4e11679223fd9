-- Contacts likely gone, for sales ops to check before calling or mailing: one row per CRM contact record (not
-- deleted; fixes are made record by record in the CRM), each reason its own flag plus a readable `reasons`.
-- hard_bounce: the CRM recorded a hard bounce. company_ceased: the contact's company has ceased in the registry
-- (core.dim_company.is_ceased, enriched companies only). email_domain_not_company: the e-mail's domain is none of
-- the company's known domains (its CRM records' web domains and its billing customers' e-mail domains; a
-- sub-domain counts as the company's), free-mail addresses (gmail.com...) and companies with no known domain
-- never flag.
with free_mail as (
    -- transforms.normalize.FREE_MAIL_DOMAINS (a test keeps the two lists equal)
    select domain from (values
        ('alice.fr'), ('aliceadsl.fr'), ('aol.com'), ('aol.fr'), ('bbox.fr'), ('cegetel.net'),
        ('club-internet.fr'), ('free.fr'), ('gmail.com'), ('gmx.com'), ('gmx.fr'), ('gmx.net'),
        ('googlemail.com'), ('hotmail.co.uk'), ('hotmail.com'), ('hotmail.fr'), ('icloud.com'), ('laposte.net'),
        ('libertysurf.fr'), ('live.com'), ('live.fr'), ('mac.com'), ('mail.com'), ('me.com'), ('msn.com'),
        ('neuf.fr'), ('noos.fr'), ('numericable.fr'), ('orange.fr'), ('outlook.com'), ('outlook.fr'),
        ('proton.me'), ('protonmail.com'), ('sfr.fr'), ('tutanota.com'), ('voila.fr'), ('wanadoo.fr'),
        ('yahoo.co.uk'), ('yahoo.com'), ('yahoo.fr'), ('yandex.com'), ('yandex.ru'), ('ymail.com')
    ) as f(domain)
),
contacts as (
    select
        c.source_system,
        c.contact_id,
        coalesce(cx.entity_key, c.source_system || ':' || c.contact_id) as contact_key,
        dco.company_key,  -- the contact's company, when it is one of dim_company's (not a deleted record)
        nullif(lower(trim(c.email)), '') as email,
        case when lower(trim(c.email)) like '%_@_%'
             then regexp_replace(lower(trim(c.email)), '^.*@', '') end as email_domain,
        coalesce(c.hard_bounced, false) as hard_bounce
    from staging.contacts c
    left join core.contact_crosswalk cx on cx.source_system = c.source_system and cx.source_id = c.contact_id
    left join core.company_crosswalk x on x.source_system = c.source_system and x.source_id = c.company_id
    left join core.dim_company dco
        on dco.company_key = coalesce(x.entity_key, c.source_system || ':' || c.company_id)
    where not coalesce(c.is_deleted, false)
),
company_domains as (
    select distinct company_key, domain from (
        select coalesce(x.entity_key, c.source_system || ':' || c.company_id) as company_key, lower(trim(c.domain)) as domain
        from staging.companies c
        left join core.company_crosswalk x on x.source_system = c.source_system and x.source_id = c.company_id
        where not coalesce(c.is_deleted, false)
        union all
        select x.entity_key, lower(trim(d.email_domain))
        from staging.billing_customer_details d
        join core.company_crosswalk x on x.source_system = d.source_system and x.source_id = d.customer_id
        where not coalesce(d.is_deleted, false)
    ) t
    where domain is not null and domain <> '' and domain not in (select domain from free_mail)
),
domain_lists as (
    select company_key, string_agg(domain, ', ' order by domain) as domains from company_domains group by company_key
),
domain_matches as (
    -- the contact records whose e-mail domain is one of their company's (or a sub-domain of one); a join, not a
    -- correlated `not exists` in the select list, which PostgreSQL runs once per contact over every company
    -- domain (1M contacts x 200k domains did not finish in 30 minutes)
    select distinct c.source_system, c.contact_id
    from contacts c
    join company_domains d on d.company_key = c.company_key
    where c.email_domain = d.domain or c.email_domain like '%.' || d.domain
),
flagged as (
    select
        c.*,
        dl.domains as company_domains,
        coalesce(co.is_ceased, false) as company_ceased,
        co.ceased_on,
        (c.email_domain is not null
         and c.email_domain not in (select domain from free_mail)
         and dl.domains is not null
         and dm.contact_id is null) as email_domain_not_company
    from contacts c
    left join domain_lists dl on dl.company_key = c.company_key
    left join domain_matches dm on dm.source_system = c.source_system and dm.contact_id = c.contact_id
    left join core.dim_company co on co.company_key = c.company_key
)
select
    source_system,
    contact_id,
    contact_key,
    company_key,
    email,
    email_domain,
    company_domains,
    (hard_bounce or company_ceased or email_domain_not_company) as likely_gone,
    hard_bounce,
    company_ceased,
    email_domain_not_company,
    nullif(concat_ws('; ',
        case when hard_bounce then 'hard bounce on ' || coalesce(email, 'the e-mail') end,
        case when company_ceased then 'company ceased in the registry' || coalesce(' on ' || cast(ceased_on as text), '') end,
        case when email_domain_not_company then 'e-mail domain ' || email_domain || ' is not the company''s (' || company_domains || ')' end
    ), '') as reasons
from flagged
