"""Quality rules as portable SQL: one SELECT per rule over the staging (and core) tables.

Each `Rule` carries two SELECTs that run unchanged on DuckDB and PostgreSQL:
- `sql`: the failing records, columns (object, source_system, record_id, owner_id, rule, severity,
  offending_value), at most one row per record;
- `scope_sql`: the records the rule checked, columns (source_system, record_id, owner_id), so completeness per rep
  can be computed (failing records are a subset of them).

Rules come from the sales model file (mandatory fields, with optional `when` conditions) plus the built-in validity
and consistency rules below, whose severity the file sets (or turns `off`).

Email syntax, phone numbers and SIREN/SIRET/VAT checksums need Python libraries (email-validator, phonenumbers,
python-stdnum). A DuckDB Python UDF would not exist on PostgreSQL, so instead the distinct values are validated in
Python once (`refresh_value_checks`, a small set, cached across runs) into the table `quality.value_checks`, and the
rule SQL joins to it: same SQL on both engines.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable

from transforms.sales_model import OBJECT_TABLES, MandatoryRule, SalesModel, _sql_literal

OUTPUT_COLUMNS = ("object", "source_system", "record_id", "owner_id", "rule", "severity", "offending_value")
SCOPE_COLUMNS = ("source_system", "record_id", "owner_id")
NOT_DELETED = "coalesce(t.is_deleted, false) = false"
#: Staging tables whose records a CRM migration may supersede: a record another one names in imported_from is the
#: old copy (core counts the new one only, and so do the rules: the old copy is neither checked nor counted)
MIGRATED_TABLES = frozenset({"deals", "activities"})


def _not_superseded(table: str, id_col: str) -> str:
    if table not in MIGRATED_TABLES:
        return "true"
    return (f"not exists (select 1 from staging.{table} n where n.imported_from = t.source_system || ':' || "
            f"cast(t.{id_col} as text) and coalesce(n.is_deleted, false) = false)")


@dataclass(frozen=True)
class Rule:
    name: str
    object: str
    severity: str  # 'error' blocks the marts, 'warn' reports
    table: tuple[str, str]  # the (schema, table) the rule guards: its Dagster asset check sits on it
    sql: str
    scope_sql: str
    reads: frozenset[tuple[str, str]]  # every table the SQL reads (the rule is skipped when one is missing)
    lookups: tuple[str, ...] = ()  # quality.value_checks kinds the SQL joins to
    description: str = ""
    kind: str = "builtin"  # 'mandatory' | 'builtin'

    @property
    def blocking(self) -> bool:
        return self.severity == "error"


def missing_sql(expr: str) -> str:
    """True when a value is missing: null, empty or whitespace-only (numbers and dates are cast to text)."""
    return f"({expr} is null or trim(cast({expr} as text)) = '')"


def _record_rule(*, name, obj, severity, fail, offending, scope="true", joins="", extra_reads=(), lookups=(),
                 description="", kind="builtin", model_table=None) -> Rule:
    """A rule whose record is a row of the object's own staging table (alias t)."""
    table, id_col = OBJECT_TABLES[obj] if model_table is None else model_table
    base = f"from staging.{table} t {joins} where {NOT_DELETED} and {_not_superseded(table, id_col)} and ({scope})"
    sql = (
        f"select {_sql_literal(obj)} as object, t.source_system, cast(t.{id_col} as text) as record_id, "
        f"t.owner_id, {_sql_literal(name)} as rule, {_sql_literal(severity)} as severity, "
        f"cast({offending} as text) as offending_value {base} and ({fail})"
    )
    scope_sql = f"select t.source_system, cast(t.{id_col} as text) as record_id, t.owner_id {base}"
    return Rule(name, obj, severity, ("staging", table), sql, scope_sql,
                frozenset({("staging", table), *extra_reads}), tuple(lookups), description, kind)


