"""Normalisation of contact and company fields for entity resolution.

Two faces of the same rules:

* scalar reference functions (`normalize_email`, `normalize_phone`, `name_key`, ...) built on
  email-validator, phonenumbers and python-stdnum: the definition of "normalised";
* `normalize_contacts_sql` / `normalize_companies_sql`, which apply the same rules to a whole
  DuckDB relation. The cheap parts are plain SQL; values that need a library go through it once
  per *distinct* value (batch + cache), and only when the SQL fast path cannot decide (an
  ordinary French phone number or a plain ASCII e-mail never leaves DuckDB). The tests check
  that both faces agree.

Nothing here raises on bad input: garbage becomes NULL.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Iterable

import duckdb
import email_validator
import phonenumbers
from email_validator import EmailNotValidError, validate_email
from stdnum.fr import siren as _siren
from stdnum.fr import siret as _siret
from stdnum.fr import tva as _tva

# Longer values are truncated before any processing: no real name, e-mail or phone is this long,
# and it bounds the cost of a pathological 10,000-character field.
MAX_LEN = 320

try:  # pandas' missing-value marker, when pandas is around
    from pandas import NA as _NA
except ImportError:  # pragma: no cover
    _NA = object()

ROLE_LOCAL_PARTS: frozenset[str] = frozenset(
    """
    contact contacts info infos information informations hello bonjour admin administration
    administratif accueil commercial commerciale commerciaux ventes vente sales compta comptabilite
    accounting facturation factures facture billing invoice invoices support help helpdesk sav
    service serviceclient service-client clients client office secretariat direction gerant
    rh recrutement jobs emploi careers hr marketing communication presse press noreply no-reply
    donotreply webmaster postmaster abuse team equipe bureau agence atelier boutique magasin
    devis achats achat commandes commande order orders mail email courrier reception standard
    famille family foyer
    """.split()
)

FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    """
    gmail.com googlemail.com hotmail.com hotmail.fr outlook.com outlook.fr live.com live.fr msn.com
    yahoo.com yahoo.fr ymail.com icloud.com me.com mac.com aol.com aol.fr orange.fr wanadoo.fr
    free.fr sfr.fr neuf.fr cegetel.net club-internet.fr laposte.net bbox.fr numericable.fr
    noos.fr alice.fr aliceadsl.fr voila.fr gmx.fr gmx.com gmx.net protonmail.com proton.me
    tutanota.com mail.com yandex.com yandex.ru hotmail.co.uk yahoo.co.uk libertysurf.fr
    """.split()
)

# Tokens of a company name that carry no identity (legal forms and their common spellings).
LEGAL_FORM_TOKENS: frozenset[str] = frozenset(
    """
    sas sasu sarl eurl sa sci snc scs sca sel selarl selas selafa scp scm scop scic gie gaec
    earl ei eirl sem spa gmbh ltd llc inc bv nv ag ste sté societe société soc cie compagnie
    et etablissements ets
    """.split()
) | frozenset({"s.a.s", "s.a.r.l", "s.a"})

# Leading words of a family name that are dropped for matching ("de la Fontaine" ~ "Fontaine").
NAME_PARTICLES: frozenset[str] = frozenset({"de", "du", "des", "la", "le", "les", "d", "l"})


_ASCII_EMAIL_RE = (
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)


def _clip(value: object) -> str | None:
    if value is None or value is _NA or (isinstance(value, float) and value != value):
        return None
    if not isinstance(value, str):
        value = str(value)
    value = value[:MAX_LEN].strip()
    return value or None


# --------------------------------------------------------------------------- e-mail


def _email_precleanup(raw: str) -> str:
    s = raw.strip().lower()
    if s.startswith("mailto:"):
        s = s[7:]
    return s.strip().strip("<>\"' ")


@lru_cache(maxsize=200_000)
def normalize_email(value: object) -> str | None:
    """Trimmed, lower-cased, syntax-checked e-mail address, or None."""
    s = _clip(value)
    if s is None:
        return None
    s = _email_precleanup(s)
    if "@" not in s or len(s) > 254:
        return None
    try:
        info = validate_email(s, check_deliverability=False)
    except (EmailNotValidError, UnicodeError, ValueError):
        return None
    return info.normalized.lower()


def email_local(email: str | None) -> str | None:
    return email.rsplit("@", 1)[0] if email and "@" in email else None


def email_domain(email: str | None) -> str | None:
    return email.rsplit("@", 1)[1] if email and "@" in email else None


def is_role_mailbox(email: str | None) -> bool:
    """contact@, info@, famille.dupont@... : a mailbox shared by a team or a household, not a person."""
    local = email_local(email)
    if not local:
        return False
    base = re.split(r"[+.]", local, maxsplit=1)[0] if local not in ROLE_LOCAL_PARTS else local
    return local in ROLE_LOCAL_PARTS or base in ROLE_LOCAL_PARTS


def is_free_mail(email_or_domain: str | None) -> bool:
    if not email_or_domain:
        return False
    domain = email_domain(email_or_domain) or email_or_domain
    return domain.lower() in FREE_MAIL_DOMAINS


# --------------------------------------------------------------------------- phone


#: Overseas departments and collectivities that dial in the French national format (0 + 9 digits) under their own
#: country code: '02 62 ...' is Réunion's +262 262 ..., '05 90 ...' Guadeloupe's +590 590 ... . A national number
#: that is no valid metropolitan one is tried in these, in this order (regions sharing a country code give the
#: same E.164 number).
FR_OVERSEAS_REGIONS = ("RE", "YT", "GP", "BL", "MF", "GF", "MQ", "PM")


def parse_phone(s: str, region: str = "FR") -> "phonenumbers.PhoneNumber":
    """The valid phone number `s` denotes with default region `region` (a French national number may be an
    overseas one, see FR_OVERSEAS_REGIONS); raises NumberParseException when it is no phone number, returns an
    invalid number when it is none of the regions'."""
    num = phonenumbers.parse(s, region)
    if phonenumbers.is_valid_number(num) or region.upper() != "FR" or s.lstrip().startswith(("+", "00")):
        return num
    for overseas in FR_OVERSEAS_REGIONS:
        other = phonenumbers.parse(s, overseas)
        if phonenumbers.is_valid_number(other):
            return other
    return num


