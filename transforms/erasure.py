"""Erasing a person everywhere in the warehouse (a GDPR erasure request): `crm-etl forget`.

`find` turns what the request names (emails, `source:id` contact references) into the person's records: the
staging.contacts (and raw contact) rows with that email or id, every record core.contact_crosswalk puts in the same
entity (the same person in the other CRM), and the Koban leads with one of the person's emails. `plan` lists, from
the warehouse's own catalogue, every table row holding them; `erase` runs the plan in one transaction, records the
erasure in quality.erasures (hashes, no personal data), rewrites the storage the rows lived in (`compact`: a DELETE
leaves their bytes in the file) and deletes the contacts identity state (the next identity run rebuilds it in full).
Before any of it, `scan_dlt_files` reads every file dlt keeps on disk (DLT_DATA_DIR/pipelines: load packages, gzip
or not, parquet; run traces) for the person's emails and ids: a package not loaded yet that names them stops the
erasure (PendingPackages: erased now, they would come back with its load) unless the caller asks to abort those
pipelines' pending packages (`abort_pending`); the files of loaded packages naming them (archives dlt never reads
again; the whole file goes, other people's records in it too) and the last run traces are deleted, and counted in
quality.erasures.files_deleted. The project's .dlt/config.toml has dlt delete a package's data files once loaded
and empty the raw_*_staging tables after a merge, so normally there is little left to find.

What goes: the raw contact rows and their dlt child tables (by `_dlt_root_id`), contact property history and
associations, Koban leads, `gone_records` and `_quarantine` rows naming them, the same in the `raw_*_staging`
datasets; staging / core rows keyed by the contact (contact_id, contact_key, entity_key in the primary key);
quality.violations of the records, quality.quarantine rows whose payload names the email or id, cached email / phone
verdicts (quality.value_checks). Activities and deals stay, unlinked (contact id set NULL, Koban's contact label
too), as HubSpot does when a contact is deleted. Kept: billing (Stripe; Koban invoices), under accounting retention.
Not reached: the CRMs themselves (the command says so); a file dlt needs to run (pipeline state, schemas) is
reported, never deleted (dlt's state may hold record ids of an incremental overlap window; no email in the
sandbox's runs).

Erasures stick: a CRM keeps a deleted contact a while (HubSpot 90 days, archived; Koban, Obsolete), so a full read
(a first sync, `crm-etl resync`, a Koban reconciliation) can load the person again. quality.erasures.erased keeps
the sha256 of every email and SOURCE:ID erased; `reapply`, run by every HubSpot and Koban sync asset after its load,
finds raw contact rows matching them (hashed by the warehouse, `returned`) and erases those people again.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import sqlalchemy as sa

from transforms.sales_model import _sql_literal as _lit
from warehouse.connection import Warehouse, dlt_pipelines_dir, qualify, quote_ident
from warehouse.locks import sync_lock

#: CRM sources whose raw datasets hold contacts: dataset -> (contacts table, email column).
RAW_CONTACTS = {"hubspot": ("contacts", "email"), "koban": ("contacts", "e_mail")}
#: Kept under accounting retention (never touched), said in the output.
KEPT = ("Stripe billing data (raw_stripe*, staging.billing_*, invoices): accounting retention",
        "Koban invoices (raw_koban.invoices keeps its contact reference): accounting retention")
ERASURES_DDL = """create table if not exists quality.erasures (
    erased_at timestamptz not null,
    subject text not null,
    records_found integer not null,
    rows_deleted text not null,
    rows_unlinked text not null,
    files_deleted text
)"""
#: quality.erasures tables written before files_deleted / erased existed get the columns (NULL: not recorded then).
ERASURES_MIGRATIONS = ("alter table quality.erasures add column if not exists files_deleted text",
                       "alter table quality.erasures add column if not exists erased text")
#: Load-package folders of a dlt pipeline's working folder, and whether their packages are still to be loaded.
PACKAGE_FOLDERS = {("load", "loaded"): False, ("load", "normalized"): True, ("load", "new"): True,
                   ("normalize", "extracted"): True}
#: Folders of a package holding its job (data) files.
JOB_FOLDERS = ("new_jobs", "started_jobs", "completed_jobs", "failed_jobs")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def parse_contact(ref: str) -> tuple[str, str]:
    """`hubspot:10001806` -> ('hubspot', '10001806')."""
    source, sep, rid = ref.partition(":")
    if not sep or not source.strip() or not rid.strip():
        raise ValueError(f"{ref!r}: expected SOURCE:ID, e.g. hubspot:10001806")
    return source.strip().lower(), rid.strip()


def subject_hashes(emails: Iterable[str], contacts: Iterable[tuple[str, str]]) -> list[str]:
    """sha256 of each normalised email and `source:id` named by the request (what quality.erasures keeps)."""
    items = [normalise_email(e) for e in emails] + [f"{s}:{i}" for s, i in contacts]
    return sorted({hashlib.sha256(x.encode()).hexdigest() for x in items})


def _in(column: str, values: Iterable[str]) -> str:
    values = sorted(set(values))
    return f"{column} in ({', '.join(_lit(v) for v in values)})" if values else "false"


def _any(conds: Iterable[str]) -> str:
    conds = [c for c in conds if c != "false"]
    return "(" + " or ".join(conds) + ")" if conds else "false"


@dataclass
class Person:
    """The records of one erasure request."""

    emails: set[str] = field(default_factory=set)  # the request's plus every found record's (normalised)
    records: set[tuple[str, str]] = field(default_factory=set)  # (source_system, contact id): named or found
    seen: set[tuple[str, str]] = field(default_factory=set)  # of which found in a contact table or the crosswalk
    entity_keys: set[str] = field(default_factory=set)  # core.contact_crosswalk entities
    leads: set[str] = field(default_factory=set)  # Koban lead ids
    phones: set[str] = field(default_factory=set)  # as stored in staging (for quality.value_checks)

    def ids(self, source: str) -> set[str]:
        return {i for s, i in self.records if s == source}

    def record_match(self, source_col: str, id_col: str) -> str:
        by_source: dict[str, set[str]] = {}
        for s, i in self.records:
            by_source.setdefault(s, set()).add(i)
        return _any(f"({source_col} = {_lit(s)} and {_in(id_col, ids)})" for s, ids in sorted(by_source.items()))

    def payload_match(self, payload_col: str, object_col: str) -> str:
        """A payload (raw JSON text) naming one of the emails, or, for a contact or lead, one of their ids as a JSON
        string (an id alone could be another object's)."""
        ids = [f'"{i}"' for _, i in sorted(self.records)] + [f'"{i}"' for i in sorted(self.leads)]
        by_id = _any(f"strpos({payload_col}, {_lit(n)}) > 0" for n in ids)
        return _any([f"strpos(lower({payload_col}), {_lit(e)}) > 0" for e in sorted(self.emails)]
                    + ([f"({object_col} in ('contacts', 'leads') and {by_id})"] if by_id != "false" else []))


@dataclass
class Step:
    schema: str
    table: str
    where: str
    unlink: tuple[str, ...] = ()  # columns set NULL instead of deleting the row

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"


class _Catalog:
    def __init__(self, wh: Warehouse):
        rows = wh.query(
            "select c.table_schema as s, c.table_name as t, c.column_name as c from information_schema.columns c "
            "join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name "
            "where t.table_type = 'BASE TABLE' order by c.table_schema, c.table_name, c.ordinal_position")
        self.tables: dict[tuple[str, str], list[str]] = {}
        for r in rows:
            self.tables.setdefault((r["s"], r["t"]), []).append(r["c"])

    def has(self, schema: str, table: str) -> bool:
        return (schema, table) in self.tables

    def cols(self, schema: str, table: str) -> list[str]:
        return self.tables.get((schema, table), [])

    def schemas(self, prefix: str) -> list[str]:
        """`raw_<source>` and its dlt staging dataset `raw_<source>_staging`, those that exist."""
        names = {s for s, _ in self.tables}
        return [s for s in (prefix, f"{prefix}_staging") if s in names]

    def children(self, schema: str, parent: str) -> list[str]:
        return sorted(t for s, t in self.tables if s == schema and t.startswith(f"{parent}__")
                      and "_dlt_root_id" in self.tables[(s, t)])


def find(wh: Warehouse, emails: Iterable[str] = (), contacts: Iterable[tuple[str, str]] = (),
         cat: _Catalog | None = None) -> Person:
    """The person's records (see the module doc)."""
    cat = cat or _Catalog(wh)
    p = Person(emails={normalise_email(e) for e in emails if e.strip()}, records=set(contacts))
    asked = set(p.emails)

    def contact_rows(email_set: set[str]) -> list[dict]:
        rows = []
        if cat.has("staging", "contacts"):
            rows += wh.query(
                "select source_system, contact_id, email, phone, mobile_phone from staging.contacts where "
                + _any([_in("lower(trim(email))", email_set), p.record_match("source_system", "contact_id")]))
        for source, (table, col) in RAW_CONTACTS.items():
            for schema in cat.schemas(f"raw_{source}"):
                if cat.has(schema, table) and col in cat.cols(schema, table):
                    rows += [dict(r, source_system=source) for r in wh.query(
                        f"select id as contact_id, {quote_ident(col)} as email from {qualify(schema, table)} where "
                        + _any([_in(f"lower(trim({quote_ident(col)}))", email_set), _in("id", p.ids(source))]))]
        return rows

    def absorb(rows: list[dict]) -> None:
        for r in rows:
            p.records.add((r["source_system"], str(r["contact_id"])))
            p.seen.add((r["source_system"], str(r["contact_id"])))
            if r.get("email") and r["email"].strip():
                p.emails.add(normalise_email(r["email"]))
            for k in ("phone", "mobile_phone"):
                if r.get(k):
                    p.phones.add(r[k])

    absorb(contact_rows(asked))
    if cat.has("core", "contact_crosswalk") and p.records:
        p.entity_keys = {r["entity_key"] for r in wh.query(
            "select distinct entity_key from core.contact_crosswalk where "
            + p.record_match("source_system", "source_id"))}
        if p.entity_keys:
            before = set(p.records)
            twins = {(r["source_system"], str(r["source_id"])) for r in wh.query(
                "select source_system, source_id from core.contact_crosswalk where " + _in("entity_key", p.entity_keys))}
            p.records |= twins
            p.seen |= twins
            if p.records != before:  # the twins' own rows: their emails and phones
                absorb(contact_rows(set()))
    for schema in cat.schemas("raw_koban"):
        if cat.has(schema, "leads") and "e_mail" in cat.cols(schema, "leads") and p.emails:
            p.leads |= {str(r["id"]) for r in wh.query(
                f"select id from {qualify(schema, 'leads')} where " + _in("lower(trim(e_mail))", p.emails))}
    return p


def plan(wh: Warehouse, p: Person, cat: _Catalog | None = None) -> list[Step]:
    """Every table row holding the person, read from the warehouse's catalogue (children before their parents)."""
    from warehouse.dictionary import load_dictionary

    cat, steps = cat or _Catalog(wh), []

    def raw_record(schema: str, table: str, where: str) -> None:
        if not cat.has(schema, table) or where == "false":
            return
        for child in cat.children(schema, table):
            steps.append(Step(schema, child, f"_dlt_root_id in (select _dlt_id from {qualify(schema, table)} "
                                             f"where {where})"))
        steps.append(Step(schema, table, where))

    def quarantine(schema: str) -> None:
        if cat.has(schema, "_quarantine"):
            cols = cat.cols(schema, "_quarantine")
            conds = [p.payload_match("payload", "object_type")] if {"payload", "object_type"} <= set(cols) else []
            if {"record_id", "object_type"} <= set(cols):
                conds.append(f"(object_type in ('contacts', 'leads') and "
                             f"{_in('record_id', p.ids(schema.split('_')[1]) | p.leads)})")
            steps.append(Step(schema, "_quarantine", _any(conds)))

    hs = p.ids("hubspot")
    for schema in cat.schemas("raw_hubspot"):
        raw_record(schema, "contacts", _in("id", hs))
        raw_record(schema, "contacts_property_history", _in("object_id", hs))
        for (s, t), cols in sorted(cat.tables.items()):
            if s == schema and t.startswith("associations_") and {"from_object_type", "to_object_type"} <= set(cols):
                steps.append(Step(s, t, _any([f"(from_object_type = 'contact' and {_in('from_id', hs)})",
                                              f"(to_object_type = 'contact' and {_in('to_id', hs)})"])))
        quarantine(schema)
    kb = p.ids("koban")
    for schema in cat.schemas("raw_koban"):
        for (s, t), cols in sorted(cat.tables.items()):  # activities and deals keep existing, unlinked
            if s == schema and "contact__guid" in cols and t not in ("contacts", "invoices") and kb:
                steps.append(Step(s, t, _in("contact__guid", kb), tuple(c for c in cols if c.startswith("contact__"))))
        raw_record(schema, "contacts", _in("id", kb))
        raw_record(schema, "leads", _in("id", p.leads))
        if cat.has(schema, "gone_records"):
            steps.append(Step(schema, "gone_records", _any([f"(object_type = 'contacts' and {_in('id', kb)})",
                                                            f"(object_type = 'leads' and {_in('id', p.leads)})"])))
        quarantine(schema)

    dictionary = load_dictionary()
    for schema in ("staging", "core"):
        for (s, t), cols in sorted(cat.tables.items()):
            if s != schema:
                continue
            key = dictionary.get(s, {}).get(t, {}).get("primary_key", [])
            if t == "contact_crosswalk":
                steps.append(Step(s, t, p.record_match("source_system", "source_id")))
            elif t == "contact_golden":
                steps.append(Step(s, t, _in("entity_key", p.entity_keys)))
            elif {"source_system", "contact_id"} <= set(cols):
                where = p.record_match("source_system", "contact_id")
                steps.append(Step(s, t, where, () if "contact_id" in key or "contact_key" in key else ("contact_id",)))
            elif "contact_key" in cols:
                steps.append(Step(s, t, _in("contact_key", p.entity_keys),
                                  () if "contact_key" in key else ("contact_key",)))
        if cat.has(schema, "_table_versions"):  # the next identity run writes the contact tables whole
            steps.append(Step(schema, "_table_versions", _in("table_name", {"contact_crosswalk", "contact_golden"})))
    if cat.has("quality", "violations"):
        steps.append(Step("quality", "violations", "object = 'contact' and "
                          + p.record_match("source_system", "record_id")))
    if cat.has("quality", "quarantine"):
        steps.append(Step("quality", "quarantine", _any([
            f"(source in ('hubspot', 'koban') and object in ('contacts', 'leads') and "
            f"{_in('record_id', {i for _, i in p.records} | p.leads)})",
            p.payload_match("payload", "object")])))
    if cat.has("quality", "value_checks"):
        steps.append(Step("quality", "value_checks", _any([
            f"(kind = 'email' and {_in('lower(trim(value))', p.emails)})",
            f"(kind like 'phone:%' and {_in('value', p.phones)})"])))
    return [s for s in steps if s.where != "false" and not s.where.endswith("and false")]


@dataclass
class DltFiles:
    """dlt's files on disk (DLT_DATA_DIR/pipelines/<pipeline>/...) naming the person: an email, or a contact or lead
    id as a whole token (a file of a CSV-, JSON- or SQL-like format, gzip-compressed or not; parquet cells)."""

    files: list[Path] = field(default_factory=list)  # job files of loaded packages, last run traces: deleted
    packages: list[Path] = field(default_factory=list)  # loaded packages naming them outside their job files: deleted
    pending: dict[str, list[str]] = field(default_factory=dict)  # pipeline -> load ids still to be loaded
    kept: list[Path] = field(default_factory=list)  # files dlt needs to run (state, schemas): reported, not deleted
    root: Path | None = None

    def to_delete(self) -> dict[str, int]:
        """Files that erase deletes, per pipeline (a whole package counts its files)."""
        out: Counter[str] = Counter(_pipeline_of(self.root, f) for f in self.files)
        for pkg in self.packages:
            out[_pipeline_of(self.root, pkg)] += sum(1 for f in pkg.rglob("*") if f.is_file())
        return dict(out)


class PendingPackages(Exception):
    """dlt load packages not loaded yet name the person: erasing now would let the next load bring them back."""

    def __init__(self, pending: dict[str, list[str]]):
        self.pending = pending
        super().__init__("pending dlt load packages name the person: "
                         + "; ".join(f"{name}: {', '.join(ids)}" for name, ids in sorted(pending.items())))


@dataclass
class Result:
    person: Person
    deleted: dict[str, int]
    unlinked: dict[str, int]
    kept: dict[str, int]  # billing rows naming one of the emails, kept
    state_files: list[str]  # the contacts identity state files deleted (dry run: that would be)
    dry_run: bool
    compacted: str = ""  # how the freed storage was rewritten (a DELETE leaves the bytes in the file's free space)
    dlt_files: DltFiles = field(default_factory=DltFiles)  # dlt's files naming the person (after any abort)
    files_deleted: dict[str, int] = field(default_factory=dict)  # per dlt pipeline (dry run: none)
    aborted: list[str] = field(default_factory=list)  # dlt pipelines whose pending packages were aborted


def _kept_billing(wh: Warehouse, p: Person, cat: _Catalog) -> dict[str, int]:
    out: dict[str, int] = {}
    if not p.emails:
        return out
    for schema in cat.schemas("raw_stripe") + ["staging"]:
        for (s, t), cols in sorted(cat.tables.items()):
            if s == schema and "email" in cols and (schema != "staging" or t.startswith("billing_")):
                n = int(wh.scalar(f"select count(*) from {qualify(s, t)} where "
                                  + _in("lower(trim(email))", p.emails)))
                if n:
                    out[f"{s}.{t}"] = n
    return out


def erase(wh: Warehouse, emails: Iterable[str] = (), contacts: Iterable[tuple[str, str]] = (), *,
          dry_run: bool = False, person: Person | None = None, pipelines_dir: str | Path | None = None,
          drop_pending: bool = False, compact_storage: bool = True) -> Result:
    """Find the person and delete (or, with dry_run, count) every row holding them, in one transaction; then record
    the erasure in quality.erasures and delete the contacts identity state (next identity run: full rebuild).

    First, dlt's files on disk (`pipelines_dir`, default DLT_DATA_DIR/pipelines): a load package not loaded yet that
    names the person raises PendingPackages before anything is changed (erased now, they would come back with its
    load), unless `drop_pending`: then those pipelines' pending packages are aborted (dlt's abort_packages: the
    pipeline state rewinds, so the next sync reads those records again from the source). The files of loaded
    packages naming them (and dlt's last run traces) are deleted before the warehouse rows; the count is recorded."""
    emails, contacts = list(emails), list(contacts)
    cat = _Catalog(wh)  # one read of the catalogue for the whole erasure (the tables it lists do not change)
    p = person or find(wh, emails, contacts, cat)
    root = Path(pipelines_dir or dlt_pipelines_dir())
    disk, aborted, files_deleted = scan_dlt_files(root, p), [], {}
    if disk.pending and not dry_run:
        if not drop_pending:
            raise PendingPackages(disk.pending)
        aborted = abort_pending(wh, root, sorted(disk.pending))
        disk = scan_dlt_files(root, p)
        if disk.pending:
            raise PendingPackages(disk.pending)
    if not dry_run:
        files_deleted = delete_dlt_files(disk)
    steps = plan(wh, p, cat)
    deleted: dict[str, int] = {}
    unlinked: dict[str, int] = {}
    pct = (lambda s: s.replace("%", "%%")) if wh.dialect == "postgres" else (lambda s: s)
    with wh.connect() as conn:
        for step in steps:
            target = qualify(step.schema, step.table)
            n = int(conn.exec_driver_sql(pct(f"select count(*) from {target} where {step.where}")).scalar())
            if not n:
                continue
            counts = unlinked if step.unlink else deleted
            counts[step.name] = counts.get(step.name, 0) + n
            if dry_run:
                continue
            if step.unlink:
                sets = ", ".join(f"{quote_ident(c)} = null" for c in step.unlink)
                conn.exec_driver_sql(pct(f"update {target} set {sets} where {step.where}"))
            else:
                conn.exec_driver_sql(pct(f"delete from {target} where {step.where}"))
        if not dry_run:
            conn.exec_driver_sql("create schema if not exists quality")
            conn.exec_driver_sql(ERASURES_DDL)
            for migration in ERASURES_MIGRATIONS:
                conn.exec_driver_sql(migration)
            conn.execute(sa.text(
                "insert into quality.erasures (erased_at, subject, records_found, rows_deleted, rows_unlinked, "
                "files_deleted, erased) values (:at, :subject, :found, :deleted, :unlinked, :files, :erased)"), {
                "at": dt.datetime.now(dt.timezone.utc), "subject": ",".join(subject_hashes(emails, contacts)),
                "found": len(p.seen) + len(p.leads), "deleted": json.dumps(deleted, sort_keys=True),
                "unlinked": json.dumps(unlinked, sort_keys=True), "files": json.dumps(files_deleted, sort_keys=True),
                # every email and contact record erased, hashed: what reapply() looks for in later syncs
                "erased": ",".join(subject_hashes(p.emails, p.records))})
    found = bool(p.seen or p.leads)
    compacted = (compact(wh, sorted(set(deleted) | set(unlinked)))
                 if compact_storage and not dry_run and (deleted or unlinked) else "")
    if dry_run or not found:
        state_files = [str(f) for f in identity_state_files(wh) if f.exists()] if found else []
    else:
        state_files = delete_identity_state(wh)
    return Result(p, deleted, unlinked, _kept_billing(wh, p, cat), state_files, dry_run, compacted, disk,
                  files_deleted, aborted)


def _pipeline_of(root: Path | None, path: Path) -> str:
    return path.relative_to(root).parts[0] if root else path.name


def _matcher(p: Person):
    """A test on a file's bytes (lower-cased): one of the person's emails, or one of their contact / lead ids as a
    whole token (not inside a longer id or number)."""
    emails = [e.encode() for e in sorted(p.emails) if e]
    ids = sorted({i.lower() for _, i in p.records} | {i.lower() for i in p.leads})
    token = re.compile(rb"(?<![0-9a-z_.-])(?:" + b"|".join(re.escape(i.encode()) for i in ids) + rb")(?![0-9a-z_.-])"
                       ) if ids else None

    def matches(data: bytes) -> bool:
        data = data.lower()
        return any(e in data for e in emails) or bool(token and token.search(data))

    return matches, emails, ids


def _parquet_names(path: Path, emails: list[bytes], ids: list[str]) -> bool:
    """A parquet file (its pages are compressed: bytes say nothing) with a text cell holding an email or equal to
    an id."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    for column in table.columns:
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        lower = pc.utf8_lower(column)
        if ids and pc.any(pc.is_in(lower, value_set=pa.array(ids))).as_py():
            return True
        for e in emails:
            if pc.any(pc.match_substring(lower, e.decode())).as_py():
                return True
    return False


def scan_dlt_files(root: str | Path, p: Person) -> DltFiles:
    """Every file under dlt's pipelines folder naming the person, sorted by what erase does with it (DltFiles)."""
    root = Path(root)
    out = DltFiles(root=root)
    matches, emails, ids = _matcher(p)
    if not (emails or ids) or not root.is_dir():
        return out
    packages: set[Path] = set()
    pending: dict[str, set[str]] = {}
    for f in sorted(root.rglob("*")):
        if not f.is_file():
            continue
        if f.suffix == ".parquet":
            hit = _parquet_names(f, emails, ids)
        else:
            data = f.read_bytes()
            if data[:2] == b"\x1f\x8b":  # dlt writes its job files gzip-compressed by default
                data = gzip.decompress(data)
            hit = matches(data)
        if not hit:
            continue
        parts = f.relative_to(root).parts
        folder = PACKAGE_FOLDERS.get(tuple(parts[1:3])) if len(parts) > 4 else None
        if folder is True:  # a package still to be normalised or loaded
            pending.setdefault(parts[0], set()).add(parts[3])
        elif folder is False:  # a loaded package: an archive dlt does not read again
            if parts[4] in JOB_FOLDERS:
                out.files.append(f)
            else:
                packages.add(root.joinpath(*parts[:4]))
        elif parts[1:] == ("trace.pickle",):  # the pipeline's last run trace, written again by every run
            out.files.append(f)
        else:
            out.kept.append(f)
    out.packages = sorted(packages)
    out.files = [f for f in out.files if not any(pkg in f.parents for pkg in packages)]
    out.pending = {name: sorted(ids) for name, ids in sorted(pending.items())}
    return out


def delete_dlt_files(found: DltFiles) -> dict[str, int]:
    """Delete the loaded packages' files (and whole packages) and traces that name the person: files per pipeline."""
    import shutil

    counts = found.to_delete()
    for f in found.files:
        f.unlink(missing_ok=True)
    for pkg in found.packages:
        shutil.rmtree(pkg, ignore_errors=True)
    return counts


def abort_pending(wh: Warehouse, root: Path, names: list[str]) -> list[str]:
    """Abort every pending load package of these dlt pipelines (dlt's Pipeline.abort_packages): the packages are
    deleted (the one being loaded is closed as aborted, its files moved to the loaded ones, which erase then scans)
    and the pipeline state rewinds to before them, so the next sync reads their records again from the source."""
    import dlt

    wh.dispose()  # DuckDB: the abort's load step opens the file
    with contextlib.ExitStack() as held:  # every source first: a sync running now raises SyncBusy, nothing aborted
        for name in names:
            held.enter_context(sync_lock(name.removeprefix("crm_etl_"), wait=False, pipelines_dir=root,
                                         warehouse_url=wh.url))
        for name in names:
            dlt.pipeline(pipeline_name=name, pipelines_dir=str(root), destination=wh.dlt_destination()).abort_packages()
    return names


def compact(wh: Warehouse, tables: list[str]) -> str:
    """Rewrite the storage the erased rows lived in: a DELETE only marks them, their bytes stay in the file (DuckDB)
    or the table's pages (PostgreSQL) until reused. DuckDB: the whole database is copied into a fresh file that
    replaces the old one (COPY FROM DATABASE: tables, views, macros; seconds for a demo warehouse). PostgreSQL:
    VACUUM FULL of every table touched (a brief exclusive lock each). Run it while no pipeline writes."""
    import os

    if wh.dialect == "duckdb":
        import duckdb

        path = wh.duckdb_path
        if path == ":memory:":
            return ""
        wh.dispose()
        fresh = f"{path}.erasing"
        for leftover in (fresh, f"{fresh}.wal"):
            if os.path.exists(leftover):
                os.remove(leftover)
        con = duckdb.connect(path)
        try:
            con.execute("set enable_progress_bar = false")  # the copy takes seconds: no bar on the caller's stdout
            con.execute("checkpoint")
            name = con.execute("select current_database()").fetchone()[0]
            con.execute(f"attach {_lit(fresh)} as crm_etl_erasing")
            con.execute(f'copy from database "{name}" to crm_etl_erasing')
            con.execute("detach crm_etl_erasing")
        finally:
            con.close()
        os.replace(fresh, path)
        return "the DuckDB file was rewritten (a copy without the freed blocks replaced it)"
    with wh.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in tables:
            schema, table = name.split(".", 1)
            conn.exec_driver_sql(f"vacuum full {qualify(schema, table)}")
    return f"VACUUM FULL rewrote the {len(tables)} tables touched"


def identity_state_files(wh: Warehouse) -> list[Path]:
    from transforms.identity.state import state_path

    path = state_path("contacts", wh.url)
    return [Path(f"{path}{suffix}") for suffix in ("", ".wal", ".building", ".building.wal")]


def delete_identity_state(wh: Warehouse) -> list[str]:
    """Delete the contacts identity state (it holds the person's normalised records), under the state's own lock
    (IdentityState) so that a running identity resolution finishes first. The next identity run rebuilds it in full."""
    from transforms.identity.state import IdentityState

    files = identity_state_files(wh)
    gone = []
    if not files[0].parent.exists():
        return gone
    with IdentityState("contacts", files[0]):  # takes the lock only: the state file is not opened
        for f in files:
            if f.exists():
                f.unlink()
                gone.append(str(f))
    return gone


def erased_hashes(wh: Warehouse, cat: _Catalog | None = None) -> set[str]:
    """The hashes (subject_hashes) of every email and contact record erased so far; empty without quality.erasures."""
    cat = cat or _Catalog(wh)
    if not cat.has("quality", "erasures"):
        return set()
    cols = [c for c in ("subject", "erased") if c in cat.cols("quality", "erasures")]
    out: set[str] = set()
    for r in wh.query(f"select {', '.join(cols)} from quality.erasures"):
        for v in r.values():
            out |= {h for h in (v or "").split(",") if h}
    return out


def _sha256_hex(wh: Warehouse, expr: str) -> str:
    return f"sha256({expr})" if wh.dialect == "duckdb" else f"encode(sha256(convert_to({expr}, 'UTF8')), 'hex')"


def returned(wh: Warehouse, hashes: set[str] | None = None,
             cat: _Catalog | None = None) -> tuple[set[str], set[tuple[str, str]]]:
    """(emails, (source, contact id)) of raw contact rows an erasure removed and a sync loaded again: matched by the
    hashes quality.erasures keeps (the emails and `source:id` of every erased record), never by clear values."""
    cat = cat or _Catalog(wh)
    hashes = erased_hashes(wh, cat) if hashes is None else hashes
    emails: set[str] = set()
    records: set[tuple[str, str]] = set()
    if not hashes:
        return emails, records
    for source, (table, col) in RAW_CONTACTS.items():
        for schema in cat.schemas(f"raw_{source}"):
            if not cat.has(schema, table):
                continue
            email = f"lower(trim({quote_ident(col)}))" if col in cat.cols(schema, table) else "cast(null as text)"
            ref = _lit(f"{source}:") + " || cast(id as text)"
            for r in wh.query(
                    f"select id, e from (select cast(id as text) as id, {email} as e, {_sha256_hex(wh, email)} as he, "
                    f"{_sha256_hex(wh, ref)} as hr from {qualify(schema, table)}) t "
                    f"where {_in('he', hashes)} or {_in('hr', hashes)}"):
                records.add((source, r["id"]))
                if r["e"]:
                    emails.add(r["e"])
    for schema in cat.schemas("raw_koban"):  # a Koban lead alone (no contact record) with an erased email
        if cat.has(schema, "leads") and "e_mail" in cat.cols(schema, "leads"):
            email = "lower(trim(e_mail))"
            emails |= {r["e"] for r in wh.query(
                f"select e from (select {email} as e, {_sha256_hex(wh, email)} as he from {qualify(schema, 'leads')}) t "
                f"where {_in('he', hashes)}")}
    return emails, records


def reapply(wh: Warehouse, log=None) -> Result | None:
    """Erase again the people a sync brought back: a CRM keeps a deleted contact for a while (HubSpot 90 days, as an
    archived record; Koban as Obsolete), and a full read (first sync, `crm-etl resync`, a Koban reconciliation)
    loads it again. Run after every CRM sync; nothing to do (one catalogue read) when nobody was erased. None when
    no erased record came back. A load still pending that names them postpones it to the next sync (logged)."""
    cat = _Catalog(wh)  # read once: the hashes and the raw tables to look in
    hashes = erased_hashes(wh, cat)
    if not hashes:
        return None
    emails, records = returned(wh, hashes, cat)
    if not records and not emails:
        return None
    try:
        # inside a run, a DuckDB file is not swapped for a compacted copy (other steps may hold the old one open):
        # the freed bytes stay in its free blocks until the next `crm-etl forget` rewrites it; PostgreSQL's VACUUM
        # FULL only locks each table briefly
        result = erase(wh, emails, sorted(records), compact_storage=wh.dialect != "duckdb")
    except PendingPackages as exc:
        if log:
            log(f"erased people came back with a sync, but a load still pending names them: erased at the next "
                f"sync ({exc})")
        return None
    if log:
        log(f"{len(records)} erased contact record(s) (and their leads) came back with a sync and were erased again "
            f"(quality.erasures; no personal data logged)"
            + ("; the DuckDB file keeps their bytes in free blocks until the next `crm-etl forget` rewrites it"
               if not result.compacted else ""))
    return result
