"""`crm-etl resolve contacts|companies INPUT --out CLUSTERS.parquet`: entity resolution on a file."""
from __future__ import annotations

import codecs
import re
import sys
import tempfile
import unicodedata
from pathlib import Path

import click

from . import main

_FIELDS = {
    "contacts": ["source_system", "source_id", "first_name", "last_name", "email", "phone", "mobile_phone",
                 "company_name", "company_source_id", "city", "postcode", "job_title", "updated_at",
                 "company_entity_key"],
    "companies": ["source_system", "source_id", "name", "siren", "siret", "vat_number", "domain", "phone",
                  "address", "postcode", "city", "updated_at", "metadata_crm_company_id", "email"],
}
#: The fields records are compared on: an input holding none of them can only give one entity per row.
_MATCHED_ON = {"contacts": ["first_name", "last_name", "email", "phone", "mobile_phone"],
               "companies": ["name", "siren", "siret", "vat_number", "domain"]}
#: Column names French and English CRM exports use for a field, folded (_fold); read without --map, with a note.
#: Not "titre"/"title": in French exports it is the civility (M., Mme), not the job title.
_SHARED_ALIASES = {
    "postcode": ["codepostal", "cp", "postalcode", "zip", "zipcode"],
    "city": ["ville", "commune"],
    "email": ["mail", "courriel", "adressemail", "adresseemail", "adressecourriel", "emailaddress"],
    "updated_at": ["datedemodification", "dernieremodification", "modifiele", "lastmodified", "lastmodifieddate",
                   "updatedat", "miseajour", "datedemiseajour"],
}
_ALIASES = {
    "contacts": {
        "source_id": ["id", "identifiant", "recordid", "contactid", "idcontact", "hsobjectid"],
        "first_name": ["prenom", "firstname", "givenname"],
        "last_name": ["nom", "nomdefamille", "lastname", "surname", "familyname"],
        "phone": ["telephone", "tel", "telfixe", "telephonefixe", "phonenumber", "numerodetelephone"],
        "mobile_phone": ["mobile", "portable", "telmobile", "telportable", "telephonemobile", "telephoneportable",
                         "mobilephone", "mobilephonenumber", "gsm"],
        "company_name": ["societe", "entreprise", "company", "companyname", "organisation", "organization"],
        "job_title": ["fonction", "poste", "jobtitle"],
        **_SHARED_ALIASES,
    },
    "companies": {
        "source_id": ["id", "identifiant", "recordid", "companyid", "identreprise", "hsobjectid"],
        "name": ["nom", "raisonsociale", "denomination", "societe", "entreprise", "company", "companyname"],
        "siren": ["numerosiren", "nsiren"],
        "siret": ["numerosiret", "nsiret"],
        "vat_number": ["tva", "numerodetva", "ntva", "tvaintracommunautaire", "vat", "vatnumber"],
        "domain": ["domaine", "siteweb", "siteinternet", "website", "companydomainname"],
        "phone": ["telephone", "tel", "phonenumber"],
        "address": ["adresse", "rue", "streetaddress"],
        **_SHARED_ALIASES,
    },
}
#: Date forms of exports, tried after ISO 8601: day-first as French exports write them (Excel, Koban, Axonaut...),
#: month-first as US ones do. Two-digit years first: a four-digit form reads "24" as the year 24.
_DATE_FORMS = {
    "day-first": [f"%d{s}%m{s}{y}{t}" for y in ("%y", "%Y") for s in "/-." for t in (" %H:%M:%S", " %H:%M", "")],
    "month-first": [f"%m/%d/{y}{t}" for y in ("%y", "%Y")
                    for t in (" %I:%M:%S %p", " %I:%M %p", " %H:%M:%S", " %H:%M", "")],
}
_OUT_FORMATS = (".parquet", ".csv")
#: Below this, Splink's estimation finds too few pairs per comparison level (or none: it fails).
_MIN_TRAINING_RECORDS = 1_000


@main.command("resolve")
@click.argument("kind", type=click.Choice(["contacts", "companies"]))
@click.argument("input_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Crosswalk (.parquet or .csv): every input row, in the file's order, with its entity.")
@click.option("--golden-out", type=click.Path(dir_okay=False), help="Also write golden records here (.parquet or .csv).")
@click.option("--map", "mapping", multiple=True, metavar="FIELD=COLUMN",
              help="Input column holding a contract field, e.g. --map email=Courriel (repeatable). Common French and "
                   "English column names (Prénom, Nom, E-mail, Téléphone, Société, Code postal...) are read without it.")
