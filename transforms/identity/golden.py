"""Golden records: one row per entity, each field chosen by survivorship, with `<field>_source`."""
from __future__ import annotations

import duckdb

from .config import SurvivorshipConfig


# Survivorship order, larger is better for arg_max; uid last so ties are broken the same way on every
# run. Each order is turned into one integer rank by a single sort, so the per-entity arg_max compares
# integers instead of (timestamp, priority, uid) structs; ranks only matter within an entity, so a
# partial (incremental) recomputation picks the same winners as a full one.
_ORDERS = {
    "most_recent": "updated_at_ts, prio, uid",
    "source_priority": "prio, updated_at_ts, uid",
}


#: How a spelled field's value is compared: case, accents and surrounding blanks aside.
_FOLD = "lower(strip_accents(trim({})))"
#: A spelling's quality: accents kept (2), then mixed case rather than all capitals or all lower case (1).
_SPELLING = "(CASE WHEN {0} <> strip_accents({0}) THEN 2 ELSE 0 END + CASE WHEN {0} <> upper({0}) AND {0} <> lower({0}) THEN 1 ELSE 0 END)"
#: Above any rank (row_number over the ranked records), so that the spelling key orders first by "the value
#: that won", then by spelling, then by rank.
_RANK_SPAN = 10**12


def golden_table(
    con: duckdb.DuckDBPyConnection,
    records: str,
    fields: dict[str, str],
    survivorship: SurvivorshipConfig,
    out_table: str,
    entity_filter: str | None = None,
    alone: str | None = None,
    temp: bool = False,
    spelled: tuple[str, ...] = (),
) -> str:
    """records: table with uid, entity_key, source_system, updated_at and the field expressions.
    fields: golden column name -> SQL expression over `records`.
    alone: optional condition over `records` true when the record is its entity's only one: those
    rows (most of them, usually) become golden rows by projection, without ranking or grouping.
    temp: build `out_table` as a TEMP table (scratch rows merged elsewhere).
    spelled: fields (names, cities) whose survivorship picks a value, then its best spelling: the strategy
    chooses among the values folded (case and accents aside), and of the records holding the winning value the
    best-spelled one is shown ('Jérôme Lefèvre' over a later billing record's 'JEROME LEFEVRE', which is the
    same name, not a change of it); its source is that record's."""
    prio_cases = " ".join(
        f"WHEN '{s.replace(chr(39), chr(39) * 2)}' THEN {len(survivorship.source_priority) - i}"
        for i, s in enumerate(survivorship.source_priority)
    )
    prio = f"CASE source_system {prio_cases} ELSE 0 END" if prio_cases else "0"
    select = [f"{expr} AS \"{name}\"" for name, expr in fields.items()]
    strategies = {name: survivorship.field_strategy.get(name, survivorship.strategy) for name in fields}
    used = sorted(set(strategies.values()) | {survivorship.strategy})
    ranks = ", ".join(f"row_number() OVER (ORDER BY {_ORDERS[s]}) AS __o_{s}" for s in used)
    aggs, winners = [], []
    for name in fields:
        o = f"__o_{strategies[name]}"
        if name in spelled:
            col = f'"{name}"'
            # the winning folded value per entity (a window: the aggregate below needs it on every record)
            winners.append(f'arg_max({_FOLD.format(col)}, {o}) FILTER (WHERE {col} IS NOT NULL) '
                           f'OVER (PARTITION BY entity_key) AS "__w_{name}"')
            o = (f'(CASE WHEN {_FOLD.format(col)} = "__w_{name}" THEN {4 * _RANK_SPAN} ELSE 0 END '
                 f'+ {_SPELLING.format(col)} * {_RANK_SPAN} + {o})')
        aggs.append(f'arg_max("{name}", {o}) FILTER (WHERE "{name}" IS NOT NULL) AS "{name}"')
        aggs.append(f'arg_max(source_system, {o}) FILTER (WHERE "{name}" IS NOT NULL) AS "{name}_source"')
    where = f"WHERE {entity_filter}" if entity_filter else ""
    single = []
    for name in fields:
        single.append(f'"{name}"')
        single.append(f'CASE WHEN "{name}" IS NOT NULL THEN source_system END AS "{name}_source"')
    alone_sql = f"({alone})" if alone else "false"
    con.execute(
        f"""
        CREATE OR REPLACE {"TEMP TABLE" if temp else "TABLE"} {out_table} AS
        WITH r0 AS (
            SELECT entity_key, uid, source_system, {prio} AS prio,
                   TRY_CAST(updated_at AS TIMESTAMP) AS __updated,
                   -- (ranking only: a record without a date loses to any dated one)
                   coalesce(__updated, TIMESTAMP '1970-01-01') AS updated_at_ts,
                   {alone_sql} AS __alone,
                   {', '.join(select)}
            FROM {records} {where}
        ), r1 AS (SELECT *, {ranks} FROM r0 WHERE NOT __alone),
        r AS (SELECT *{''.join(', ' + w for w in winners)} FROM r1)
        SELECT entity_key, count(*) AS n_records, list_sort(list_distinct(list(source_system))) AS sources,
               max(__updated) AS last_updated_at, {', '.join(aggs)}
        FROM r GROUP BY entity_key
        UNION ALL
        SELECT entity_key, 1::BIGINT, [source_system], __updated, {', '.join(single)}
        FROM r0 WHERE __alone
        """
    )
    return out_table