# -- mandatory fields from the file ------------------------------------------------------------------------------
def _field_expr(model: SalesModel, obj: str, f: str) -> str:
    if obj == "deal" and f == "segment":
        # The segment of the deal's company as core.company_tier gives it (the one definition of the tier rule: a
        # tag wins, else the headcount ranges), the company resolved like core.fct_deals does; 'unknown' = missing.
        return ("(select nullif(ct.tier, 'unknown') from core.company_tier ct where ct.company_key = coalesce("
                "(select x.entity_key from core.company_crosswalk x where x.source_system = t.source_system "
                "and x.source_id = t.company_id limit 1), t.source_system || ':' || t.company_id))")
    return f"t.{f}"


#: The tables a `segment` field reads (see _field_expr).
SEGMENT_READS = frozenset({("core", "company_tier"), ("core", "company_crosswalk")})


def _uses_segment(obj: str, rule: MandatoryRule) -> bool:
    return obj == "deal" and ("segment" in rule.fields or any(c.field == "segment" for c in rule.conditions))


def _condition_sql(model: SalesModel, obj: str, rule: MandatoryRule) -> str:
    parts = []
    for c in rule.conditions:
        if c.stages:
            # each pipeline holding a named stage (one per pipeline): its deals at its stages from there on, lost
            # ones excepted. Per pipeline, as stage ids repeat across pipelines (every Koban process has WON, LOST,
            # SLEEP): a pipeline the condition names no stage of is not covered. A deal that names no pipeline is
            # taken as in any pipeline holding its stage.
            clauses = []
            for p in model.pipelines:
                order = {s.id: i for i, s in enumerate(p.stages)}
                named = [x for x in c.stages if x in order]
                if named:
                    lo = order[named[0]] if c.stage_at_or_past is not None else order[named[0]] + 1
                    ids = [s.id for i, s in enumerate(p.stages) if i >= lo and s.outcome != "lost"]
                    if ids:
                        clauses.append(f"(coalesce(t.pipeline_id, {_sql_literal(p.id)}) = {_sql_literal(p.id)} "
                                       f"and t.stage_id in "
                                       f"({', '.join(_sql_literal(i) for i in ids)}))")
            parts.append(f"({' or '.join(clauses)})" if clauses else "false")
        elif c.present is not None:
            m = missing_sql(_field_expr(model, obj, c.field))
            parts.append(f"not {m}" if c.present else m)
        elif c.in_ is not None:
            parts.append(f"{_field_expr(model, obj, c.field)} in ({', '.join(_sql_literal(v) for v in c.in_)})")
        else:
            parts.append(f"{_field_expr(model, obj, c.field)} = {_sql_literal(c.equals)}")
    return " and ".join(parts) or "true"


def mandatory_rule(model: SalesModel, obj: str, rule: MandatoryRule) -> Rule:
    missing = {f: missing_sql(_field_expr(model, obj, f)) for f in rule.fields}
    fail = (" or " if rule.require == "all" else " and ").join(missing.values())
    # offending value: which fields are missing, e.g. "missing: amount, close_date"
    listing = " || ".join(f"case when {m} then {_sql_literal(', ' + f)} else '' end" for f, m in missing.items())
    offending = f"'missing: ' || substr({listing}, 3)"
    if rule.require == "any":
        offending = _sql_literal(f"missing all of: {', '.join(rule.fields)}")
    reads = SEGMENT_READS if _uses_segment(obj, rule) else set()
    desc = rule.description or (
        f"{obj}: {'all' if rule.require == 'all' else 'one'} of {', '.join(rule.fields)} filled"
    )
    return _record_rule(name=rule.rule, obj=obj, severity=rule.severity, fail=fail, offending=offending,
                        scope=_condition_sql(model, obj, rule), extra_reads=reads, description=desc,
                        kind="mandatory")


# -- built-in validity and consistency rules ---------------------------------------------------------------------
@dataclass(frozen=True)
class Builtin:
    object: str
    default_severity: str
    description: str
    build: Callable[["_Ctx"], Rule] = field(repr=False)


@dataclass(frozen=True)
class _Ctx:
    model: SalesModel
    name: str
    severity: str
    as_of: dt.datetime

    @property
    def region(self) -> str:
        return self.model.settings.default_region


def _ts(value: dt.datetime | dt.date) -> str:
    return f"cast({_sql_literal(value.isoformat(sep=' ') if isinstance(value, dt.datetime) else value.isoformat())} as timestamp)"


