"""The resolution pipeline shared by contacts and companies: normalise, link, cluster, golden.

Everything runs as SQL in one DuckDB connection (the warehouse's, or a private in-memory one);
Python only handles library-backed normalisation of unusual values, the connected-components
step on integer arrays, and Splink's orchestration."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import duckdb

from .. import normalize as nz
from . import deterministic, splink_models
from .cluster import cluster_table, sql_uid
from .config import MatchConfig
from .golden import golden_table

CONTRACT = {
    "contacts": ["source_system", "source_id", "first_name", "last_name", "email", "phone", "mobile_phone",
                 "company_name", "company_source_id", "city", "postcode", "job_title", "updated_at",
                 "company_entity_key"],
    "companies": ["source_system", "source_id", "name", "siren", "siret", "vat_number", "domain", "phone",
                  "address", "postcode", "city", "updated_at", "metadata_crm_company_id", "email"],
}
KEY_PREFIX = {"contacts": "P-", "companies": "C-"}
# Cannot-link evidence (uid, key, value): one company hands one address per person, so two
# personal addresses of one company domain are two people; one company has one SIREN.
CONFLICTS = {
    "contacts": """SELECT uid, n_email_domain AS k, n_email_canon AS v FROM {norm}
                   WHERE n_email_canon IS NOT NULL AND NOT n_email_is_role AND NOT n_email_is_free""",
    "companies": "SELECT uid, 'siren' AS k, n_siren AS v FROM {norm} WHERE n_siren IS NOT NULL",
}


def golden_field_names(kind: str) -> list[str]:
    """The golden record's fields of `kind` (besides passthrough columns), as survivorship config names them."""
    return list(_golden_fields(kind))


#: Golden fields whose value is chosen case and accents aside, then shown in its best spelling (golden_table).
SPELLED_FIELDS = {"contacts": ("first_name", "last_name", "company_name", "job_title", "city"),
                  "companies": ("name", "address", "city")}


def _golden_fields(kind: str) -> dict[str, str]:
    t = nz.sql_clean_text
    if kind == "contacts":
        return {
            "first_name": t("first_name"), "last_name": t("last_name"), "email": "n_email",
            "phone": "n_phone", "mobile_phone": "n_mobile", "company_name": t("company_name"),
            "company_source_id": t("company_source_id"), "job_title": t("job_title"), "city": t("city"),
            "postcode": "n_postcode",
        }
    return {
        "name": t("name"), "siren": "n_siren", "siret": "n_siret", "vat_number": "n_vat", "domain": "n_domain",
        "phone": "n_phone", "email": "n_email", "address": t("address"), "postcode": "n_postcode", "city": t("city"),
    }


@dataclass
class Resolution:
    """Handles on the tables a run leaves in `con` (all prefixed with `prefix`)."""

    con: duckdb.DuckDBPyConnection
    kind: str
    prefix: str
    model_version: str
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    #: After an update: the TEMP tables naming what it may have changed, {"records": (uid), "entities": (entity_key)}:
    #: the crosswalk rows of those records and the golden rows of those entities were replaced (or removed).
    delta: dict[str, str] | None = None

    @property
    def normalized(self) -> str:
        return f"{self.prefix}_normalized"

    @property
    def edges(self) -> str:
        return f"{self.prefix}_edges"

    @property
    def blocking_keys(self) -> str:
        return f"{self.prefix}_blocking_keys"

    @property
    def crosswalk(self) -> str:
        return f"{self.prefix}_crosswalk"

    @property
    def golden(self) -> str:
        return f"{self.prefix}_golden"

    def crosswalk_df(self):
        return self.con.execute(f"SELECT * FROM {self.crosswalk} ORDER BY source_system, source_id").df()

    def golden_df(self):
        return self.con.execute(f"SELECT * FROM {self.golden} ORDER BY entity_key").df()

    def table_arrow(self, table: str):
        """A result table as an Arrow table, unordered: what the pipeline writes to the warehouse (at 1M contacts
        the golden records took ~9 CPU s through pandas, its list column as Python objects; ~0.5 s as Arrow)."""
        out = self.con.execute(f"SELECT * FROM {table}").arrow()
        return out if hasattr(out, "num_rows") else out.read_all()


