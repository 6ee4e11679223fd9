"""Deterministic links, in SQL: rules that are proofs on their own.

Each function inserts edges (uid_l, uid_r, rule, match_probability=1.0) built from a normalised
table. With `new_uids` (a table with a `uid` column) only pairs touching those records are
produced: the incremental path. Components are the same either way."""
from __future__ import annotations

import duckdb

# Two names are compatible when they could name the same person: typo (Jaro-Winkler >= 0.9 or one edit),
# initial or compound first name (prefix), first/last swapped (possibly with a typo too), or a
# part missing; never a first name's masculine and feminine forms. A shared mailbox links nobody whose names clash.
def _one_typo(a: str, b: str) -> str:
    # one edit (insertion, deletion, substitution, transposition) past the first letter, names of 4+
    # letters: Jaro-Winkler alone misses it on short names ("jean"/"jemn" 0.87, "petit"/"pktit" 0.88)
    return (f"(left({a}, 1) = left({b}, 1) AND length({a}) >= 4 AND length({b}) >= 4 "
            f"AND abs(length({a}) - length({b})) <= 1 AND damerau_levenshtein({a}, {b}) <= 1)")


# The masculine and feminine forms of one name are two people: a couple sharing a landline or a family mailbox
# ("louis"/"louise", "michel"/"michele", "jean"/"jeanne", "paul"/"pauline"), though the prefix, Jaro-Winkler and
# one-edit tests below all accept them. A rule rather than a list of names: the feminine form is the masculine
# (3+ letters) plus an ending, maybe after its last letter doubled ("jean"/"jeannette"), or with its last letter
# changed ("laurent"/"laurence", "frederic"/"frederique", "mario"/"maria"). Endings of two letters or more are no
# typo, and no compound name ("jean"/"jeanpierre" keeps its prefix). "e" and "a" alone are also what a typo
# at the very end of a name makes, so they count only after a masculine name of 4+ letters ending in one
# consonant ("louis", "eric"): not after a vowel or a doubled letter, which is a feminine name that lost its
# last letter ("sophi"/"sophie", "pierr"/"pierre") or one with its last letter doubled ("antoine"/"antoinee").
FEMININE_ENDINGS = ("ie", "ne", "le", "te", "tte", "lle", "ine", "ette")
FEMININE_SWAPS = (("t", "ce"), ("c", "que"), ("o", "a"))  # masculine's last letter -> feminine ending
_CONSONANT_END = "[bcdfghjklmnpqrstvwxz]$"
# Gendered forms the rule leaves out: two stems (Jaro-Winkler >= 0.9 all the same), or "é" + "e" (lost with the
# accents, an "e" the rule cannot tell from a doubled last letter).
GENDERED_PAIRS = ("aime aimee", "alexandra alexandre", "andre andree", "charles charlotte", "christian christine",
                  "claude claudine", "emile emilie", "eugene eugenie", "francine francis", "georges georgette",
                  "jose josee", "jules julie", "maxime maxine", "nicolas nicole", "olivia olivier",
                  "patricia patrick", "rene renee", "stephane stephanie", "victoire victor")


def _sql_strings(values) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def _feminine_of(m: str, f: str) -> str:
    """SQL: name f is a feminine form of name m (see FEMININE_ENDINGS)."""
    ends = _sql_strings(FEMININE_ENDINGS)
    rest = f"substr({f}, length({m}) + 1)"
    single = f"right({m}, 1) <> substr({m}, length({m}) - 1, 1)"  # no doubled last letter
    swaps = " OR ".join(f"(length({m}) >= {3 + len(x)} AND ends_with({m}, '{x}') "
                        f"AND {f} = left({m}, length({m}) - {len(x)}) || '{y}')" for x, y in FEMININE_SWAPS)
    return (f"((length({m}) >= 3 AND starts_with({f}, {m}) AND ("
            f"list_contains({ends}, {rest}) "
            f"OR (left({rest}, 1) = right({m}, 1) AND list_contains({ends}, substr({rest}, 2))) "
            f"OR ({rest} IN ('e', 'a') AND length({m}) >= 4 AND {single} "
            f"AND regexp_matches({m}, '{_CONSONANT_END}')))) "
            f"OR {swaps})")


