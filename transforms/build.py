"""Build the SQL models of some layers in dependency order, shared by the pipeline, the tests and the benchmark."""
from __future__ import annotations

import datetime as dt
import logging
import re
import time
from typing import Any, Iterable

import sqlalchemy as sa

from transforms.catalog import SqlModel, discover, topo_order
from warehouse.connection import Warehouse, qualify

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


def read_missing_as_empty(wh: Warehouse, sql: str, tables: Iterable[tuple[str, str]]) -> tuple[str, list[str]]:
    """`sql` with each of `tables` that does not exist yet read as an empty table of its dictionary columns, as a
    staging part reads an absent optional table (for a model that may run before the step that first writes one
    of its inputs); returns the SQL and the names of the tables stood in for."""
    from transforms.staging import replace_table
    from warehouse import quote_ident
    from warehouse.dictionary import table_doc

    missing = []
    for schema, table in sorted(tables):
        if not wh.table_exists(schema, table):
            cols = table_doc(schema, table)["columns"]
            empty = ", ".join(f"cast(null as {spec['type']}) as {quote_ident(c)}" for c, spec in cols.items())
            sql = replace_table(sql, schema, table, f"(select {empty} where 1 = 0)")
            missing.append(f"{schema}.{table}")
    return sql, missing


def build_model(wh: Warehouse, model: SqlModel, read_as_empty: Iterable[tuple[str, str]] = (),
                logger: Any = None) -> int:
    """Build one model atomically (build, then swap), with the indexes its `-- indexes:` header asks for on
    PostgreSQL. The one way to build a model: the pipeline's assets, the tests and the benchmark share it.
    `read_as_empty`: inputs read as empty while they do not exist yet (read_missing_as_empty), said as a warning
    to `logger` (a Dagster run's log; default this module's)."""
    sql, missing = read_missing_as_empty(wh, model.sql(wh.dialect), set(read_as_empty) & set(model.deps))
    for name in missing:
        (logger or log).warning(f"{model.schema}.{model.name}: {name} not built yet, read as empty")
    return wh.build_table(model.schema, model.name, sql, indexes=model.indexes,
                          unique_indexes=model.unique_indexes)


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


# -- the daily pipeline snapshot, partitioned by day ------------------------------------------------------------

#: The partitioned table: one row per snapshot day x open deal (transforms/marts/mart_pipeline_daily.sql).
SNAPSHOT_MODEL = ("marts", "mart_pipeline_daily")
_BOUNDS_CTE = re.compile(r"\nbounds as \(\n.*?\n\),\n", re.S)


def snapshot_model() -> SqlModel:
    return next(m for m in discover((SNAPSHOT_MODEL[0],)) if m.key == SNAPSHOT_MODEL)


def pipeline_snapshot_sql(dialect: str, first_day: dt.date, last_day: dt.date) -> str:
    """The snapshot model's SQL for the days first_day..last_day only: the model's `bounds` CTE (the one place it
    decides which days to build) is replaced, the rest is the very SQL of the full rebuild. Days after the as-of
    stay empty, as in the full rebuild."""
    if not (isinstance(first_day, dt.date) and isinstance(last_day, dt.date)):
        raise TypeError("snapshot days must be dates")
    sql = snapshot_model().sql(dialect)
    bounds = (
        "\nbounds as (\n"
        f"    select cast('{first_day.isoformat()}' as date) as lo,\n"
        f"           least(cast('{last_day.isoformat()}' as date), ao.as_of_date) as hi\n"
        "    from core.as_of ao\n),\n"
    )
    new, n = _BOUNDS_CTE.subn(lambda _: bounds, sql, count=1)
    if n != 1:
        raise ValueError(f"{snapshot_model().path}: no `bounds as (...)` CTE to restrict to the partition's days")
    return new


def _select_columns(wh: Warehouse, select_sql: str) -> list[str]:
    with wh.connect() as conn:
        return list(conn.exec_driver_sql(wh._raw(f"select * from ({select_sql}) q where 1 = 0")).keys())