@click.option("--source-system", help="Constant source_system when the file has no such column.")
@click.option("--delimiter", type=click.Choice([";", ",", "tab", "|"]),
              help="Field delimiter of a CSV input (default: the one its header and first lines agree on).")
@click.option("--encoding", default="auto", show_default=True,
              help="Text encoding of a CSV input: auto reads UTF-8 (with or without BOM), UTF-16 with a BOM, and "
                   "otherwise Windows-1252 (Excel's French default); or any Python codec name (cp1252, latin-1...).")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Splink match probability threshold, between 0 and 1 (default from config).")
@click.option("--region", default="FR", show_default=True, help="Default phone region.")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False), help="Trained Splink model JSON.")
@click.option("--retrain", is_flag=True, help="Re-estimate the Splink model on this input.")
@click.option("--save-model", type=click.Path(dir_okay=False), help="Write the model used (JSON) here.")
@click.option("--identity-model", metavar="latest|SHA",
              help="Use the model and every match setting a pipeline run used, as kept in the warehouse's "
                   "core.identity_models (CRM_ETL_WAREHOUSE_URL): `latest` for KIND's last run, or a config_sha256 "
                   "(or its first characters) from the run's metadata.")
@click.pass_context
def resolve_cmd(ctx, kind, input_path, out_path, golden_out, mapping, source_system, delimiter, encoding, threshold,
                region, model_path, retrain, save_model, identity_model):
    """Deduplicate and link KIND records in INPUT_PATH (.parquet or .csv)."""
    import json

    import duckdb

    from transforms.identity import CompaniesConfig, ContactsConfig
    from transforms.identity.core import resolve

    _check_outputs(input_path, {"--out": out_path, "--golden-out": golden_out, "--save-model": save_model})
    _refuse_workbook(input_path)
    kept = None
    if identity_model is not None:
        region_given = ctx.get_parameter_source("region") == click.core.ParameterSource.COMMANDLINE
        clash = [flag for flag, given in (("--threshold", threshold is not None), ("--model", model_path),
                                          ("--retrain", retrain), ("--region", region_given)) if given]
        if clash:
            raise click.UsageError(f"--identity-model sets the model and every match setting; drop {', '.join(clash)}")
        if not identity_model.strip():
            raise click.BadParameter("latest, or a config_sha256 (or its first characters)", param_hint="--identity-model")
        kept = _kept_model(kind, identity_model.strip().lower())
    if model_path:
        _model_file(model_path)  # checked before the input is read; core loads it from the config

    con = duckdb.connect()
    # DuckDB draws its bar on stdout, also into a pipe or a log: only for someone watching a terminal
    con.execute(f"SET enable_progress_bar = {str(sys.stdout.isatty()).lower()}")
    con.execute("SET TimeZone = 'UTC'")  # dates with an offset read as UTC instants, as the pipeline keeps them
    scratch = tempfile.TemporaryDirectory(prefix="crm-etl-resolve-")
    ctx.call_on_close(scratch.cleanup)
    cols = _load_input(con, input_path, encoding, Path(scratch.name), {"tab": "\t"}.get(delimiter, delimiter))
    renames = _column_map(kind, input_path, cols, mapping)
    select = [f"{_ident(c)} AS {_ident(renames.get(c, c))}" for c in cols if renames.get(c, c) not in renames.values() or c in renames]
    named = {renames.get(c, c) for c in cols}
    if "source_system" not in named:
        if not source_system:  # every row still says where it came from: the file
            source_system = Path(input_path).name.split(".")[0]
            click.echo(f"note: no source_system column or --source-system: source_system = {source_system!r}", err=True)
        select.append(f"{_literal(source_system)} AS source_system")
    if "source_id" not in named:
        # an export without ids (a trade-show list...): each row is known by its place in the file
        click.echo("note: no source_id column (--map source_id=COLUMN): source_id = the record's number in the "
                   "file, 1 for the first (blank records not counted)", err=True)
        select.append("CAST(__row AS VARCHAR) AS source_id")
    con.execute(f"CREATE TEMP TABLE cli_records AS SELECT __row, {', '.join(select)} FROM cli_raw")
    _check_ids(con, input_path)
    matched = [f for f in _MATCHED_ON[kind] if f in named]
    if not con.execute("SELECT count(*) FROM cli_records WHERE " + " OR ".join(
            f"nullif(trim(CAST({_ident(f)} AS VARCHAR)), '') IS NOT NULL" for f in matched)).fetchone()[0] and \
            con.execute("SELECT count(*) FROM cli_records").fetchone()[0]:
        raise click.ClickException(f"{', '.join(matched)}: empty in every record of {input_path}, nothing to match "
                                   f"on; its columns: {', '.join(cols)}. Name the right ones with --map FIELD=COLUMN")
    if "updated_at" in named:
        _read_dates(con)
    con.execute("CREATE TEMP VIEW cli_input AS SELECT * EXCLUDE (__row) FROM cli_records")
    n = con.execute("SELECT count(*) FROM cli_records").fetchone()[0]
    if retrain and n < _MIN_TRAINING_RECORDS:
        raise click.ClickException(f"--retrain needs at least {_MIN_TRAINING_RECORDS:,} records to estimate a model "
                                   f"(this input: {n}); drop --retrain to use the shipped model")
    config_cls = ContactsConfig if kind == "contacts" else CompaniesConfig
    cfg = config_cls.model_validate_json(kept["match_config"]) if kept else config_cls(region=region)
    if threshold is not None:
        cfg.match_threshold = threshold
    if model_path:
        cfg.model_path = model_path
    try:
        res = resolve(kind, "cli_input", con=con, config=cfg, retrain=retrain,
                      model=json.loads(kept["model"]) if kept else None)
    except ValueError as exc:  # the input or the model does not fit (core names what)
        raise click.ClickException(str(exc)) from None
    except Exception as exc:
        if not (retrain and type(exc).__module__.startswith("splink")):
            raise
        raise click.ClickException(
            f"cannot train a model on this input ({n} records): {str(exc).splitlines()[0]}\n  training needs "
            "thousands of records; drop --retrain to use the shipped model") from None

    def write(select_sql, path):
        fmt = "(FORMAT parquet)" if path.lower().endswith(".parquet") else "(HEADER, DELIMITER ',')"
        con.execute(f"COPY ({select_sql}) TO {_literal(path)} {fmt}")

    # the crosswalk in the input's order, so it reads beside the file; a record given twice where it first comes
    write(f"""SELECT x.* FROM {res.crosswalk} x LEFT JOIN (
                  SELECT CAST(source_system AS VARCHAR) AS s, CAST(source_id AS VARCHAR) AS i, min(__row) AS r
                  FROM cli_records GROUP BY ALL) o ON o.s = x.source_system AND o.i = x.source_id
              ORDER BY o.r, x.source_system, x.source_id""", out_path)
    if golden_out:
        write(f"SELECT * FROM {res.golden} ORDER BY ALL", golden_out)
    if save_model:
        with open(save_model, "w") as fh:
            json.dump(res.model, fh, indent=1)
    rules = con.execute(f"SELECT rule, count(*) FROM {res.crosswalk} GROUP BY 1 ORDER BY 2 DESC").fetchall()
    click.echo(f"{res.counts['records']} records -> {res.counts['entities']} {kind} entities "
               f"(model {res.model_version})" + ("; by rule: " + ", ".join(f"{r}={n}" for r, n in rules) if rules
                                                 else ": the input holds no records"))
    click.echo(f"crosswalk: {out_path}" + (f"; golden: {golden_out}" if golden_out else ""))