def _gendered(a: str, b: str) -> str:
    pair = f"least({a}, {b}) || ' ' || greatest({a}, {b})"
    return f"({_feminine_of(a, b)} OR {_feminine_of(b, a)} OR list_contains({_sql_strings(GENDERED_PAIRS)}, {pair}))"


def _first_ok(a: str, b: str) -> str:
    # a CASE, which DuckDB evaluates branch by branch: the costlier tests run on the few pairs that reach them
    return (f"(CASE WHEN {a} IS NULL OR {b} IS NULL OR {a} = {b} THEN true "
            f"WHEN jaro_winkler_similarity({a}, {b}) >= 0.9 OR starts_with({a}, {b}) OR starts_with({b}, {a}) "
            f"OR {_one_typo(a, b)} THEN NOT {_gendered(a, b)} ELSE false END)")


def _last_ok(a: str, b: str) -> str:
    # a family name typo may hit its first letter too ("goff"/"noff"): unlike first names, two people sharing a
    # mailbox are not told apart by family names one edit apart
    return (f"({a} IS NULL OR {b} IS NULL OR {a} = {b} OR jaro_winkler_similarity({a}, {b}) >= 0.9 "
            f"OR (length({a}) >= 4 AND length({b}) >= 4 AND damerau_levenshtein({a}, {b}) <= 1))")


NAMES_COMPATIBLE = (
    f"(CASE WHEN {_first_ok('l.n_first_name', 'r.n_first_name')} AND {_last_ok('l.n_last_name', 'r.n_last_name')} "
    # swapped: either record may be the swapped one, so both crossed pairs may be first names: both checked as such
    f"THEN true ELSE {_first_ok('l.n_first_name', 'r.n_last_name')} AND {_first_ok('l.n_last_name', 'r.n_first_name')} END)"
)
# kept for callers of the first version
FIRST_COMPATIBLE, LAST_COMPATIBLE = NAMES_COMPATIBLE, "TRUE"


# Expected chance occurrences of a full name below which two records bearing it are one person.
RARE_NAME_EXPECTED = 0.02
# Chance that two unrelated contacts share a postcode (the u of the `place` level "postcode exact" in
# models/contacts.json): a name whose expected chance occurrences times this is below RARE_NAME_EXPECTED still proves
# identity between two records of the same place. A constant, not a count of this run's postcodes,
# so an incremental run only has to follow the name counts.
PLACE_CHANCE = 0.0233


def _touch(new_uids: str | None) -> str:
    if not new_uids:
        return "TRUE"
    return f"(l.uid IN (SELECT uid FROM {new_uids}) OR r.uid IN (SELECT uid FROM {new_uids}))"


FULL_NAME = "n_full_name"  # least(first, last) || ' ' || greatest(first, last), see normalize
#: The columns contact_edges_keyed reads (besides uid and FULL_NAME).
KEYED_COLUMNS = ("n_email_canon", "n_email_is_role", "n_email_domain", "n_email_is_free", "n_first_name", "n_last_name",
                 "n_company", "n_company_ref", "n_phone", "n_mobile", "n_postcode", "n_city")