def _as_table(con: duckdb.DuckDBPyConnection, data: Any, name: str) -> None:
    """A view `name` over the input: table name, DuckDB relation, pandas or Arrow frame."""
    if isinstance(data, str):
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {data}")
    elif isinstance(data, duckdb.DuckDBPyRelation):
        try:
            data.create_view(name, replace=True)
            con.execute(f"SELECT 1 FROM {name} LIMIT 0")
        except duckdb.Error:  # relation from another connection: copy through Arrow
            arrow = data.arrow()
            con.register(f"{name}_src", arrow if hasattr(arrow, "num_rows") else arrow.read_all())
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {name}_src")
    else:
        try:  # pandas -> Arrow is zero-copy for Arrow-backed strings; DuckDB scans Arrow ~3x faster than pandas objects
            import pandas as pd
            import pyarrow as pa

            if isinstance(data, pd.DataFrame):
                data = pa.Table.from_pandas(data, preserve_index=False)
        except Exception:  # noqa: BLE001 - odd dtypes: let DuckDB scan the frame itself
            pass
        con.register(f"{name}_src", data)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {name}_src")


def _prepare_sql(con, data, kind: str, name: str, passthrough: list[str] | None = None,
                 row_col: str | None = None) -> tuple[str, str, list[str]]:
    """(select, order, passthrough columns): a view `{name}_raw` over the input and the SELECT of its rows in
    the prepared shape (contract + passthrough columns, `uid`), before the one-row-per-record choice, which
    keeps the first row per (source_system, source_id) in `order`. `row_col`: an input column carried through
    as the last column (a row number), never a passthrough one."""
    _as_table(con, data, f"{name}_raw")
    cols = [r[0] for r in con.execute(f"DESCRIBE {name}_raw").fetchall()]
    for must in ("source_system", "source_id"):
        if must not in cols:
            raise ValueError(f"{kind} input needs a `{must}` column (got {cols})")
    extra_cols = [c for c in cols if c not in CONTRACT[kind] and not c.startswith("n_") and c not in ("uid", row_col)]
    keep_extra = extra_cols if passthrough is None else [c for c in extra_cols if c in passthrough]
    keep = [c for c in cols if c in CONTRACT[kind] or c in keep_extra]
    upd = "updated_at" if "updated_at" in cols else "NULL"
    q = lambda c: '"' + c.replace('"', '""') + '"'  # noqa: E731
    # a contract column the input lacks (an export without job titles, phones...) is read as empty
    extra = "" if "updated_at" in cols else ", CAST(NULL AS TIMESTAMP) AS updated_at"
    extra += "".join(f", CAST(NULL AS VARCHAR) AS {q(c)}" for c in CONTRACT[kind] if c not in cols and c != "updated_at")
    select = f"""SELECT * REPLACE (CAST(source_system AS VARCHAR) AS source_system, CAST(source_id AS VARCHAR) AS source_id){extra},
                   {sql_uid()} AS uid
            FROM (SELECT {', '.join(q(c) for c in keep + ([row_col] if row_col else []))} FROM {name}_raw) WHERE source_system IS NOT NULL AND source_id IS NOT NULL"""
    return select, f"{upd} DESC NULLS LAST", keep_extra


def _drop_raw(con, name: str) -> None:
    try:
        con.unregister(f"{name}_raw_src")
    except Exception:  # noqa: BLE001 - nothing registered (table name or relation input)
        pass


