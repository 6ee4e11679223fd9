"""Build the SQL models of some layers in dependency order, shared by the pipeline, the tests and the benchmark."""
from __future__ import annotations

import logging
import time
from typing import Iterable

from transforms.catalog import SqlModel, discover, topo_order
from warehouse.connection import Warehouse

log = logging.getLogger(__name__)


def ordered_models(schemas: Iterable[str] = ("core", "marts"), only: Iterable[str] | None = None) -> list[SqlModel]:
    """The models of `schemas`, each after those it reads. `only` keeps the named models ("table" or
    "schema.table") and everything they need from the same schemas."""
    models = discover(tuple(schemas))
    order = topo_order(models)
    if only is None:
        return order
    by_key = {m.key: m for m in models}
    wanted = set()
    for name in only:
        matches = [m for m in models if f"{m.schema}.{m.name}" == name or m.name == name]
        if not matches:
            raise KeyError(f"no SQL model named {name!r} in {tuple(schemas)}")
        stack = list(matches)
        while stack:
            m = stack.pop()
            if m.key in wanted:
                continue
            wanted.add(m.key)
            stack.extend(by_key[d] for d in m.deps if d in by_key)
    return [m for m in order if m.key in wanted]


def build_model(wh: Warehouse, model: SqlModel) -> int:
    """Build one model atomically (build, then swap), with the indexes its `-- indexes:` header asks for on
    PostgreSQL. The one way to build a model: the pipeline's assets, the tests and the benchmark share it."""
    return wh.build_table(model.schema, model.name, model.sql(wh.dialect), indexes=model.indexes)


def build_models(
    wh: Warehouse,
    schemas: Iterable[str] = ("core", "marts"),
    only: Iterable[str] | None = None,
    timings: dict[str, float] | None = None,
) -> dict[str, int]:
    """Build every model of `schemas` (or `only` those and their upstream models) atomically, in dependency
    order, over one warehouse connection. Returns {"schema.table": row count}; per-model seconds go into
    `timings` when given."""
    counts: dict[str, int] = {}
    with wh.session():
        for model in ordered_models(schemas, only):
            started = time.perf_counter()
            key = f"{model.schema}.{model.name}"
            counts[key] = build_model(wh, model)
            elapsed = time.perf_counter() - started
            if timings is not None:
                timings[key] = elapsed
            log.info("built %s: %d rows in %.2f s", key, counts[key], elapsed)
    return counts
