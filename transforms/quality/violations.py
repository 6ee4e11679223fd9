"""Run quality rules and keep their row-level history in quality.violations.

`evaluate_rules(wh, rules)` runs each rule's SQL inside the warehouse and, in ONE transaction:
- appends per-rule counts to quality.rule_results and per-rep counts to quality.rule_results_by_owner (the input of
  marts.data_quality_by_owner);
- merges the failing records into quality.violations: a new failure is inserted (first_seen = last_seen = run time);
  a known one gets last_seen (and its current owner / value) refreshed; a resolved one that fails again is reopened
  (resolved_at cleared, reopened_at set); an open violation of an evaluated rule that no longer fails is marked
  resolved (resolved_at = run time, resolution 'fixed'), never deleted;
- given `defined_rules` (every rule of the sales model, which the Dagster quality steps pass), resolves the open
  violations of rules no longer defined (removed, turned `off` or renamed in sales_model.yaml: resolution
  'rule_removed'). A step evaluating some rules thus never touches the rules of other steps, which are still defined.
Rules whose tables are missing are reported as `skipped` and leave their violations untouched.
quality.quarantine is created here too (empty), so what was set aside can be counted on any warehouse.
"""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa

from transforms.quality.lookups import insert_rows, refresh_value_checks
from transforms.quality.quarantine import QUARANTINE_DDL
from transforms.quality.rules import OUTPUT_COLUMNS, Rule
from warehouse.connection import Warehouse

DDL = [
    """create table if not exists quality.violations (
        object text not null, source_system text not null, record_id text not null, owner_id text,
        rule text not null, severity text not null, offending_value text,
        first_seen timestamptz not null, last_seen timestamptz not null, resolved_at timestamptz,
        reopened_at timestamptz, resolution text)""",
    """create table if not exists quality.rule_results (
        run_id text not null, run_at timestamptz not null, rule text not null, object text not null,
        source_table text not null, severity text not null, status text not null,
        checked bigint, failing bigint)""",
    """create table if not exists quality.rule_results_by_owner (
        run_id text not null, run_at timestamptz not null, run_date date not null, rule text not null,
        object text not null, severity text not null, source_system text not null, owner_id text,
        checked bigint not null, failing bigint not null)""",
    QUARANTINE_DDL,
]

#: quality.violations.resolution: why a violation was resolved
FIXED, RULE_REMOVED = "fixed", "rule_removed"

_FAIL_TMP = "qv_run_failures"
_SCOPE_TMP = "qv_run_scope"
_RULES_TMP = "qv_run_rules"
_DEFINED_TMP = "qv_defined_rules"
_KEY = ("v.object = c.object and v.source_system = c.source_system and v.record_id = c.record_id "
        "and v.rule = c.rule")


@dataclass
class RuleOutcome:
    rule: str
    object: str
    severity: str
    table: str
    status: str  # 'passed' | 'failed' | 'skipped'
    checked: int = 0
    failing: int = 0
    worst_owners: list[tuple[str | None, int]] = field(default_factory=list)
    sample_record_ids: list[str] = field(default_factory=list)
    #: the sample records with what is wrong with them and whose they are: [{record, value, owner}]
    samples: list[dict[str, str | None]] = field(default_factory=list)
    reason: str = ""

    @property
    def failing_share(self) -> float | None:
        return self.failing / self.checked if self.checked else None

    @property
    def blocks(self) -> bool:
        return self.severity == "error" and self.status == "failed"

    def summary(self) -> str:
        if self.status == "skipped":
            return f"{self.rule}: skipped ({self.reason})"
        head = f"{self.rule} [{self.severity}] on {self.table}: {self.failing} of {self.checked} {self.object} records fail"
        if self.failing:
            head += (f"; see: select * from quality.violations where rule = '{self.rule}' and resolved_at is null")
        return head


@dataclass
class QualityRun:
    run_id: str
    run_at: dt.datetime
    outcomes: list[RuleOutcome]

    @property
    def blocking(self) -> list[RuleOutcome]:
        return [o for o in self.outcomes if o.blocks]

    def blocking_message(self) -> str | None:
        """Why the marts must not be rebuilt (None when nothing blocks): which rules, how many records, where."""
        if not self.blocking:
            return None
        return "Blocking data-quality rules failed; marts keep their last good build.\n" + "\n".join(
            "  - " + o.summary() for o in self.blocking
        )