def _prepare(con, data, kind: str, name: str, passthrough: list[str] | None = None) -> list[str]:
    """Input table `name` with `uid`, one row per (source_system, source_id) (the latest), holding
    the contract columns and the passthrough ones only; returns the names of the passthrough
    columns. Materialised once: normalisation reads it several times."""
    select, order, keep_extra = _prepare_sql(con, data, kind, name, passthrough)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {name} AS {select}
            QUALIFY row_number() OVER (PARTITION BY source_system, source_id ORDER BY {order}) = 1"""
    )
    _drop_raw(con, name)
    return keep_extra


class _Timer:
    def __init__(self, timings: dict[str, float]):
        self.t = timings

    def __call__(self, step: str, fn: Callable, *a, **k):
        t0 = time.perf_counter()
        out = fn(*a, **k)
        self.t[step] = self.t.get(step, 0.0) + time.perf_counter() - t0
        return out


def _normalise(con, kind: str, view: str, out: str, region: str, temp: bool = False) -> None:
    if kind == "contacts":
        nz.normalize_contacts_sql(con, view, out, region, temp)
    else:
        nz.normalize_companies_sql(con, view, out, region, temp)


def _contact_deterministic(con, res: Resolution, cfg: MatchConfig, new_uids: str | None) -> tuple[str | None, str | None]:
    """Deterministic contact edges, kept per rule with the group that decided them
    (`{prefix}_det`) next to the set of rare names (`{prefix}_rare`) and the name counts, all
    regular tables (the identity state keeps them as they are), so that an incremental run
    recomputes only the mailbox and name groups new, changed or deleted records belong to (plus
    the names whose rarity or rarity tier the new counts flipped) and the phone pairs touching them.

    Returns (edges, pairs): a full run gives the edge table (uid_l, uid_r, rule, match_probability);
    an incremental one the table of (uid_l, uid_r) pairs whose rule rows it removed or added (their
    edges are re-read from `{prefix}_det` by the caller)."""
    norm, det, rare = res.normalized, f"{res.prefix}_det", f"{res.prefix}_rare"
    old_keys = f"{res.prefix}_old_keys"
    counts = (f"{res.prefix}_name_counts", f"{res.prefix}_part_counts")
    if new_uids is None or not all(_exists(con, t) for t in (det, rare, old_keys, *counts)):
        deterministic.contact_name_counts(con, norm, res.prefix, temp=False)
        deterministic.contact_rare_from_counts(con, res.prefix, rare, temp=False)
        deterministic.contact_edges_keyed(con, norm, cfg.max_shared_email_group, rare, det, temp=False)
        return _det_contact_edges(con, det), None
    fn = deterministic.FULL_NAME
    # name counts moved by the delta: +1 per new record, -1 per replaced or deleted version
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {res.prefix}_name_delta AS
            SELECT full_name, a, b, sum(d)::BIGINT AS d FROM (
                SELECT n_full_name AS full_name, least(n_first_name, n_last_name) AS a,
                       greatest(n_first_name, n_last_name) AS b, 1 AS d
                FROM {res.prefix}_new_rows WHERE n_full_name IS NOT NULL
                UNION ALL SELECT f, a, b, -1 FROM {old_keys} WHERE f IS NOT NULL
            ) GROUP BY ALL HAVING sum(d) <> 0"""
    )
    for tab, keys, delta in (
        (counts[0], ("full_name", "a", "b"), f"SELECT full_name, a, b, d FROM {res.prefix}_name_delta"),
        (counts[1], ("part",), f"""SELECT part, sum(d)::BIGINT AS d FROM (SELECT a AS part, d FROM {res.prefix}_name_delta
                                   UNION ALL SELECT b, d FROM {res.prefix}_name_delta) GROUP BY part HAVING sum(d) <> 0"""),
    ):
        # one MERGE (one join with the 700k-row count table at 1M: 15-42 ms; an UPDATE, an INSERT of the names not
        # counted yet and a DELETE of the zeros took 55-80 ms); a row whose count falls to zero is deleted, a name
        # not counted yet is inserted only with a positive count (the delta tables hold one row per key)
        con.execute(f"CREATE OR REPLACE TEMP TABLE __count_delta AS {delta}")
        on = " AND ".join(f"{tab}.{k} = d.{k}" for k in keys)
        con.execute(
            f"""MERGE INTO {tab} USING __count_delta d ON {on}
                WHEN MATCHED AND {tab}.n + d.d <= 0 THEN DELETE
                WHEN MATCHED THEN UPDATE SET n = {tab}.n + d.d
                WHEN NOT MATCHED AND d.d > 0 THEN INSERT VALUES ({', '.join(f'd.{k}' for k in keys)}, d.d)"""
        )
    deterministic.contact_rare_from_counts(con, res.prefix, f"{rare}_next")
    # the names whose rarity or rarity tier the new counts flipped: their rows differ between the two sets (compared
    # as bags, two name splits can give one full name twice, so that the set is then brought up to date in place);
    # one aggregation of both sets (two EXCEPT ALLs of the 160k-row sets at 1M cost 0.11-0.15 s, this 21-27 ms)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {res.prefix}_rare_moved AS
            SELECT DISTINCT full_name FROM (
                SELECT full_name, in_place, 1 AS d FROM {rare} UNION ALL SELECT full_name, in_place, -1 FROM {rare}_next
            ) GROUP BY full_name, in_place HAVING sum(d) <> 0"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {res.prefix}_aff_email AS
            SELECT n_email_canon AS k FROM {res.prefix}_new_rows WHERE n_email_canon IS NOT NULL
            UNION SELECT e FROM {old_keys} WHERE e IS NOT NULL"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {res.prefix}_aff_name AS
            SELECT {fn} AS k FROM {res.prefix}_new_rows WHERE {fn} IS NOT NULL
            UNION SELECT f FROM {old_keys} WHERE f IS NOT NULL
            UNION SELECT full_name FROM {res.prefix}_rare_moved"""
    )
    gone = f"""(rule = 'same_email' AND k IN (SELECT k FROM {res.prefix}_aff_email))
               OR (rule IN ('rare_name', 'rare_name_place') AND k IN (SELECT k FROM {res.prefix}_aff_name))
               OR uid_l IN (SELECT uid FROM {new_uids}) OR uid_r IN (SELECT uid FROM {new_uids})"""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {res.prefix}_det_pairs AS SELECT uid_l, uid_r FROM {det} WHERE {gone}")
    con.execute(f"DELETE FROM {det} WHERE {gone}")
    # The records these groups and phone pairs can hold (names: the rare ones only, the rule ignores the others),
    # read from the table once (each rule scanned it before); the rules over them give the same rows as over the
    # whole table.
    scope_cols = ", ".join(dict.fromkeys(["uid", fn, *deterministic.KEYED_COLUMNS]))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {res.prefix}_det_scope AS
            WITH ph AS (SELECT unnest([n_phone, n_mobile]) AS ph FROM {res.prefix}_new_rows)
            SELECT {scope_cols} FROM {norm}
            WHERE n_email_canon IN (SELECT k FROM {res.prefix}_aff_email)
               OR {fn} IN (SELECT k FROM {res.prefix}_aff_name WHERE k IN (SELECT full_name FROM {rare}_next))
               OR n_phone IN (SELECT ph FROM ph) OR n_mobile IN (SELECT ph FROM ph)"""
    )
    deterministic.contact_edges_keyed(
        con, f"{res.prefix}_det_scope", cfg.max_shared_email_group, f"{rare}_next", f"{det}_delta",
        email_scope=f"n_email_canon IN (SELECT k FROM {res.prefix}_aff_email)",
        name_scope=f"full_name IN (SELECT k FROM {res.prefix}_aff_name)", new_uids=new_uids)
    con.execute(f"INSERT INTO {det} SELECT * FROM {det}_delta")
    con.execute(f"INSERT INTO {res.prefix}_det_pairs SELECT uid_l, uid_r FROM {det}_delta")
    con.execute(f"DROP TABLE {det}_delta")
    # the rare set brought to the next one in place, only the moved names' rows rewritten: recreating all of it
    # (52k rows at 1M) cost its log write and ~0.1 s of the checkpoint
    con.execute(f"DELETE FROM {rare} WHERE full_name IN (SELECT full_name FROM {res.prefix}_rare_moved)")
    con.execute(f"INSERT INTO {rare} SELECT * FROM {rare}_next WHERE full_name IN (SELECT full_name FROM {res.prefix}_rare_moved)")
    con.execute(f"DROP TABLE {rare}_next")
    return None, f"{res.prefix}_det_pairs"


