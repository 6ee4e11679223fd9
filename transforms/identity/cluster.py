"""Connected components over match edges, and stable entity keys.

Node ids are dense ranks of `uid` (source_system || 0x1f || source_id) in sort order, so the
smallest node id of a component is its smallest (source_system, source_id): the entity key is a
hash of that record's identity, stable across runs and across full vs incremental builds."""
from __future__ import annotations

import duckdb
import numpy as np

UID_SEP = "\x1f"


def sql_uid(prefix: str = "") -> str:
    return f"({prefix}source_system || chr(31) || CAST({prefix}source_id AS VARCHAR))"


def connected_components(n_nodes: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Component label (= smallest node id) per node; min-label propagation with pointer jumping."""
    labels = np.arange(n_nodes, dtype=np.int64)
    if len(left) == 0:
        return labels
    left = left.astype(np.int64)
    right = right.astype(np.int64)
    while True:
        lo = np.minimum(labels[left], labels[right])
        before = labels.copy()
        np.minimum.at(labels, left, lo)
        np.minimum.at(labels, right, lo)
        # labels[i] is a node id <= i in i's component: follow pointers to the root
        while True:
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
        if np.array_equal(before, labels):
            return labels


def cluster_table(
    con: duckdb.DuckDBPyConnection, nodes_table: str, edges_table: str, out_table: str, key_prefix: str
) -> str:
    """nodes_table(uid, ...), edges_table(uid_l, uid_r, rule, match_probability) ->
    out_table(uid, entity_key, rule, match_probability): rule/probability of the strongest edge
    that attaches the record to its cluster ('singleton' when alone)."""
    import pyarrow as pa

    con.execute(
        f"CREATE OR REPLACE TEMP TABLE __cc_nodes AS SELECT uid, (row_number() OVER (ORDER BY uid) - 1)::BIGINT AS node FROM (SELECT DISTINCT uid FROM {nodes_table})"
    )
    n_nodes = con.execute("SELECT count(*) FROM __cc_nodes").fetchone()[0]
    e = con.execute(
        f"""SELECT a.node AS l, b.node AS r FROM {edges_table} e
            JOIN __cc_nodes a ON a.uid = e.uid_l JOIN __cc_nodes b ON b.uid = e.uid_r"""
    ).arrow()
    if not isinstance(e, pa.Table):
        e = e.read_all()
    left = e.column("l").to_numpy() if e.num_rows else np.empty(0, np.int64)
    right = e.column("r").to_numpy() if e.num_rows else np.empty(0, np.int64)
    labels = connected_components(n_nodes, left, right)
    con.register("__cc_labels", pa.table({"node": np.arange(n_nodes, dtype=np.int64), "root": labels}))
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {out_table} AS
        WITH lab AS (
            SELECT n.uid, r.uid AS root_uid
            FROM __cc_nodes n JOIN __cc_labels l ON l.node = n.node JOIN __cc_nodes r ON r.node = l.root
        ), best AS (
            SELECT uid, arg_max(rule, (rule_rank, match_probability)) AS rule, max(match_probability) AS match_probability
            FROM (
                SELECT uid_l AS uid, rule, match_probability,
                       CASE WHEN rule = 'splink' THEN 0 ELSE 1 END AS rule_rank FROM {edges_table}
                UNION ALL
                SELECT uid_r, rule, match_probability,
                       CASE WHEN rule = 'splink' THEN 0 ELSE 1 END FROM {edges_table}
            ) GROUP BY uid
        )
        SELECT lab.uid, '{key_prefix}' || left(md5(lab.root_uid), 16) AS entity_key,
               coalesce(best.rule, 'singleton') AS rule,
               coalesce(best.match_probability, 1.0) AS match_probability
        FROM lab LEFT JOIN best USING (uid)
        """
    )
    con.unregister("__cc_labels")
    con.execute("DROP TABLE IF EXISTS __cc_nodes")
    return out_table
