-- Data quality per day, rep, object and rule: records checked, records failing, completeness percentage.
-- Grain: one row per run_date x source_system x owner_id x object x rule. The latest evaluation of each rule on
-- a day counts for that day (a rule run several times a day is not counted twice). Records with no owner are
-- shown under owner_id 'unassigned'. The failing records themselves are in quality.violations.
with last_run as (
    select rule, run_date, max(run_at) as run_at
    from quality.rule_results_by_owner
    group by rule, run_date
),
day_counts as (
    select r.run_date, r.source_system, coalesce(r.owner_id, 'unassigned') as owner_id, r.object, r.rule,
           max(r.severity) as severity, sum(r.checked) as records_checked, sum(r.failing) as records_failing
    from quality.rule_results_by_owner r
    join last_run l on l.rule = r.rule and l.run_date = r.run_date and l.run_at = r.run_at
    group by r.run_date, r.source_system, coalesce(r.owner_id, 'unassigned'), r.object, r.rule
),
scored as (
    select d.*,
           case when d.records_checked > 0
                then round(cast(100.0 * (d.records_checked - d.records_failing) / d.records_checked as numeric), 1)
           end as completeness_pct
    from day_counts d
)
select s.run_date as day,
       s.source_system,
       s.owner_id,
       coalesce(o.full_name, case when s.owner_id = 'unassigned' then 'unassigned' else s.owner_id end) as owner_name,
       s.object,
       s.rule,
       s.severity,
       s.records_checked,
       s.records_failing,
       s.completeness_pct,
       lag(s.completeness_pct) over (
           partition by s.source_system, s.owner_id, s.object, s.rule order by s.run_date
       ) as previous_completeness_pct
from scored s
left join staging.owners o on o.source_system = s.source_system and o.owner_id = s.owner_id