def _ident(name: str) -> str:
    """An export's column name as a DuckDB identifier (any text: warehouse.quote_ident refuses such names)."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    """A DuckDB string literal (paths and names in statements that take no bound parameter)."""
    return "'" + text.replace("'", "''") + "'"


def _check_outputs(input_path: str, outputs: dict[str, str | None]) -> None:
    """Before any work: each output a known format, in a folder that exists, and neither the input nor another
    output (the crosswalk would replace the export it was made from)."""
    seen = {Path(input_path).resolve(): "the input"}
    for flag, path in outputs.items():
        if not path:
            continue
        if flag != "--save-model" and not path.lower().endswith(_OUT_FORMATS):
            raise click.BadParameter(f"{path}: write .parquet or .csv", param_hint=flag)
        target = Path(path).resolve()
        if not target.parent.is_dir():
            raise click.BadParameter(f"{path}: no folder {target.parent}", param_hint=flag)
        if target in seen:
            raise click.BadParameter(f"{path} is also {seen[target]}: give another path", param_hint=flag)
        seen[target] = flag


def _refuse_workbook(path: str) -> None:
    with open(path, "rb") as fh:
        head = fh.read(8)
    if (head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0"))  # xlsx or ods (a zip), the older xls
            or path.lower().endswith((".xlsx", ".xlsm", ".xls", ".ods"))):
        raise click.ClickException(f"{path} is a spreadsheet workbook: save the sheet as CSV (\"CSV UTF-8\" or "
                                   "\"CSV (séparateur: point-virgule)\") or Parquet and resolve that file")


def _model_file(path: str) -> dict:
    """A Splink model JSON (saved by --save-model or Splink's save_model_to_json), or a clear error."""
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            model = json.load(fh)
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"{path} is not JSON ({exc})", param_hint="--model") from None
    missing = [k for k in ("comparisons", "blocking_rules_to_generate_predictions") if not isinstance(model, dict)
               or k not in model]
    if missing:
        raise click.BadParameter(f"{path} is not a Splink model (no {', '.join(missing)}): give a file written by "
                                 "--save-model or by Splink's linker.misc.save_model_to_json", param_hint="--model")
    return model


