"""Dagster asset checks for the quality rules of the sales model file (thin: the rules live in transforms/quality).

`build_quality_checks(sales_model, assets=...)` gives a multi-asset check per depth of the asset graph (one step
each, pipelines/check_steps.py): one check per rule, on the asset of the table the rule guards
(AssetKey(["staging", table]) for staging rules, ["core", table] for identity rules). `error` rules are blocking checks: when one fails, the downstream marts of that run are not materialised, so
the last good marts stay. The step also merges failures into quality.violations, appends to
quality.rule_results(_by_owner), resolves the violations of rules the model no longer defines, and rebuilds
marts.data_quality_by_owner (reported as materialisations of the `quality_table_specs` assets).

The checks need a resource named `warehouse` whose `.get()` returns a warehouse.connection.Warehouse.
`freshness_policies(sales_model)` turns the file's `freshness:` section into Dagster FreshnessPolicy objects per
source, to attach to the raw assets of each source.
"""

import datetime as dt

import dagster as dg

from transforms.quality.rules import Rule, build_rules
from transforms.quality.scorecard import SCORECARD, build_scorecard
from transforms.quality.violations import RuleOutcome, evaluate_rules
from transforms.sales_model import SalesModel

from .check_steps import QUALITY_STEP_TAG, asset_depths, group_by_depth


def _samples_table(samples: list[dict]) -> str:
    if not samples:
        return "none"
    cell = lambda v: str(v if v is not None else "").replace("|", "\\|").replace("\n", " ")  # noqa: E731
    return "\n".join(["| record | value | owner |", "|---|---|---|",
                       *(f"| {cell(s['record'])} | {cell(s['value'])} | {cell(s['owner'])} |" for s in samples)])


def _result_fields(outcome: RuleOutcome) -> dict:
    """The AssetCheckResult fields of one evaluated rule (counts, share, worst reps, sample ids, where to look)."""
    severity = dg.AssetCheckSeverity.ERROR if outcome.severity == "error" else dg.AssetCheckSeverity.WARN
    metadata = {
        "rule": outcome.rule,
        "severity": outcome.severity,
        "status": outcome.status,
        "checked": dg.MetadataValue.int(outcome.checked),
        "failing": dg.MetadataValue.int(outcome.failing),
        "failing_share": dg.MetadataValue.float(round(outcome.failing_share or 0.0, 4)),
        "worst_owners": dg.MetadataValue.json(
            [{"owner_id": o or "unassigned", "failing": n} for o, n in outcome.worst_owners]
        ),
        "sample_record_ids": dg.MetadataValue.json(outcome.sample_record_ids),
        # what is wrong with each sample and whose record it is
        "samples": dg.MetadataValue.md(_samples_table(outcome.samples)),
        "where_to_look": dg.MetadataValue.text(
            f"select * from quality.violations where rule = '{outcome.rule}' and resolved_at is null"
        ),
    }
    if outcome.status == "skipped":
        # A rule that could not run says so: a warning in the UI (a pass would show green although nothing was
        # checked), never a block (only a failure of severity ERROR holds back what is downstream).
        metadata["reason"] = outcome.reason
        return dict(passed=False, severity=dg.AssetCheckSeverity.WARN, metadata=metadata, description=outcome.summary())
    return dict(passed=outcome.status == "passed", severity=severity, metadata=metadata, description=outcome.summary())


QUALITY_TABLES = ("violations", "rule_results", "rule_results_by_owner", "quarantine")


def quality_table_specs(sales_model: SalesModel) -> list[dg.AssetSpec]:
    """quality.* tables and the per-rep scorecard: written by the quality step, shown as assets with lineage.

    They are not downstream of the blocking checks on purpose: sales ops need the scorecard most on the day an
    `error` rule fails and the other marts are held back.
    """
    guarded = sorted({r.table for r in build_rules(sales_model)})
    deps = [dg.AssetKey(list(t)) for t in guarded]
    specs = [
        dg.AssetSpec(dg.AssetKey(["quality", t]), deps=deps, group_name="quality", kinds={"sql"},
                     description=f"quality.{t}: written by the quality rules step (see the `quality_rules` checks).")
        for t in QUALITY_TABLES
    ]
    # the crosswalk merges a rep's CRM users; read as empty by a step that runs before it was ever built
    specs.append(dg.AssetSpec(dg.AssetKey(list(SCORECARD)),
                              deps=[dg.AssetKey(["quality", "rule_results_by_owner"]),
                                    dg.AssetKey(["core", "rep_crosswalk"]), dg.AssetKey(["staging", "owners"])],
                              group_name="quality", kinds={"sql"},
                              description="Data-quality scorecard per day, rep, object and rule (sales ops)."))
    return specs