def contact_name_counts(con: duckdb.DuckDBPyConnection, norm: str, prefix: str, temp: bool = True) -> None:
    """{prefix}_part_counts(part, n): records bearing each name part; {prefix}_name_counts(full_name,
    a, b, n): records bearing each full name (a <= b its parts). Kept between runs so an
    incremental run adjusts counts by its delta instead of recounting every record (temp=False: kept tables)."""
    tt = "TEMP TABLE" if temp else "TABLE"
    con.execute(
        f"""CREATE OR REPLACE {tt} {prefix}_name_counts AS
            SELECT n_full_name AS full_name, least(n_first_name, n_last_name) AS a,
                   greatest(n_first_name, n_last_name) AS b, count(*)::BIGINT AS n
            FROM {norm} WHERE n_full_name IS NOT NULL GROUP BY ALL"""
    )
    con.execute(
        f"""CREATE OR REPLACE {tt} {prefix}_part_counts AS
            SELECT part, sum(n)::BIGINT AS n FROM (
                SELECT a AS part, n FROM {prefix}_name_counts UNION ALL SELECT b, n FROM {prefix}_name_counts
            ) GROUP BY part"""
    )


def contact_rare_from_counts(con: duckdb.DuckDBPyConnection, prefix: str, out: str, temp: bool = True) -> str:
    """Full names borne by 2-3 records whose expected number of chance occurrences,
    2 x N x f(first) x f(last) = 2 x n(first) x n(last) / N (N records with a full name), is below
    RARE_NAME_EXPECTED: a second record with such a name is the same person (the idea behind
    term-frequency adjustment). `in_place`: rare only within one place (expected x PLACE_CHANCE
    below the bar), which proves identity between records of the same postcode (or town when a
    postcode is missing) only."""
    con.execute(
        f"""CREATE OR REPLACE {"TEMP TABLE" if temp else "TABLE"} {out} AS
            WITH tot AS (SELECT sum(n)::DOUBLE AS n FROM {prefix}_name_counts),
            e AS (
                SELECT g.full_name, 2.0 * fa.n * fb.n / (SELECT n FROM tot) AS expected FROM {prefix}_name_counts g
                JOIN {prefix}_part_counts fa ON fa.part = g.a JOIN {prefix}_part_counts fb ON fb.part = g.b
                WHERE g.n BETWEEN 2 AND 3
            )
            SELECT full_name, expected >= {RARE_NAME_EXPECTED} AS in_place FROM e
            WHERE expected * {PLACE_CHANCE} < {RARE_NAME_EXPECTED}"""
    )
    return out


def contact_rare_names(con: duckdb.DuckDBPyConnection, norm: str, out: str) -> str:
    """The rare full names of `norm` (see contact_rare_from_counts), counted from scratch."""
    contact_name_counts(con, norm, "__det_rare")
    return contact_rare_from_counts(con, "__det_rare", out)


