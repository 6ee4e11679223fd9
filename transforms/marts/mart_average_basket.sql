-- Average basket from paid invoices (month of payment, home currency) per account type x segment, with total rows
-- ('all'): per invoice (revenue / invoices), per customer in the month (revenue / paying customers), and over each
-- customer's lifetime so far (cumulative revenue / cumulative invoices and / customers who ever paid).
-- Revenue = core.fct_invoices.revenue_home: excluding tax, net of the invoice's credit notes (counted in the
-- invoice's month of payment). An invoice its credit notes cancel entirely (revenue 0 after a credit) is not a sale:
-- it counts in no amount, invoice or customer.
-- Invoices whose billing customer is not linked to a company count in amounts and invoices, not in customers.
with paid as (
    select
        cast(date_trunc('month', paid_at at time zone 'UTC') as date) as month,
        account_type, tier, company_key, revenue_home
    from core.fct_invoices
    where status = 'paid' and paid_at is not null
      and not (credited_excl_tax_home > 0 and revenue_home <= 0)
),
combos as (
    select 1 as combo union all select 2 union all select 3 union all select 4
),
expanded as (
    select
        p.month,
        case when c.combo in (1, 2) then p.account_type else 'all' end as account_type,
        case when c.combo in (1, 3) then p.tier else 'all' end as tier,
        p.company_key, p.revenue_home
    from paid p cross join combos c
),
monthly as (
    select month, account_type, tier,
           count(*) as invoices_paid,
           count(distinct company_key) as paying_customers,
           sum(revenue_home) as revenue_home
    from expanded group by month, account_type, tier
),
first_paid as (
    select account_type, tier, company_key, min(month) as first_month
    from expanded where company_key is not null
    group by account_type, tier, company_key
),
new_payers as (
    select account_type, tier, first_month as month, count(*) as new_paying_customers
    from first_paid group by account_type, tier, first_month
),
cumulative as (
    select
        m.*,
        sum(m.invoices_paid) over w as lifetime_invoices,
        sum(m.revenue_home) over w as lifetime_amount_home,
        sum(coalesce(n.new_paying_customers, 0)) over w as lifetime_customers
    from monthly m
    left join new_payers n on n.account_type = m.account_type and n.tier = m.tier and n.month = m.month
    window w as (partition by m.account_type, m.tier order by m.month rows between unbounded preceding and current row)
)
select
    month,
    cast(date_trunc('quarter', month) as date) as quarter,
    cast(extract(year from month) as integer) as year,
    account_type, tier,
    invoices_paid,
    paying_customers,
    cast(revenue_home as numeric(18,2)) as revenue_home,
    cast(round(cast(revenue_home / nullif(invoices_paid, 0) as numeric(18,6)), 2) as numeric(18,2)) as average_basket_home,
    cast(round(cast(revenue_home / nullif(paying_customers, 0) as numeric(18,6)), 2) as numeric(18,2)) as revenue_per_customer_home,
    cast(round(cast(cast(invoices_paid as double precision) / nullif(paying_customers, 0) as numeric(38,12)), 6) as double precision) as invoices_per_customer,
    cast(lifetime_invoices as bigint) as lifetime_invoices,
    cast(lifetime_customers as bigint) as lifetime_customers,
    cast(lifetime_amount_home as numeric(18,2)) as lifetime_amount_home,
    cast(round(cast(lifetime_amount_home / nullif(lifetime_invoices, 0) as numeric(18,6)), 2) as numeric(18,2)) as lifetime_average_basket_home,
    cast(round(cast(lifetime_amount_home / nullif(lifetime_customers, 0) as numeric(18,6)), 2) as numeric(18,2)) as lifetime_revenue_per_customer_home
from cumulative