def _det_contact_edges(con, det: str, pairs: str | None = None) -> str:
    """One edge per pair of the kept contact rule rows (of the pairs in `pairs` only, if given)."""
    semi = f"SEMI JOIN {pairs} p ON p.uid_l = d.uid_l AND p.uid_r = d.uid_r" if pairs else ""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE __det_contacts AS
            SELECT d.uid_l, d.uid_r, min(d.rule) AS rule, 1.0::DOUBLE AS match_probability FROM {det} d {semi}
            GROUP BY d.uid_l, d.uid_r"""
    )
    return "__det_contacts"


def _update_edges(con, res: Resolution, det: str | None, det_pairs: str | None, spl: str, new_uids: str) -> str:
    """Apply an incremental run's edge changes to `{prefix}_edges` in place and return the table of the edges that
    appeared, disappeared or changed (rule or score): Splink rows touching a new, changed or deleted record are
    replaced by this run's scores; deterministic rows are replaced for the pairs whose rule rows changed
    (`det_pairs`, or, when the rules were recomputed whole into `det`, the pairs whose edge differs)."""
    p, edges = res.prefix, res.edges
    if det_pairs is None:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {p}_det_pairs AS SELECT DISTINCT uid_l, uid_r FROM (
                    (SELECT uid_l, uid_r, rule, match_probability FROM {edges} WHERE rule <> 'splink' EXCEPT SELECT * FROM {det})
                    UNION ALL (SELECT * FROM {det} EXCEPT SELECT uid_l, uid_r, rule, match_probability FROM {edges} WHERE rule <> 'splink'))"""
        )
        det_pairs = f"{p}_det_pairs"
        det_new = f"SELECT d.* FROM {det} d SEMI JOIN {det_pairs} x ON x.uid_l = d.uid_l AND x.uid_r = d.uid_r"
    else:
        det_new = f"SELECT * FROM {_det_contact_edges(con, f'{p}_det', det_pairs)}"
    # rowids captured in edges_old are stable only until a checkpoint compacts the table: capture, delete and insert
    # in one transaction
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {p}_edges_old AS
                SELECT e.rowid AS rid, e.* FROM {edges} e
                WHERE e.rule = 'splink' AND (e.uid_l IN (SELECT uid FROM {new_uids}) OR e.uid_r IN (SELECT uid FROM {new_uids}))
                UNION ALL
                SELECT e.rowid, e.* FROM {edges} e SEMI JOIN {det_pairs} x ON x.uid_l = e.uid_l AND x.uid_r = e.uid_r
                WHERE e.rule <> 'splink'"""
        )
        con.execute(f"CREATE OR REPLACE TEMP TABLE {p}_edges_new AS SELECT * FROM {spl} UNION ALL {det_new}")
        con.execute(f"DELETE FROM {edges} WHERE rowid IN (SELECT rid FROM {p}_edges_old)")
        con.execute(f"INSERT INTO {edges} SELECT * FROM {p}_edges_new")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {p}_changed_edges AS
            SELECT uid_l, uid_r FROM (
                (SELECT * FROM {p}_edges_new EXCEPT SELECT * EXCLUDE (rid) FROM {p}_edges_old)
                UNION ALL (SELECT * EXCLUDE (rid) FROM {p}_edges_old EXCEPT SELECT * FROM {p}_edges_new))"""
    )
    return f"{p}_changed_edges"