def _load_input(con, path: str, encoding: str, scratch: Path, delimiter: str | None = None) -> list[str]:
    """The input as TEMP TABLE cli_raw (__row: the record's number, 1 for the first, blank records not counted),
    its columns. A CSV is read as text (ids and postcodes keep their zeros; dates are read by _read_dates); a line
    that does not fit the header stops the run, named, before anything is matched."""
    import duckdb

    if path.lower().endswith(".parquet"):
        try:
            con.execute("CREATE TEMP TABLE cli_read AS SELECT * EXCLUDE (file_row_number) "
                        "FROM read_parquet(?, file_row_number = true) ORDER BY file_row_number", [path])
        except duckdb.Error as exc:
            raise click.ClickException(f"cannot read {path}: {str(exc).splitlines()[0][:300]}\n  it is not a readable "
                                       "Parquet file (damaged, or another format named .parquet)") from None
    else:
        readable = _utf8_csv(path, encoding, scratch)
        layout = _csv_layout(readable, delimiter)
        if layout is None:
            raise click.ClickException(f"{path} is empty: an export starts with a header line naming its columns")
        delimiter, skip, names = layout
        try:
            # rows are kept in the file's order (DuckDB keeps insertion order): rowid follows the file. Nothing left to
            # detect (with only names, DuckDB still counted the columns from the lines: a file whose lines all had
            # one field more gained a column instead of naming them)
            columns = "{" + ", ".join(f"{_literal(n)}: 'VARCHAR'" for n in names) + "}"
            con.execute(f"""CREATE TEMP TABLE cli_read AS SELECT * FROM read_csv({_literal(readable)}, auto_detect = false,
                                delim = {_literal(delimiter)}, header = false, skip = {skip}, columns = {columns},
                                quote = '"', escape = '"', store_rejects = true,
                                rejects_table = 'cli_rejects', rejects_scan = 'cli_rejects_scan')""")
        except duckdb.Error as exc:
            raise _unreadable(path, exc, readable) from None
        _refuse_rejects(con, path, readable, delimiter, len(names))
    cols = [r[0] for r in con.execute("DESCRIBE cli_read").fetchall()]
    blank = " AND ".join(f"nullif(trim(CAST({_ident(c)} AS VARCHAR)), '') IS NULL" for c in cols) or "FALSE"
    con.execute(f"""CREATE TEMP TABLE cli_raw AS SELECT row_number() OVER (ORDER BY rowid) AS __row, *
                    FROM cli_read WHERE NOT ({blank})""")
    dropped = con.execute("SELECT (SELECT count(*) FROM cli_read) - (SELECT count(*) FROM cli_raw)").fetchone()[0]
    con.execute("DROP TABLE cli_read")
    if dropped:
        click.echo(f"note: {dropped} blank record(s) of {path} skipped (every field empty)", err=True)
    return cols