def ensure_quality_tables(wh: Warehouse) -> None:
    """Create the quality.* tables that do not exist yet (quarantine included, empty until something is set aside),
    and add the columns a warehouse built by an earlier version lacks."""
    wh.ensure_schemas(["quality"])
    with wh.connect() as conn:
        for stmt in DDL:
            conn.exec_driver_sql(stmt)
    if "resolution" not in wh.columns("quality", "violations"):
        with wh.connect() as conn:
            conn.exec_driver_sql("alter table quality.violations add column resolution text")
            # until then a violation was only ever resolved because its record stopped failing
            conn.execute(sa.text("update quality.violations set resolution = :fixed where resolved_at is not null"),
                         {"fixed": FIXED})


def evaluate_rules(wh: Warehouse, rules: list[Rule], *, run_at: dt.datetime | None = None,
                   run_id: str | None = None, samples: int = 10,
                   defined_rules: Iterable[str] | None = None) -> QualityRun:
    """Evaluate `rules` (see the module docstring). `defined_rules`: the names of every rule the sales model
    defines now, evaluated in this call or not; open violations of any other rule are resolved ('rule_removed').
    None (the default) leaves the violations of rules not evaluated here untouched."""
    run_at = (run_at or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    run_id = run_id or uuid.uuid4().hex
    ensure_quality_tables(wh)
    outcomes: dict[str, RuleOutcome] = {}
    runnable: list[Rule] = []
    existing = {(row["table_schema"], row["table_name"]) for row in wh.query(
        "select table_schema, table_name from information_schema.tables")}
    for r in rules:
        missing = sorted(".".join(t) for t in r.reads if t != ("quality", "value_checks") and t not in existing)
        o = RuleOutcome(r.name, r.object, r.severity, ".".join(r.table), "skipped")
        outcomes[r.name] = o
        if missing:
            o.reason = "missing table(s): " + ", ".join(missing)
        else:
            runnable.append(r)
    refresh_value_checks(wh, [k for r in runnable for k in r.lookups], existing=existing)

    cols = ", ".join(OUTPUT_COLUMNS)
    with wh.connect() as conn:
        x = conn.exec_driver_sql
        x(f"create temp table {_FAIL_TMP} (object text, source_system text, record_id text, owner_id text, "
          "rule text, severity text, offending_value text)")
        x(f"create temp table {_SCOPE_TMP} (rule text, source_system text, record_id text, owner_id text)")
        x(f"create temp table {_RULES_TMP} (rule text)")
        x(f"create temp table {_DEFINED_TMP} (rule text)")
        if defined_rules is not None:
            for name in sorted(set(defined_rules) | {r.name for r in rules}):
                x(f"insert into {_DEFINED_TMP} values ({_lit(name)})")
        for r in runnable:
            # at most one row per (record, rule): the violations key
            x(f"insert into {_FAIL_TMP} ({cols}) select object, coalesce(source_system, 'unknown'), record_id, "
              f"min(owner_id), rule, min(severity), min(offending_value) from ({r.sql}) q "
              "where record_id is not null group by object, coalesce(source_system, 'unknown'), record_id, rule")
            x(f"insert into {_SCOPE_TMP} select distinct {_lit(r.name)}, coalesce(source_system, 'unknown'), "
              f"record_id, owner_id from ({r.scope_sql}) q")
            x(f"insert into {_RULES_TMP} values ({_lit(r.name)})")
        params = {"run_at": run_at, "run_id": run_id, "run_date": run_at.date(), "fixed": FIXED,
                  "rule_removed": RULE_REMOVED}
        q = lambda sql: [dict(m._mapping) for m in conn.execute(sa.text(sql), params)]  # noqa: E731

        for row in q(f"select rule, count(*) as n from {_SCOPE_TMP} group by rule"):
            outcomes[row["rule"]].checked = int(row["n"])
        for row in q(f"select rule, count(*) as n from {_FAIL_TMP} group by rule"):
            outcomes[row["rule"]].failing = int(row["n"])
        for row in q(f"select rule, owner_id, count(*) as n from {_FAIL_TMP} group by rule, owner_id "
                     "order by rule, n desc, owner_id"):
            o = outcomes[row["rule"]]
            if len(o.worst_owners) < 5:
                o.worst_owners.append((row["owner_id"], int(row["n"])))
        # the rep's name beside each sample (an id alone sends sales ops to the CRM to find whose record it is)
        owners = (f"left join staging.owners ow on ow.source_system = f.source_system and ow.owner_id = f.owner_id"
                  if ("staging", "owners") in existing else "")
        owner_name = "ow.full_name" if owners else "cast(null as text)"
        for row in q(f"select f.rule, f.source_system, f.record_id, f.offending_value, f.owner_id, "
                     f"{owner_name} as owner_name from {_FAIL_TMP} f {owners} "
                     "order by f.rule, f.source_system, f.record_id"):
            o = outcomes[row["rule"]]
            if len(o.sample_record_ids) < samples:
                record = f"{row['source_system']}:{row['record_id']}"
                o.sample_record_ids.append(record)
                value = row["offending_value"]
                o.samples.append({"record": record, "value": None if value is None else str(value)[:200],
                                  "owner": row["owner_name"] or row["owner_id"] or "unassigned"})
        for r in runnable:
            o = outcomes[r.name]
            o.status = "failed" if o.failing else "passed"

        insert_rows(wh, "quality.rule_results", [
            {"run_id": run_id, "run_at": run_at, "rule": o.rule, "object": o.object, "source_table": o.table,
             "severity": o.severity, "status": o.status,
             "checked": None if o.status == "skipped" else o.checked,
             "failing": None if o.status == "skipped" else o.failing}
            for o in outcomes.values()
        ], conn=conn)
        severity = {r.name: r.severity for r in runnable}
        objects = {r.name: r.object for r in runnable}
        per_owner = q(f"""
            select s.rule, s.source_system, s.owner_id, count(*) as checked,
                   sum(case when c.record_id is not null then 1 else 0 end) as failing
            from {_SCOPE_TMP} s
            left join {_FAIL_TMP} c on c.rule = s.rule and c.source_system = s.source_system
                                   and c.record_id = s.record_id
            group by s.rule, s.source_system, s.owner_id""")
        insert_rows(wh, "quality.rule_results_by_owner", [
            {"run_id": run_id, "run_at": run_at, "run_date": run_at.date(), "rule": row["rule"],
             "object": objects[row["rule"]], "severity": severity[row["rule"]], "source_system": row["source_system"],
             "owner_id": row["owner_id"], "checked": int(row["checked"]), "failing": int(row["failing"] or 0)}
            for row in per_owner
        ], conn=conn)

        # merge into quality.violations (see module docstring)
        conn.execute(sa.text(f"""
            update quality.violations as v
            set last_seen = :run_at, owner_id = c.owner_id, severity = c.severity,
                offending_value = c.offending_value,
                reopened_at = case when v.resolved_at is not null then :run_at else v.reopened_at end,
                resolved_at = null, resolution = null
            from {_FAIL_TMP} c where {_KEY}"""), params)
        conn.execute(sa.text(f"""
            insert into quality.violations ({cols}, first_seen, last_seen, resolved_at, reopened_at, resolution)
            select {', '.join('c.' + c for c in OUTPUT_COLUMNS)}, :run_at, :run_at, null, null, null
            from {_FAIL_TMP} c
            where not exists (select 1 from quality.violations v where {_KEY})"""), params)
        conn.execute(sa.text(f"""
            update quality.violations as v set resolved_at = :run_at, resolution = :fixed
            where v.resolved_at is null
              and v.rule in (select rule from {_RULES_TMP})
              and not exists (select 1 from {_FAIL_TMP} c where {_KEY})"""), params)
        if defined_rules is not None:
            # no step will ever evaluate these rules again: their violations would stay open forever
            conn.execute(sa.text(f"""
                update quality.violations as v set resolved_at = :run_at, resolution = :rule_removed
                where v.resolved_at is null
                  and v.rule not in (select rule from {_DEFINED_TMP})"""), params)
        for tmp in (_FAIL_TMP, _SCOPE_TMP, _RULES_TMP, _DEFINED_TMP):
            x(f"drop table {tmp}")
    return QualityRun(run_id, run_at, list(outcomes.values()))


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
