"""Identity state kept between pipeline runs, so that a sync's new or changed records are resolved
incrementally (core.update: only they are compared with the known records) instead of all over again.

One DuckDB file per kind, `<state dir>/<kind>.duckdb` (see `state_path`), holds:
  - the last Resolution's tables: normalized, edges, clusters, crosswalk, golden, and the contact rule tables
    (rule rows per group, rare names, name counts) that an update adjusts in place (main schema);
  - identity_state.record_hash: per input record (after the same one-row-per-record choice core makes) its
    source_system, source_id, a 64-bit key of them (k) and a hash of its contract and passthrough columns (h);
  - identity_state.meta: the fingerprint of everything that decides the result (model version, match config,
    the identity and normalisation code, DuckDB and Splink versions, the input columns), whether the stored keys
    are unique, a `complete` marker, and the crosswalk/golden `version` (`<state id>.<update number>.<random>`)
    with the version the last update started from (`delta_from`);
  - identity_state.delta_records / delta_entities: what the last update replaced or removed (crosswalk records,
    golden entities), so that a copy of the tables at `delta_from` (the warehouse's) is brought up to date by
    replacing just those rows (StateRun.delta) instead of being rewritten.

Each run hashes its input and picks a mode:
  full        no trusted state, a changed fingerprint, too many changes (in this input, or records rewritten by
              the updates since the last full run: MAX_REPLACED_SHARE), or asked for;
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

STATE_FORMAT = 3
#: The record key the diff joins on (identity_state.record_hash.k): a 64-bit hash of the record's identity, far cheaper
#: to join and count than its strings. Never trusted alone: two records with one key (in the input, or a new record
#: and a stored one) send the run to the string-keyed comparison.
RECORD_KEY = "hash(source_system, source_id)"
#: Above this share of new + changed + deleted records (of the current input) a full rebuild is cheaper.
MAX_CHANGED_SHARE = 0.2
#: Above this share of records whose rows the updates since the last full resolution rewrote (summed over them: the
#: changed and deleted records, and every member of an entity an update re-clustered, new records aside), a full
#: rebuild drops the dead rows. An update only marks the rows it replaces as deleted: they stay in the state's tables
#: and every later scan reads them (the checkpoint does not compact them, see _connect). A 1% update rewrites the
#: rows of ~0.8% of the records (8,094 of 1M measured, 5,021 of them changed); with a full run ~10x an update and a
#: scan's cost growing with the dead rows, a linear model puts the cheapest average run at sqrt(2 x 10 x 0.8%) = 40%;
#: 30% costs 1% more on average and keeps the state smaller (a rebuild every ~37 such updates).
MAX_REPLACED_SHARE = 0.3
#: The Resolution's own tables (main schema) and, for contacts, the rule tables an update adjusts in place
#: (one missing only makes core recompute that step in full, still correct); other tables a run leaves under
#: its prefix are scratch.
KEEP_MAIN = {"contacts": ("normalized", "edges", "clusters", "crosswalk", "golden", "blocking_keys", "det", "rare",
                          "name_counts", "part_counts"),
             "companies": ("normalized", "edges", "clusters", "crosswalk", "golden", "blocking_keys")}
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
    #: the crosswalk/golden version this run leaves, and the version its delta (`delta()`) applies to (None: the
    #: tables can only be copied whole, after a full run)
    version: str | None = None
    delta_from: str | None = None

    def delta(self, which: str) -> tuple[Any, Any]:
        """The change from `delta_from` to `version` of the crosswalk (`which="crosswalk"`, keyed by source_system,
        source_id) or the golden records ("golden", keyed by entity_key), as two Arrow tables: the rows to insert,
        and the keys whose rows to remove first (replaced or gone). Only after an incremental or unchanged run."""
        if self.delta_from is None:
            raise ValueError("no delta: this run's tables follow no earlier version (copy them whole)")
        res, con = self.resolution, self.resolution.con
        table, keys, delta = ((res.crosswalk, "source_system, source_id", "identity_state.delta_records")
                              if which == "crosswalk" else (res.golden, "entity_key", "identity_state.delta_entities"))
        rows = res.table_arrow(f"(SELECT t.* FROM {table} t SEMI JOIN {delta} d USING ({keys}))")
        return rows, res.table_arrow(delta)

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
                 log: Callable[[str], None] | None = None, max_changed_share: float = MAX_CHANGED_SHARE,
                 max_replaced_share: float = MAX_REPLACED_SHARE):
        if kind not in ("contacts", "companies"):
            raise ValueError(f"kind must be contacts or companies, not {kind!r}")
        self.kind, self.path = kind, Path(path)
        self.cfg = config or (ContactsConfig() if kind == "contacts" else CompaniesConfig())
        self.prefix = f"identity_{kind}"
        self.log = log or (lambda msg: None)
        self.max_changed_share = max_changed_share
        self.max_replaced_share = max_replaced_share
        self.con: duckdb.DuckDBPyConnection | None = None
        self._lock_file = None
        self._meta: dict[str, str] = {}  # the stored state's identity_state.meta, once opened

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
            self.con = _connect(self.path)
            self._meta = meta = dict(self.con.execute("SELECT key, value FROM identity_state.meta").fetchall())
        except duckdb.Error as exc:
            self._close()
            return f"state unreadable ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        if meta.get("complete") != "true":
            return "the previous run did not complete"
        if meta.get("fingerprint") != fp:
            return "model, match config, identity code or library versions changed"
        return None

    def _hash_sql(self, con: duckdb.DuckDBPyConnection, table: str, keep: str,
                  row_col: str | None = None) -> tuple[str, list[str]]:
        """(SELECT of `keep` (a column list, may be empty), k = the record key and h = the content hash per row of a
        prepared input, its column signature)."""
        desc = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0] not in ("uid", row_col)]
        cols = ", ".join('"' + c.replace('"', '""') + '"' for c, _ in desc)
        return f"SELECT {keep}{', ' if keep else ''}{RECORD_KEY} AS k, hash({cols}) AS h FROM {table}", [f"{c} {t}" for c, t in desc]

    def _columns_changed(self, columns: list[str]) -> bool:
        self._columns = columns
        return json.loads(self._meta.get("columns") or "null") != columns

    def _diff_by_key(self, cur: str, row: str) -> dict | str | None:
        """The comparison with the state joined on the 64-bit record key (no string of the input copied or compared
        but those of the new and changed rows): TEMP __state_delta (what, k, h, row, source_system, source_id of the
        stored record) and, for the update, __state_new (the hashes to store) and `changes` (the rows to resolve).
        Returns the counts, a reason to rebuild in full, or None when two records share a key, in the input or
        between a new record and a stored one (the string-keyed comparison, exact, then decides)."""
        con = self.con
        assert con is not None
        sql, columns = self._hash_sql(con, f"{cur}_rows", row, row)
        if self._columns_changed(columns):
            return "input columns changed"
        # the input's hashes joined as they are computed (not stored first); the stored keys are unique (meta
        # unique_keys), so each input row matches at most one stored record
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE __state_delta AS
               SELECT CASE WHEN o.k IS NULL THEN 'new' WHEN c.k IS NULL THEN 'deleted' ELSE 'changed' END AS what,
                      coalesce(c.k, o.k) AS k, c.h, c.{row} AS rn, o.source_system, o.source_id
               FROM ({sql}) c FULL JOIN identity_state.record_hash o ON o.k = c.k
               WHERE o.k IS NULL OR c.k IS NULL OR o.h <> c.h"""
        )
        records, stored, new, new_keys, changed, deleted = con.execute(
            f"""SELECT (SELECT count(*) FROM {cur}_rows), (SELECT count(*) FROM identity_state.record_hash),
                      count(*) FILTER (WHERE what = 'new'), count(DISTINCT k) FILTER (WHERE what = 'new'),
                      count(*) FILTER (WHERE what = 'changed'), count(*) FILTER (WHERE what = 'deleted')
               FROM __state_delta"""
        ).fetchone()
        # two input rows with one key (a record given twice, or a collision): both new, or both matching the same
        # stored record, which then counts fewer matched stored records than matched input rows
        if new_keys != new or records - new != stored - deleted:
            return None
        return dict(records=records, new=new, changed=changed, deleted=deleted)

    def _changes_by_key(self, data: Any, row: str, passthrough: list[str] | None) -> str | None:
        """The new and changed rows, taken from the Arrow input by position (a second scan of it cost ~0.5 s at 1M)
        and registered as __state_changes_src; TEMP __state_new (k, h, source_system, source_id) to store. None
        (nothing kept) when a `changed` row is another record than the stored one it matched (a key collision)."""
        con = self.con
        assert con is not None
        rows = con.execute("SELECT rn FROM __state_delta WHERE what <> 'deleted' ORDER BY rn").fetchnumpy()["rn"]
        taken = _take(data, rows)
        # their identities as the input's preparation gives them (core's SELECT over just these rows)
        select, _, _ = _prepare_sql(con, taken, self.kind, "__state_taken", passthrough, row)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE __state_new AS
                        SELECT d.k, d.h, t.source_system, t.source_id, d.what, d.source_system <> t.source_system
                                   OR d.source_id <> t.source_id AS other
                        FROM __state_delta d JOIN ({select}) t ON t.{row} = d.rn""")
        _drop_raw(con, "__state_taken")
        n, other = con.execute("SELECT count(*), count(*) FILTER (WHERE other) FROM __state_new").fetchone()
        if other or n != len(rows):
            con.execute("DROP TABLE __state_new")
            return None
        con.register("__state_changes_src", taken.drop_columns([row]))
        return "__state_changes_src"

    def _diff_by_uid(self, cur: str, select: str, order: str, row: str | None) -> dict | str:
        """The comparison joined on the (source_system, source_id) strings, exact whatever the keys: after choosing
        the latest row of a record given twice (as core does, a sort of the input) when one is. Same tables as
        _diff_by_key, __state_delta with `uid` too (the input's, NULL for deleted records)."""
        con = self.con
        assert con is not None
        ids = f"uid, source_system, source_id{f', {row}' if row else ''}"
        sql, columns = self._hash_sql(con, f"{cur}_rows", ids, row)
        con.execute(f"CREATE OR REPLACE TEMP TABLE __state_hash AS {sql}")
        if con.execute("SELECT count(*) - count(DISTINCT uid) FROM __state_hash").fetchone()[0]:
            con.execute(f"""CREATE OR REPLACE TEMP TABLE {cur} AS {select}
                            QUALIFY row_number() OVER (PARTITION BY source_system, source_id ORDER BY {order}) = 1""")
            sql, columns = self._hash_sql(con, cur, ids, row)
            con.execute(f"CREATE OR REPLACE TEMP TABLE __state_hash AS {sql}")
            self._src = cur
        if self._columns_changed(columns):
            return "input columns changed"
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE __state_delta AS
                SELECT CASE WHEN o.h IS NULL THEN 'new' WHEN c.h IS NULL THEN 'deleted' ELSE 'changed' END AS what,
                       c.uid, coalesce(c.k, o.k) AS k, c.h, {f'c.{row}' if row else 'NULL'} AS rn,
                       coalesce(o.source_system, c.source_system) AS source_system,
                       coalesce(o.source_id, c.source_id) AS source_id
                FROM __state_hash c FULL JOIN identity_state.record_hash o
                     ON o.source_system = c.source_system AND o.source_id = c.source_id
                WHERE o.h IS NULL OR c.h IS NULL OR o.h <> c.h"""
        )
        records, new, changed, deleted, unique = con.execute(
            """SELECT (SELECT count(*) FROM __state_hash), count(*) FILTER (WHERE what = 'new'),
                      count(*) FILTER (WHERE what = 'changed'), count(*) FILTER (WHERE what = 'deleted'),
                      (SELECT count(*) = count(DISTINCT k) FROM __state_hash)
               FROM __state_delta"""
        ).fetchone()
        self._unique_keys = bool(unique)
        return dict(records=records, new=new, changed=changed, deleted=deleted)

    def _try_incremental(self, data: Any, model: dict, fp: str, passthrough: list[str] | None,
                         by_key: bool = True) -> StateRun | str:
        con, p = self.con, self.prefix
        assert con is not None
        cur = f"{p}_current"
        t0 = time.perf_counter()
        numbered, row = _numbered(data)
        select, order, kept = _prepare_sql(con, numbered, self.kind, cur, passthrough, row)
        # One pass over the input hashes every row (no copy of it): when no record comes twice, those rows are the
        # prepared records. The diff joins on a 64-bit key of each record when the input is numbered (its rows then
        # taken by position) and the stored keys are unique, else on the record's strings.
        con.execute(f"CREATE OR REPLACE TEMP VIEW {cur}_rows AS {select}")
        self._src, self._unique_keys = f"{cur}_rows", True
        by_key = by_key and row is not None and self._meta.get("unique_keys") == "true"
        counts = self._diff_by_key(cur, row) if by_key else None
        if counts is None:
            by_key = False
            counts = self._diff_by_uid(cur, select, order, row)
        if isinstance(counts, str):
            return counts
        self._diff = counts
        records, new, changed, deleted = counts["records"], counts["new"], counts["changed"], counts["deleted"]
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
            # the stored version, and its delta for a copy that missed the last update (its write failed)
            return StateRun(res, "unchanged", "no new or changed records", timings=timings,
                            version=self._meta.get("version"), delta_from=self._meta.get("delta_from") or None,
                            **counts)
        before = int(self._meta.get("replaced_since_full") or 0)
        if before + changed + deleted > self.max_replaced_share * max(records, 1):
            return (f"the updates since the last full resolution rewrote {before + changed + deleted} records' rows "
                    f"(> {self.max_replaced_share:.0%} of {records}): rebuilt to drop the dead rows from the state")
        t0 = time.perf_counter()
        if by_key:
            changes = self._changes_by_key(numbered, row, passthrough)
            if changes is None:  # a new record's key is a stored record's: compare the strings
                _drop_raw(con, cur)
                self._drop_temp()
                return self._try_incremental(data, model, fp, passthrough, by_key=False)
        elif row:  # the changed rows picked from the Arrow input by position
            rows = con.execute("SELECT rn FROM __state_delta WHERE what <> 'deleted' ORDER BY rn").fetchnumpy()["rn"]
            con.register("__state_changes_src", _take(numbered, rows).drop_columns([row]))
            changes = "__state_changes_src"
        else:
            con.execute(f"""CREATE OR REPLACE TEMP TABLE __state_changes AS SELECT * EXCLUDE (uid) FROM {self._src}
                            WHERE uid IN (SELECT uid FROM __state_delta WHERE what <> 'deleted')""")
            changes = "__state_changes"
        if not by_key:
            con.execute("""CREATE OR REPLACE TEMP TABLE __state_new AS
                           SELECT k, h, source_system, source_id FROM __state_delta WHERE what <> 'deleted'""")
        self.log(f"identity {self.kind}: incremental resolution of {new} new, {changed} changed and {deleted} deleted "
                 f"records (of {records})")
        # committed (in the write-ahead log, or the file if DuckDB checkpoints meanwhile) before the state is touched
        self._set_meta({"complete": "false"})
        # one checkpoint, at the end (_save): DuckDB would otherwise checkpoint in the middle of the update whenever
        # the log passes 16 MiB (~0.5 s at 1M records, paid by whichever statement crossed it, more than once)
        con.execute("SET checkpoint_threshold = '1GiB'")
        con.execute("""CREATE OR REPLACE TEMP TABLE __state_deleted AS
                       SELECT source_system, source_id FROM __state_delta WHERE what = 'deleted'""")
        _drop_raw(con, cur)
        timings["state_open"] = time.perf_counter() - t0
        out = update(res, changes, deleted="__state_deleted" if deleted else None, config=self.cfg,
                     model=model, passthrough=kept)
        self.log(f"identity {self.kind}: update computed, saving the state")
        t0 = time.perf_counter()
        # the records whose rows it rewrote: changed and deleted ones, and the members of the entities it re-clustered
        rewritten = (con.execute(f"SELECT count(*) FROM {out.delta['records']}").fetchone()[0] - new
                     if out.delta else 0)
        replaced = before + max(changed + deleted, rewritten)
        if changes == "__state_changes_src":
            con.unregister("__state_changes_src")
        # by key, every stored record with a key of the delta is changed or deleted (_diff_by_key)
        gone = ("""DELETE FROM identity_state.record_hash
                   WHERE k IN (SELECT k FROM __state_delta WHERE what <> 'new')""" if by_key else
                """DELETE FROM identity_state.record_hash o USING __state_delta d
                   WHERE d.what <> 'new' AND o.source_system = d.source_system AND o.source_id = d.source_id""")
        # the new version follows the stored one; its delta is kept for copies of the tables (the warehouse's)
        base = self._meta.get("version")
        delta_from, version = None, _new_version()
        delta = ("DROP TABLE IF EXISTS identity_state.delta_records", "DROP TABLE IF EXISTS identity_state.delta_entities")
        if base and out.delta:
            delta_from, version = base, _next_version(base)
            delta = (f"""CREATE OR REPLACE TABLE identity_state.delta_records AS
                         SELECT split_part(uid, chr(31), 1) AS source_system, substr(uid, strpos(uid, chr(31)) + 1)
                                AS source_id FROM {out.delta["records"]}""",
                     f"""CREATE OR REPLACE TABLE identity_state.delta_entities AS
                         SELECT DISTINCT entity_key FROM {out.delta["entities"]}""")
        self._save(fp, self._columns, self._unique_keys, (
            gone, "INSERT INTO identity_state.record_hash SELECT k, h, source_system, source_id FROM __state_new",
            *delta), {"version": version, "delta_from": delta_from or "", "replaced_since_full": str(replaced)})
        timings = {**timings, **out.timings, "state_save": time.perf_counter() - t0}
        what = ", ".join(f"{n} {w}" for n, w in ((new, "new"), (changed, "changed"), (deleted, "deleted")) if n)
        return StateRun(out, "incremental", f"{what} of {records} records", timings=timings, version=version,
                        delta_from=delta_from, **counts)

    def _full(self, data: Any, model: dict, fp: str, passthrough: list[str] | None, reason: str) -> StateRun:
        self._close()
        building = Path(f"{self.path}.building")
        for f in (building, Path(f"{building}.wal")):
            f.unlink(missing_ok=True)
        self.con = con = _connect(building)
        res = resolve(self.kind, data, con=con, config=self.cfg, prefix=self.prefix, model=model, passthrough=passthrough)
        # the blocking keys the next update looks its candidates up in (~1 s at 1M contacts, paid here once)
        t0 = time.perf_counter()
        splink_models.update_blocking_keys(con, model, res.blocking_keys, res.normalized)
        res.timings["blocking_keys"] = time.perf_counter() - t0
        con.execute("CREATE SCHEMA identity_state")
        con.execute("CREATE TABLE identity_state.meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        sql, columns = self._hash_sql(con, f"{self.prefix}_input", "source_system, source_id")
        con.execute(f"CREATE TABLE identity_state.record_hash AS SELECT k, h, source_system, source_id FROM ({sql})")
        records, keys = con.execute("SELECT count(*), count(DISTINCT k) FROM identity_state.record_hash").fetchone()
        version = _new_version()
        self._save(fp, columns, keys == records, meta={"version": version, "delta_from": "", "replaced_since_full": "0"})
        self._close()
        # the finished file replaces the old state in one rename (a stale WAL of the old file must not be replayed on it)
        Path(f"{self.path}.wal").unlink(missing_ok=True)
        os.replace(building, self.path)
        self.con = _connect(self.path)
        out = Resolution(self.con, self.kind, self.prefix, res.model_version, res.timings, res.counts)
        out.model = model  # type: ignore[attr-defined]
        diff = self._diff or dict(records=records, new=records, changed=0, deleted=0)
        return StateRun(out, "full", reason, **{**diff, "records": records}, timings=res.timings, version=version)

    # -- storage --------------------------------------------------------------------------------------------
    def _set_meta(self, values: dict[str, str]) -> None:
        assert self.con is not None
        self.con.execute("INSERT OR REPLACE INTO identity_state.meta VALUES " + ", ".join(["(?, ?)"] * len(values)),
                         [x for kv in values.items() for x in kv])

    def _save(self, fp: str, columns: list[str], unique_keys: bool, hashes: tuple[str, ...] = (),
              meta: dict[str, str] | None = None) -> None:
        """Store the new hashes and the delta (`hashes`: statements), drop the scratch and mark the state complete
        (with `meta`) in one transaction (one commit, one log write: `complete` is durable with the rest or not at
        all); then checkpoint."""
        con, p = self.con, self.prefix
        assert con is not None
        con.execute("BEGIN TRANSACTION")
        try:
            for q in hashes:
                con.execute(q)
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
                            "unique_keys": "true" if unique_keys else "false",
                            "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **(meta or {}),
                            "complete": "true"})
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
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


def _connect(path: str | Path) -> duckdb.DuckDBPyConnection:
    """The state file, its strings stored without FSST: an update reads a few thousand rows scattered over every
    vector of the wide tables, and FSST decodes whole vectors (a read of 10k rows, 15 columns of the 1M-row
    normalised table: 0.26 -> 0.10 CPU s; that table 127 -> 338 MiB, dictionary compression still applies)."""
    con = duckdb.connect(str(path))
    con.execute("SET disabled_compression_methods = 'fsst'")
    # No row-group merging at checkpoints ("vacuum"): an update appends its rows in small row groups and marks the
    # rows it replaces as deleted, and DuckDB's checkpoint then merges runs of adjacent groups it can pack into
    # fewer, rewriting up to 3 x 122,880 rows of every column (0.4 s of a 1% update's 0.7 s checkpoint at 1M, and
    # 2-4 s on a state that had 10 updates: 12 chained updates averaged 5.5 s with it, 4.7 s without). The dead
    # rows it would not reclaim anyway (a merge needs a third of three groups gone) are dropped by a full rebuild
    # (MAX_REPLACED_SHARE).
    con.execute("SET max_vacuum_tasks = 0")
    con.execute("SET enable_progress_bar = false")  # it would print to stdout: the run's log, not a terminal
    return con


def _new_version() -> str:
    """A new state's first version: `<random id>.0` (a rebuilt state never reuses an id, so a copy of an older
    state's tables is never mistaken for this one's)."""
    import uuid

    return f"{uuid.uuid4().hex[:16]}.0"


def _next_version(version: str) -> str:
    """The version after `version`: `<state id>.<update number>.<random>`. The random part keeps two copies of one
    state file (a restored backup, a worker image) from naming their different updates alike: a warehouse copy
    holding one's update is never taken for the other's."""
    import uuid

    state_id, n = (version.split(".") + [""])[:2]
    return f"{state_id}.{int(n) + 1}.{uuid.uuid4().hex[:8]}" if state_id and n.isdigit() else _new_version()


def _take(data: Any, rows: Any) -> Any:
    """The rows at the sorted positions `rows` of an Arrow table, taken batch by batch (Table.take on a table of
    several chunks concatenates them first: ~35 ms for 10k rows of 1M, this ~12 ms)."""
    import numpy as np
    import pyarrow as pa

    rows, out, start = np.asarray(rows, dtype=np.int64), [], 0
    for batch in data.to_batches():
        lo, hi = np.searchsorted(rows, [start, start + batch.num_rows])
        if hi > lo:
            out.append(batch.take(pa.array(rows[lo:hi] - start)))
        start += batch.num_rows
    return pa.Table.from_batches(out, schema=data.schema)


def _numbered(data: Any) -> tuple[Any, str | None]:
    """A pandas or Arrow input as an Arrow table with a row-number column (its name returned), so that the changed
    rows can be taken by position; other inputs (table names, relations) as they are, with None."""
    try:
        import numpy as np
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
    # from numpy: ~1 ms at 1M rows (from a Python range ~0.1 s)
    return data.append_column(_ROW, pa.array(np.arange(data.num_rows, dtype=np.int64))), _ROW


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