def contact_edges_keyed(
    con: duckdb.DuckDBPyConnection, norm: str, max_group: int, rare: str, out: str,
    email_scope: str = "TRUE", name_scope: str = "TRUE", new_uids: str | None = None, temp: bool = True,
) -> str:
    """Deterministic contact edges with the key of the group that decided them:
    out(uid_l, uid_r, rule, k), k = mailbox (same_email), full name (rare_name), NULL (phone).

    An incremental run recomputes only what new or changed records can alter: the mailbox groups
    (`email_scope`, a condition on n_email_canon) and the name groups (`name_scope`, on full_name)
    they belong to, with the groups' full membership; and the phone pairs touching `new_uids`."""
    phone_scope = "TRUE" if new_uids is None else (
        f"ph IN (SELECT unnest([n_phone, n_mobile]) FROM {norm} WHERE uid IN (SELECT uid FROM {new_uids}))")
    new_phones = f"(SELECT unnest([n_phone, n_mobile]) FROM {norm} WHERE uid IN (SELECT uid FROM {new_uids}))"
    phone_rows = "TRUE" if new_uids is None else f"(n_phone IN {new_phones} OR n_mobile IN {new_phones})"
    phone_pairs = "TRUE" if new_uids is None else (
        f"(l.uid IN (SELECT uid FROM {new_uids}) OR r.uid IN (SELECT uid FROM {new_uids}))")
    con.execute(
        f"""
        CREATE OR REPLACE {"TEMP TABLE" if temp else "TABLE"} {out} AS
        WITH g AS (
            SELECT n_email_canon FROM {norm}
            WHERE n_email_canon IS NOT NULL AND NOT n_email_is_role AND ({email_scope})
            GROUP BY n_email_canon HAVING count(*) BETWEEN 2 AND {int(max_group)}
        ), c AS (SELECT * FROM {norm} WHERE n_email_canon IN (SELECT n_email_canon FROM g)),
        p AS (
            SELECT l.uid AS uid_l, r.uid AS uid_r, l.n_email_canon,
                   {NAMES_COMPATIBLE} AS ok
            FROM c l JOIN c r ON l.n_email_canon = r.n_email_canon AND l.uid < r.uid
        ), shared AS (SELECT DISTINCT n_email_canon FROM p WHERE NOT ok),
        by_email AS (
            SELECT uid_l, uid_r, 'same_email' AS rule, n_email_canon AS k FROM p
            WHERE n_email_canon NOT IN (SELECT n_email_canon FROM shared)
        ), ph0 AS (
            SELECT uid, n_first_name, n_last_name, n_email_canon, n_email_domain, n_email_is_free, n_email_is_role,
                   n_company, n_company_ref,
                   unnest(list_distinct(list_filter([n_phone, n_mobile], x -> x IS NOT NULL))) AS ph
            FROM {norm}
            -- a household or a team shares its phone with its mailbox: no proof there
            WHERE n_first_name IS NOT NULL AND n_last_name IS NOT NULL AND NOT n_email_is_role
              AND {phone_rows}
        ), ph AS (SELECT * FROM ph0 WHERE {phone_scope}),
        by_phone AS (
            SELECT DISTINCT l.uid AS uid_l, r.uid AS uid_r, 'same_phone_and_name' AS rule, CAST(NULL AS VARCHAR) AS k
            FROM ph l JOIN ph r ON l.ph = r.ph AND l.uid < r.uid
            WHERE ((l.n_first_name = r.n_first_name AND l.n_last_name = r.n_last_name)
                   OR (l.n_first_name = r.n_last_name AND l.n_last_name = r.n_first_name))
              AND (l.n_company IS NULL OR r.n_company IS NULL OR l.n_company = r.n_company
                   OR l.n_company_ref = r.n_company_ref OR jaro_winkler_similarity(l.n_company, r.n_company) >= 0.9)
              AND NOT coalesce(l.n_email_canon <> r.n_email_canon AND l.n_email_domain = r.n_email_domain
                               AND NOT l.n_email_is_free AND NOT l.n_email_is_role AND NOT r.n_email_is_role, false)
              AND {phone_pairs}
        ), nm AS (  -- full name, order-insensitive (swapped first/last), rare ones in scope only
            SELECT uid, n.{FULL_NAME} AS full_name, n_company, n_company_ref, n_postcode, n_city, rr.in_place,
                   CASE WHEN NOT n_email_is_free THEN n_email_domain END AS employer_domain
            FROM {norm} n JOIN (SELECT * FROM {rare} WHERE {name_scope}) rr ON rr.full_name = n.{FULL_NAME}
        ), nm_pairs AS (
            SELECT l.uid AS uid_l, r.uid AS uid_r, l.full_name, l.in_place,
                   coalesce(l.n_company IS NULL OR r.n_company IS NULL OR l.n_company = r.n_company
                            OR l.n_company_ref = r.n_company_ref OR jaro_winkler_similarity(l.n_company, r.n_company) >= 0.9, false)
                   -- two employers' mail domains are two companies, as two company names are
                   AND coalesce(l.employer_domain = r.employer_domain, true) AS company_ok
            FROM nm l JOIN nm r ON l.full_name = r.full_name AND l.uid < r.uid
            WHERE (NOT l.in_place OR l.n_postcode = r.n_postcode
                   OR ((l.n_postcode IS NULL OR r.n_postcode IS NULL) AND l.n_city = r.n_city))
        ), nm_clash AS (SELECT uid_l AS uid FROM nm_pairs WHERE NOT company_ok UNION SELECT uid_r FROM nm_pairs WHERE NOT company_ok),
        by_rare AS (
            -- a rare name two records of different companies bear (in one place) is two people's there: it proves
            -- nothing about either record, as a mailbox two clashing names use proves nothing (the name's group
            -- is recomputed whole by an incremental run, so this stays a function of the group)
            SELECT uid_l, uid_r, CASE WHEN in_place THEN 'rare_name_place' ELSE 'rare_name' END AS rule, full_name AS k
            FROM nm_pairs WHERE company_ok AND uid_l NOT IN (SELECT uid FROM nm_clash) AND uid_r NOT IN (SELECT uid FROM nm_clash)
        )
        SELECT * FROM by_email UNION ALL SELECT * FROM by_phone UNION ALL SELECT * FROM by_rare
        """
    )
    return out


