"""Sirene stock files (monthly bulk "StockUniteLegale" + "StockEtablissement", CSV / zipped CSV / Parquet) read
into rows shaped like the API look-ups, one per unité légale with its head office's address.

pyarrow does the reading (column projection, batches) and the join, so a real file (~30 M units, ~40 M
establishments) streams instead of going through Python dicts. Memory: the head-office table (one row per
unit, a few columns) is held while the units stream.
"""
from __future__ import annotations

import io
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, List, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from connectors.registry import settings


class StockFileError(ValueError):
    """A stock file cannot be used (missing columns, unreadable)."""


def _open_csv(path: Path) -> pa.RecordBatchReader:
    source: object = str(path)
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            members = [n for n in zf.namelist() if n.lower().endswith(".csv")]
            if len(members) != 1:
                raise StockFileError(f"{path}: expected one CSV inside the ZIP, found {members}")
            source = io.BytesIO(zf.read(members[0]))
    # Every column as text (SIREN/NIC/postcodes keep their leading zeros); the header gives the names.
    header = _csv_header(path, source)
    return pacsv.open_csv(
        source,
        read_options=pacsv.ReadOptions(block_size=16 << 20),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in header},
                                             strings_can_be_null=True),
    )


def _csv_header(path: Path, source: object) -> List[str]:
    if isinstance(source, io.BytesIO):
        first = source.getvalue().split(b"\n", 1)[0]
    else:
        with open(path, "rb") as fh:
            first = fh.readline()
    return [c.strip().strip('"') for c in first.decode("utf-8-sig").strip().split(",")]


def read_batches(path: str | Path, columns: Sequence[str], required: Sequence[str]) -> Iterator[pa.Table]:
    """Batches of `columns` (all text; absent optional columns as nulls) from a CSV, zipped CSV or Parquet file."""
    path = Path(path)
    if not path.exists():
        raise StockFileError(f"{path}: no such file")
    if path.suffix.lower() == ".parquet":
        pf = pq.ParquetFile(path)
        present = set(pf.schema_arrow.names)
        batches = (pa.Table.from_batches([b]) for b in
                   pf.iter_batches(batch_size=settings.STOCK_BATCH_ROWS, columns=[c for c in columns if c in present]))
    else:
        reader = _open_csv(path)
        present = set(reader.schema.names)
        batches = (pa.Table.from_batches([b]).select([c for c in columns if c in present]) for b in reader)
    missing = [c for c in required if c not in present]
    if missing:
        raise StockFileError(f"{path}: missing column(s) {missing} (is this a Sirene stock file?)")
    for table in batches:
        for c in columns:
            if c not in present:
                table = table.append_column(c, pa.nulls(table.num_rows, pa.string()))
            elif table.schema.field(c).type != pa.string():
                table = table.set_column(table.schema.get_field_index(c), c, pc.cast(table[c], pa.string()))
        yield table.select(list(columns))


def _date(col: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.cast(pc.strptime(col, format="%Y-%m-%d", unit="s", error_is_null=True), pa.date32())


def _join_text(*cols: pa.ChunkedArray) -> pa.ChunkedArray:
    """Non-empty parts joined by one space; null when all are empty. (Joined on ""-filled columns: pyarrow's
    null_handling="skip" drops rows here instead of skipping parts.)"""
    filled = [pc.cast(pc.fill_null(c, ""), pa.string()) for c in cols]
    joined = pc.binary_join_element_wise(*filled, " ")
    joined = pc.utf8_trim_whitespace(pc.replace_substring_regex(joined, r"\s+", " "))
    return pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), joined)


def head_offices(etablissements: str | Path) -> pa.Table:
    """siret -> street address, postcode, city of every head office (etablissementSiege = true)."""
    keep: List[pa.Table] = []
    for t in read_batches(etablissements, settings.STOCK_ETABLISSEMENT_COLUMNS, settings.STOCK_ETABLISSEMENT_REQUIRED):
        t = t.filter(pc.equal(pc.utf8_lower(pc.fill_null(t["etablissementSiege"], "")), "true"))
        keep.append(pa.table({
            "siret_head_office": t["siret"],
            "address": _join_text(t["numeroVoieEtablissement"], t["indiceRepetitionEtablissement"],
                                  t["typeVoieEtablissement"], t["libelleVoieEtablissement"]),
            "address_complement": t["complementAdresseEtablissement"],
            "postcode": t["codePostalEtablissement"],
            "city": t["libelleCommuneEtablissement"],
        }))
    if not keep:
        return pa.table({n: pa.array([], pa.string()) for n in
                         ("siret_head_office", "address", "address_complement", "postcode", "city")})
    return pa.concat_tables(keep)


def stock_rows(unites: str | Path, etablissements: str | Path, as_of: datetime | None = None) -> Iterator[pa.Table]:
    """Arrow tables of registry rows (same names as the API rows, `source` = 'stock')."""
    fetched_at = as_of or datetime.fromtimestamp(Path(unites).stat().st_mtime, tz=timezone.utc)
    if fetched_at.tzinfo is None:
        fetched_at = fetched_at.replace(tzinfo=timezone.utc)
    offices = head_offices(etablissements)
    for t in read_batches(unites, settings.STOCK_UNITE_LEGALE_COLUMNS, settings.STOCK_UNITE_LEGALE_REQUIRED):
        nic = pc.utf8_lpad(pc.fill_null(t["nicSiegeUniteLegale"], ""), 5, "0")
        siret = pc.if_else(pc.is_null(t["nicSiegeUniteLegale"]), None, pc.binary_join_element_wise(t["siren"], nic, ""))
        person = _join_text(t["prenom1UniteLegale"], t["nomUniteLegale"])
        etat = t["etatAdministratifUniteLegale"]
        n = t.num_rows
        rows = pa.table({
            "siren": t["siren"],
            "siret_head_office": siret,
            "legal_name": pc.coalesce(t["denominationUniteLegale"], person),
            "naf_code": t["activitePrincipaleUniteLegale"],
            "naf_nomenclature": t["nomenclatureActivitePrincipaleUniteLegale"],
            "headcount_band": t["trancheEffectifsUniteLegale"],
            "headcount_year": t["anneeEffectifsUniteLegale"],
            "legal_form_code": t["categorieJuridiqueUniteLegale"],
            "category": t["categorieEntreprise"],
            "created_on": _date(t["dateCreationUniteLegale"]),
            # a ceased unit's current period starts on its cessation date
            "ceased_on": pc.if_else(pc.equal(pc.fill_null(etat, ""), "C"), _date(t["dateDebut"]),
                                    pa.nulls(n, pa.date32())),
            "etat_administratif": etat,
            "statut_diffusion": t["statutDiffusionUniteLegale"],
            "fetched_at": pa.array([fetched_at] * n, pa.timestamp("us", tz="UTC")),
            "source": pa.array(["stock"] * n, pa.string()),
        })
        joined = rows.join(offices, keys="siret_head_office", join_type="left outer")
        # the key columns are never null: say so, as the dlt schema does
        schema = pa.schema([f.with_nullable(f.name not in ("siren", "fetched_at", "source")) for f in joined.schema])
        yield joined.cast(schema)
