"""Assets for the SQL layers: one asset per warehouse table, built atomically by the warehouse module."""

import dagster as dg

from transforms import staging as staging_layer
from transforms.build import build_model
from transforms.catalog import SqlModel, discover
from warehouse.dictionary import table_doc

from .resources import WarehouseResource, warehouse_dialect

GROUPS = {"staging": "staging", "core": "core", "quality": "quality", "marts": "marts"}


def column_schema(schema: str, table: str) -> dict:
    doc = table_doc(schema, table)
    if not doc:
        return {}
    return {
        "dagster/column_schema": dg.TableSchema(
            columns=[
                dg.TableColumn(name, spec["type"], description=spec.get("description"))
                for name, spec in doc["columns"].items()
            ]
        ),
        "grain": doc.get("grain", ""),
    }


def _description(schema: str, table: str, fallback: str = "") -> str:
    doc = table_doc(schema, table) or {}
    text = doc.get("description") or fallback or f"{schema}.{table}"
    if doc.get("grain"):
        text += f"\n\nGrain: {doc['grain']}."
    return text


def _dep_keys(deps, sources_by_dataset: dict) -> list[dg.AssetKey]:
    """Asset keys of the tables read: a raw table written as a side table of a dlt resource maps to that resource."""
    keys = set()
    for schema, table in deps:
        spec = sources_by_dataset.get(schema)
        if spec is None:
            keys.add(dg.AssetKey([schema, table]))
        else:
            keys.update(dg.AssetKey([schema, r]) for r in spec.resources_writing(table))
    return sorted(keys, key=lambda k: k.path)


def staging_asset(table: str, table_parts: list, sources_by_dataset: dict) -> dg.AssetsDefinition:
    """staging.<table>: the union of every enabled source's part, cast to the dictionary's types."""
    deps = _dep_keys({d for p in table_parts for d in p.deps}, sources_by_dataset)

    @dg.asset(
        key=dg.AssetKey(["staging", table]),
        deps=deps,
        group_name="staging",
        kinds={"sql", warehouse_dialect()},
        description=_description("staging", table),
        metadata=column_schema("staging", table),
    )
    def _staging(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        wh = warehouse.get()
        sql, notes = staging_layer.union_sql(table, table_parts, wh.dialect, wh.table_exists, wh.columns)
        for note in notes:
            (context.log.warning if "skipped" in note else context.log.info)(f"staging.{table}: {note}")
        rows = wh.build_table("staging", table, sql)
        return dg.MaterializeResult(
            metadata={"dagster/row_count": rows, "sources": [p.source for p in table_parts], "notes": notes}
        )

    return _staging


def staging_assets(sources: list) -> list[dg.AssetsDefinition]:
    """staging.<table> for every table of the contract, fed by the enabled sources' parts."""
    by_dataset = {s.dataset: s for s in sources}
    return [
        staging_asset(table, table_parts, by_dataset)
        for table, table_parts in staging_layer.parts([s.name for s in sources]).items()
    ]


#: Tables a model may read before the step that writes them first ran (an upgraded warehouse whose registry sync,
#: which rebuilds dim_company, comes before the identity step that now writes company_golden): read as empty, as a
#: staging part reads an absent optional table. Their absence only loses what they add (the golden name).
READ_AS_EMPTY_IF_MISSING = frozenset({("core", "company_golden")})


def sql_model_asset(model: SqlModel, *, extra_deps: list[dg.AssetKey] | None = None) -> dg.AssetsDefinition:
    """One asset per SQL model in transforms/<schema>/<table>.sql."""

    def build(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        wh = warehouse.get()
        rows = build_model(wh, model, read_as_empty=READ_AS_EMPTY_IF_MISSING, logger=context.log)
        return dg.MaterializeResult(metadata={"dagster/row_count": rows})

    return dg.asset(
        key=dg.AssetKey([model.schema, model.name]),
        deps=[dg.AssetKey(list(d)) for d in sorted(model.deps)] + list(extra_deps or []),
        group_name=GROUPS.get(model.schema, model.schema),
        kinds={"sql", warehouse_dialect()},
        description=_description(model.schema, model.name, model.description()),
        metadata=column_schema(model.schema, model.name),
    )(build)


def sql_model_assets(layers=("core", "quality", "marts"), exclude: set[tuple[str, str]] = frozenset()):
    return [sql_model_asset(m) for m in discover(layers) if m.key not in exclude]
