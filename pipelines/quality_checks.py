"""Dagster asset checks for the quality rules of the sales model file (thin: the rules live in transforms/quality).

`build_quality_checks(sales_model)` gives one `@asset_check` per rule, on the asset of the table the rule guards
(AssetKey(["staging", table]) for staging rules, ["core", table] for identity rules). `error` rules are blocking
checks: when one fails, the downstream marts of that run are not materialised, so the last good marts stay.
Each evaluation also merges its failures into quality.violations and appends to quality.rule_results(_by_owner).

The checks need a resource named `warehouse` whose `.get()` returns a warehouse.connection.Warehouse.
`freshness_policies(sales_model)` turns the file's `freshness:` section into Dagster FreshnessPolicy objects per
source, to attach to the raw assets of each source.
"""

import datetime as dt

import dagster as dg

from transforms.quality.rules import Rule, build_rules
from transforms.quality.violations import RuleOutcome, evaluate_rules
from transforms.sales_model import SalesModel


def check_result(outcome: RuleOutcome) -> dg.AssetCheckResult:
    """The AssetCheckResult of one evaluated rule (counts, share, worst reps, sample ids, where to look)."""
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
        "where_to_look": dg.MetadataValue.text(
            f"select * from quality.violations where rule = '{outcome.rule}' and resolved_at is null"
        ),
    }
    if outcome.status == "skipped":
        # A rule that could not run says so; it does not pass silently nor block.
        metadata["reason"] = outcome.reason
        return dg.AssetCheckResult(passed=True, severity=dg.AssetCheckSeverity.WARN, metadata=metadata,
                                   description=outcome.summary())
    return dg.AssetCheckResult(passed=outcome.status == "passed", severity=severity, metadata=metadata,
                               description=outcome.summary())


def _make_check(sales_model: SalesModel, rule: Rule, as_of: dt.datetime | None) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(list(rule.table)),
        name=f"quality_{rule.name}",
        description=f"[{rule.severity}] {rule.description}",
        blocking=rule.blocking,
        required_resource_keys={"warehouse"},
        metadata={"rule": rule.name, "object": rule.object, "severity": rule.severity, "kind": rule.kind},
        pool="warehouse",  # DuckDB has one writer: the coordinator may cap this pool at 1
    )
    def _check(context) -> dg.AssetCheckResult:  # no annotation: dagster rejects string annotations
        wh = context.resources.warehouse.get()
        # rebuilt at run time so the "sane date" window follows the clock, not the code location's load time
        current = next(r for r in build_rules(sales_model, as_of=as_of) if r.name == rule.name)
        run = evaluate_rules(wh, [current], run_id=context.run.run_id if context.run else None)
        outcome = run.outcomes[0]
        if outcome.blocks:
            context.log.error(run.blocking_message())
        return check_result(outcome)

    return _check


def build_quality_checks(sales_model: SalesModel, as_of: dt.datetime | None = None) -> list[dg.AssetChecksDefinition]:
    """One asset check per quality rule (mandatory fields of the file + built-in validity/consistency rules)."""
    return [_make_check(sales_model, rule, as_of) for rule in build_rules(sales_model, as_of=as_of)]


def freshness_policies(sales_model: SalesModel) -> dict[str, dg.FreshnessPolicy]:
    """{source: FreshnessPolicy} from the `freshness:` section (warn / fail after N hours without a load)."""
    return {
        source: dg.FreshnessPolicy.time_window(
            fail_window=dt.timedelta(hours=f.fail_after_hours), warn_window=dt.timedelta(hours=f.warn_after_hours)
        )
        for source, f in sales_model.freshness.items()
    }