def _refuse_rejects(con, path: str, readable: str, delimiter: str, fields: int) -> None:
    """Every line the reader rejected, named by its line in the file (DuckDB numbers records, which a quoted line
    break shifts), and the run stopped: a record left out would be missing from the output without a word."""
    bad = con.execute("""SELECT line_byte_position, any_value(error_type), any_value(error_message),
                                coalesce(any_value(csv_line), '')
                         FROM cli_rejects GROUP BY ALL ORDER BY 1""").fetchall()  # (one row per field at fault)
    if not bad:
        return
    with open(readable, "rb") as fh:
        data = fh.read(max(b[0] for b in bad) + 1)
    line = {b[0]: data.count(b"\n", 0, b[0]) + 1 for b in bad}
    if any(kind == "INVALID ENCODING" for _, kind, _, _ in bad):
        raise click.ClickException(f"cannot read {path}: line {line[bad[0][0]]} is not valid UTF-8\n  pass its "
                                   "encoding with --encoding (cp1252, latin-1, utf-16...)")
    name = {"\t": "tab"}.get(delimiter, repr(delimiter))
    reasons = [_reject_reason(kind, msg) for _, kind, msg, _ in bad]
    shown = "\n".join(f"  line {line[pos]}: {why}: {text.strip()[:120]!r}"
                      for (pos, _, _, text), why in zip(bad[:5], reasons))
    if all(why.startswith("fewer") for why in reasons):
        hint = "a field or a delimiter is missing on those lines"
    elif any(kind == "UNQUOTED VALUE" for _, kind, _, _ in bad):
        hint = ('a double quote opens a field and is not closed, or stands inside a field: write it twice ("") '
                "inside a quoted field")
    else:
        hint = ("usually the delimiter inside a field the export did not quote: quote that field (or remove the "
                "delimiter from it)")
    raise click.ClickException(
        f"cannot read {path}: {len(bad)} line(s) do not read as the header's {fields} fields (delimiter {name}):\n"
        f"{shown}{chr(10) + '  ...' if len(bad) > 5 else ''}\n  {hint}, and run again (--delimiter if {name} is "
        "not the file's); nothing was resolved")


def _reject_reason(kind: str, message: str) -> str:
    counts = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", message)
    if counts:  # (DuckDB's "Found" stops at one too many)
        expected, found = map(int, counts.groups())
        return f"{'more' if found >= expected else 'fewer'} fields than the header's {expected}"
    return message.strip()


#: Delimiters a CSV export uses, in the order that wins a tie (a tab is never inside a name; French exports use ;).
_DELIMITERS = ("\t", ";", ",", "|")


def _csv_layout(path: str, delimiter: str | None = None) -> tuple[str, int, list[str]] | None:
    """(delimiter, records before the first data record, column names) of a UTF-8 CSV; None when it holds no line.

    Written by hand: DuckDB's sniffer keeps the dialect most sampled lines agree with, so one unquoted delimiter in
    a field made it take a data line for the header (every record lost) or read the file as one column (nothing
    matched), silently. Here each delimiter parses the header and the next lines (Python's csv: quotes, doubled
    quotes and line breaks in quoted fields); the one whose lines most often have the header's number of fields
    wins, a tie going to the first of _DELIMITERS (Excel's `sep=;` first line, or --delimiter, decides alone).
    The reader is then given the names and the delimiter, so a line that does not fit is named, not guessed
    around."""
    import csv
    import io

    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:  # (the reader names bad bytes)
        text = fh.read(1 << 16)
    lines = text.splitlines(keepends=True)
    skip = 0
    while skip < len(lines) and not lines[skip].strip():
        skip += 1
    if skip == len(lines):
        return None
    hint = re.fullmatch(r"sep=(.)\r?\n?", lines[skip])
    if hint:
        delimiter, skip = delimiter or hint.group(1), skip + 1
    sample = "".join(lines[skip:])
    if len(text) == 1 << 16:  # a cut-off last line would not fit: drop it
        sample = sample[: sample.rfind("\n") + 1] or sample

    def parse(d: str) -> list[list[str]]:
        reader = csv.reader(io.StringIO(sample, newline=""), delimiter=d, quotechar='"', doublequote=True)
        rows: list[list[str]] = []
        try:
            for row in reader:
                rows.append(row)
                if len(rows) > 50:
                    break
        except csv.Error:
            pass
        return rows

    def score(d: str) -> tuple[int, bool, int, int]:
        rows = parse(d)
        if not rows:
            return (0, False, 0, 0)
        width = len(rows[0])
        fit = sum(len(r) == width or (len(r) == width - 1 and rows[0][-1] == "") for r in rows[1:] if r)
        # (no line fitting any: a delimiter that splits the header, so the reader names the lines that do not fit)
        return (fit if width > 1 else 0, width > 1, -_DELIMITERS.index(d), width)

    chosen = delimiter or max(_DELIMITERS, key=score)
    rows = parse(chosen)
    if not rows:
        return None
    names = [" ".join(n.replace('"', "").split()) for n in rows[0]]  # (a line break in a quoted name: a space)
    data = [r for r in rows[1:] if r]
    if names and names[-1] == "" and data and sum(len(r) == len(names) - 1 for r in data) * 2 > len(data):
        names.pop()  # the header ends with a delimiter its lines do not have
    seen: dict[str, int] = {}
    for i, n in enumerate(names):  # empty and repeated names made unique, as DuckDB names them
        base = n or f"column{i}"
        seen[base] = seen.get(base, 0) + 1
        names[i] = base if seen[base] == 1 else f"{base}_{seen[base] - 1}"
    # DuckDB's skip counts records (a quoted line break does not end one), blank lines included
    return chosen, skip + 1, names