def _date_bounds(ctx: _Ctx) -> tuple[str, str]:
    lo = dt.datetime.combine(ctx.model.quality.earliest_date, dt.time())
    hi = ctx.as_of.replace(tzinfo=None) + dt.timedelta(days=365 * ctx.model.quality.max_years_ahead + 1)
    return _ts(lo), _ts(hi)


def _lookup_invalid(ctx: _Ctx, obj: str, kind: str, columns: list[str]) -> Rule:
    joins, fails, offend = [], [], []
    for i, col in enumerate(columns):
        joins.append(f"left join quality.value_checks v{i} on v{i}.kind = {_sql_literal(kind)} and v{i}.value = t.{col}")
        fails.append(f"v{i}.is_valid = false")
        offend.append(f"case when v{i}.is_valid = false then t.{col} || ' (' || v{i}.reason || ')' end")
    offending = f"coalesce({', '.join(offend)})"
    scope = " or ".join(f"not {missing_sql('t.' + c)}" for c in columns)
    return _record_rule(name=ctx.name, obj=obj, severity=ctx.severity, fail=" or ".join(fails), offending=offending,
                        scope=scope, joins=" ".join(joins), extra_reads={("quality", "value_checks")},
                        lookups=(kind,), description=BUILTIN_RULES[ctx.name].description)


def _email(ctx):
    return _lookup_invalid(ctx, "contact", "email", ["email"])


def _contact_phone(ctx):
    return _lookup_invalid(ctx, "contact", f"phone:{ctx.region}", ["phone", "mobile_phone"])


def _company_phone(ctx):
    return _lookup_invalid(ctx, "company", f"phone:{ctx.region}", ["phone"])


def _siren(ctx):
    return _lookup_invalid(ctx, "company", "siren", ["siren"])


def _siret(ctx):
    return _lookup_invalid(ctx, "company", "siret", ["siret"])


def _vat(ctx):
    return _lookup_invalid(ctx, "company", "vat", ["vat_number"])


def _simple(ctx, obj, fail, offending, scope):
    return _record_rule(name=ctx.name, obj=obj, severity=ctx.severity, fail=fail, offending=offending, scope=scope,
                        description=BUILTIN_RULES[ctx.name].description)


def _amount(ctx):
    return _simple(ctx, "deal", "t.amount < 0", "t.amount", "t.amount is not null")


def _currency(ctx):
    # the marts convert with sales_model.yaml fx_rates; an amount in a currency missing there converts to null
    known = ", ".join(_sql_literal(c) for c in sorted(ctx.model.fx_rates))
    return _simple(ctx, "deal", f"upper(trim(t.currency)) not in ({known})",
                   "t.currency || ' (not in sales_model.yaml fx_rates: its home amount is null)'",
                   "t.amount is not null and not " + missing_sql("t.currency"))


def _probability(ctx):
    return _simple(
        ctx, "deal", "t.probability < 0 or t.probability > 1",
        "cast(t.probability as text) || case when t.probability > 1 and t.probability <= 100 "
        "then ' (looks like a percentage: divide by 100)' else '' end",
        "t.probability is not null",
    )


def _deal_dates(ctx):
    lo, hi = _date_bounds(ctx)
    now = _ts(ctx.as_of.replace(tzinfo=None) + dt.timedelta(days=1))
    bad_created = f"(t.created_at < {lo} or t.created_at > {now})"
    bad_close = f"(t.close_date < {lo} or t.close_date > {hi})"
    offending = (f"case when {bad_created} then 'created_at ' || cast(t.created_at as text) "
                 f"else 'close_date ' || cast(t.close_date as text) end")
    return _simple(ctx, "deal", f"{bad_created} or {bad_close}", offending,
                   "t.created_at is not null or t.close_date is not null")


def _close_before_create(ctx):
    # compared as dates: HubSpot stores close dates at midnight, so a same-day close is not "before"
    return _simple(ctx, "deal", "cast(t.close_date as date) < cast(t.created_at as date)",
                   "'close ' || cast(cast(t.close_date as date) as text) || ' < created ' || "
                   "cast(cast(t.created_at as date) as text)",
                   "t.close_date is not null and t.created_at is not null")


