"""Blocking key checks: every table in the data dictionary has a unique, non-null primary key.

The marts must never be built on a staging or core table whose key is broken (a duplicated deal counts twice
everywhere), so these checks are blocking: a failure stops everything downstream and the last good marts stay.
"""

import dagster as dg

from warehouse import qualify, quote_ident
from warehouse.dictionary import load_dictionary

from .check_steps import asset_depths, group_by_depth
from .resources import WarehouseResource

SAMPLE = 5
CHECK_NAME = "primary_key_unique_not_null"


def key_check_sql(schema: str, table: str, key: list[str], nullable: set[str] = frozenset(),
                  unique_enforced: bool = False) -> tuple[str, str]:
    """(counts query, sample duplicates query). Key columns marked `nullable` in the dictionary may be null (a null
    groups with nulls when duplicates are counted, as `select distinct` does). `unique_enforced`: the database
    refuses duplicates (a unique index), so only rows and null keys are counted."""
    cols = ", ".join(quote_ident(c) for c in key)
    null_cond = " or ".join(f"{quote_ident(c)} is null" for c in key if c not in nullable) or "false"
    t = qualify(schema, table)
    dupes = (
        f"select {cols}, count(*) as n from {t} group by {cols} having count(*) > 1 "
        f"order by count(*) desc limit {SAMPLE}"
    )
    duplicates = "0" if unique_enforced else f"count(*) - (select count(*) from (select distinct {cols} from {t}) d)"
    counts = (
        f"select count(*) as total_rows, count(*) filter (where {null_cond}) as null_keys, "
        f"{duplicates} as duplicate_rows from {t}"
    )
    return counts, dupes


#: A valid, non-partial unique index of the table whose columns are all key columns (PostgreSQL).
_UNIQUE_INDEX_SQL = """
select i.relname as index_name
from pg_index x
join pg_class t on t.oid = x.indrelid
join pg_namespace n on n.oid = t.relnamespace
join pg_class i on i.oid = x.indexrelid
where n.nspname = :schema and t.relname = :table and x.indisunique and x.indisvalid
  and x.indpred is null and x.indexprs is null
  and (select array_agg(a.attname::text) from pg_attribute a
       where a.attrelid = t.oid and a.attnum = any(x.indkey)) <@ cast(:key as text[])
limit 1
"""


def enforcing_unique_index(wh, schema: str, table: str, key: list[str]) -> str | None:
    """The unique index that makes duplicated keys impossible in `schema.table`, if any (PostgreSQL only)."""
    if getattr(wh, "dialect", None) != "postgres":  # (tests pass read-only stand-ins without one)
        return None
    rows = wh.query(_UNIQUE_INDEX_SQL, {"schema": schema, "table": table, "key": list(key)})
    return rows[0]["index_name"] if rows else None


def evaluate_key_check(wh, schema: str, table: str, key: list[str], nullable: set[str] = frozenset()) -> dg.AssetCheckResult:
    # a unique index over key columns that are never null makes duplicates impossible: read that guarantee instead
    # of counting distinct keys (the 5.6M-row pipeline snapshot: seconds per run on PostgreSQL); nulls still counted
    index = None if nullable & set(key) else enforcing_unique_index(wh, schema, table, key)
    counts_sql, dupes_sql = key_check_sql(schema, table, key, nullable, unique_enforced=index is not None)
    counts = wh.query(counts_sql)[0]
    dupes = wh.query(dupes_sql) if counts["duplicate_rows"] else []
    passed = counts["null_keys"] == 0 and counts["duplicate_rows"] == 0
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey([schema, table]),
        check_name=CHECK_NAME,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "total_rows": int(counts["total_rows"]),
            "null_keys": int(counts["null_keys"]),
            "duplicate_rows": int(counts["duplicate_rows"]),
            "sample_duplicates": dg.MetadataValue.json([{k: str(v) for k, v in d.items()} for d in dupes]),
            **({"duplicates_prevented_by": index} if index else {}),
        },
        description=None if passed else (
            f"{schema}.{table}: {counts['duplicate_rows']} duplicated and {counts['null_keys']} null keys on "
            f"({', '.join(key)}); downstream tables were not rebuilt. Inspect the sample duplicates."
        ),
    )


def _layer_checks(schema: str, tables: dict[str, tuple[list[str], set[str]]],
                  depths: dict[dg.AssetKey, int]) -> list[dg.AssetChecksDefinition]:
    """The key checks of one layer, a multi-asset check per depth of the asset graph (pipelines/check_steps.py), each
    one step over one connection: a Dagster step and a warehouse connection per table cost more than the counts
    themselves (about 0.2 s each; rebuild_marts: 16 key-check steps instead of 60). A failed key holds back
    everything downstream of its step, which may be more than the table's own downstream: conservative, and the
    check's description names the broken table."""
    specs = [
        dg.AssetCheckSpec(CHECK_NAME, asset=dg.AssetKey([schema, table]), blocking=True,
                          description=f"({', '.join(key)}) is unique and never null in {schema}.{table}.")
        for table, (key, _) in sorted(tables.items())
    ]
    return [_checks_step(f"{schema}_primary_keys_{suffix}", schema, group, tables)
            for suffix, group in group_by_depth(specs, depths)]


def _checks_step(name: str, schema: str, specs: list[dg.AssetCheckSpec],
                 tables: dict[str, tuple[list[str], set[str]]]) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(specs=specs, name=name, can_subset=True, required_resource_keys={"warehouse"})
    def _checks(context):  # no annotation: dagster rejects string annotations
        wh = context.resources.warehouse.get()
        with wh.session():
            for check_key in sorted(context.selected_asset_check_keys, key=lambda k: k.asset_key.path):
                table = check_key.asset_key.path[-1]
                key, nullable = tables[table]
                yield evaluate_key_check(wh, schema, table, key, nullable)

    return _checks


def primary_key_checks(assets: list[dg.AssetsDefinition | dg.AssetSpec]) -> list[dg.AssetChecksDefinition]:
    """A blocking `primary_key_unique_not_null` check on every dictionary table among `assets`, one multi-asset
    check per layer and depth of the asset graph (never split by Dagster: see pipelines/check_steps.py)."""
    depths = asset_depths(assets)
    layers: dict[str, dict[str, tuple[list[str], set[str]]]] = {}
    for schema, tables in load_dictionary().items():
        for table, doc in tables.items():
            if doc.get("primary_key") and dg.AssetKey([schema, table]) in depths:
                nullable = {c for c, spec in doc["columns"].items() if spec.get("nullable")}
                layers.setdefault(schema, {})[table] = (list(doc["primary_key"]), nullable)
    return [c for schema, tables in sorted(layers.items()) for c in _layer_checks(schema, tables, depths)]