@lru_cache(maxsize=200_000)
def normalize_phone(value: object, region: str = "FR") -> str | None:
    """E.164 form of a valid phone number, or None."""
    s = _clip(value)
    if s is None or len(s) > 40:
        return None
    try:
        num = parse_phone(s, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(num):
        return None
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


# --------------------------------------------------------------------------- names


def _fold(s: str) -> str:
    """lower case, accents removed, ligatures expanded, everything but letters/digits -> space."""
    s = s.lower().replace("œ", "oe").replace("æ", "ae").replace("ß", "ss")
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", " ", s).strip()


def clean_text(value: object) -> str | None:
    """Display form: trimmed, inner whitespace collapsed (case and accents kept)."""
    s = _clip(value)
    if s is None:
        return None
    s = re.sub(r"\s+", " ", s).strip()
    return s or None


def first_name_key(value: object) -> str | None:
    """'  Jean-Pierre ' and 'JEAN PIERRE' -> 'jeanpierre'; 'Hélène' -> 'helene'. Particles are dropped
    as in last names, so a family name typed in the first-name field ('Le Floch') keys like one."""
    return last_name_key(value)


def last_name_key(value: object) -> str | None:
    """Family-name key: particles dropped ('de la Fontaine' -> 'fontaine', "d'Artagnan" -> 'artagnan')."""
    s = _clip(value)
    if s is None:
        return None
    tokens = _fold(re.sub(r"[0-9]", " ", s)).split()
    kept = [t for t in tokens if t not in NAME_PARTICLES]
    key = "".join(kept or tokens)
    return key or None


def company_name_key(value: object) -> str | None:
    """Company name for matching only: 'Boulangerie Dupont S.A.R.L.' -> 'boulangerie dupont'."""
    s = _clip(value)
    if s is None:
        return None
    s = s.lower()
    s = re.sub(r"\b([a-z])\.", r"\1", s)  # S.A.R.L. -> SARL
    tokens = [t for t in _fold(s).split() if t not in LEGAL_FORM_TOKENS]
    key = " ".join(tokens)
    return key or None


# Street-type abbreviations spelled out, so "12 bd Victor Hugo" and "12 BOULEVARD VICTOR-HUGO" share a key.
ADDRESS_ABBREVIATIONS: dict[str, str] = {
    "bd": "boulevard", "bld": "boulevard", "boul": "boulevard", "av": "avenue", "ave": "avenue", "r": "rue",
    "ch": "chemin", "che": "chemin", "all": "allee", "pl": "place", "imp": "impasse", "rte": "route",
    "qu": "quai", "sq": "square", "crs": "cours", "fg": "faubourg", "fbg": "faubourg", "st": "saint", "ste": "sainte",
}


def address_key(value: object) -> str | None:
    """Street address for matching only: '12 bd Victor-Hugo' -> '12 boulevard victor hugo'."""
    s = _clip(value)
    if s is None:
        return None
    key = " ".join(ADDRESS_ABBREVIATIONS.get(t, t) for t in _fold(s).split())
    return key or None


def normalize_domain(value: object) -> str | None:
    """'https://www.Exemple.fr/contact' -> 'exemple.fr'."""
    s = _clip(value)
    if s is None:
        return None
    s = s.lower()
    s = re.sub(r"^[a-z][a-z0-9+.-]*://", "", s)
    s = s.split("/", 1)[0].split("?", 1)[0].split(":", 1)[0].split("@")[-1]
    s = re.sub(r"^www\d?\.", "", s).strip(".")
    return s if re.fullmatch(r"([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}", s) else None


# --------------------------------------------------------------------------- registry ids


@lru_cache(maxsize=200_000)
def normalize_siren(value: object) -> str | None:
    s = _clip(value)
    if s is None:
        return None
    try:
        return _siren.validate(s)
    except Exception:  # stdnum raises several ValidationError subclasses
        return None


@lru_cache(maxsize=200_000)
def normalize_siret(value: object) -> str | None:
    s = _clip(value)
    if s is None:
        return None
    try:
        return _siret.validate(s)
    except Exception:
        return None


def siren_from_siret(value: object) -> str | None:
    siret = normalize_siret(value)
    return _siret.to_siren(siret) if siret else None


@lru_cache(maxsize=200_000)
def normalize_vat(value: object) -> str | None:
    """French VAT number (FRkk123456789), validated; other countries' numbers -> None."""
    s = _clip(value)
    if s is None:
        return None
    try:
        return "FR" + _tva.validate(s).removeprefix("FR")
    except Exception:
        return None


def siren_from_vat(value: object) -> str | None:
    vat = normalize_vat(value)
    if not vat:
        return None
    siren = vat[-9:]
    return siren if normalize_siren(siren) else None


def vat_from_siren(value: object) -> str | None:
    siren = normalize_siren(value)
    if not siren:
        return None
    return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"


def best_siren(siren: object = None, siret: object = None, vat: object = None) -> str | None:
    """The company's SIREN from whichever identifier is present and valid."""
    return normalize_siren(siren) or siren_from_siret(siret) or siren_from_vat(vat)


# --------------------------------------------------------------------------- SQL face


def _sql_list(values: Iterable[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in sorted(values)) + "]"


def sql_clip(col: str) -> str:
    return f"nullif(trim(left(CAST({col} AS VARCHAR), {MAX_LEN})), '')"


def _sql_initials_undotted(col: str) -> str:
    """Lower-cased, the dot after a single letter dropped: 'S.A.R.L.' -> 'sarl', 'D.A.F.' -> 'daf'."""
    return f"regexp_replace(lower({sql_clip(col)}), '\\b([a-z])\\.', '\\1', 'g')"


# What people type in a title field to get past it: no title, not a title two records could share.
TITLE_PLACEHOLDERS: frozenset[str] = frozenset(
    {"n a", "na", "nc", "n c", "nr", "nd", "none", "null", "inconnu", "inconnue", "non renseigne", "non communique",
     "aucun", "aucune", "autre", "x", "xx", "xxx", "test", "0"})


def sql_job_title_key(col: str) -> str:
    """A job title for comparing: folded like a city; empty, symbols only or a placeholder ('N/A', 'nc') -> NULL."""
    folded = sql_fold(_sql_initials_undotted(col))
    return f"CASE WHEN {folded} = '' OR list_contains({_sql_list(sorted(TITLE_PLACEHOLDERS))}, {folded}) THEN NULL ELSE {folded} END"


def sql_fold(expr: str) -> str:
    return (
        "trim(regexp_replace(strip_accents(replace(replace(replace(lower("
        f"{expr}), 'œ', 'oe'), 'æ', 'ae'), 'ß', 'ss')), '[^a-z0-9]+', ' ', 'g'))"
    )


def sql_first_name_key(col: str) -> str:
    return sql_last_name_key(col)


def sql_last_name_key(col: str) -> str:
    toks = f"list_filter(str_split({sql_fold(f'regexp_replace({sql_clip(col)}, {chr(39)}[0-9]{chr(39)}, {chr(39)} {chr(39)}, {chr(39)}g{chr(39)})')}, ' '), t -> t <> '')"
    kept = f"list_filter({toks}, t -> NOT list_contains({_sql_list(NAME_PARTICLES)}, t))"
    return f"nullif(array_to_string(CASE WHEN len({kept}) > 0 THEN {kept} ELSE {toks} END, ''), '')"


def sql_company_name_key(col: str) -> str:
    toks = f"list_filter(str_split({sql_fold(_sql_initials_undotted(col))}, ' '), t -> t <> '' AND NOT list_contains({_sql_list(LEGAL_FORM_TOKENS)}, t))"
    return f"nullif(array_to_string({toks}, ' '), '')"


def sql_address_key(col: str) -> str:
    keys = _sql_list(ADDRESS_ABBREVIATIONS)
    vals = "[" + ", ".join("'" + ADDRESS_ABBREVIATIONS[k] + "'" for k in sorted(ADDRESS_ABBREVIATIONS)) + "]"
    toks = f"list_filter(str_split({sql_fold(sql_clip(col))}, ' '), t -> t <> '')"
    mapped = f"list_transform({toks}, t -> coalesce({vals}[list_position({keys}, t)], t))"
    return f"nullif(array_to_string({mapped}, ' '), '')"


def sql_clean_text(col: str) -> str:
    return f"nullif(trim(regexp_replace({sql_clip(col)}, '\\s+', ' ', 'g')), '')"


def sql_domain(col: str) -> str:
    s = f"lower({sql_clip(col)})"
    s = f"regexp_replace({s}, '^[a-z][a-z0-9+.-]*://', '')"
    s = f"split_part(split_part(split_part({s}, '/', 1), '?', 1), ':', 1)"
    s = f"string_split({s}, '@')[-1]"
    s = f"trim(regexp_replace({s}, '^www[0-9]?\\.', ''), '.')"
    return (
        f"(CASE WHEN regexp_full_match({s}, '([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]{{2,63}}') "
        f"THEN {s} END)"
    )


def sql_email_domain(expr: str) -> str:
    return f"nullif(string_split({expr}, '@')[-1], {expr})"


def sql_email_local(expr: str) -> str:
    return f"(CASE WHEN {expr} LIKE '%@%' THEN string_split({expr}, '@')[1] END)"


def sql_is_role(email_expr: str) -> str:
    local = sql_email_local(email_expr)
    return (
        f"coalesce(list_contains({_sql_list(ROLE_LOCAL_PARTS)}, {local}) OR "
        f"list_contains({_sql_list(ROLE_LOCAL_PARTS)}, regexp_extract({local}, '^[^+.]+')), false)"
    )


def sql_is_free_domain(domain_expr: str) -> str:
    return f"coalesce(list_contains({_sql_list(FREE_MAIL_DOMAINS)}, {domain_expr}), false)"


def _udf_map(
    con: duckdb.DuckDBPyConnection, values_sql: str, fn, name: str
) -> str:
    """Evaluate `fn` once per distinct value of `values_sql` (column `v`) into temp table `name`
    (v, out). Values are few (the SQL fast path already handled the ordinary ones)."""
    vals = [r[0] for r in con.execute(f"SELECT DISTINCT v FROM ({values_sql}) WHERE v IS NOT NULL").fetchall()]
    import pyarrow as pa

    tbl = pa.table({"v": pa.array(vals, pa.string()), "out": pa.array([fn(v) for v in vals], pa.string())})
    con.register(f"{name}_arrow", tbl)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
    con.unregister(f"{name}_arrow")
    return name


def _valid_nsn_re(region: str) -> str:
    """Regex of every valid national significant number of `region`, built from phonenumbers' own
    metadata (fixed line, mobile, toll free, ...), so SQL decides exactly as the library does."""
    md = phonenumbers.PhoneMetadata.metadata_for_region(region)
    pats = [d.national_number_pattern for d in (
        md.fixed_line, md.mobile, md.toll_free, md.premium_rate, md.shared_cost, md.personal_number, md.voip,
        md.pager, md.uan, md.voicemail) if d is not None and d.national_number_pattern]
    return "(?:" + "|".join(f"(?:{p})" for p in pats) + ")"


_FR_VALID_NSN_RE = _valid_nsn_re("FR")
#: (country code, valid-number regex) of each overseas region, in FR_OVERSEAS_REGIONS order
_FR_OVERSEAS_NSN = [(phonenumbers.PhoneMetadata.metadata_for_region(r).country_code, _valid_nsn_re(r))
                    for r in FR_OVERSEAS_REGIONS]


def _phone_fast_sql(col: str, region: str) -> tuple[str, str, str]:
    """(cleaned digits expression, fast E.164 expression, decided condition).

    A French number written nationally (0 + 9 digits, default region FR: metropolitan, else overseas) or
    internationally (+33 / 0033 + 9 digits) is decided in SQL, valid or not; anything else goes to phonenumbers."""
    digits = (
        f"regexp_replace(replace({sql_clip(col)}, '(0)', ''), '[\\s.\\-/()\u00a0]', '', 'g')"
    )
    intl = f"regexp_full_match({digits}, '(\\+|00)33[1-9][0-9]{{8}}')"
    national = f"regexp_full_match({digits}, '0[1-9][0-9]{{8}}')" if region.upper() == "FR" else "false"
    decided = f"coalesce({intl} OR {national}, false)"
    # a national number no metropolitan one: an overseas one (parse_phone's order)
    overseas = "".join(
        f"WHEN {national} AND regexp_full_match(right({digits}, 9), '{pattern}') THEN '+{cc}' || right({digits}, 9) "
        for cc, pattern in _FR_OVERSEAS_NSN) if region.upper() == "FR" else ""
    fast = (
        f"CASE WHEN {decided} AND regexp_full_match(right({digits}, 9), '{_FR_VALID_NSN_RE}') "
        f"THEN '+33' || right({digits}, 9) {overseas}END"
    )
    return digits, fast, decided


def _email_fast_sql(col: str) -> tuple[str, str]:
    pre = f"trim(regexp_replace(lower({sql_clip(col)}), '^mailto:', ''), '<>\"'' ')"
    special = _sql_list(email_validator.SPECIAL_USE_DOMAIN_NAMES)
    fast = (
        f"CASE WHEN length({pre}) <= 254 AND regexp_full_match({pre}, '{_ASCII_EMAIL_RE.replace(chr(39), chr(39) * 2)}') "
        f"AND length(string_split({pre}, '@')[1]) <= 64 "
        f"AND NOT list_contains({special}, string_split({pre}, '.')[-1]) THEN {pre} END"
    )
    return pre, fast


_counter = 0


def _tmp(prefix: str) -> str:
    global _counter
    _counter += 1
    return f"__crm_{prefix}_{_counter}"


def sql_phone_column(con: duckdb.DuckDBPyConnection, rel_name: str, col: str, region: str = "FR") -> tuple[str, str]:
    """Returns (join clause, E.164 expression) normalising `col` of table/view `rel_name`."""
    digits, fast, decided = _phone_fast_sql(f"src.{col}", region)
    lut = _udf_map(
        con,
        f"SELECT {sql_clip(col)} AS v FROM {rel_name} WHERE NOT ({_phone_fast_sql(col, region)[2]})",
        lambda v: normalize_phone(v, region),
        _tmp("phone"),
    )
    alias = _tmp("p")
    return (
        f"LEFT JOIN {lut} {alias} ON {alias}.v = {sql_clip(f'src.{col}')}",
        f"(CASE WHEN {decided} THEN {fast} ELSE {alias}.out END)",
    )


def sql_email_column(con: duckdb.DuckDBPyConnection, rel_name: str, col: str) -> tuple[str, str]:
    pre, fast = _email_fast_sql(f"src.{col}")
    lut = _udf_map(
        con,
        f"SELECT {sql_clip(col)} AS v FROM {rel_name} WHERE ({_email_fast_sql(col)[1]}) IS NULL AND {sql_clip(col)} LIKE '%@%'",
        normalize_email,
        _tmp("email"),
    )
    alias = _tmp("e")
    return (
        f"LEFT JOIN {lut} {alias} ON {alias}.v = {sql_clip(f'src.{col}')}",
        f"coalesce({fast}, {alias}.out)",
    )


def _columns(con: duckdb.DuckDBPyConnection, rel_name: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {rel_name}").fetchall()]


def _col_or_null(cols: list[str], name: str) -> str:
    return f"src.{name}" if name in cols else "CAST(NULL AS VARCHAR)"


def _value_lut(con: duckdb.DuckDBPyConnection, source: str, columns: list[str], key_sql) -> str:
    """Temp table (v, k): `key_sql('v')` evaluated once per distinct value of `columns` of `source`.
    Names, company names and towns repeat a lot (1M contacts hold ~140k last names): the string
    SQL then runs on the distinct values only and a hash join hands the keys back."""
    name = _tmp("lut")
    union = " UNION ".join(f"SELECT CAST({c} AS VARCHAR) AS v FROM {source}" for c in columns)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT v, {key_sql('v')} AS k FROM (SELECT DISTINCT v FROM ({union}) WHERE v IS NOT NULL)"
    )
    return name


def _staged_email_phones(con, view: str, email_cols: list[str], phone_cols: list[str], region: str) -> tuple[str, dict]:
    """One pass over `view` computing the SQL fast path of each e-mail and phone column into a
    staged table (pre-cleaned value once per row, not once per use), then the library look-up
    tables for the values the fast path left undecided. Returns (stage table, {col: final expr})
    and the joins to apply, in the dict under key "__joins"."""
    stage = _tmp("stage")
    sel = ["src.*"]
    for c in email_cols:
        pre, fast = _email_fast_sql(f"src.{c}")
        sel.append(f"{sql_clip(f'src.{c}')} AS __{c}_clip")
        sel.append(f"{fast} AS __{c}_fast")
    for c in phone_cols:
        digits, fast, decided = _phone_fast_sql(f"src.{c}", region)
        sel.append(f"{sql_clip(f'src.{c}')} AS __{c}_clip")
        sel.append(f"{decided} AS __{c}_decided")
        sel.append(f"{fast} AS __{c}_fast")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {stage} AS SELECT {', '.join(sel)} FROM {view} src")
    exprs: dict[str, str] = {}
    joins: list[str] = []
    for c in email_cols:
        lut = _udf_map(con, f"SELECT __{c}_clip AS v FROM {stage} WHERE __{c}_fast IS NULL AND __{c}_clip LIKE '%@%'",
                       normalize_email, _tmp("email"))
        a = _tmp("e")
        joins.append(f"LEFT JOIN {lut} {a} ON {a}.v = s.__{c}_clip AND s.__{c}_fast IS NULL")
        exprs[c] = f"coalesce(s.__{c}_fast, {a}.out)"
    for c in phone_cols:
        lut = _udf_map(con, f"SELECT __{c}_clip AS v FROM {stage} WHERE NOT __{c}_decided",
                       lambda v: normalize_phone(v, region), _tmp("phone"))
        a = _tmp("p")
        joins.append(f"LEFT JOIN {lut} {a} ON {a}.v = s.__{c}_clip AND NOT s.__{c}_decided")
        exprs[c] = f"(CASE WHEN s.__{c}_decided THEN s.__{c}_fast ELSE {a}.out END)"
    exprs["__joins"] = " ".join(joins)
    return stage, exprs


def normalize_contacts_sql(
    con: duckdb.DuckDBPyConnection, rel_name: str, out_name: str, region: str = "FR", temp: bool = False
) -> str:
    """Create table `out_name`: every input column plus the normalised `n_*` matching columns.

    `rel_name` is a table or view in `con` with the contact input contract (missing optional
    columns are treated as NULL)."""
    cols = _columns(con, rel_name)
    # Missing optional columns become NULL so the SQL below can name them.
    needed = ["first_name", "last_name", "email", "phone", "mobile_phone", "company_name", "company_source_id",
              "company_entity_key", "city", "postcode", "job_title", "source_system"]
    view = _tmp("contacts_in")
    extra = ", ".join(f"CAST(NULL AS VARCHAR) AS {c}" for c in needed if c not in cols)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT *{', ' + extra if extra else ''} FROM {rel_name}")
    stage, ex = _staged_email_phones(con, view, ["email"], ["phone", "mobile_phone"], region)
    names = _value_lut(con, stage, ["first_name", "last_name"], sql_last_name_key)
    comp = _value_lut(con, stage, ["company_name"], sql_company_name_key)
    city = _value_lut(con, stage, ["city"], lambda v: sql_fold(sql_clip(v)))
    title = _value_lut(con, stage, ["job_title"], sql_job_title_key)
    pc = _value_lut(con, stage, ["postcode"], lambda v: f"nullif(regexp_replace({sql_clip(v)}, '[^0-9A-Za-z]', '', 'g'), '')")
    internal = [c for c in _columns(con, stage) if c.startswith("__") and c not in cols]
    con.execute(
        f"""
        CREATE OR REPLACE {"TEMP TABLE" if temp else "TABLE"} {out_name} AS
        WITH base AS (
            SELECT s.* EXCLUDE ({', '.join(internal)}),
                   {ex['email']} AS n_email,
                   {ex['phone']} AS n_phone,
                   {ex['mobile_phone']} AS n_mobile,
                   fn.k AS n_first_name, ln.k AS n_last_name, co.k AS n_company, ci.k AS n_city, pc.k AS n_postcode,
                   jt.k AS n_job_title
            FROM {stage} s {ex['__joins']}
            LEFT JOIN {names} fn ON fn.v = CAST(s.first_name AS VARCHAR)
            LEFT JOIN {names} ln ON ln.v = CAST(s.last_name AS VARCHAR)
            LEFT JOIN {comp} co ON co.v = CAST(s.company_name AS VARCHAR)
            LEFT JOIN {city} ci ON ci.v = CAST(s.city AS VARCHAR)
            LEFT JOIN {pc} pc ON pc.v = CAST(s.postcode AS VARCHAR)
            LEFT JOIN {title} jt ON jt.v = CAST(s.job_title AS VARCHAR)
        )
        SELECT base.* EXCLUDE (n_first_name, n_last_name, n_company, n_city, n_postcode, n_job_title),
               n_first_name, n_last_name,
               -- full name, insensitive to a first/last swap (name-frequency rules group on it)
               least(n_first_name, n_last_name) || ' ' || greatest(n_first_name, n_last_name) AS n_full_name,
               {sql_email_local('n_email')} AS n_email_local,
               -- sub-addressing (jean+crm@x.fr) reaches the same mailbox as jean@x.fr
               regexp_replace(n_email, '[+][^@]*@', '@') AS n_email_canon,
               {sql_email_domain('n_email')} AS n_email_domain,
               {sql_is_role('n_email')} AS n_email_is_role,
               {sql_is_free_domain(sql_email_domain('n_email'))} AS n_email_is_free,
               -- the organisation an e-mail domain names ('acme-conseil.fr' -> 'acmeconseil'), free mail excluded:
               -- matched against a company name without its spaces when the other record has no e-mail domain
               CASE WHEN NOT {sql_is_free_domain(sql_email_domain('n_email'))} THEN nullif(regexp_replace(
                   regexp_extract({sql_email_domain('n_email')}, '([^.]+)[.][^.]+$', 1), '[^a-z0-9]', '', 'g'), '') END AS n_email_org,
               n_company,
               -- the company the contact hangs on: its resolved company (the company crosswalk's entity key), the same
               -- whichever CRM holds the contact, or else its CRM company record, comparable within one source system
               CASE WHEN {sql_clip('company_entity_key')} IS NOT NULL
                    THEN 'entity' || chr(31) || {sql_clip('company_entity_key')}
                    WHEN {sql_clip('company_source_id')} IS NOT NULL
                    THEN CAST(source_system AS VARCHAR) || chr(31) || {sql_clip('company_source_id')} END AS n_company_ref,
               n_city, n_postcode, n_job_title
        FROM base
        """
    )
    for t in (stage, names, comp, city, title, pc):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return out_name


def _registry_ids_table(con: duckdb.DuckDBPyConnection, view: str) -> str:
    """(siren, siret, vat) raw triple -> validated n_siren, n_siret, n_vat, via stdnum once per distinct triple."""
    import pyarrow as pa

    rows = con.execute(
        f"SELECT DISTINCT {sql_clip('siren')}, {sql_clip('siret')}, {sql_clip('vat_number')} FROM {view}"
    ).fetchall()
    out_siren, out_siret, out_vat = [], [], []
    for siren, siret, vat in rows:
        n_siret = normalize_siret(siret)
        n_siren = best_siren(siren, siret, vat)
        out_siret.append(n_siret)
        out_siren.append(n_siren)
        out_vat.append(normalize_vat(vat) or vat_from_siren(n_siren))
    name = _tmp("ids")
    tbl = pa.table(
        {
            "siren_raw": pa.array([r[0] for r in rows], pa.string()),
            "siret_raw": pa.array([r[1] for r in rows], pa.string()),
            "vat_raw": pa.array([r[2] for r in rows], pa.string()),
            "n_siren": pa.array(out_siren, pa.string()),
            "n_siret": pa.array(out_siret, pa.string()),
            "n_vat": pa.array(out_vat, pa.string()),
        }
    )
    con.register(f"{name}_arrow", tbl)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
    con.unregister(f"{name}_arrow")
    return name


def normalize_companies_sql(
    con: duckdb.DuckDBPyConnection, rel_name: str, out_name: str, region: str = "FR", temp: bool = False
) -> str:
    """Create table `out_name`: every input column plus the normalised `n_*` matching columns."""
    cols = _columns(con, rel_name)
    needed = [
        "name", "siren", "siret", "vat_number", "domain", "phone", "address", "postcode", "city",
        "email", "metadata_crm_company_id",
    ]
    view = _tmp("companies_in")
    extra = ", ".join(f"CAST(NULL AS VARCHAR) AS {c}" for c in needed if c not in cols)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT *{', ' + extra if extra else ''} FROM {rel_name}")
    ids = _registry_ids_table(con, view)
    j_phone, e_phone = sql_phone_column(con, view, "phone", region)
    j_email, e_email = sql_email_column(con, view, "email")
    con.execute(
        f"""
        CREATE OR REPLACE {"TEMP TABLE" if temp else "TABLE"} {out_name} AS
        WITH base AS (
            SELECT src.*, ids.n_siren, ids.n_siret, ids.n_vat,
                   {e_phone} AS n_phone, {e_email} AS n_email
            FROM {view} src
            LEFT JOIN {ids} ids
              ON ids.siren_raw IS NOT DISTINCT FROM {sql_clip('src.siren')}
             AND ids.siret_raw IS NOT DISTINCT FROM {sql_clip('src.siret')}
             AND ids.vat_raw IS NOT DISTINCT FROM {sql_clip('src.vat_number')}
            {j_phone} {j_email}
        ), d AS (
            SELECT base.*,
                   coalesce({sql_domain('domain')},
                            CASE WHEN NOT {sql_is_free_domain(sql_email_domain('n_email'))}
                                 THEN {sql_email_domain('n_email')} END) AS n_domain
            FROM base
        )
        SELECT d.*,
               {sql_company_name_key('name')} AS n_name,
               {sql_address_key('address')} AS n_address,
               {sql_is_free_domain('n_domain')} AS n_domain_is_free,
               {sql_fold(sql_clip('city'))} AS n_city,
               nullif(regexp_replace({sql_clip('postcode')}, '[^0-9A-Za-z]', '', 'g'), '') AS n_postcode,
               nullif(trim(CAST(metadata_crm_company_id AS VARCHAR)), '') AS n_crm_company_id
        FROM d
        """
    )
    return out_name