def _activity_dates(ctx):
    lo, hi = _date_bounds(ctx)
    return _simple(ctx, "activity", f"t.occurred_at < {lo} or t.occurred_at > {hi}", "t.occurred_at",
                   "t.occurred_at is not null")


def _duration(ctx):
    return _simple(ctx, "activity", "t.duration_minutes < 0 or t.duration_minutes > 720", "t.duration_minutes",
                   "t.duration_minutes is not null")


def _closed_probability(ctx):
    won = "t.is_won = true"
    lost = "t.is_closed = true and coalesce(t.is_won, false) = false"
    fail = f"({won} and abs(t.probability - 1) > 0.000001) or ({lost} and abs(t.probability) > 0.000001)"
    offending = (f"case when {won} then 'won with probability ' else 'lost with probability ' end "
                 f"|| cast(t.probability as text)")
    return _simple(ctx, "deal", fail, offending, "t.is_closed = true and t.probability is not null")


#: Sources that keep an activity's links to a record deleted in them. HubSpot does not: deleting a contact, company
#: or deal unassociates its activities there (knowledge.hubspot.com, "restorable and permanent contact deletions"),
#: so a HubSpot activity still linked to an archived record in our copy is one the sync has not re-read since, not
#: something sales ops can fix in the CRM (the demo: 67 such warnings).
_LINKS_KEPT_TO_DELETED = ("koban",)


def _links(ctx):
    targets = [("company_id", "companies", "company_id", "c"), ("contact_id", "contacts", "contact_id", "p"),
               ("deal_id", "deals", "deal_id", "d")]
    kept = ", ".join(_sql_literal(s) for s in _LINKS_KEPT_TO_DELETED)
    joins, fails, offend = [], [], []
    for col, table, key, a in targets:
        joins.append(f"left join staging.{table} {a} on {a}.source_system = t.source_system and {a}.{key} = t.{col}")
        bad = (f"(not {missing_sql('t.' + col)} and ({a}.{key} is null or (coalesce({a}.is_deleted, false) = true "
               f"and t.source_system in ({kept}))))")
        fails.append(bad)
        offend.append(f"case when {bad} then ', {col}=' || t.{col} || case when {a}.{key} is null "
                      f"then ' (not found)' else ' (archived)' end else '' end")
    scope = " or ".join(f"not {missing_sql('t.' + c)}" for c, *_ in targets)
    return _record_rule(name=ctx.name, obj="activity", severity=ctx.severity, fail=" or ".join(fails),
                        offending=f"substr({' || '.join(offend)}, 3)", scope=scope, joins=" ".join(joins),
                        extra_reads={("staging", t) for _, t, _, _ in targets},
                        description=BUILTIN_RULES[ctx.name].description)


_DEAL_STAGE_EVENTS = """
    select e.source_system, e.deal_id, e.stage_id, e.entered_at, s.stage_order,
           (s.is_closed = true and coalesce(s.is_won, false) = false) as is_lost, d.owner_id
    from staging.deal_stage_events e
    join staging.deals d on d.source_system = e.source_system and d.deal_id = e.deal_id
    join staging.pipeline_stages s
      on s.source_system = e.source_system and s.pipeline_id = d.pipeline_id and s.stage_id = e.stage_id
    where coalesce(d.is_deleted, false) = false
      and not exists (select 1 from staging.deals n where n.imported_from = d.source_system || ':' || d.deal_id
                      and coalesce(n.is_deleted, false) = false)
"""


def _stage_order(ctx):
    name, sev = _sql_literal(ctx.name), _sql_literal(ctx.severity)
    # A stage entered after a later stage of the pipeline = the deal moved back (moves to or from lost excluded:
    # losing and reopening are legitimate).
    seq = f"""
        with ev as ({_DEAL_STAGE_EVENTS}),
        seq as (
            select ev.*, lag(stage_id) over w as prev_stage, lag(stage_order) over w as prev_order,
                   lag(is_lost) over w as prev_lost
            from ev window w as (partition by source_system, deal_id order by entered_at)
        )"""
    sql = f"""{seq}
        select 'deal' as object, source_system, cast(deal_id as text) as record_id, min(owner_id) as owner_id,
               {name} as rule, {sev} as severity,
               string_agg(prev_stage || ' -> ' || stage_id || ' at ' || cast(entered_at as text), '; '
                          order by entered_at) as offending_value
        from seq
        where prev_order > stage_order and not is_lost and not prev_lost
        group by source_system, deal_id"""
    scope = f"""{seq}
        select source_system, cast(deal_id as text) as record_id, min(owner_id) as owner_id
        from seq group by source_system, deal_id"""
    return Rule(ctx.name, "deal", ctx.severity, ("staging", "deal_stage_events"), sql, scope,
                frozenset({("staging", "deal_stage_events"), ("staging", "deals"), ("staging", "pipeline_stages")}),
                (), BUILTIN_RULES[ctx.name].description)


