"""quality.value_checks: Python-validated values that rule SQL joins to.

Email syntax (email-validator, no DNS), phone numbers (phonenumbers) and SIREN/SIRET/VAT keys (python-stdnum) cannot
be checked in SQL. Validating them here and storing the verdict per distinct value keeps the rules plain SQL that
runs on DuckDB and PostgreSQL alike (a DuckDB Python UDF would not exist on PostgreSQL). Only values not yet checked
are validated on each run, so the cost follows new values, not table size.
"""
from __future__ import annotations

from typing import Callable, Iterable

import sqlalchemy as sa

from warehouse.connection import Warehouse

VALUE_CHECKS_DDL = """create table if not exists quality.value_checks (
    kind text not null, value text not null, is_valid boolean not null, normalised text, reason text)"""

#: kind -> (schema.table, column) pairs whose distinct values are checked
SOURCES: dict[str, list[tuple[str, str]]] = {
    "email": [("staging.contacts", "email")],
    "phone": [("staging.contacts", "phone"), ("staging.contacts", "mobile_phone"), ("staging.companies", "phone")],
    "siren": [("staging.companies", "siren")],
    "siret": [("staging.companies", "siret")],
    "vat": [("staging.companies", "vat_number")],
}


def check_email(value: str) -> tuple[bool, str | None, str | None]:
    from email_validator import EmailNotValidError, validate_email

    try:
        info = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        return False, None, str(exc)
    return True, info.normalized.lower(), None


def check_phone(value: str, region: str = "FR") -> tuple[bool, str | None, str | None]:
    import phonenumbers

    from transforms.normalize import parse_phone

    try:
        num = parse_phone(value, region)
    except phonenumbers.NumberParseException as exc:
        return False, None, f"not a phone number: {exc}"
    if not phonenumbers.is_valid_number(num):
        return False, None, "not a valid number for its country"
    return True, phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164), None


def _stdnum(module) -> Callable[[str], tuple[bool, str | None, str | None]]:
    from stdnum.exceptions import ValidationError

    def check(value: str):
        try:
            return True, module.validate(value), None
        except ValidationError as exc:
            return False, None, exc.message
    return check


def check_vat(value: str) -> tuple[bool, str | None, str | None]:
    from stdnum import vatin
    from stdnum.exceptions import ValidationError
    from stdnum.fr import tva

    compact = value.replace(" ", "").replace(".", "").upper()
    # With a country prefix any VATIN (FR, BE, CHE...); bare digits are read as a French TVA number.
    module = vatin if compact[:2].isalpha() else tva
    try:
        return True, module.validate(compact), None
    except ValidationError as exc:
        return False, None, exc.message


def checker(kind: str) -> Callable[[str], tuple[bool, str | None, str | None]]:
    from stdnum.fr import siren, siret

    base, _, region = kind.partition(":")
    if base == "email":
        return check_email
    if base == "phone":
        return lambda v: check_phone(v, region or "FR")
    if base == "siren":
        return _stdnum(siren)
    if base == "siret":
        return _stdnum(siret)
    if base == "vat":
        return check_vat
    raise ValueError(f"unknown value-check kind {kind!r}")


def refresh_value_checks(wh: Warehouse, kinds: Iterable[str], existing: set[tuple[str, str]] | None = None) -> int:
    """Validate the values of `kinds` not checked yet; returns how many were added."""
    kinds = sorted(set(kinds))
    if not kinds:
        return 0
    wh.ensure_schemas(["quality"])
    wh.execute(VALUE_CHECKS_DDL)
    if existing is None:
        existing = {(r["table_schema"], r["table_name"]) for r in wh.query(
            "select table_schema, table_name from information_schema.tables")}
    added = 0
    for kind in kinds:
        base = kind.partition(":")[0]
        selects = [
            f"select {col} as value from {table} where {col} is not null and trim({col}) <> ''"
            for table, col in SOURCES[base]
            if tuple(table.split(".")) in existing
        ]
        if not selects:
            continue
        new = wh.query(
            f"select distinct s.value from ({' union '.join(selects)}) s where not exists ("
            "select 1 from quality.value_checks v where v.kind = :kind and v.value = s.value)",
            {"kind": kind},
        )
        check = checker(kind)
        rows = []
        for r in new:
            ok, normalised, reason = check(r["value"])
            rows.append({"kind": kind, "value": r["value"], "is_valid": ok, "normalised": normalised,
                         "reason": reason})
        insert_rows(wh, "quality.value_checks", rows)
        added += len(rows)
    return added


def insert_rows(wh: Warehouse, table: str, rows: list[dict], chunk: int = 500, conn=None) -> None:
    """Insert dict rows with bound parameters, several rows per statement (fast on both engines)."""
    if not rows:
        return
    cols = list(rows[0])

    def run(c):
        for start in range(0, len(rows), chunk):
            part = rows[start:start + chunk]
            values, params = [], {}
            for i, row in enumerate(part):
                values.append("(" + ", ".join(f":{col}_{i}" for col in cols) + ")")
                params.update({f"{col}_{i}": row[col] for col in cols})
            c.execute(sa.text(f"insert into {table} ({', '.join(cols)}) values {', '.join(values)}"), params)

    if conn is not None:
        run(conn)
    else:
        with wh.connect() as c:
            run(c)