def _link_and_cluster(con, kind: str, res: Resolution, cfg: MatchConfig, model: dict, timer: _Timer,
                      new_uids: str | None, passthrough: list[str], gone: str | None = None) -> None:
    """Link, cluster, crosswalk, golden. `new_uids`: an incremental run's touched records (new, changed and
    deleted ones; the new rows are in `{prefix}_new_rows`); `gone`: the deleted ones among them."""
    norm = res.normalized
    clusters = f"{res.prefix}_clusters"
    # (a clusters table written before components were kept means one full re-clustering)
    incremental = new_uids is not None and all(_exists(con, t) for t in (res.golden, res.crosswalk, clusters)) \
        and "component" in [r[0] for r in con.execute(f"DESCRIBE {clusters}").fetchall()]
    det_pairs = None
    if kind == "contacts":
        det, det_pairs = timer("deterministic", _contact_deterministic, con, res, cfg, new_uids if incremental else None)
    else:
        det = timer("deterministic", deterministic.company_edges, con, norm)
    keys = None
    if new_uids is not None:  # the candidates of an update are looked up in the stored blocking keys
        keys = timer("blocking_keys", splink_models.update_blocking_keys, con, model, res.blocking_keys, norm,
                     new_uids, f"{res.prefix}_new_rows")
    spl = timer("splink", splink_models.predict_edges, con, norm, kind, model, cfg.match_threshold,
                f"{res.prefix}_splink_new", new_uids, f"{res.prefix}_new_rows" if new_uids else None, keys)

    def merge_edges():
        keep_old = ""
        if new_uids is not None:
            # Splink pairs among unchanged records are still valid; pairs touching changed ones were re-scored.
            keep_old = f"""UNION ALL SELECT uid_l, uid_r, rule, match_probability FROM {res.edges}
                WHERE rule = 'splink' AND match_probability >= {cfg.match_threshold}
                  AND uid_l NOT IN (SELECT uid FROM {new_uids}) AND uid_r NOT IN (SELECT uid FROM {new_uids})
                  AND uid_l IN (SELECT uid FROM {norm}) AND uid_r IN (SELECT uid FROM {norm})"""
        con.execute(
            f"""CREATE OR REPLACE TABLE {res.edges}_next AS
                SELECT * FROM {det} UNION ALL SELECT * FROM {spl} {keep_old}"""
        )
        con.execute(f"DROP TABLE IF EXISTS {res.edges}")
        con.execute(f"ALTER TABLE {res.edges}_next RENAME TO {res.edges.split('.')[-1]}")

    if incremental:
        changed_edges = timer("edges", _update_edges, con, res, det, det_pairs, spl, new_uids)
    else:
        timer("edges", merge_edges)
    conflicts = CONFLICTS[kind].format(norm=norm)
    fields = _golden_fields(kind)
    fields.update({c: f'"{c}"' for c in passthrough})
    mv = res.model_version.replace("'", "''")

    if not incremental:
        timer("cluster", cluster_table, con, norm, res.edges, clusters, KEY_PREFIX[kind], conflicts)

        def crosswalk():
            con.execute(
                f"""CREATE OR REPLACE TABLE {res.crosswalk} AS
                    SELECT n.source_system, n.source_id, c.entity_key, c.rule, c.match_probability,
                           '{mv}' AS model_version
                    FROM {norm} n JOIN {clusters} c USING (uid)"""
            )

        timer("crosswalk", crosswalk)
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {res.prefix}_golden_in AS SELECT n.*, c.entity_key, c.rule AS __cluster_rule FROM {norm} n JOIN {clusters} c USING (uid)"
        )
        timer("golden", golden_table, con, f"{res.prefix}_golden_in", fields, cfg.survivorship, res.golden,
              alone="__cluster_rule = 'singleton'", spelled=SPELLED_FIELDS[kind])
    else:
        sub, sub_out, touched = f"{res.prefix}_sub", f"{res.prefix}_sub_clusters", f"{res.prefix}_touched"
        sub_nodes, sub_rows = f"{res.prefix}_sub_nodes", f"{res.prefix}_sub_rows"

        def sub_columns() -> list[str]:
            # what the conflicts, the crosswalk and the golden fields read (the table is wide)
            conflict_sql = CONFLICTS[kind]
            return [c for c in (r[0] for r in con.execute(f"DESCRIBE {norm}").fetchall())
                    if c in ("uid", "source_system", "source_id", "updated_at") or c in conflict_sql
                    or any(c in expr for expr in fields.values())]

        def cluster_incremental():
            # Only the connected components a changed edge or record touches are re-clustered: an
            # unchanged component has the same edges, hence the same clusters and keys as a full rebuild.
            # A deleted record's component is re-clustered without it (it may have been a bridge).
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE {sub} AS
                    WITH t AS (
                        SELECT uid FROM {new_uids}
                        UNION SELECT uid_l FROM {changed_edges} UNION SELECT uid_r FROM {changed_edges}
                    ), comp AS (SELECT DISTINCT component FROM {clusters} WHERE uid IN (SELECT uid FROM t))
                    SELECT uid FROM {clusters} WHERE component IN (SELECT component FROM comp)
                    UNION SELECT uid FROM t"""
            )
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE {sub_nodes} AS SELECT uid FROM {sub}
                    {f"WHERE uid NOT IN (SELECT uid FROM {gone})" if gone else ""}"""
            )
            # the re-clustered records' rows, read from the wide normalised table once for the cannot-link
            # evidence, the crosswalk and the golden records (three scans of it cost ~0.35 s at 1M records)
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE {sub_rows} AS
                    SELECT {', '.join(f'n."{c}"' for c in sub_columns())} FROM {norm} n
                    WHERE uid IN (SELECT uid FROM {sub})"""
            )
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE {res.prefix}_sub_edges AS
                    SELECT * FROM {res.edges} WHERE uid_l IN (SELECT uid FROM {sub})"""
            )
            cluster_table(con, sub_nodes, f"{res.prefix}_sub_edges", sub_out, KEY_PREFIX[kind],
                          CONFLICTS[kind].format(norm=sub_rows), temp=True)
            # entities that lost or gained a record: the golden rows to recompute
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE {touched} AS
                    SELECT entity_key FROM {clusters} WHERE uid IN (SELECT uid FROM {sub})
                    UNION SELECT entity_key FROM {sub_out}"""
            )
            con.execute(f"DELETE FROM {clusters} WHERE uid IN (SELECT uid FROM {sub})")
            con.execute(f"INSERT INTO {clusters} BY NAME SELECT * FROM {sub_out}")

        timer("cluster", cluster_incremental)

        def crosswalk_incremental():
            # rows keyed by (source_system, source_id): split the uids rather than rebuild every row's uid
            con.execute(
                f"""DELETE FROM {res.crosswalk} USING (
                        SELECT split_part(uid, chr(31), 1) AS s, substr(uid, strpos(uid, chr(31)) + 1) AS i FROM {sub}) k
                    WHERE {res.crosswalk}.source_system = k.s AND {res.crosswalk}.source_id = k.i"""
            )
            con.execute(
                f"""INSERT INTO {res.crosswalk} BY NAME
                    SELECT n.source_system, n.source_id, c.entity_key, c.rule, c.match_probability,
                           '{mv}' AS model_version
                    FROM {sub_out} c JOIN {sub_rows} n USING (uid)"""
            )

        timer("crosswalk", crosswalk_incremental)

        def golden_incremental():
            # Only entities that gained, lost or changed a record are recomputed; the others keep their row.
            # Their records are exactly the re-clustered ones: an entity lies inside one component.
            # materialised: survivorship reads these records twice (ranked and alone), the view joined the table twice
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE {res.prefix}_golden_records AS
                    SELECT n.*, c.entity_key, c.rule AS __cluster_rule FROM {sub_out} c JOIN {sub_rows} n USING (uid)"""
            )
            golden_table(con, f"{res.prefix}_golden_records", fields, cfg.survivorship, f"{res.golden}_delta",
                         alone="__cluster_rule = 'singleton'", temp=True, spelled=SPELLED_FIELDS[kind])
            con.execute(f"DELETE FROM {res.golden} WHERE entity_key IN (SELECT entity_key FROM {touched})")
            con.execute(f"INSERT INTO {res.golden} BY NAME SELECT * FROM {res.golden}_delta")
            con.execute(f"DROP TABLE {res.golden}_delta")

        timer("golden", golden_incremental)
        res.delta = {"records": sub, "entities": touched}
    res.counts = dict(zip(
        ["records", "entities", "edges"],
        con.execute(f"SELECT (SELECT count(*) FROM {res.crosswalk}), (SELECT count(*) FROM {res.golden}), (SELECT count(*) FROM {res.edges})").fetchone(),
    ))


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    try:
        con.execute(f"SELECT 1 FROM {table} LIMIT 0")
        return True
    except duckdb.Error:
        return False