def _fold(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower())


def _column_map(kind: str, path: str, cols: list[str], mapping: tuple[str, ...]) -> dict[str, str]:
    """Input column -> contract field: the --map options, then columns named as a field is in exports (a note
    says which), so that a file holding none of the fields records are matched on is an error, not one entity per
    row."""
    renames: dict[str, str] = {}
    for m in mapping:
        field, _, col = m.partition("=")
        if field not in _FIELDS[kind]:
            raise click.BadParameter(f"unknown field {field!r}; one of {', '.join(_FIELDS[kind])}", param_hint="--map")
        if col not in cols:
            raise click.BadParameter(f"no column {col!r} in {path}", param_hint="--map")
        if field in renames.values() or col in renames:
            raise click.BadParameter(f"{m}: {'field ' + field if field in renames.values() else 'column ' + repr(col)}"
                                     " is already mapped", param_hint="--map")
        renames[col] = field
    named = {renames.get(c, c) for c in cols}
    guessed, unsure = [], []
    for field, aliases in _ALIASES[kind].items():
        if field in named:
            continue
        found = [c for c in cols if c not in renames and c not in _FIELDS[kind] and _fold(c) in (_fold(field), *aliases)]
        if len(found) == 1:
            renames[found[0]] = field
            named.add(field)
            guessed.append(f"{found[0]} -> {field}")
        elif found:
            unsure.append(f"{' and '.join(found)} could both be {field}: neither read (--map {field}=COLUMN)")
    if guessed:
        click.echo(f"note: columns read by their name: {', '.join(guessed)} (--map FIELD=COLUMN to change)", err=True)
    for line in unsure:
        click.echo(f"note: {line}", err=True)
    if not named & set(_MATCHED_ON[kind]):
        example = next((c for c in cols if c not in _FIELDS[kind]), "COLUMN")
        raise click.ClickException(
            f"no column of {path} holds a field {kind} are matched on ({', '.join(_MATCHED_ON[kind])}); its "
            f"columns: {', '.join(cols) or 'none'}. Name them with --map FIELD=COLUMN, e.g. --map "
            f"{_MATCHED_ON[kind][2 if kind == 'contacts' else 0]}={example}")
    return renames


def _read_dates(con) -> None:
    """updated_at of a text input as a timestamp: ISO 8601 (with an offset: the UTC instant), else day-first
    (28/02/2024 09:30), or month-first when some values can only be read so and none only day-first (a US export).
    A value that is none of these is noted: its record then counts as undated, which any dated record outranks."""
    kind = con.execute("SELECT data_type FROM information_schema.columns "
                       "WHERE table_name = 'cli_records' AND column_name = 'updated_at'").fetchone()[0]
    if kind != "VARCHAR":
        return
    v = "trim(updated_at)"
    # only a value that starts as ISO 8601 is cast: DuckDB's cast reads 28/02/24 as the year 28
    iso = rf"CASE WHEN regexp_matches({v}, '^\d{{4}}-\d\d?-\d\d?') THEN TRY_CAST(TRY_CAST({v} AS TIMESTAMPTZ) AS TIMESTAMP) END"
    form = {k: f"try_strptime({v}, [{', '.join(repr(f) for f in forms)}])" for k, forms in _DATE_FORMS.items()}
    day_only, month_only = con.execute(
        f"""SELECT count(*) FILTER (WHERE {form['day-first']} IS NOT NULL AND {form['month-first']} IS NULL),
                   count(*) FILTER (WHERE {form['month-first']} IS NOT NULL AND {form['day-first']} IS NULL)
            FROM cli_records WHERE {iso} IS NULL""").fetchone()
    order = "month-first" if month_only and not day_only else "day-first"
    if order == "month-first":
        click.echo(f"note: updated_at read month-first (MM/DD/YYYY, as US exports write it): {month_only} value(s) "
                   "can only be read so", err=True)
    parsed = f"coalesce({iso}, {form[order]})"
    n, example = con.execute(f"""SELECT count(*), any_value(updated_at) FROM cli_records
                                 WHERE nullif({v}, '') IS NOT NULL AND {parsed} IS NULL""").fetchone()
    con.execute(f"ALTER TABLE cli_records ALTER updated_at SET DATA TYPE TIMESTAMP USING {parsed}")
    if n:
        click.echo(f"note: {n} updated_at value(s) are not dates (e.g. {example[:40]!r}; read: ISO 8601, or "
                   f"{order} as {'02/28/2024' if order == 'month-first' else '28/02/2024'} 09:30): those records count as "
                   "undated", err=True)