def replace_pipeline_snapshot_days(wh: Warehouse, first_day: dt.date, last_day: dt.date | None = None) -> int:
    """Replace the snapshot rows of first_day..last_day (one day by default) in one transaction: delete the days,
    insert them recomputed from core.deal_state_periods as of each day's end. Idempotent; other days are kept, so
    history accumulates and any range can be backfilled. Creates the table (empty, with its indexes on
    PostgreSQL) when it does not exist yet. Returns the number of rows written."""
    last_day = last_day or first_day
    schema, table = SNAPSHOT_MODEL
    select_sql = pipeline_snapshot_sql(wh.dialect, first_day, last_day)
    target = qualify(schema, table)
    if wh.table_exists(schema, table) and wh.columns(schema, table) != _select_columns(wh, select_sql):
        # the model's columns changed (an upgrade): the kept days cannot take the new rows, so the table is rebuilt
        # from the history, every day it allows (days before the CRM's history are lost; said in the log)
        log.warning("%s: columns changed; rebuilt from the history for every day it holds, replacing the kept days",
                    target)
        build_model(wh, snapshot_model())  # every day the history holds, these days included
        return int(wh.scalar(f"select count(*) from {target} where snapshot_date between :lo and :hi",
                             {"lo": first_day, "hi": last_day}))
    model = snapshot_model()
    if not wh.table_exists(schema, table):
        wh.build_table(schema, table, f"select * from ({select_sql}) q where 1 = 0", indexes=model.indexes,
                       unique_indexes=model.unique_indexes)
    with wh.connect() as conn:
        conn.execute(sa.text(f"delete from {target} where snapshot_date between :lo and :hi"),
                     {"lo": first_day, "hi": last_day})
        conn.exec_driver_sql(wh._raw(f"insert into {target} select * from ({select_sql}) q"))
        # a table built before the model asked for its unique index (an upgrade) gets it here, after the days are
        # replaced (their old rows do not count), and loses the plain index it replaces
        wh.ensure_indexes(conn, schema, table, model.indexes, model.unique_indexes)
        return int(conn.execute(sa.text(f"select count(*) from {target} where snapshot_date between :lo and :hi"),
                                {"lo": first_day, "hi": last_day}).scalar())


def refresh_pipeline_snapshot(wh: Warehouse) -> tuple[dt.date | None, dt.date | None, int]:
    """What a run that names no day does (a sync, rebuild_marts, the demo): the first time, every day the history
    can rebuild (the full model); afterwards the last `pipeline_snapshot_refresh_days` days up to the data's as-of,
    and every day since the last one snapshotted when that is earlier (a quiet weekend left no gap), so the
    snapshots of older days accumulate as they were taken. Returns (first day, last day, rows of those days); the
    days are None for the full build."""
    schema, table = SNAPSHOT_MODEL
    with wh.session():
        if not wh.table_exists(schema, table):
            return None, None, build_model(wh, snapshot_model())
        as_of = wh.scalar("select as_of_date from core.as_of")
        if as_of is None:  # no deal, no invoice: nothing to snapshot
            return None, None, 0
        if isinstance(as_of, str):
            as_of = dt.date.fromisoformat(as_of)
        days = wh.scalar("select max(value) from staging.cfg_settings where key = 'pipeline_snapshot_refresh_days'")
        first = as_of - dt.timedelta(days=max(int(days or 2), 1) - 1)
        last_taken = wh.scalar(f"select max(snapshot_date) from {qualify(schema, table)}")
        if last_taken is None:  # an empty table: every day the history allows
            return None, None, build_model(wh, snapshot_model())
        if isinstance(last_taken, str):
            last_taken = dt.date.fromisoformat(last_taken)
        first = min(first, last_taken + dt.timedelta(days=1))
        return first, as_of, replace_pipeline_snapshot_days(wh, first, as_of)
