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


def build_models(
    wh: Warehouse,
    schemas: Iterable[str] = ("core", "marts"),
    only: Iterable[str] | None = None,
    timings: dict[str, float] | None = None,
) -> dict[str, int]:
    """Build every model of `schemas` (or `only` those and their upstream models) atomically, in dependency
    order. Returns {"schema.table": row count}; per-model seconds go into `timings` when given."""
    counts: dict[str, int] = {}
    for model in ordered_models(schemas, only):
        started = time.perf_counter()
        counts[f"{model.schema}.{model.name}"] = wh.build_table(model.schema, model.name, model.sql(wh.dialect))
        elapsed = time.perf_counter() - started
        if timings is not None:
            timings[f"{model.schema}.{model.name}"] = elapsed
        log.info("built %s.%s: %d rows in %.2f s", model.schema, model.name, counts[f"{model.schema}.{model.name}"], elapsed)
    return counts