def _check_ids(con, path: str) -> None:
    """Every record keeps its row in the output: a record without an id or a source, or an id given by two rows
    that differ, stops the run, named (the matcher would keep one row per id). Rows repeating another exactly are
    one record."""
    blank = con.execute("""SELECT __row FROM cli_records WHERE nullif(trim(CAST(source_id AS VARCHAR)), '') IS NULL
                               OR nullif(trim(CAST(source_system AS VARCHAR)), '') IS NULL ORDER BY __row""").fetchall()
    if blank:
        rows = ", ".join(str(r[0]) for r in blank[:10]) + (", ..." if len(blank) > 10 else "")
        raise click.ClickException(
            f"{len(blank)} record(s) of {path} have no source_id or no source_system (records {rows}; 1 is the "
            "first after the header): fill them; an export without ids can leave its id column out, each record "
            "is then known by its place in the file")
    cols = [r[0] for r in con.execute("DESCRIBE cli_records").fetchall() if r[0] != "__row"]
    content = ", ".join(map(_ident, cols))
    twice = con.execute(f"""SELECT source_system, source_id, list(__row ORDER BY __row)
                            FROM cli_records GROUP BY source_system, source_id
                            HAVING count(DISTINCT hash({content})) > 1 ORDER BY min(__row)""").fetchall()
    if twice:
        shown = "; ".join(f"{sid!r} (records {', '.join(map(str, rows[:5]))})" for _, sid, rows in twice[:5])
        raise click.ClickException(
            f"{len(twice)} source_id(s) of {path} are given by rows that differ: {shown}. An id names one record: "
            "give each its own id, or leave the id column out (each record is then known by its place in the file)")
    repeated = con.execute("SELECT count(*) - count(DISTINCT (source_system, source_id)) FROM cli_records").fetchone()[0]
    if repeated:
        click.echo(f"note: {repeated} row(s) of {path} repeat another row exactly: one record each", err=True)


def _kept_model(kind: str, which: str) -> dict:
    """The core.identity_models row of `kind` named by `which` (latest, or a config_sha256 prefix)."""
    from warehouse import Warehouse, duckdb_file, redact, warehouse_url

    url = warehouse_url()
    if url.startswith("duckdb:") and duckdb_file(url) != ":memory:" and not Path(duckdb_file(url)).exists():
        # (opening it would create an empty warehouse where the user did not ask for one)
        raise click.ClickException(f"no identity run recorded: no warehouse at {duckdb_file(url)} "
                                   "(CRM_ETL_WAREHOUSE_URL): run identity_resolution first, or point "
                                   "CRM_ETL_WAREHOUSE_URL at its warehouse")
    wh = Warehouse()
    if not wh.table_exists("core", "identity_models"):
        raise click.ClickException(f"no identity run recorded in {redact(wh.url)} (core.identity_models is missing): "
                                   "run identity_resolution first, or point CRM_ETL_WAREHOUSE_URL at its warehouse")
    rows = wh.query("select config_sha256, model, match_config from core.identity_models where kind = :k "
                    "order by last_used_at desc", {"k": kind})
    chosen = rows[:1] if which == "latest" else [r for r in rows if r["config_sha256"].startswith(which)]
    if len(chosen) != 1:
        known = ", ".join(r["config_sha256"][:12] for r in rows) or "none"
        raise click.ClickException(f"{'no' if not chosen else 'more than one'} {kind} identity model {which!r} in "
                                   f"core.identity_models (kept: {known})")
    return chosen[0]


