"""Pairwise precision / recall of a crosswalk against known truth (for tests and benchmarks)."""
from __future__ import annotations

import duckdb


def pairwise_scores(con: duckdb.DuckDBPyConnection, crosswalk: str, truth: str, truth_key: str) -> dict[str, float]:
    """crosswalk(source_system, source_id, entity_key) vs truth(source_system, source_id, <truth_key>).
    Pairs are counted from cluster sizes, never enumerated."""
    tp, pred, true = con.execute(
        f"""
        WITH j AS (
            SELECT c.entity_key AS p, CAST(t.{truth_key} AS VARCHAR) AS t
            FROM {crosswalk} c JOIN {truth} t
              ON t.source_system = c.source_system AND CAST(t.source_id AS VARCHAR) = c.source_id
        )
        SELECT
            (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM (SELECT count(*) AS n FROM j GROUP BY p, t)),
            (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM (SELECT count(*) AS n FROM j GROUP BY p)),
            (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM (SELECT count(*) AS n FROM j GROUP BY t))
        """
    ).fetchone()
    precision = tp / pred if pred else 1.0
    recall = tp / true if true else 1.0
    return {"precision": precision, "recall": recall, "true_pairs": int(true), "predicted_pairs": int(pred), "tp": int(tp)}