def _prob_vs_stage(ctx):
    name, sev = _sql_literal(ctx.name), _sql_literal(ctx.severity)
    # History values are text: parse numbers only (anchored regex: same meaning for DuckDB's full-match `~` and
    # PostgreSQL's search `~`), and read a value above 1 as a 0-100 percentage.
    num = r"'^ *-?[0-9]+([.][0-9]+)? *$'"
    cte = f"""
        with ev as ({_DEAL_STAGE_EVENTS}),
        hp as (
            select h.source_system, h.deal_id, h.changed_at, h.value,
                   case when h.value ~ {num} then cast(trim(h.value) as double precision) end as raw_p
            from staging.deal_property_history h where h.property = 'probability'
        ),
        at_change as (
            select hp.source_system, hp.deal_id, hp.changed_at, hp.value,
                   case when hp.raw_p > 1 then hp.raw_p / 100 else hp.raw_p end as p,
                   ev.stage_id, ev.stage_order, ev.is_lost, ev.owner_id,
                   row_number() over (partition by hp.source_system, hp.deal_id, hp.changed_at
                                      order by ev.entered_at desc) as rn
            from hp join ev on ev.source_system = hp.source_system and ev.deal_id = hp.deal_id
                           and ev.entered_at <= hp.changed_at
            where hp.raw_p is not null
        ),
        seq as (
            select a.*, lag(p) over w as prev_p, lag(stage_order) over w as prev_order, lag(stage_id) over w as prev_stage
            from at_change a where rn = 1
            window w as (partition by source_system, deal_id order by changed_at)
        )"""
    sql = f"""{cte}
        select 'deal' as object, source_system, cast(deal_id as text) as record_id, min(owner_id) as owner_id,
               {name} as rule, {sev} as severity,
               string_agg(prev_stage || ' ' || cast(prev_p as text) || ' -> ' || stage_id || ' ' || cast(p as text),
                          '; ' order by changed_at) as offending_value
        from seq
        where p < prev_p - 0.000001 and stage_order > prev_order and not is_lost
        group by source_system, deal_id"""
    scope = f"""{cte}
        select source_system, cast(deal_id as text) as record_id, min(owner_id) as owner_id
        from seq group by source_system, deal_id"""
    return Rule(ctx.name, "deal", ctx.severity, ("staging", "deal_property_history"), sql, scope,
                frozenset({("staging", "deal_property_history"), ("staging", "deal_stage_events"),
                           ("staging", "deals"), ("staging", "pipeline_stages")}),
                (), BUILTIN_RULES[ctx.name].description)


def _stripe_linked(ctx):
    name, sev = _sql_literal(ctx.name), _sql_literal(ctx.severity)
    base = """from core.company_crosswalk x
        where x.source_system = 'stripe' and not exists (
            select 1 from core.company_crosswalk k
            where k.entity_key = x.entity_key and k.source_system in ('hubspot', 'koban'))"""
    sql = (f"select 'stripe_customer' as object, x.source_system, cast(x.source_id as text) as record_id, "
           f"cast(null as text) as owner_id, {name} as rule, {sev} as severity, "
           f"'no CRM company (' || coalesce(x.rule, '?') || ')' as offending_value {base}")
    scope = ("select x.source_system, cast(x.source_id as text) as record_id, cast(null as text) as owner_id "
             "from core.company_crosswalk x where x.source_system = 'stripe'")
    return Rule(ctx.name, "stripe_customer", ctx.severity, ("core", "company_crosswalk"), sql, scope,
                frozenset({("core", "company_crosswalk")}), (), BUILTIN_RULES[ctx.name].description)


