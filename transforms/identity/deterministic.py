"""Deterministic links, in SQL: rules that are proofs on their own.

Each function inserts edges (uid_l, uid_r, rule, match_probability=1.0) built from a normalised
table. With `new_uids` (a table with a `uid` column) only pairs touching those records are
produced: the incremental path. Components are the same either way."""
from __future__ import annotations

import duckdb

# Two first names are compatible when they could name the same person (typo, initial, compound
# first name, or first/last swapped). A shared family mailbox links nobody whose names clash.
FIRST_COMPATIBLE = """(
    l.n_first_name IS NULL OR r.n_first_name IS NULL
    OR l.n_first_name = r.n_first_name
    OR jaro_winkler_similarity(l.n_first_name, r.n_first_name) >= 0.9
    OR starts_with(l.n_first_name, r.n_first_name) OR starts_with(r.n_first_name, l.n_first_name)
    OR (l.n_first_name = r.n_last_name AND l.n_last_name = r.n_first_name)
)"""
LAST_COMPATIBLE = """(
    l.n_last_name IS NULL OR r.n_last_name IS NULL
    OR l.n_last_name = r.n_last_name
    OR jaro_winkler_similarity(l.n_last_name, r.n_last_name) >= 0.9
    OR (l.n_first_name = r.n_last_name AND l.n_last_name = r.n_first_name)
)"""


def _touch(new_uids: str | None) -> str:
    if not new_uids:
        return "TRUE"
    return f"(l.uid IN (SELECT uid FROM {new_uids}) OR r.uid IN (SELECT uid FROM {new_uids}))"


def contact_edges(con: duckdb.DuckDBPyConnection, norm: str, max_group: int, new_uids: str | None = None) -> str:
    """same_email: same normalised personal (non-role) address, compatible names, small group."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE __det_contacts AS
        WITH g AS (
            SELECT n_email FROM {norm}
            WHERE n_email IS NOT NULL AND NOT n_email_is_role
            GROUP BY n_email HAVING count(*) BETWEEN 2 AND {int(max_group)}
        ), c AS (SELECT * FROM {norm} WHERE n_email IN (SELECT n_email FROM g))
        SELECT l.uid AS uid_l, r.uid AS uid_r, 'same_email' AS rule, 1.0::DOUBLE AS match_probability
        FROM c l JOIN c r ON l.n_email = r.n_email AND l.uid < r.uid
        WHERE {FIRST_COMPATIBLE} AND {LAST_COMPATIBLE} AND {_touch(new_uids)}
        """
    )
    return "__det_contacts"


def company_edges(con: duckdb.DuckDBPyConnection, norm: str, new_uids: str | None = None) -> str:
    """same_siren / stripe_tax_id, stripe_metadata, domain_and_name."""
    touch = _touch(new_uids)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE __det_companies AS
        WITH siren_root AS (
            SELECT n_siren, min(uid) AS root FROM {norm} WHERE n_siren IS NOT NULL GROUP BY n_siren
        ), by_siren AS (
            SELECT s.root AS uid_l, l.uid AS uid_r,
                   CASE WHEN l.source_system = 'stripe' OR starts_with(s.root, 'stripe' || chr(31))
                        THEN 'stripe_tax_id' ELSE 'same_siren' END AS rule
            FROM {norm} l JOIN siren_root s USING (n_siren)
            WHERE l.uid <> s.root
        ), by_meta AS (
            SELECT r.uid AS uid_l, l.uid AS uid_r, 'stripe_metadata' AS rule
            FROM {norm} l JOIN {norm} r
              ON l.source_system = 'stripe' AND r.source_system IN ('hubspot', 'koban')
             AND r.source_id = l.n_crm_company_id
        ), dn AS (
            SELECT * FROM {norm} WHERE n_domain IS NOT NULL AND NOT n_domain_is_free AND n_name IS NOT NULL
        ), dn_root AS (
            SELECT n_domain, n_name, min(uid) AS root FROM dn GROUP BY ALL HAVING count(*) > 1
        ), by_dn AS (
            SELECT d.root AS uid_l, l.uid AS uid_r, 'domain_and_name' AS rule
            FROM dn l JOIN dn_root d USING (n_domain, n_name)
            JOIN {norm} rr ON rr.uid = d.root
            WHERE l.uid <> d.root AND (l.n_siren IS NULL OR rr.n_siren IS NULL OR l.n_siren = rr.n_siren)
        ), e AS (
            SELECT * FROM by_siren UNION ALL SELECT * FROM by_meta UNION ALL SELECT * FROM by_dn
        )
        SELECT e.uid_l, e.uid_r, e.rule, 1.0::DOUBLE AS match_probability
        FROM e JOIN {norm} l ON l.uid = e.uid_l JOIN {norm} r ON r.uid = e.uid_r
        WHERE {touch}
        """
    )
    return "__det_companies"
