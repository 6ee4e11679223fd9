"""Connected components over match edges, and stable entity keys.

Node ids are dense ranks of `uid` (source_system || 0x1f || source_id) in sort order, so the
smallest node id of a component is its smallest (source_system, source_id): the entity key is a
hash of that record's identity, stable across runs and across full vs incremental builds."""
from __future__ import annotations

import duckdb
import numpy as np

UID_SEP = "\x1f"
# Which deterministic rule a record is said to be linked by when several equally certain ones apply:
# the most specific proof first.
RULE_PRECEDENCE = ("['stripe_metadata', 'stripe_tax_id', 'same_siren', 'same_email', 'same_phone_and_name', "
                   "'domain_and_name', 'rare_name', 'unique_name', 'rare_name_place', 'name_typo']")


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


def split_conflicts(labels: np.ndarray, e_l: np.ndarray, e_r: np.ndarray, e_rank: np.ndarray, e_prob: np.ndarray,
                    c_node: np.ndarray, c_key: list, c_val: list) -> np.ndarray:
    """Re-cluster the components that hold a cannot-link conflict (two records with different
    values under one conflict key: two SIRENs, two addresses of one company domain).

    Edges of those components are replayed strongest first (deterministic rules, then
    probability; node ids break ties, so the result does not depend on input order) and an edge
    that would join two conflicting groups is dropped. Only conflicted components go through this
    Python loop; they are few. Returns the new labels (component root = smallest node id)."""
    from collections import defaultdict

    if len(c_node) == 0:
        return labels
    per_root: dict[int, dict] = defaultdict(lambda: defaultdict(set))
    for node, k, v in zip(c_node.tolist(), c_key, c_val):
        per_root[int(labels[node])][k].add(v)
    bad_roots = {r for r, kv in per_root.items() if any(len(vs) > 1 for vs in kv.values())}
    if not bad_roots:
        return labels
    labels = labels.copy()
    bad_mask = np.isin(labels, np.fromiter(bad_roots, np.int64))
    sel = bad_mask[e_l]
    order = np.lexsort((e_r[sel], e_l[sel], -e_prob[sel], -e_rank[sel]))
    el, er = e_l[sel][order].tolist(), e_r[sel][order].tolist()
    parent: dict[int, int] = {int(n): int(n) for n in np.nonzero(bad_mask)[0]}
    attrs: dict[int, dict] = {n: {} for n in parent}
    for node, k, v in zip(c_node.tolist(), c_key, c_val):
        if node in attrs:
            attrs[node][k] = v

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(el, er):
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        A, B = attrs[ra], attrs[rb]
        if any(k in B and B[k] != v for k, v in A.items()):
            continue  # cannot-link: keep the two groups apart
        root, other = (ra, rb) if ra < rb else (rb, ra)
        parent[other] = root
        merged = attrs[root]
        for k, v in attrs[other].items():
            merged.setdefault(k, v)
        del attrs[other]
    # root = smallest node id of each new group (parent pointers always go to the smaller id)
    for n in parent:
        labels[n] = find(n)
    return labels


def cluster_table(
    con: duckdb.DuckDBPyConnection, nodes_table: str, edges_table: str, out_table: str, key_prefix: str,
    conflicts_sql: str | None = None, temp: bool = False,
) -> str:
    """nodes_table(uid, ...), edges_table(uid_l, uid_r, rule, match_probability) ->
    out_table(uid, entity_key, rule, match_probability, component): rule/probability of the
    strongest edge that attaches the record to its cluster ('singleton' when alone); `component`
    is the smallest uid of the record's connected component before cannot-link splits (what an
    incremental run needs to know which records to re-cluster).

    conflicts_sql: optional query over `nodes_table` returning (uid, conflict_key, conflict_value):
    two records of one cluster with different values under one key are never in one entity.
    Edges whose ends are not both in `nodes_table` are ignored (clustering a closed subgraph).
    temp: `out_table` as a TEMP table (scratch rows merged elsewhere)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    con.execute(
        f"CREATE OR REPLACE TEMP TABLE __cc_nodes AS SELECT uid, (row_number() OVER (ORDER BY uid) - 1)::BIGINT AS node FROM (SELECT DISTINCT uid FROM {nodes_table})"
    )
    uids = con.execute("SELECT uid FROM __cc_nodes ORDER BY node").arrow()
    uids = (uids if isinstance(uids, pa.Table) else uids.read_all()).column("uid").combine_chunks()
    n_nodes = len(uids)
    e = con.execute(
        f"""SELECT a.node AS l, b.node AS r, e.rule, CASE WHEN e.rule = 'splink' THEN 0 ELSE 1 END AS rank,
                   e.match_probability AS p
            FROM {edges_table} e
            JOIN __cc_nodes a ON a.uid = e.uid_l JOIN __cc_nodes b ON b.uid = e.uid_r"""
    ).arrow()
    if not isinstance(e, pa.Table):
        e = e.read_all()
    col = lambda name, dt: e.column(name).to_numpy().astype(dt) if e.num_rows else np.empty(0, dt)  # noqa: E731
    left, right = col("l", np.int64), col("r", np.int64)
    raw = connected_components(n_nodes, left, right)
    labels = raw
    if conflicts_sql and len(left):
        # only components holding two values under one key go to the Python split
        con.register("__cc_raw", pa.table({"node": np.arange(n_nodes, dtype=np.int64), "root": raw}))
        c = con.execute(
            f"""WITH c AS (
                    SELECT n.node, r.root, c.k, c.v FROM ({conflicts_sql}) c JOIN __cc_nodes n USING (uid)
                    JOIN __cc_raw r ON r.node = n.node
                    WHERE c.k IS NOT NULL AND c.v IS NOT NULL
                ), bad AS (SELECT root FROM c GROUP BY root, k HAVING count(DISTINCT v) > 1)
                SELECT node, k, v FROM c WHERE root IN (SELECT root FROM bad)"""
        ).fetchnumpy()
        con.unregister("__cc_raw")
        labels = split_conflicts(raw, left, right, col("rank", np.int64), col("p", np.float64),
                                 np.asarray(c["node"], np.int64), list(c["k"]), list(c["v"]))
    kept = e.filter(pa.array(labels[left] == labels[right])) if e.num_rows else e
    con.register("__cc_kept", kept)
    con.register("__cc_labels", pa.table({
        "uid": uids, "root_uid": pc.take(uids, pa.array(labels)), "component": pc.take(uids, pa.array(raw)),
        "node": np.arange(n_nodes, dtype=np.int64),
    }))
    con.execute(
        f"""
        CREATE OR REPLACE {"TEMP TABLE" if temp else "TABLE"} {out_table} AS
        WITH best AS (  -- strongest attaching edge; ties go to the most specific rule (same on every run)
            SELECT node, arg_min(rule, (-rank, -p, coalesce(list_position({RULE_PRECEDENCE}, rule), 99), rule)) AS rule,
                   max(p) AS match_probability
            FROM (SELECT l AS node, rule, rank, p FROM __cc_kept UNION ALL SELECT r, rule, rank, p FROM __cc_kept)
            GROUP BY node
        )
        SELECT lab.uid, '{key_prefix}' || left(md5(lab.root_uid), 16) AS entity_key,
               coalesce(best.rule, 'singleton') AS rule,
               coalesce(best.match_probability, 1.0) AS match_probability,
               lab.component
        FROM __cc_labels lab LEFT JOIN best USING (node)
        """
    )
    con.unregister("__cc_labels")
    con.unregister("__cc_kept")
    con.execute("DROP TABLE IF EXISTS __cc_nodes")
    return out_table
