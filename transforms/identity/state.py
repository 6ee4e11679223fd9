"""Identity state kept between pipeline runs, so that a sync's new or changed records are resolved
incrementally (core.update: only they are compared with the known records) instead of all over again.

One DuckDB file per kind, `<state dir>/<kind>.duckdb` (see `state_path`), holds:
  - the last Resolution's tables: normalized, edges, clusters, crosswalk, golden, and the contact rule tables
    (rule rows per group, rare names, name counts) that an update adjusts in place (main schema);
  - identity_state.record_hash: one content hash per input record (its contract and passthrough columns,
    after the same one-row-per-record choice core makes);
  - identity_state.meta: the fingerprint of everything that decides the result (model version, match config,
    the identity and normalisation code, DuckDB and Splink versions, the input columns) and a `complete` marker.

Each run hashes its input and picks a mode:
  full        no trusted state, a changed fingerprint, too many changes, or asked for;
              built in a fresh file `<kind>.duckdb.building`, swapped in only once complete;
  incremental a few new, changed or deleted records: `complete` is cleared (and checkpointed) before the state is
              touched and set again, with the new hashes, only after the update; a run that dies in between
              leaves a state the next run does not trust (it rebuilds in full);
  unchanged   same records, same fingerprint: nothing is computed, the stored crosswalk/golden are read.

Pure Python + DuckDB; runs are serialised per state file by an advisory lock (`<kind>.duckdb.lock`).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import duckdb

from . import splink_models
from .config import CompaniesConfig, ContactsConfig, MatchConfig
from .core import Resolution, _drop_raw, _prepare_sql, resolve, update

STATE_FORMAT = 2
#: Above this share of new + changed + deleted records (of the current input) a full rebuild is cheaper.
MAX_CHANGED_SHARE = 0.2
#: The Resolution's own tables (main schema) and, for contacts, the rule tables an update adjusts in place
#: (one missing only makes core recompute that step in full, still correct); other tables a run leaves under
#: its prefix are scratch.
KEEP_MAIN = {"contacts": ("normalized", "edges", "clusters", "crosswalk", "golden", "det", "rare", "name_counts",
                          "part_counts"),
             "companies": ("normalized", "edges", "clusters", "crosswalk", "golden")}
_CODE_DIRS = (Path(__file__).parent,)
_CODE_FILES = (Path(__file__).parents[1] / "normalize.py",)


def full_rebuild_from_env() -> bool:
    """CRM_ETL_IDENTITY_FULL_REBUILD=1 (or true/yes) asks for a full resolution, ignoring the state."""
    return os.environ.get("CRM_ETL_IDENTITY_FULL_REBUILD", "").strip().lower() in {"1", "true", "yes", "on"}


def state_dir(warehouse_url: str | None = None) -> Path:
    """Where the identity state lives: CRM_ETL_IDENTITY_STATE_DIR, else beside a DuckDB warehouse file
    (`<its folder>/identity`, or `<its folder>/identity/<file stem>` when the file is not warehouse.duckdb),
    else (PostgreSQL) `<CRM_ETL_DATA_DIR or data>/identity/pg-<hash of the URL without password>`."""
    from warehouse.connection import duckdb_file, redact, warehouse_url as resolve_url

    if os.environ.get("CRM_ETL_IDENTITY_STATE_DIR"):
        return Path(os.environ["CRM_ETL_IDENTITY_STATE_DIR"])
    url = resolve_url(warehouse_url)
    if url.startswith("duckdb:"):
        db = duckdb_file(url)
        if db != ":memory:":
            p = Path(db)
            return p.parent / "identity" if p.stem == "warehouse" else p.parent / "identity" / p.stem
    data_dir = Path(os.environ.get("CRM_ETL_DATA_DIR", "data"))
    return data_dir / "identity" / f"pg-{hashlib.sha256(redact(url).encode()).hexdigest()[:10]}"


def state_path(kind: str, warehouse_url: str | None = None) -> Path:
    return state_dir(warehouse_url) / f"{kind}.duckdb"


def _code_hash() -> str:
    h = hashlib.sha256()
    files = sorted(p for d in _CODE_DIRS for p in d.rglob("*") if p.suffix in {".py", ".json"}) + list(_CODE_FILES)
    for p in files:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


#: Taken once, when this module (and with it core and the rules) is imported: the code that runs, even if the
#: files are edited while the process lives.
CODE_HASH = _code_hash()


def fingerprint(kind: str, cfg: MatchConfig, model: dict) -> str:
    import splink

    parts = {
        "format": STATE_FORMAT, "kind": kind, "model_version": cfg.model_version or splink_models.model_version(model),
        "model": hashlib.sha256(json.dumps(model, sort_keys=True, default=str).encode()).hexdigest(),
        "config": cfg.model_dump_json(), "code": CODE_HASH, "duckdb": duckdb.__version__,
        "splink": splink.__version__,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@dataclass
class StateRun:
    """What one run did. `resolution` reads the state file while the IdentityState is open."""

    resolution: Resolution
    mode: str  # full | incremental | unchanged
    reason: str  # why this mode
    records: int = 0
    new: int = 0
    changed: int = 0
    deleted: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        return {"identity_mode": self.mode, "identity_mode_reason": self.reason, "records_new": self.new,
                "records_changed": self.changed, "records_deleted": self.deleted,
                "identity_seconds": round(self.seconds, 3),
                "identity_step_seconds": {k: round(v, 3) for k, v in self.timings.items()}}


class IdentityState:
    """One kind's state file, locked while open::

        with IdentityState("contacts", path) as st:
            run = st.resolve(frame)            # run.mode, run.resolution.crosswalk_df()
    """

    def __init__(self, kind: str, path: str | Path, *, config: MatchConfig | None = None,
                 log: Callable[[str], None] | None = None, max_changed_share: float = MAX_CHANGED_SHARE):
        if kind not in ("contacts", "companies"):
            raise ValueError(f"kind must be contacts or companies, not {kind!r}")
        self.kind, self.path = kind, Path(path)
        self.cfg = config or (ContactsConfig() if kind == "contacts" else CompaniesConfig())
        self.prefix = f"identity_{kind}"
        self.log = log or (lambda msg: None)
        self.max_changed_share = max_changed_share
        self.con: duckdb.DuckDBPyConnection | None = None
        self._lock_file = None

    # -- lifecycle ------------------------------------------------------------------------------------------
    def __enter__(self) -> "IdentityState":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(f"{self.path}.lock", "a+")
        try:
            import fcntl

            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX)  # another run of this kind waits here
        except ImportError:  # pragma: no cover - no advisory locks on this platform
            pass
        return self

    def __exit__(self, *exc) -> None:
        self._close()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the lock
            self._lock_file = None

    def _close(self) -> None:
        if self.con is not None:
            with contextlib.suppress(duckdb.Error):
                self.con.close()
            self.con = None

    # -- the run --------------------------------------------------------------------------------------------
    def resolve(self, data: Any, *, full_rebuild: bool = False, passthrough: list[str] | None = None) -> StateRun:
        """Resolve `data` (the whole current input, as core.resolve takes it), incrementally when the state allows."""
        t0 = time.perf_counter()
        self._diff: dict[str, int] | None = None  # this run's comparison with the state, once made
        model = splink_models.load_model(self.kind, self.cfg.model_path)
        fp = fingerprint(self.kind, self.cfg, model)
        reason = self._distrust(fp, full_rebuild)
        if reason is None:
            run = self._try_incremental(data, model, fp, passthrough)
            if isinstance(run, str):
                reason = run
            else:
                run.seconds = time.perf_counter() - t0
                return run
        self.log(f"identity {self.kind}: full resolution ({reason})")
        run = self._full(data, model, fp, passthrough, reason)
        run.seconds = time.perf_counter() - t0
        self.log(f"identity {self.kind}: full resolution of {run.records} records in {run.seconds:.1f} s")
        return run

    def _distrust(self, fp: str, full_rebuild: bool) -> str | None:
        """Why the stored state cannot be used (None: it can); opens it when it can."""
        if full_rebuild:
            return "full rebuild requested"
        if not self.path.exists():
            return "no state yet"
        try:
            self.con = duckdb.connect(str(self.path))
            meta = dict(self.con.execute("SELECT key, value FROM identity_state.meta").fetchall())
        except duckdb.Error as exc:
            self._close()
            return f"state unreadable ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        if meta.get("complete") != "true":
            return "the previous run did not complete"
        if meta.get("fingerprint") != fp:
            return "model, match config, identity code or library versions changed"
        return None

    def _hash_input(self, con: duckdb.DuckDBPyConnection, table: str, out: str, row_col: str | None = None) -> list[str]:
        """TEMP table `out`(uid, source_system, source_id, h[, row_col]) over a prepared input; returns its column
        signature."""
        desc = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0] not in ("uid", row_col)]
        cols = ", ".join('"' + c.replace('"', '""') + '"' for c, _ in desc)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {out} AS
                        SELECT uid, source_system, source_id, hash({cols}) AS h{f', {row_col}' if row_col else ''} FROM {table}""")
        return [f"{c} {t}" for c, t in desc]

    def _try_incremental(self, data: Any, model: dict, fp: str, passthrough: list[str] | None) -> StateRun | str:
        con, p = self.con, self.prefix
        assert con is not None
        cur = f"{p}_current"
        t0 = time.perf_counter()
        data, row = _numbered(data)
        select, order, kept = _prepare_sql(con, data, self.kind, cur, passthrough, row)
        # One pass over the input hashes every row (no copy of it): when no record comes twice, those rows are the
        # prepared records. Else the latest row of each record is chosen first, as core does (a sort of the input).
        con.execute(f"CREATE OR REPLACE TEMP VIEW {cur}_rows AS {select}")
        columns = self._hash_input(con, f"{cur}_rows", "__state_hash", row)
        src = f"{cur}_rows"
        if con.execute("SELECT count(*) - count(DISTINCT uid) FROM __state_hash").fetchone()[0]:
            con.execute(f"""CREATE OR REPLACE TEMP TABLE {cur} AS {select}
                            QUALIFY row_number() OVER (PARTITION BY source_system, source_id ORDER BY {order}) = 1""")
            self._hash_input(con, cur, "__state_hash", row)
            src = cur
        stored_cols = con.execute("SELECT value FROM identity_state.meta WHERE key = 'columns'").fetchone()
        if stored_cols is None or json.loads(stored_cols[0]) != columns:
            return "input columns changed"
        con.execute(
            """CREATE OR REPLACE TEMP TABLE __state_delta AS
               SELECT coalesce(c.uid, o.uid) AS uid, o.source_system, o.source_id,
                      CASE WHEN o.uid IS NULL THEN 'new' WHEN c.uid IS NULL THEN 'deleted' ELSE 'changed' END AS what
               FROM __state_hash c FULL JOIN identity_state.record_hash o ON o.uid = c.uid
               WHERE o.uid IS NULL OR c.uid IS NULL OR o.h <> c.h"""
        )
        records, new, changed, deleted = con.execute(
            """SELECT (SELECT count(*) FROM __state_hash), count(*) FILTER (WHERE what = 'new'),
                      count(*) FILTER (WHERE what = 'changed'), count(*) FILTER (WHERE what = 'deleted')
               FROM __state_delta"""
        ).fetchone()
        self._diff = counts = dict(records=records, new=new, changed=changed, deleted=deleted)
        timings = {"state_diff": time.perf_counter() - t0}
        if new + changed + deleted > self.max_changed_share * max(records, 1):
            return (f"{new + changed + deleted} of {records} records new, changed or deleted "
                    f"(> {self.max_changed_share:.0%})")
        mv = self.cfg.model_version or splink_models.model_version(model)
        res = Resolution(con, self.kind, p, mv)
        res.model = model  # type: ignore[attr-defined]
        if new + changed + deleted == 0:
            self.log(f"identity {self.kind}: {records} records unchanged, nothing to resolve")
            _drop_raw(con, cur)
            self._drop_temp()
            return StateRun(res, "unchanged", "no new or changed records", timings=timings, **counts)
        self.log(f"identity {self.kind}: incremental resolution of {new} new, {changed} changed and {deleted} deleted "
                 f"records (of {records})")
        t0 = time.perf_counter()
        # committed (in the write-ahead log, or the file if DuckDB checkpoints meanwhile) before the state is touched
        self._set_meta({"complete": "false"})
        # one checkpoint, at the end (_save): DuckDB would otherwise checkpoint in the middle of the update whenever
        # the log passes 16 MiB (~0.5 s at 1M records, paid by whichever statement crossed it, more than once)
        con.execute("SET checkpoint_threshold = '1GiB'")
        if row:  # the changed rows picked from the Arrow input by position (a second scan of it cost ~0.5 s at 1M)
            rows = con.execute(f"""SELECT {row} FROM __state_hash
                                   WHERE uid IN (SELECT uid FROM __state_delta WHERE what <> 'deleted') ORDER BY {row}""").fetchnumpy()[row]
            changes = data.take(rows).drop_columns([row])
            con.register("__state_changes_src", changes)
            changes = "__state_changes_src"
        else:
            con.execute(f"""CREATE OR REPLACE TEMP TABLE __state_changes AS SELECT * EXCLUDE (uid) FROM {src}
                            WHERE uid IN (SELECT uid FROM __state_delta WHERE what <> 'deleted')""")
            changes = "__state_changes"
        con.execute("""CREATE OR REPLACE TEMP TABLE __state_deleted AS
                       SELECT source_system, source_id FROM __state_delta WHERE what = 'deleted'""")
        _drop_raw(con, cur)
        timings["state_open"] = time.perf_counter() - t0
        out = update(res, changes, deleted="__state_deleted" if deleted else None, config=self.cfg,
                     model=model, passthrough=kept)
        self.log(f"identity {self.kind}: update computed, saving the state")
        t0 = time.perf_counter()
        con.execute("DELETE FROM identity_state.record_hash WHERE uid IN (SELECT uid FROM __state_delta)")
        con.execute("""INSERT INTO identity_state.record_hash SELECT uid, source_system, source_id, h FROM __state_hash
                       WHERE uid IN (SELECT uid FROM __state_delta WHERE what <> 'deleted')""")
        if row:
            con.unregister("__state_changes_src")
        self._save(fp, columns)
        timings = {**timings, **out.timings, "state_save": time.perf_counter() - t0}
        what = ", ".join(f"{n} {w}" for n, w in ((new, "new"), (changed, "changed"), (deleted, "deleted")) if n)
        return StateRun(out, "incremental", f"{what} of {records} records", timings=timings, **counts)

    def _full(self, data: Any, model: dict, fp: str, passthrough: list[str] | None, reason: str) -> StateRun:
        self._close()
        building = Path(f"{self.path}.building")
        for f in (building, Path(f"{building}.wal")):
            f.unlink(missing_ok=True)
        self.con = con = duckdb.connect(str(building))
        res = resolve(self.kind, data, con=con, config=self.cfg, prefix=self.prefix, model=model, passthrough=passthrough)
        con.execute("CREATE SCHEMA identity_state")
        con.execute("CREATE TABLE identity_state.meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        columns = self._hash_input(con, f"{self.prefix}_input", "__state_hash")
        con.execute("CREATE TABLE identity_state.record_hash AS SELECT * FROM __state_hash")
        records = con.execute("SELECT count(*) FROM __state_hash").fetchone()[0]
        self._save(fp, columns)
        self._close()
        # the finished file replaces the old state in one rename (a stale WAL of the old file must not be replayed on it)
        Path(f"{self.path}.wal").unlink(missing_ok=True)
        os.replace(building, self.path)
        self.con = duckdb.connect(str(self.path))
        out = Resolution(self.con, self.kind, self.prefix, res.model_version, res.timings, res.counts)
        out.model = model  # type: ignore[attr-defined]
        diff = self._diff or dict(records=records, new=records, changed=0, deleted=0)
        return StateRun(out, "full", reason, **{**diff, "records": records}, timings=res.timings)

    # -- storage --------------------------------------------------------------------------------------------
    def _set_meta(self, values: dict[str, str]) -> None:
        assert self.con is not None
        for k, v in values.items():
            self.con.execute("INSERT OR REPLACE INTO identity_state.meta VALUES (?, ?)", [k, v])

    def _save(self, fp: str, columns: list[str]) -> None:
        """Drop the scratch and mark the state complete."""
        con, p = self.con, self.prefix
        assert con is not None
        self._drop_temp()
        # scratch tables core and Splink leave in the database (the changes' normalisation, re-clustered
        # components, Splink's caches) are not state
        keep = {f"{p}_{t}" for t in KEEP_MAIN[self.kind]}
        for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name <> 'temp' AND schema_name = 'main'"
        ).fetchall():
            if name not in keep:
                con.execute(f'DROP TABLE IF EXISTS main."{name}"')
        self._set_meta({"fingerprint": fp, "columns": json.dumps(columns), "format": str(STATE_FORMAT),
                        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        self._set_meta({"complete": "true"})
        con.execute("CHECKPOINT")

    def _drop_temp(self) -> None:
        """Free the run's scratch TEMP tables (the crosswalk/golden reads that follow need only the state)."""
        con = self.con
        assert con is not None
        for name, typ in con.execute(
            "SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE database_name = 'temp' "
            "UNION ALL SELECT view_name, 'VIEW' FROM duckdb_views() WHERE database_name = 'temp' AND NOT internal"
        ).fetchall():
            con.execute(f'DROP {typ} IF EXISTS temp."{name}"')


_ROW = "__state_row"


def _numbered(data: Any) -> tuple[Any, str | None]:
    """A pandas or Arrow input as an Arrow table with a row-number column (its name returned), so that the changed
    rows can be taken by position; other inputs (table names, relations) as they are, with None."""
    try:
        import pandas as pd
        import pyarrow as pa
    except ImportError:  # pragma: no cover
        return data, None
    if isinstance(data, pd.DataFrame):
        try:
            data = pa.Table.from_pandas(data, preserve_index=False)
        except Exception:  # noqa: BLE001 - odd dtypes: let core read the frame
            return data, None
    if not isinstance(data, pa.Table) or _ROW in data.column_names:
        return data, None
    return data.append_column(_ROW, pa.array(range(data.num_rows), pa.int64())), _ROW


@contextlib.contextmanager
def resolve_with_state(kind: str, data: Any, *, path: str | Path | None = None, warehouse_url: str | None = None,
                       full_rebuild: bool = False, config: MatchConfig | None = None,
                       log: Callable[[str], None] | None = None, **kw) -> Iterator[StateRun]:
    """One run against `path` (default: state_path(kind, warehouse_url)); the state stays open (and locked)
    inside the block so that the run's crosswalk/golden can be read. `data` may be a function returning the input:
    it is then read under the lock, so of two concurrent runs the later one sees the later input (read before the
    lock, an older input would look like deletions and overwrite a newer crosswalk)."""
    with IdentityState(kind, path or state_path(kind, warehouse_url), config=config, log=log, **kw) as st:
        if callable(data):
            data = data()
        yield st.resolve(data, full_rebuild=full_rebuild or full_rebuild_from_env())
