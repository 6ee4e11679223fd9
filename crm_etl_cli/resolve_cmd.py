"""`crm-etl resolve contacts|companies INPUT --out CLUSTERS.parquet`: entity resolution on a file."""
from __future__ import annotations

import codecs
import sys
import tempfile
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


@main.command("resolve")
@click.argument("kind", type=click.Choice(["contacts", "companies"]))
@click.argument("input_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Crosswalk (.parquet or .csv).")
@click.option("--golden-out", type=click.Path(dir_okay=False), help="Also write golden records here.")
@click.option("--map", "mapping", multiple=True, metavar="FIELD=COLUMN",
              help="Input column holding a contract field, e.g. --map email=Courriel (repeatable).")
@click.option("--source-system", help="Constant source_system when the file has no such column.")
@click.option("--encoding", default="auto", show_default=True,
              help="Text encoding of a CSV input: auto reads UTF-8 (with or without BOM), UTF-16 with a BOM, and "
                   "otherwise Windows-1252 (Excel's French default); or any Python codec name (cp1252, latin-1...).")
@click.option("--threshold", type=float, help="Splink match probability threshold (default from config).")
@click.option("--region", default="FR", show_default=True, help="Default phone region.")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False), help="Trained Splink model JSON.")
@click.option("--retrain", is_flag=True, help="Re-estimate the Splink model on this input.")
@click.option("--save-model", type=click.Path(dir_okay=False), help="Write the model used (JSON) here.")
@click.option("--identity-model", metavar="latest|SHA",
              help="Use the model and every match setting a pipeline run used, as kept in the warehouse's "
                   "core.identity_models (CRM_ETL_WAREHOUSE_URL): `latest` for KIND's last run, or a config_sha256 "
                   "(or its first characters) from the run's metadata.")
@click.pass_context
def resolve_cmd(ctx, kind, input_path, out_path, golden_out, mapping, source_system, encoding, threshold, region,
                model_path, retrain, save_model, identity_model):
    """Deduplicate and link KIND records in INPUT_PATH (.parquet or .csv)."""
    import json

    import duckdb

    from transforms.identity import CompaniesConfig, ContactsConfig
    from transforms.identity.core import resolve

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

    con = duckdb.connect()
    # DuckDB draws its bar on stdout, also into a pipe or a log: only for someone watching a terminal
    con.execute(f"SET enable_progress_bar = {str(sys.stdout.isatty()).lower()}")
    parquet = input_path.lower().endswith(".parquet")
    reader = "read_parquet" if parquet else "read_csv_auto"
    scratch = tempfile.TemporaryDirectory(prefix="crm-etl-resolve-")
    ctx.call_on_close(scratch.cleanup)
    readable = input_path if parquet else _utf8_csv(input_path, encoding, Path(scratch.name))
    try:
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {reader}(?)", [readable]).fetchall()]
    except duckdb.Error as exc:
        raise _unreadable(input_path, exc) from None
    renames: dict[str, str] = {}
    for m in mapping:
        field, _, col = m.partition("=")
        if field not in _FIELDS[kind]:
            raise click.BadParameter(f"unknown field {field!r}; one of {', '.join(_FIELDS[kind])}", param_hint="--map")
        if col not in cols:
            raise click.BadParameter(f"no column {col!r} in {input_path}", param_hint="--map")
        renames[col] = field
    q = lambda c: '"' + c.replace('"', '""') + '"'  # noqa: E731
    select = [f"{q(c)} AS {q(renames.get(c, c))}" for c in cols if renames.get(c, c) not in renames.values() or c in renames]
    named = {renames.get(c, c) for c in cols}
    if "source_system" not in named:
        if not source_system:  # every row still says where it came from: the file
            source_system = Path(input_path).name.split(".")[0]
            click.echo(f"note: no source_system column or --source-system: source_system = {source_system!r}", err=True)
        select.append(f"'{source_system.replace(chr(39), chr(39) * 2)}' AS source_system")
    if "source_id" not in named:
        # an export without ids (a trade-show list...): each row is known by its place in the file
        click.echo("note: no source_id column (--map source_id=COLUMN): source_id = the row's number in the file, "
                   "1 for the first record", err=True)
        select.append("CAST(row_number() OVER () AS VARCHAR) AS source_id")
    source = "'" + readable.replace("'", "''") + "'"  # (a view cannot take a bound parameter)
    con.execute(f"CREATE TEMP VIEW cli_input AS SELECT {', '.join(select)} FROM {reader}({source})")
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
    except duckdb.InvalidInputException as exc:  # the reader met a malformed line further down the file
        if "CSV" not in str(exc) and "arquet" not in str(exc):
            raise
        raise _unreadable(input_path, exc) from None

    def write(table, path):
        fmt = "(FORMAT parquet)" if path.lower().endswith(".parquet") else "(HEADER, DELIMITER ',')"
        con.execute(f"COPY (SELECT * FROM {table} ORDER BY ALL) TO '{path.replace(chr(39), chr(39) * 2)}' {fmt}")

    write(res.crosswalk, out_path)
    if golden_out:
        write(res.golden, golden_out)
    if save_model:
        with open(save_model, "w") as fh:
            json.dump(res.model, fh, indent=1)
    rules = con.execute(f"SELECT rule, count(*) FROM {res.crosswalk} GROUP BY 1 ORDER BY 2 DESC").fetchall()
    click.echo(f"{res.counts['records']} records -> {res.counts['entities']} {kind} entities "
               f"(model {res.model_version}); by rule: " + ", ".join(f"{r}={n}" for r, n in rules))
    click.echo(f"crosswalk: {out_path}" + (f"; golden: {golden_out}" if golden_out else ""))


def _kept_model(kind: str, which: str) -> dict:
    """The core.identity_models row of `kind` named by `which` (latest, or a config_sha256 prefix)."""
    from warehouse import Warehouse, redact

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
        if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) and head[:4] != codecs.BOM_UTF32_LE:
            encoding = "utf-16"
        elif _is_utf8(path):
            return path
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


def _is_utf8(path: str) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _unreadable(path: str, exc: Exception) -> click.ClickException:
    """DuckDB's reader error as a one-paragraph message: what is wrong, where, and what to try."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    detail = " ".join(ln for ln in lines[:3] if not ln.startswith(("LINE ", "^")))
    hint = ("check the file is an export with a header row and one delimiter (, ; tab or |), fields holding it "
            "quoted; --encoding if it is not UTF-8")
    if "unicode" in detail.lower() or "utf" in detail.lower():
        hint = "pass its encoding with --encoding (cp1252, latin-1, utf-16...)"
    elif "sniffing" in detail.lower():
        detail = detail.split(" The search space")[0]
        hint = ("no delimiter gives every line the header's number of fields: look for a line with extra fields or "
                "with the delimiter inside an unquoted field")
    return click.ClickException(f"cannot read {path}: {detail[:500]}\n  {hint}")
