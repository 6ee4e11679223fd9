"""marts.data_quality_by_owner, the per-rep scorecard, as the quality steps rebuild it after each evaluation.

The scorecard counts a rep's records across CRMs through core.rep_crosswalk. A quality step guarding staging tables
can run before the crosswalk was ever built (the first run on a new warehouse): the crosswalk is then read as empty,
so each CRM user counts as its own rep until a later step (the deepest quality step runs after the core layer) or run
rebuilds the scorecard. Any build reads the whole history of quality.rule_results_by_owner, so past days follow the
current crosswalk too.
"""
from __future__ import annotations

import logging

from transforms import staging as staging_layer
from transforms.catalog import discover
from warehouse.connection import Warehouse
from warehouse.dictionary import table_doc

log = logging.getLogger(__name__)

SCORECARD = ("marts", "data_quality_by_owner")
#: Read as empty when not built yet: without them the scorecard only loses the merging of a rep's CRM users.
OPTIONAL_READS = (("core", "rep_crosswalk"),)


def scorecard_sql(wh: Warehouse) -> str:
    model = next(m for m in discover((SCORECARD[0],)) if m.key == SCORECARD)
    sql = model.sql(wh.dialect)
    for schema, table in OPTIONAL_READS:
        if not wh.table_exists(schema, table):
            cols = table_doc(schema, table)["columns"]
            empty = ", ".join(f"cast(null as {spec['type']}) as {c}" for c, spec in cols.items())
            sql = staging_layer.replace_table(sql, schema, table, f"(select {empty} where 1 = 0)")
            log.info("%s.%s: %s.%s not built yet, read as empty (each CRM user counts as its own rep)",
                     *SCORECARD, schema, table)
    return sql


def build_scorecard(wh: Warehouse) -> int:
    """Rebuild marts.data_quality_by_owner atomically; returns its row count."""
    model = next(m for m in discover((SCORECARD[0],)) if m.key == SCORECARD)
    return wh.build_table(model.schema, model.name, scorecard_sql(wh), indexes=model.indexes,
                          unique_indexes=model.unique_indexes)
