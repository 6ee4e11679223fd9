"""Blocking key checks: every table in the data dictionary has a unique, non-null primary key.

The marts must never be built on a staging or core table whose key is broken (a duplicated deal counts twice
everywhere), so these checks are blocking: a failure stops everything downstream and the last good marts stay.
"""

import dagster as dg

from warehouse import qualify, quote_ident
from warehouse.dictionary import load_dictionary

from .resources import WarehouseResource

SAMPLE = 5


def key_check_sql(schema: str, table: str, key: list[str], nullable: set[str] = frozenset()) -> tuple[str, str]:
    """(counts query, sample duplicates query). Key columns marked `nullable` in the dictionary may be null (a null
    groups with nulls when duplicates are counted, as `select distinct` does)."""
    cols = ", ".join(quote_ident(c) for c in key)
    null_cond = " or ".join(f"{quote_ident(c)} is null" for c in key if c not in nullable) or "false"
    t = qualify(schema, table)
    dupes = (
        f"select {cols}, count(*) as n from {t} group by {cols} having count(*) > 1 "
        f"order by count(*) desc limit {SAMPLE}"
    )
    counts = (
        f"select count(*) as total_rows, count(*) filter (where {null_cond}) as null_keys, "
        f"count(*) - (select count(*) from (select distinct {cols} from {t}) d) as duplicate_rows from {t}"
    )
    return counts, dupes


def primary_key_check(schema: str, table: str, key: list[str], nullable: set[str] = frozenset()) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey([schema, table]),
        name="primary_key_unique_not_null",
        blocking=True,
        description=f"({', '.join(key)}) is unique and never null in {schema}.{table}.",
    )
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        wh = warehouse.get()
        counts_sql, dupes_sql = key_check_sql(schema, table, key, nullable)
        counts = wh.query(counts_sql)[0]
        dupes = wh.query(dupes_sql) if counts["duplicate_rows"] else []
        passed = counts["null_keys"] == 0 and counts["duplicate_rows"] == 0
        return dg.AssetCheckResult(
            passed=passed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "total_rows": int(counts["total_rows"]),
                "null_keys": int(counts["null_keys"]),
                "duplicate_rows": int(counts["duplicate_rows"]),
                "sample_duplicates": dg.MetadataValue.json([{k: str(v) for k, v in d.items()} for d in dupes]),
            },
            description=None if passed else (
                f"{schema}.{table}: {counts['duplicate_rows']} duplicated and {counts['null_keys']} null keys on "
                f"({', '.join(key)}); downstream tables were not rebuilt. Inspect the sample duplicates."
            ),
        )

    return _check


def primary_key_checks(asset_keys: set[dg.AssetKey]) -> list[dg.AssetChecksDefinition]:
    checks = []
    for schema, tables in load_dictionary().items():
        for table, doc in tables.items():
            if doc.get("primary_key") and dg.AssetKey([schema, table]) in asset_keys:
                nullable = {c for c, spec in doc["columns"].items() if spec.get("nullable")}
                checks.append(primary_key_check(schema, table, list(doc["primary_key"]), nullable))
    return checks
