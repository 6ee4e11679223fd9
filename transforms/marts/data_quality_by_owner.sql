-- Data quality per day, rep, object and rule: records checked, records failing, completeness percentage.
-- Grain: one row per run_date x rep_key x object x rule. A rep is a person, whatever CRM holds the record: the records
-- of their HubSpot owner and of their Koban user count together (core.rep_crosswalk; a CRM user it does not know
-- yet is its own rep). The latest evaluation of each rule on a day counts for that day (a rule run several times a
-- day is not counted twice). Records with no owner are shown under rep_key 'unassigned'. The failing records
-- themselves are in quality.violations (with their source system and owner id).
with last_run as (
    select rule, run_date, max(run_at) as run_at
    from quality.rule_results_by_owner
    group by rule, run_date
),
by_rep as (
    select r.run_date,
           case when r.owner_id is null then 'unassigned'
                else coalesce(x.rep_key, r.source_system || ':' || r.owner_id) end as rep_key,
           r.object, r.rule, r.severity, r.checked, r.failing
    from quality.rule_results_by_owner r
    join last_run l on l.rule = r.rule and l.run_date = r.run_date and l.run_at = r.run_at
    left join core.rep_crosswalk x on x.source_system = r.source_system and x.owner_id = r.owner_id
),
day_counts as (
    select run_date, rep_key, object, rule, max(severity) as severity, sum(checked) as records_checked,
           sum(failing) as records_failing
    from by_rep
    group by run_date, rep_key, object, rule
),
scored as (
    select d.*,
           case when d.records_checked > 0
                then round(cast(100.0 * (d.records_checked - d.records_failing) / d.records_checked as numeric), 1)
           end as completeness_pct
    from day_counts d
)
select s.run_date as day,
       s.rep_key,
       -- the name of the rep's main CRM record, as in core.dim_rep
       coalesce(o.full_name, nullif(trim(coalesce(o.first_name, '') || ' ' || coalesce(o.last_name, '')), ''),
                s.rep_key) as owner_name,
       s.object,
       s.rule,
       s.severity,
       s.records_checked,
       s.records_failing,
       s.completeness_pct,
       lag(s.completeness_pct) over (
           partition by s.rep_key, s.object, s.rule order by s.run_date
       ) as previous_completeness_pct
from scored s
left join staging.owners o on o.source_system || ':' || o.owner_id = s.rep_key