def _utf8_csv(path: str, encoding: str, scratch: Path) -> str:
    """A path DuckDB reads as UTF-8: `path` itself when it is UTF-8, else a UTF-8 copy in `scratch`.

    Written by hand: DuckDB reads UTF-8 and UTF-16 but not Windows-1252, the encoding French Excel's
    "CSV (séparateur: point-virgule)" export uses. Detection stays deterministic (UTF-8, UTF-16 with a BOM, else
    Windows-1252) rather than a statistical guess (charset-normalizer): on a short export a guess among
    near-identical single-byte code pages (cp1250, mac_roman...) silently garbles accents."""
    if encoding.strip().lower() == "auto":
        with open(path, "rb") as fh:
            head = fh.read(4)
        defect = None
        if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) and head[:4] != codecs.BOM_UTF32_LE:
            encoding = "utf-16"
        elif (defect := _utf8_defect(path)) is None:
            return path
        elif defect[1]:  # UTF-8 accents elsewhere: read as Windows-1252 they would all be garbled
            raise click.ClickException(
                f"{path} is UTF-8 but for line {defect[0]} (a byte of another encoding, Windows-1252 probably, pasted "
                "in): fix that line; or pass --encoding if the whole file is in another encoding")
        else:
            encoding = "cp1252"
            click.echo(f"note: {path} is not UTF-8; read as Windows-1252 (cp1252). Pass --encoding if it is "
                       "another one (latin-1, utf-16...).", err=True)
    try:
        encoding = codecs.lookup(encoding).name
    except LookupError:
        raise click.BadParameter(f"unknown encoding {encoding!r} (auto, utf-8, cp1252, latin-1, utf-16...)",
                                 param_hint="--encoding") from None
    if encoding == "utf-8":
        return path
    out = scratch / (Path(path).stem + ".utf8.csv")
    try:
        # newline="" keeps the file's line ends (a quoted field may hold one)
        with open(path, encoding=encoding, newline="") as src, open(out, "w", encoding="utf-8", newline="") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    except UnicodeDecodeError as exc:
        raise click.ClickException(
            f"{path} is not valid {encoding} (byte {exc.start} of a block: {exc.reason}); pass its encoding with "
            "--encoding (cp1252, latin-1, utf-16...)") from None
    return str(out)


#: A UTF-8 character of two to four bytes: a Windows-1252 file holds such a sequence only by accident.
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def _utf8_defect(path: str) -> tuple[int, bool] | None:
    """None when the file is UTF-8; else (the line of its first byte that is not, whether the bytes before it hold
    UTF-8 characters of several bytes)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines, multibyte = 0, False
    with open(path, "rb") as fh:
        while True:
            block = fh.read(1 << 20)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                # (exc.start is within this block and what the decoder kept of the one before, a few bytes at most)
                at = max(exc.start - len(exc.object) + len(block), 0)
                multibyte = multibyte or bool(_UTF8_MULTIBYTE.search(block, 0, at))
                return lines + block.count(b"\n", 0, at) + 1, multibyte
            if not block:
                return None
            lines += block.count(b"\n")
            multibyte = multibyte or bool(_UTF8_MULTIBYTE.search(block))


def _unreadable(path: str, exc: Exception, read: str) -> click.ClickException:
    """An error of DuckDB's CSV reader (what its rejects do not hold) as a one-paragraph message: what is wrong,
    where, and what to try. `read`: the UTF-8 copy DuckDB read instead of `path`, named as `path`. (Nothing is
    sniffed: the dialect and columns come from _csv_layout.)"""
    lines = [ln.strip() for ln in str(exc).replace(read, path).splitlines() if ln.strip()]
    detail = " ".join(ln for ln in lines[:3] if not ln.startswith(("LINE ", "^")))
    hint = ("check the file is an export with a header row and one delimiter (, ; tab or |), fields holding it "
            "quoted; --encoding if it is not UTF-8")
    if re.search(r"unicode|utf-?8|encoding", detail.replace(path, ""), re.IGNORECASE):
        hint = "pass its encoding with --encoding (cp1252, latin-1, utf-16...)"
    return click.ClickException(f"cannot read {path}: {detail[:500]}\n  {hint}")
