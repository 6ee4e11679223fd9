"""Reading and validating input files (CSV or Excel): every file is parsed and checked in full before anything is
yielded, and every problem is reported as `file:line: reason` (Excel: `file[sheet]:row: reason`)."""
from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from connectors.inputs import settings

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CENT = Decimal("0.01")


class InputFileError(ValueError):
    """One or more input files are malformed; the message lists `file:line: reason` for each problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        shown = self.problems[: settings.MAX_ERRORS_SHOWN]
        more = len(self.problems) - len(shown)
        super().__init__("malformed input file(s), nothing loaded:\n  " + "\n  ".join(shown)
                         + (f"\n  ... and {more} more" if more > 0 else ""))


@dataclass
class Sheet:
    """One table read from a file: its kind, where it came from, its header and its data rows (with line numbers)."""

    kind: str
    source_file: str
    sheet: str  # "" for CSV
    file_hash: str
    header: List[str]
    rows: List[Tuple[int, List[Any]]] = field(default_factory=list)

    def where(self, line: int) -> str:
        return f"{self.source_file}[{self.sheet}]:{line}" if self.sheet else f"{self.source_file}:{line}"


def _fold(text: Any) -> str:
    s = unicodedata.normalize("NFKD", str(text or "")).encode("ascii", "ignore").decode().lower().strip()
    return re.sub(r"[^a-z0-9]+", "_", s).strip("_")


def kind_of(name: str) -> Optional[str]:
    folded = _fold(Path(name).stem)
    return next((k for k in settings.KINDS if folded.startswith(k)), None)


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def discover(folder: str | Path) -> List[Path]:
    """Input files in the folder (not recursive), sorted; Office lock files and hidden files skipped."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"inputs folder {root} does not exist (set SOURCES__INPUTS__FOLDER)")
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in settings.EXTENSIONS
                  and not p.name.startswith(("~$", ".")))


def read_sheets(path: Path) -> List[Sheet]:
    """The tables of one file: a CSV is one table (kind from its name); a workbook gives each sheet named after a
    kind, or its only sheet when the file name says the kind."""
    data = path.read_bytes()
    digest = file_hash(data)
    if path.suffix.lower() == ".csv":
        kind = kind_of(path.name)
        if kind is None:
            return []
        text = _decode(data)
        try:
            dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        lines = list(csv.reader(io.StringIO(text), dialect))
        header = lines[0] if lines else []
        rows = [(i + 1, r) for i, r in enumerate(lines) if i > 0 and any(c.strip() for c in r)]
        return [Sheet(kind, path.name, "", digest, header, rows)]
    from openpyxl import load_workbook  # only when there is a workbook to read

    wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        named = [(ws, kind_of(ws.title)) for ws in wb.worksheets]
        chosen = [(ws, k) for ws, k in named if k]
        if not chosen and len(wb.worksheets) == 1 and kind_of(path.name):
            chosen = [(wb.worksheets[0], kind_of(path.name))]
        out = []
        for ws, kind in chosen:
            values = list(ws.iter_rows(values_only=True))
            header = [("" if c is None else str(c)) for c in (values[0] if values else [])]
            rows = [(i + 1, list(r)) for i, r in enumerate(values)
                    if i > 0 and any(c not in (None, "") and str(c).strip() for c in r)]
            out.append(Sheet(kind, path.name, ws.title, digest, header, rows))
        return out
    finally:
        wb.close()


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252")  # Excel's "CSV" on a French Windows


# ------------------------------------------------------------------------------------------- values