def resolve(
    kind: str,
    data: Any,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    config: MatchConfig | None = None,
    prefix: str | None = None,
    model: dict | None = None,
    retrain: bool = False,
    passthrough: list[str] | None = None,
) -> Resolution:
    from .config import CompaniesConfig, ContactsConfig

    cfg = config or (ContactsConfig() if kind == "contacts" else CompaniesConfig())
    if con is None:
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")  # stdout is the caller's, not DuckDB's
    prefix = prefix or f"identity_{kind}"
    timings: dict[str, float] = {}
    timer = _Timer(timings)
    passthrough = timer("prepare", _prepare, con, data, kind, f"{prefix}_input", passthrough)
    res = Resolution(con, kind, prefix, "", timings)
    timer("normalise", _normalise, con, kind, f"{prefix}_input", res.normalized, cfg.region)
    if retrain:
        model = timer("train", splink_models.train, con, res.normalized, kind)
    elif model is None:
        model = splink_models.load_model(kind, cfg.model_path)
    res.model_version = cfg.model_version or splink_models.model_version(model)
    con.execute(f"CREATE TABLE IF NOT EXISTS {res.edges} (uid_l VARCHAR, uid_r VARCHAR, rule VARCHAR, match_probability DOUBLE)")
    con.execute(f"DROP TABLE IF EXISTS {res.blocking_keys}")  # an earlier run's, stale: the next update rebuilds them
    _link_and_cluster(con, kind, res, cfg, model, timer, None, passthrough)
    res.model = model  # type: ignore[attr-defined]
    return res