def _ceased(ctx):
    name, sev = _sql_literal(ctx.name), _sql_literal(ctx.severity)
    base = """from core.fct_deals f
        left join staging.deals d on d.source_system = f.source_system and d.deal_id = f.deal_id
        left join core.dim_company c on c.company_key = f.company_key
        where coalesce(f.is_closed, false) = false"""
    sql = (f"select 'deal' as object, f.source_system, cast(f.deal_id as text) as record_id, d.owner_id, "
           f"{name} as rule, {sev} as severity, 'company ' || coalesce(c.name, f.company_key) || "
           f"' (SIREN ' || coalesce(c.siren, '?') || ') ceased' as offending_value {base} and c.is_ceased = true")
    scope = f"select f.source_system, cast(f.deal_id as text) as record_id, d.owner_id {base}"
    return Rule(ctx.name, "deal", ctx.severity, ("core", "fct_deals"), sql, scope,
                frozenset({("core", "fct_deals"), ("core", "dim_company"), ("staging", "deals")}), (),
                BUILTIN_RULES[ctx.name].description)


BUILTIN_RULES: dict[str, Builtin] = {
    "contact_email_valid": Builtin("contact", "warn", "contact email is syntactically valid (no DNS check)", _email),
    "contact_phone_valid": Builtin("contact", "warn", "contact phone and mobile parse as real numbers", _contact_phone),
    "company_phone_valid": Builtin("company", "warn", "company phone parses as a real number", _company_phone),
    "company_siren_valid": Builtin("company", "warn", "SIREN has 9 digits and a valid Luhn key", _siren),
    "company_siret_valid": Builtin("company", "warn", "SIRET has 14 digits and a valid Luhn key (La Poste rule)", _siret),
    "company_vat_valid": Builtin("company", "warn", "VAT number has a valid key (FR or other VATIN)", _vat),
    "deal_amount_not_negative": Builtin("deal", "error", "deal amount is >= 0", _amount),
    "deal_currency_known": Builtin("deal", "warn", "a deal's currency has a rate in sales_model.yaml fx_rates",
                                   _currency),
    "deal_probability_in_range": Builtin("deal", "error", "deal probability is between 0 and 1", _probability),
    "deal_dates_in_range": Builtin("deal", "warn", "created / close dates fall in a sane range", _deal_dates),
    "deal_close_not_before_create": Builtin("deal", "warn", "close date is not before the create date",
                                            _close_before_create),
    "activity_dates_in_range": Builtin("activity", "warn", "activity date falls in a sane range", _activity_dates),
    "activity_duration_plausible": Builtin("activity", "warn", "logged duration is between 0 and 12 hours", _duration),
    "deal_stage_dates_in_order": Builtin("deal", "warn", "stages were entered in pipeline order (no move back)",
                                         _stage_order),
    "deal_probability_falls_while_stage_advances": Builtin(
        "deal", "warn", "probability does not fall while the stage advances", _prob_vs_stage),
    "deal_closed_probability": Builtin("deal", "warn", "a won deal has probability 1, a lost one 0",
                                       _closed_probability),
    "activity_links_exist": Builtin("activity", "warn", "linked company / contact / deal exist (and, in Koban, are not Obsolete)", _links),
    "stripe_customer_linked": Builtin("stripe_customer", "warn", "every Stripe customer is linked to a CRM company",
                                      _stripe_linked),
    "ceased_company_in_open_deal": Builtin("deal", "warn", "no open deal on a company ceased in the registry",
                                           _ceased),
}


def build_rules(model: SalesModel, as_of: dt.datetime | None = None) -> list[Rule]:
    """Every active rule: the file's mandatory-field rules, then the built-in ones (unless set to `off`)."""
    as_of = as_of or dt.datetime.now(dt.timezone.utc)
    rules = [mandatory_rule(model, obj, r) for obj, r in model.mandatory_rules()]
    for name, b in BUILTIN_RULES.items():
        severity = model.quality.builtin.get(name, b.default_severity)
        if severity == "off":
            continue
        rules.append(b.build(_Ctx(model, name, severity, as_of)))
    return rules
