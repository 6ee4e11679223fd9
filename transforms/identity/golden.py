"""Golden records: one row per entity, each field chosen by survivorship, with `<field>_source`."""
from __future__ import annotations

import duckdb

from .config import SurvivorshipConfig


def _order_key(strategy: str, n_sources: int) -> str:
    # larger is better for arg_max; uid last so ties are broken the same way on every run
    if strategy == "source_priority":
        return "struct_pack(p := prio, t := updated_at_ts, u := uid)"
    return "struct_pack(t := updated_at_ts, p := prio, u := uid)"


def golden_table(
    con: duckdb.DuckDBPyConnection,
    records: str,
    fields: dict[str, str],
    survivorship: SurvivorshipConfig,
    out_table: str,
    entity_filter: str | None = None,
) -> str:
    """records: table with uid, entity_key, source_system, updated_at and the field expressions.
    fields: golden column name -> SQL expression over `records`."""
    prio_cases = " ".join(
        f"WHEN '{s.replace(chr(39), chr(39) * 2)}' THEN {len(survivorship.source_priority) - i}"
        for i, s in enumerate(survivorship.source_priority)
    )
    prio = f"CASE source_system {prio_cases} ELSE 0 END" if prio_cases else "0"
    select = [f"{expr} AS \"{name}\"" for name, expr in fields.items()]
    aggs = []
    for name in fields:
        key = _order_key(survivorship.field_strategy.get(name, survivorship.strategy), len(survivorship.source_priority))
        aggs.append(f'arg_max("{name}", {key}) FILTER (WHERE "{name}" IS NOT NULL) AS "{name}"')
        aggs.append(f'arg_max(source_system, {key}) FILTER (WHERE "{name}" IS NOT NULL) AS "{name}_source"')
    where = f"WHERE {entity_filter}" if entity_filter else ""
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {out_table} AS
        WITH r AS (
            SELECT entity_key, uid, source_system, {prio} AS prio,
                   coalesce(TRY_CAST(updated_at AS TIMESTAMP), TIMESTAMP '1970-01-01') AS updated_at_ts,
                   {', '.join(select)}
            FROM {records} {where}
        )
        SELECT entity_key, count(*) AS n_records, list_sort(list_distinct(list(source_system))) AS sources,
               max(updated_at_ts) AS last_updated_at, {', '.join(aggs)}
        FROM r GROUP BY entity_key
        """
    )
    return out_table