def update(
    previous: Resolution,
    changes: Any,
    *,
    deleted: Any = None,
    config: MatchConfig | None = None,
    model: dict | None = None,
    passthrough: list[str] | None = None,
) -> Resolution:
    """Incremental run: `changes` holds new and changed records (same contract), `deleted` (optional: a table
    name, relation or frame with source_system and source_id) the records gone from the input. The changes are
    normalised alone, then compared with existing records only (Splink's predict_between / predict_within);
    unchanged pairs keep their stored scores. The components of deleted records are re-clustered without them
    (a deleted record may have been the bridge between two groups), and the rule groups they were in
    recomputed; the result is the full rebuild's."""
    from .config import CompaniesConfig, ContactsConfig

    kind, con, prefix = previous.kind, previous.con, previous.prefix
    cfg = config or (ContactsConfig() if kind == "contacts" else CompaniesConfig())
    model = model or getattr(previous, "model", None) or splink_models.load_model(kind, cfg.model_path)
    timings: dict[str, float] = {}
    timer = _Timer(timings)
    passthrough = timer("prepare", _prepare, con, changes, kind, f"{prefix}_changes", passthrough)
    res = Resolution(con, kind, prefix, cfg.model_version or splink_models.model_version(model), timings)
    # TEMP, as the update's other scratch: a table of the state file would be written to its log (~3.4 MiB at 1M, 1%)
    timer("normalise", _normalise, con, kind, f"{prefix}_changes", f"{prefix}_new_rows", cfg.region, True)
    gone = None
    if deleted is not None:
        _as_table(con, deleted, f"{prefix}_deleted_in")
        gone = f"{prefix}_gone"

    def merge():
        con.execute(f"CREATE OR REPLACE TEMP TABLE {prefix}_new_uids AS SELECT uid FROM {prefix}_new_rows")
        if gone:  # deleted and not back in this input
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE {gone} AS
                    SELECT {sql_uid()} AS uid FROM {prefix}_deleted_in
                    EXCEPT SELECT uid FROM {prefix}_new_uids"""
            )
            con.execute(f"INSERT INTO {prefix}_new_uids SELECT uid FROM {gone}")
        if kind == "contacts":  # the groups the replaced and deleted versions belonged to
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE {prefix}_old_keys AS
                    SELECT n_email_canon AS e, n_full_name AS f, least(n_first_name, n_last_name) AS a,
                           greatest(n_first_name, n_last_name) AS b FROM {res.normalized}
                    WHERE uid IN (SELECT uid FROM {prefix}_new_uids)"""
            )
        con.execute(f"DELETE FROM {res.normalized} WHERE uid IN (SELECT uid FROM {prefix}_new_uids)")
        con.execute(f"INSERT INTO {res.normalized} BY NAME SELECT * FROM {prefix}_new_rows")

    timer("merge", merge)
    _link_and_cluster(con, kind, res, cfg, model, timer, f"{prefix}_new_uids", passthrough, gone)
    res.model = model  # type: ignore[attr-defined]
    return res
