"""Golden records: one row per entity, each field chosen by survivorship, with `<field>_source`."""
from __future__ import annotations

import duckdb

from .config import SurvivorshipConfig


# Survivorship order, larger is better for arg_max; uid last so ties are broken the same way on every run. Each
# order is turned into one integer rank by a single sort, so the per-entity arg_max compares integers instead of
# (timestamp, priority, uid) structs; ranks only matter within an entity, so a partial (incremental) recomputation
# picks the same winners as a full one.
# Records the order's date and priority leave tied (a CRM export without dates, or with equal ones, from one source)
# are ordered first by how many of the entity's records hold their value (a majority vote; spelled fields vote on
# the value folded), then by uid: the vote key packs (tie group, votes, rank). The tie group's rank (`__t_*`, a
# dense rank over the order's prefix) comes from the same sort; the votes are counted within the entity, so they
# too only depend on the entity's records.
_TIES = {
    "most_recent": "updated_at_ts, prio",
    "source_priority": "prio, updated_at_ts",
}
_ORDERS = {s: f"{t}, uid" for s, t in _TIES.items()}
#: Bits of each part of the vote key, a HUGEINT: each part is at most the number of ranked records (< 2^42).
_VOTE_BITS = 42


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
    # the tie group's dense rank sorts with the whole order (its prefix): no second sort
    ranks = ", ".join(f"row_number() OVER (ORDER BY {_ORDERS[s]}) AS __o_{s}, "
                      f"dense_rank() OVER (ORDER BY {_TIES[s]}) AS __t_{s}" for s in used)
    # a spelled field's value folded, once per record (voted on, chosen, compared with the winner)
    quoted = {n: f'"{n}"' for n in fields}
    folds = "".join(f', {_FOLD.format(quoted[n])} AS "__f_{n}"' for n in fields if n in spelled)
    value = {n: f'"__f_{n}"' if n in spelled else quoted[n] for n in fields}
    # the entity's records holding the same value, by one hash aggregate per field joined back (as many windows cost
    # ~4x as much: each copies every column); a null value's count is moot, it is never chosen
    votes = ", ".join(f'coalesce(c{i}.n, 0) AS "__v_{n}"' for i, n in enumerate(fields))
    vote_joins = " ".join(
        f"LEFT JOIN (SELECT entity_key, {value[n]} AS val, count(*) AS n FROM vr GROUP BY ALL) c{i} "
        f"ON c{i}.entity_key = vr.entity_key AND c{i}.val = vr.{value[n]}" for i, n in enumerate(fields))

    def choose(key) -> tuple[str, str]:
        """(window columns, aggregates) choosing every field with key(field) -> its integer ordering key."""
        winners, aggs = [], []
        for name in fields:
            col, k = quoted[name], key(name)
            if name in spelled:
                # the winning folded value per entity (a window: the aggregate below needs it on every record)
                winners.append(f'arg_max({value[name]}, {k}) FILTER (WHERE {col} IS NOT NULL) '
                               f'OVER (PARTITION BY entity_key) AS "__w_{name}"')
                # of the records holding it, the best spelling, then the order's rank
                k = (f'(CASE WHEN {value[name]} = "__w_{name}" THEN {4 * _RANK_SPAN} ELSE 0 END '
                     f'+ {_SPELLING.format(col)} * {_RANK_SPAN} + __o_{strategies[name]})')
            aggs.append(f'arg_max({col}, {k}) FILTER (WHERE {col} IS NOT NULL) AS {col}')
            aggs.append(f'arg_max(source_system, {k}) FILTER (WHERE {col} IS NOT NULL) AS "{name}_source"')
        return "".join(", " + w for w in winners), ", ".join(aggs)

    plain_winners, plain_aggs = choose(lambda n: f"__o_{strategies[n]}")
    vote_winners, vote_aggs = choose(lambda n: f'((__t_{strategies[n]}::HUGEINT << {2 * _VOTE_BITS}) '
                                               f'+ ("__v_{n}"::HUGEINT << {_VOTE_BITS}) + __o_{strategies[n]})')
    entity = "entity_key, count(*) AS n_records, list_sort(list_distinct(list(source_system))) AS sources, " \
             "max(__updated) AS last_updated_at"
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
        ), r1 AS MATERIALIZED (SELECT *, {ranks}{folds} FROM r0 WHERE NOT __alone),
        -- a vote can only decide in an entity of 3 records or more two of which tie on date and priority (two tied
        -- records holding two values are one against one): only those entities' records are counted, and ranked
        -- by the vote key; in the others the order's rank alone picks the same winners
        voting AS (SELECT entity_key FROM r1 GROUP BY entity_key
                   HAVING count(*) > 2 AND count(DISTINCT __t_{used[0]}) < count(*)),
        plain AS (SELECT *{plain_winners} FROM r1 WHERE entity_key NOT IN (SELECT entity_key FROM voting)),
        vr AS MATERIALIZED (SELECT * FROM r1 WHERE entity_key IN (SELECT entity_key FROM voting)),
        voted AS (SELECT *{vote_winners} FROM (SELECT vr.*, {votes} FROM vr {vote_joins}))
        SELECT {entity}, {plain_aggs} FROM plain GROUP BY entity_key
        UNION ALL
        SELECT {entity}, {vote_aggs} FROM voted GROUP BY entity_key
        UNION ALL
        SELECT entity_key, 1::BIGINT, [source_system], __updated, {', '.join(single)}
        FROM r0 WHERE __alone
        """
    )
    return out_table