def contact_edges(con: duckdb.DuckDBPyConnection, norm: str, max_group: int, new_uids: str | None = None) -> str:
    """same_email: same personal mailbox (sub-address stripped, not a role/family address), in a
    group of at most `max_group` records whose names are all pairwise compatible: an address that
    two incompatible names use is a shared mailbox, and proves nothing about anyone in it.

    same_phone_and_name: same phone, same name (exact or swapped) when both records carry a full
    name and neither e-mail contradicts (two different addresses at one company are two people).

    rare_name: same rare full name (see contact_rare_names), companies compatible (names, CRM company records,
    employers' mail domains), neither record sharing the name with a record of another company;
    rare_name_place: same full name rare within one place, same postcode (or town), the same company conditions."""
    contact_rare_names(con, norm, "__det_rare_set")
    contact_edges_keyed(con, norm, max_group, "__det_rare_set", "__det_keyed")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE __det_contacts AS
            SELECT uid_l, uid_r, min(rule) AS rule, 1.0::DOUBLE AS match_probability
            FROM __det_keyed l WHERE {_touch(new_uids).replace('l.uid', 'l.uid_l').replace('r.uid', 'l.uid_r')}
            GROUP BY uid_l, uid_r"""
    )
    return "__det_contacts"


def company_edges(con: duckdb.DuckDBPyConnection, norm: str, new_uids: str | None = None) -> str:
    """same_siren / stripe_tax_id, stripe_metadata, domain_and_name (same company domain and name,
    postcodes not contradicting), unique_name (the same name borne by at most one record of each
    of the seller's own systems, not the registry, with no contradicting SIREN, domain, phone or
    postcode: a name their own CRM and billing use once names one company)."""
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
            -- two postcodes under one name and domain: two sites or two companies, Splink weighs it
            SELECT n_domain, n_name, min(uid) AS root FROM dn GROUP BY ALL
            HAVING count(*) > 1 AND count(DISTINCT n_postcode) <= 1
        ), by_dn AS (
            SELECT d.root AS uid_l, l.uid AS uid_r, 'domain_and_name' AS rule
            FROM dn l JOIN dn_root d USING (n_domain, n_name)
            JOIN {norm} rr ON rr.uid = d.root
            WHERE l.uid <> d.root AND (l.n_siren IS NULL OR rr.n_siren IS NULL OR l.n_siren = rr.n_siren)
        ), own AS (  -- the seller's own systems (the registry lists every legal unit, homonyms included)
            SELECT uid, source_system, n_name, n_siren, n_domain, n_phone, n_postcode FROM {norm}
            WHERE source_system <> 'registry' AND n_name IS NOT NULL AND (length(n_name) >= 8 OR contains(n_name, ' '))
        ), nm AS (  -- at most one value of each identifier (min = max over the non-null ones)
            SELECT n_name, min(uid) AS root FROM own GROUP BY n_name
            HAVING count(*) > 1 AND count(*) = count(DISTINCT source_system)
               AND min(n_siren) IS NOT DISTINCT FROM max(n_siren) AND min(n_domain) IS NOT DISTINCT FROM max(n_domain)
               AND min(n_phone) IS NOT DISTINCT FROM max(n_phone) AND min(n_postcode) IS NOT DISTINCT FROM max(n_postcode)
        ), by_name AS (
            SELECT nm.root AS uid_l, o.uid AS uid_r, 'unique_name' AS rule
            FROM own o JOIN nm USING (n_name)
            WHERE o.uid <> nm.root
        ), own_names AS (SELECT DISTINCT source_system, n_name FROM own),
        tn AS (
            SELECT uid, source_system, n_name, n_siren, n_domain, n_phone, n_postcode,
                   split_part(n_name, ' ', 1) AS w1, split_part(n_name, ' ', 2) AS w2
            FROM own WHERE n_postcode IS NOT NULL AND length(n_name) >= 8
        ), typo_cand AS MATERIALIZED (  -- blocked like Splink: a typo leaves the first word or the second intact (and the initial)
            SELECT l.uid AS uid_l, r.uid AS uid_r, l.source_system AS sl, r.source_system AS sr, l.n_name AS nl, r.n_name AS nr
            FROM tn l JOIN tn r ON l.n_postcode = r.n_postcode AND l.w1 = r.w1 AND left(l.w2, 2) = left(r.w2, 2)
                 AND l.source_system <> r.source_system AND l.uid < r.uid
            WHERE l.n_name <> r.n_name AND damerau_levenshtein(l.n_name, r.n_name) <= 1
              AND coalesce(l.n_siren = r.n_siren, true) AND coalesce(l.n_domain = r.n_domain, true)
              AND coalesce(l.n_phone = r.n_phone, true)
            UNION
            SELECT l.uid, r.uid, l.source_system, r.source_system, l.n_name, r.n_name
            FROM tn l JOIN tn r ON l.n_postcode = r.n_postcode AND l.w2 = r.w2 AND l.w2 <> '' AND left(l.w1, 1) = left(r.w1, 1)
                 AND l.source_system <> r.source_system AND l.uid < r.uid
            WHERE l.n_name <> r.n_name AND damerau_levenshtein(l.n_name, r.n_name) <= 1
              AND coalesce(l.n_siren = r.n_siren, true) AND coalesce(l.n_domain = r.n_domain, true)
              AND coalesce(l.n_phone = r.n_phone, true)
        ), typo_ok AS MATERIALIZED (  -- neither spelling exists in the other's system, and each record has one such neighbour
            SELECT * FROM typo_cand c
            WHERE NOT EXISTS (SELECT 1 FROM own_names o WHERE o.source_system = c.sr AND o.n_name = c.nl)
              AND NOT EXISTS (SELECT 1 FROM own_names o WHERE o.source_system = c.sl AND o.n_name = c.nr)
        ), typo_multi AS (
            SELECT u FROM (SELECT uid_l AS u FROM typo_ok UNION ALL SELECT uid_r FROM typo_ok) GROUP BY u HAVING count(*) > 1
        ), by_typo AS (
            SELECT uid_l, uid_r, 'name_typo' AS rule FROM typo_ok
            WHERE uid_l NOT IN (SELECT u FROM typo_multi) AND uid_r NOT IN (SELECT u FROM typo_multi)
        ), e AS (
            SELECT * FROM by_siren UNION ALL SELECT * FROM by_meta UNION ALL SELECT * FROM by_dn
            UNION ALL SELECT * FROM by_name UNION ALL SELECT * FROM by_typo
        )
        SELECT e.uid_l, e.uid_r, e.rule, 1.0::DOUBLE AS match_probability
        FROM e{"" if new_uids is None else f" JOIN {norm} l ON l.uid = e.uid_l JOIN {norm} r ON r.uid = e.uid_r"}
        WHERE {touch}
        """
    )
    return "__det_companies"