def build_quality_checks(sales_model: SalesModel, as_of: dt.datetime | None = None,
                         assets: list | None = None) -> list[dg.AssetChecksDefinition]:
    """The quality rules in as few steps as the asset graph allows (one per depth of the tables they guard and
    read, pipelines/check_steps.py; one step when `assets` is not given): every rule of a step is evaluated in a
    single pass over the warehouse (one transaction merging quality.violations), and each rule reports as its own
    asset check on the table it guards. `error` rules are blocking: when one fails, no mart downstream of that table
    is rebuilt in the run (the last good marts stay) and the run fails saying which rule, how many records and where
    to look."""
    rules = build_rules(sales_model, as_of=as_of)
    specs = [
        dg.AssetCheckSpec(
            name=f"quality_{r.name}", asset=dg.AssetKey(list(r.table)), blocking=r.blocking,
            # the other tables a rule reads must be built before it runs (else it is skipped as "missing table")
            additional_deps=[dg.AssetKey(list(t)) for t in sorted(r.reads) if t != r.table and t[0] != "quality"],
            description=f"[{r.severity}] {r.description}",
            metadata={"rule": r.name, "object": r.object, "severity": r.severity, "kind": r.kind},
        )
        for r in rules
    ]

    if assets is None:
        return [_quality_step("quality_rules", specs, sales_model, as_of)]
    return [_quality_step(f"quality_rules_{suffix}", group, sales_model, as_of)
            for suffix, group in group_by_depth(specs, asset_depths(assets))]


def _quality_step(name: str, specs: list[dg.AssetCheckSpec], sales_model: SalesModel,
                  as_of: dt.datetime | None) -> dg.AssetChecksDefinition:
    # QUALITY_STEP_TAG: the executor runs one quality step at a time (each rebuilds the same scorecard table and
    # gathers the connectors' quarantine; two side by side would collide on PostgreSQL with parallel steps)
    @dg.multi_asset_check(specs=specs, name=name, can_subset=True, required_resource_keys={"warehouse"},
                          op_tags={QUALITY_STEP_TAG: "rules"})
    def quality_rules(context):  # no annotation: dagster rejects string annotations
        from transforms.quality.quarantine import collect_connector_quarantine

        wh = context.resources.warehouse.get()
        # what the connectors set aside (raw_<source>._quarantine) joins quality.quarantine: one place to count
        # what came in, what was kept, and why the rest was set aside
        quarantined = collect_connector_quarantine(wh)
        if quarantined:
            context.log.warning(f"{quarantined} record(s) in quarantine: select * from quality.quarantine")
        selected = {k.name for k in context.selected_asset_check_keys}
        # rebuilt at run time so the "sane date" window follows the clock, not the code location's load time
        defined = build_rules(sales_model, as_of=as_of)
        current = [r for r in defined if f"quality_{r.name}" in selected]
        # every rule the model defines, evaluated by this step or another: open violations of any other rule (removed,
        # turned off or renamed in sales_model.yaml) are resolved, those of other steps' rules are left alone
        run = evaluate_rules(wh, current, run_id=context.run.run_id if context.run else None,
                             defined_rules=[r.name for r in defined])
        op_context = context.op_execution_context
        for table in QUALITY_TABLES:
            op_context.log_event(dg.AssetMaterialization(dg.AssetKey(["quality", table])))
        rows = build_scorecard(wh)
        op_context.log_event(dg.AssetMaterialization(
            dg.AssetKey(list(SCORECARD)), metadata={"dagster/row_count": rows}))
        if run.blocking_message():
            context.log.error(run.blocking_message())
        by_name = {r.name: r for r in current}
        for outcome in run.outcomes:
            yield dg.AssetCheckResult(
                check_name=f"quality_{outcome.rule}", asset_key=dg.AssetKey(list(by_name[outcome.rule].table)),
                **_result_fields(outcome),
            )

    return quality_rules


def freshness_policies(sales_model: SalesModel) -> dict[str, dg.FreshnessPolicy]:
    """{source: FreshnessPolicy} from the `freshness:` section (warn / fail after N hours without a load)."""
    return {
        source: dg.FreshnessPolicy.time_window(
            fail_window=dt.timedelta(hours=f.fail_after_hours), warn_window=dt.timedelta(hours=f.warn_after_hours)
        )
        for source, f in sales_model.freshness.items()
    }