class BadValue(ValueError):
    pass


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def parse_date(value: Any, what: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    s = _text(value)
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d"):
        try:
            return datetime.strptime(s, fmt).date()
        except ValueError:
            continue
    raise BadValue(f"{what} {s!r} is not a date (YYYY-MM-DD or DD/MM/YYYY)")


def parse_month(value: Any) -> date:
    if isinstance(value, (date, datetime)):
        d = value.date() if isinstance(value, datetime) else value
        return d.replace(day=1)
    s = _text(value)
    m = re.fullmatch(r"(\d{4})-(\d{1,2})", s) or None
    if m:
        year, month = int(m.group(1)), int(m.group(2))
    else:
        m = re.fullmatch(r"(\d{1,2})/(\d{4})", s)
        if m:
            year, month = int(m.group(2)), int(m.group(1))
        else:
            return parse_date(s, "month").replace(day=1)
    if not 1 <= month <= 12:
        raise BadValue(f"month {s!r} is not a month (YYYY-MM)")
    return date(year, month, 1)


def parse_amount(value: Any, what: str) -> Decimal:
    if isinstance(value, bool):
        raise BadValue(f"{what} {value!r} is not a number")
    if isinstance(value, (int, float, Decimal)):
        amount = Decimal(str(value))
    else:
        s = _text(value).replace("\u00a0", "").replace("\u202f", "").replace(" ", "").replace("€", "")
        if "," in s and "." in s:
            s = s.replace(".", "").replace(",", ".") if s.rfind(",") > s.rfind(".") else s.replace(",", "")
        else:
            s = s.replace(",", ".")
        try:
            amount = Decimal(s)
        except InvalidOperation:
            raise BadValue(f"{what} {_text(value)!r} is not a number") from None
    if not amount.is_finite():
        raise BadValue(f"{what} {_text(value)!r} is not a number")
    if amount < 0:
        raise BadValue(f"{what} {_text(value)} is negative")
    return amount.quantize(_CENT, rounding=ROUND_HALF_UP)


# ------------------------------------------------------------------------------------------- validation

def column_map(sheet: Sheet) -> Tuple[Dict[str, int], List[str]]:
    """canonical column -> index, and the problems with the header."""
    aliases = {alias: canon for canon, names in settings.COLUMNS[sheet.kind].items() for alias in names}
    index: Dict[str, int] = {}
    for i, name in enumerate(sheet.header):
        canon = aliases.get(_fold(name))
        if canon and canon not in index:
            index[canon] = i
    missing = [c for c in settings.REQUIRED[sheet.kind] if c not in index]
    problems = [f"{sheet.where(1)}: missing column(s) {', '.join(missing)} "
                f"(header: {', '.join(h for h in sheet.header if h)})"] if missing else []
    if sheet.kind == "rep_costs" and not missing and "hourly_cost" not in index and not (
            "monthly_cost" in index and "monthly_hours" in index):
        problems.append(f"{sheet.where(1)}: missing column hourly_cost (or monthly_cost and monthly_hours)")
    return index, problems


def validate_marketing(sheet: Sheet, default_currency: str) -> Tuple[List[Dict[str, Any]], List[str]]:
    index, problems = column_map(sheet)
    if problems:
        return [], problems
    rows, seen = [], {}
    for line, cells in sheet.rows:
        get = lambda c: cells[index[c]] if c in index and index[c] < len(cells) else None  # noqa: E731
        try:
            month = parse_month(get("month"))
            channel = re.sub(r"\s+", "_", _text(get("channel")).upper())
            campaign = _text(get("campaign"))
            if not channel:
                raise BadValue("channel is empty")
            if not campaign:
                raise BadValue("campaign is empty")
            amount = parse_amount(get("amount"), "amount")
            currency = (_text(get("currency")) or default_currency).upper()
            if not re.fullmatch(r"[A-Z]{3}", currency):
                raise BadValue(f"currency {currency!r} is not an ISO 4217 code")
            tier = _text(get("tier")) or None
        except BadValue as exc:
            problems.append(f"{sheet.where(line)}: {exc}")
            continue
        key = (month, channel, campaign.lower(), (tier or "").lower())
        if key in seen:
            problems.append(f"{sheet.where(line)}: same month, channel, campaign and tier as line {seen[key]}")
            continue
        seen[key] = line
        rows.append({"month": month, "channel": channel, "campaign": campaign, "tier": tier, "amount": amount,
                     "currency": currency, "line": line})
    return rows, problems


def validate_rep_costs(sheet: Sheet, known_reps: Optional[Iterable[str]]) -> Tuple[List[Dict[str, Any]], List[str]]:
    index, problems = column_map(sheet)
    if problems:
        return [], problems
    known = {e.strip().lower() for e in known_reps} if known_reps is not None else None
    rows = []
    for line, cells in sheet.rows:
        get = lambda c: cells[index[c]] if c in index and index[c] < len(cells) else None  # noqa: E731
        try:
            email = _text(get("rep_email")).lower()
            if not _EMAIL_RE.match(email):
                raise BadValue(f"rep_email {email!r} is not an email address")
            if known is not None and email not in known:
                raise BadValue(f"unknown rep {email!r} (not a CRM user)")
            if _text(get("hourly_cost")):
                hourly = parse_amount(get("hourly_cost"), "hourly_cost")
            elif _text(get("monthly_cost")) or _text(get("monthly_hours")):
                monthly = parse_amount(get("monthly_cost"), "monthly_cost")
                hours = parse_amount(get("monthly_hours"), "monthly_hours")
                if hours <= 0:
                    raise BadValue("monthly_hours must be more than 0")
                hourly = (monthly / hours).quantize(_CENT, rounding=ROUND_HALF_UP)
            else:
                raise BadValue("no hourly_cost (nor monthly_cost and monthly_hours)")
            valid_from = parse_date(get("valid_from"), "valid_from")
            valid_to = parse_date(get("valid_to"), "valid_to") if _text(get("valid_to")) or isinstance(
                get("valid_to"), (date, datetime)) else None
            if valid_to is not None and valid_to < valid_from:
                raise BadValue(f"valid_to {valid_to} is before valid_from {valid_from}")
        except BadValue as exc:
            problems.append(f"{sheet.where(line)}: {exc}")
            continue
        rows.append({"rep_email": email, "hourly_cost": hourly, "valid_from": valid_from, "valid_to": valid_to,
                     "line": line, "_where": sheet.where(line)})
    return rows, problems


def overlaps(rows: Sequence[Dict[str, Any]]) -> List[str]:
    """Cost periods of one rep that overlap (a day would have two costs)."""
    problems = []
    by_rep: Dict[str, List[Dict[str, Any]]] = {}
    for r in rows:
        by_rep.setdefault(r["rep_email"], []).append(r)
    for email, periods in by_rep.items():
        periods.sort(key=lambda r: r["valid_from"])
        for a, b in zip(periods, periods[1:]):
            if a["valid_to"] is None or a["valid_to"] >= b["valid_from"]:
                problems.append(f"{b['_where']}: period from {b['valid_from']} for {email} overlaps "
                                f"{a['_where']} ({a['valid_from']} to {a['valid_to'] or 'open'})")
    return problems
