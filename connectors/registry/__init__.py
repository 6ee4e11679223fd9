"""The French company registry as a dlt source: "Recherche d'entreprises" API look-ups for the companies the CRM
knows, name + postcode searches for those without an identifier, and the Sirene stock files as the bulk path.
No orchestrator inside; runnable alone with `python -m connectors.registry`.

Tables (dataset `raw_registry`):
- `companies`: one row per SIREN looked up through the API (merged on `siren`; `fetched_at` = when, `source` =
  'api'). Fields: head-office SIRET, legal name, NAF code (+ label when the answer has one), headcount band and
  its year, legal form code, category (PME/ETI/GE), creation / cessation dates, administrative status (A/C),
  diffusion status, head-office street address / postcode / city, VAT number.
- `stock_companies`: the same fields from the monthly Sirene stock files (`source` = 'stock', `fetched_at` = the
  stock's date), replaced at each stock load (`python -m connectors.registry load-stock ...`).
- `candidates`: name + postcode searches, the API's best candidates with its `score` and their fields; merged
  per search (`query_key`), so a search run again replaces its candidate list. Choosing one is identity's job.
- `lookups`: one row per SIREN or search asked (status found / not_found / candidates / no_candidates,
  fetched_at): what the caller passes back as `cached` so nothing fresh is asked twice.
- `code_labels`: (nomenclature, code, label) for headcount bands, legal forms and, from files, NAF codes.
- `_quarantine`: wanted identifiers that fail their checksum (never sent) and answers that cannot be read.

What to look up is an argument, so the caller (the pipeline) decides: `wanted` = [{"siren"|"siret"|"vat": ...,
"name": ..., "postcode": ...}, ...] and `cached` = {siren or search key: fetched_at}. Only keys missing from
`cached` or older than `max_age_days` are asked; a company present in the loaded stock (with the stock's date)
needs no call at all.
"""
from __future__ import annotations

import logging
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

import dlt
from dlt.sources import DltResource

from connectors.common.quarantine import quarantine_hints, quarantine_item
from connectors.common.retry import RetryPolicy
from connectors.registry import settings
from connectors.registry.helpers import (
    Identifier, RegistryClient, RegistryError, check_identifier, fr_vat, search_key,
)

__all__ = ["registry_source", "RegistryClient", "RegistryError", "search_key", "check_identifier", "client_of"]

logger = logging.getLogger("connectors.registry")
SOURCE = "registry"
_SIREN_RE = re.compile(r"^\d{9}$")


class MalformedRecord(ValueError):
    pass


# ------------------------------------------------------------------------------------------- shaping

def _date(value: Any, what: str) -> Optional[date]:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise MalformedRecord(f"{what} is not a date: {value!r}") from None


def _street(siege: Mapping[str, Any]) -> Optional[str]:
    parts = [siege.get(k) for k in ("numero_voie", "indice_repetition", "type_voie", "libelle_voie")]
    street = " ".join(str(p).strip() for p in parts if p not in (None, "") and str(p).strip())
    return street or None


def company_row(result: Any, fetched_at: datetime, source: str = "api") -> Dict[str, Any]:
    """One API result (unité légale) -> one `companies` row; raises MalformedRecord with the reason."""
    if not isinstance(result, dict):
        raise MalformedRecord("result is not a JSON object")
    siren = str(result.get("siren") or "")
    if not _SIREN_RE.match(siren) or check_identifier(siren=siren).error:
        raise MalformedRecord(f"siren is not a valid SIREN: {result.get('siren')!r}")
    siege = result.get("siege") if isinstance(result.get("siege"), dict) else {}
    tva = result.get("tva")
    vat = (tva[0] if tva else None) if isinstance(tva, list) else tva
    return {
        "siren": siren,
        "siret_head_office": siege.get("siret"),
        "legal_name": result.get("nom_raison_sociale") or result.get("nom_complet"),
        "display_name": result.get("nom_complet"),
        "naf_code": result.get("activite_principale"),
        "naf_label": result.get("libelle_activite_principale"),
        "headcount_band": result.get("tranche_effectif_salarie"),
        "headcount_year": None if result.get("annee_tranche_effectif_salarie") is None
        else str(result.get("annee_tranche_effectif_salarie")),
        "legal_form_code": None if result.get("nature_juridique") is None else str(result.get("nature_juridique")),
        "category": result.get("categorie_entreprise"),
        "created_on": _date(result.get("date_creation"), "date_creation"),
        "ceased_on": _date(result.get("date_fermeture"), "date_fermeture"),
        "etat_administratif": result.get("etat_administratif"),
        "statut_diffusion": result.get("statut_diffusion"),
        "address": _street(siege),
        "address_complement": siege.get("complement_adresse"),
        "postcode": siege.get("code_postal"),
        "city": siege.get("libelle_commune"),
        "vat_number": vat or fr_vat(siren),
        "vat_is_derived": not vat,
        "fetched_at": fetched_at,
        "source": source,
    }


_COMPANY_COLUMNS: Dict[str, Dict[str, Any]] = {
    "siren": {"data_type": "text", "nullable": False},
    "siret_head_office": {"data_type": "text"}, "legal_name": {"data_type": "text"},
    "display_name": {"data_type": "text"}, "naf_code": {"data_type": "text"}, "naf_label": {"data_type": "text"},
    "naf_nomenclature": {"data_type": "text"},
    "headcount_band": {"data_type": "text"}, "headcount_year": {"data_type": "text"},
    "legal_form_code": {"data_type": "text"}, "category": {"data_type": "text"},
    "created_on": {"data_type": "date"}, "ceased_on": {"data_type": "date"},
    "etat_administratif": {"data_type": "text"}, "statut_diffusion": {"data_type": "text"},
    "address": {"data_type": "text"}, "address_complement": {"data_type": "text"},
    "postcode": {"data_type": "text"}, "city": {"data_type": "text"},
    "vat_number": {"data_type": "text"}, "vat_is_derived": {"data_type": "bool"},
    "fetched_at": {"data_type": "timestamp", "nullable": False, "dedup_sort": "desc"},
    "source": {"data_type": "text", "nullable": False},
}


def _lookup_hints() -> Any:
    return dlt.mark.make_hints(
        table_name="lookups", write_disposition="merge", primary_key="lookup_key",
        columns={
            "lookup_key": {"data_type": "text", "nullable": False},
            "kind": {"data_type": "text", "nullable": False},  # siren | name
            "siren": {"data_type": "text"}, "query_name": {"data_type": "text"},
            "query_postcode": {"data_type": "text"},
            "status": {"data_type": "text", "nullable": False},  # found | not_found | candidates | no_candidates
            "result_count": {"data_type": "bigint"},
            "fetched_at": {"data_type": "timestamp", "nullable": False},
        },
    )


def _lookup_item(**row: Any) -> Any:
    return dlt.mark.with_hints(row, _lookup_hints(), create_table_variant=True)


def _with_variants(resource: DltResource, variants: List[Any], columns: Dict[str, Any]) -> DltResource:
    """Declare the extra tables first, then the resource's own columns (so `siren NOT NULL` and the like are
    not copied into the variant tables; same reason as in connectors.hubspot)."""
    for hints in variants:
        resource.apply_hints(
            table_name=hints["table_name"], write_disposition=hints.get("write_disposition"),
            columns=hints.get("original_columns") or hints.get("columns"), primary_key=hints.get("primary_key"),
            merge_key=hints.get("merge_key") or "", create_table_variant=True,  # "": no merge key inherited
        )
    resource.apply_hints(columns=columns)
    return resource


# ------------------------------------------------------------------------------------------- planning

def _as_datetime(value: Any) -> Optional[datetime]:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


class Plan:
    """What one run asks: SIRENs to look up, searches to run, and the identifiers rejected before any call."""

    def __init__(self, wanted: Sequence[Mapping[str, Any]], cached: Mapping[str, Any], max_age: timedelta,
                 now: datetime) -> None:
        fresh_after = now - max_age
        fresh = {k for k, v in cached.items() if (ts := _as_datetime(v)) is not None and ts > fresh_after}
        self.sirens: List[str] = []
        self.searches: Dict[str, tuple[str, Optional[str]]] = {}
        self.rejected: List[tuple[Identifier, Mapping[str, Any]]] = []
        self.fresh = 0
        seen: set[str] = set()
        for item in wanted:
            ident = check_identifier(item.get("siren"), item.get("siret"), item.get("vat") or item.get("vat_number"))
            if ident is not None and ident.error:
                self.rejected.append((ident, item))
            if ident is not None and ident.siren:
                key = ident.siren
                if key not in seen:
                    seen.add(key)
                    if key in fresh:
                        self.fresh += 1
                    else:
                        self.sirens.append(key)
                continue
            name = str(item.get("name") or "").strip()
            if not name:
                continue
            postcode = re.sub(r"\s", "", str(item.get("postcode") or "")) or None
            key = search_key(name, postcode)
            if key not in seen:
                seen.add(key)
                if key in fresh:
                    self.fresh += 1
                else:
                    self.searches[key] = (name, postcode)


# ------------------------------------------------------------------------------------------- the source

@dlt.source(name="registry", max_table_nesting=0)
def registry_source(
    wanted: Optional[List[Dict[str, Any]]] = None,
    cached: Optional[Dict[str, Any]] = None,
    max_age_days: float = settings.DEFAULT_MAX_AGE_DAYS,
    base_url: str = settings.DEFAULT_BASE_URL,
    max_candidates: int = settings.DEFAULT_MAX_CANDIDATES,
    stock_unites: Optional[str] = None,
    stock_etablissements: Optional[str] = None,
    stock_as_of: Optional[str] = None,
    naf_labels_file: Optional[str] = None,
    legal_form_labels_file: Optional[str] = None,
    rate_limit_per_second: float = settings.RATE_LIMIT_PER_SECOND,
    connect_timeout: float = 10.0,
    read_timeout: float = 30.0,
    max_attempts: int = 6,
    backoff_base: float = 1.0,
    backoff_max: float = 60.0,
    max_retry_after: float = 120.0,
    user_agent: str = settings.USER_AGENT,
    now: Optional[datetime] = None,
) -> List[DltResource]:
    """Registry look-ups (API), name + postcode candidates, Sirene stock, code labels.

    Config the dlt way: `SOURCES__REGISTRY__BASE_URL`, `SOURCES__REGISTRY__MAX_AGE_DAYS`,
    `SOURCES__REGISTRY__STOCK_UNITES` / `..._STOCK_ETABLISSEMENTS` (paths), `SOURCES__REGISTRY__RATE_LIMIT_PER_SECOND`.

    Args:
        wanted: companies to enrich, each a dict with any of `siren`, `siret`, `vat` (checked before any call;
            the first one given is used) and/or `name` + `postcode` (searched when no identifier is given, or the
            identifier is invalid).
        cached: {SIREN or `search_key(name, postcode)`: fetched_at} of what the warehouse already holds (API
            look-ups and stock rows alike); only missing or stale keys are asked.
        max_age_days: a cached key older than this is asked again.
        max_candidates: candidates kept per name search (one request up to 25).
        stock_unites / stock_etablissements: Sirene stock files (CSV, zipped CSV or Parquet) for `stock_companies`;
            that resource is deselected when they are not given. stock_as_of: the stock's date (ISO; default:
            the file's modification time).
        naf_labels_file / legal_form_labels_file: optional CSV files (code, label) for `code_labels`.
        now: the run's clock (tests); default: the current UTC time.
    """
    client = RegistryClient(
        base_url, rate_limit_per_second=rate_limit_per_second, connect_timeout=connect_timeout,
        read_timeout=read_timeout, user_agent=user_agent,
        retry_policy=RetryPolicy(max_attempts=max_attempts, backoff_base=backoff_base, backoff_max=backoff_max,
                                 max_retry_after=max_retry_after),
    )
    wanted_list = list(wanted or [])
    cached_map = dict(cached or {})
    max_age = timedelta(days=max_age_days)
    plan_box: Dict[str, Plan] = {}

    def plan() -> Plan:
        # Built lazily (and once): creating the source does no work at all.
        if "plan" not in plan_box:
            plan_box["plan"] = Plan(wanted_list, cached_map, max_age, now or datetime.now(timezone.utc))
        return plan_box["plan"]

    def clock() -> datetime:
        return now or datetime.now(timezone.utc)

    @dlt.resource(name="companies", table_name="companies", write_disposition="merge", primary_key="siren")
    def companies() -> Iterator[Any]:
        p = plan()
        for ident, item in p.rejected:
            yield quarantine_item(SOURCE, "wanted", ident.given, ident.error, dict(item))
        logger.info("registry: %d SIRENs to look up, %d fresh in cache, %d rejected identifiers",
                    len(p.sirens), p.fresh, len(p.rejected))
        for n, siren in enumerate(p.sirens, 1):
            results = client.lookup(siren)
            fetched_at = clock()
            found = False
            for result in results:
                try:
                    row = company_row(result, fetched_at)
                except MalformedRecord as exc:
                    yield quarantine_item(SOURCE, "companies", siren, str(exc), result)
                    found = True  # answered, but unreadable: do not record it as absent from the registry
                    continue
                if row["siren"] == siren:
                    found = True
                    yield row
            yield _lookup_item(lookup_key=siren, kind="siren", siren=siren, query_name=None, query_postcode=None,
                               status="found" if found else "not_found", result_count=len(results),
                               fetched_at=fetched_at)
            if n % 100 == 0:
                logger.info("registry: %d/%d SIRENs looked up", n, len(p.sirens))

    @dlt.resource(name="candidates", table_name="candidates",
                  write_disposition={"disposition": "merge", "strategy": "delete-insert"},
                  primary_key=["query_key", "siren"], merge_key="query_key")
    def candidates() -> Iterator[Any]:
        p = plan()
        logger.info("registry: %d name + postcode searches", len(p.searches))
        for key, (name, postcode) in p.searches.items():
            results, total = client.search_name(name, postcode, max_candidates)
            fetched_at = clock()
            kept = 0
            for rank, result in enumerate(results, 1):
                try:
                    row = company_row(result, fetched_at)
                except MalformedRecord as exc:
                    yield quarantine_item(SOURCE, "candidates", key, str(exc), result)
                    continue
                row.update(query_key=key, query_name=name, query_postcode=postcode, rank=rank,
                           score=_float(result.get("score")), total_results=total)
                kept += 1
                yield row
            yield _lookup_item(lookup_key=key, kind="name", siren=None, query_name=name, query_postcode=postcode,
                               status="candidates" if kept else "no_candidates", result_count=total,
                               fetched_at=fetched_at)

    @dlt.resource(name="stock_companies", table_name="stock_companies", write_disposition="replace",
                  selected=bool(stock_unites and stock_etablissements))
    def stock_companies() -> Iterator[Any]:
        from connectors.registry.stock import stock_rows  # pyarrow only when a stock is loaded

        if not (stock_unites and stock_etablissements):
            raise ValueError("stock_companies needs stock_unites and stock_etablissements (file paths)")
        as_of = _as_datetime(stock_as_of) if stock_as_of else None
        total = 0
        for table in stock_rows(stock_unites, stock_etablissements, as_of):
            total += table.num_rows
            yield table
        logger.info("registry: %d units read from the stock files", total)

    @dlt.resource(name="code_labels", table_name="code_labels", write_disposition="merge",
                  primary_key=["nomenclature", "code"])
    def code_labels() -> Iterator[Dict[str, Any]]:
        for code, label in settings.HEADCOUNT_BANDS.items():
            yield {"nomenclature": "headcount_band", "code": code, "label": label}
        labels = dict(settings.LEGAL_FORMS)
        if legal_form_labels_file:
            labels.update(_read_labels(legal_form_labels_file))
        for code, label in labels.items():
            yield {"nomenclature": "legal_form", "code": code, "label": label}
        if naf_labels_file:
            for code, label in _read_labels(naf_labels_file).items():
                yield {"nomenclature": "naf", "code": code, "label": label}

    quarantine = quarantine_hints()
    company_resource = _with_variants(companies, [_lookup_hints(), quarantine], _COMPANY_COLUMNS)
    candidate_columns = {
        **{k: v for k, v in _COMPANY_COLUMNS.items() if k != "fetched_at"},
        "fetched_at": {"data_type": "timestamp", "nullable": False},
        "query_key": {"data_type": "text", "nullable": False}, "query_name": {"data_type": "text"},
        "query_postcode": {"data_type": "text"}, "rank": {"data_type": "bigint"}, "score": {"data_type": "double"},
        "total_results": {"data_type": "bigint"},
    }
    candidate_resource = _with_variants(candidates, [_lookup_hints(), quarantine], candidate_columns)
    stock_resource = stock_companies
    stock_resource.apply_hints(columns={k: {h: x for h, x in v.items() if h != "dedup_sort"}
                                        for k, v in _COMPANY_COLUMNS.items()
                                        if k in ("siren", "created_on", "ceased_on", "fetched_at", "source")})
    return [company_resource, candidate_resource, stock_resource, code_labels]


def _float(value: Any) -> Optional[float]:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _read_labels(path: str) -> Dict[str, str]:
    """A code -> label CSV (`,` or `;`; the first two columns; a header row is skipped when its first cell is not
    a code). INSEE's NAF/catégorie juridique files saved as CSV fit."""
    import csv

    text = Path(path).read_text(encoding="utf-8-sig")
    dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else ",", delimiters=",;\t")
    out: Dict[str, str] = {}
    for i, row in enumerate(csv.reader(text.splitlines(), dialect)):
        if len(row) < 2 or not row[0].strip():
            continue
        if i == 0 and not re.match(r"^[0-9]", row[0].strip()):
            continue  # header
        out[row[0].strip()] = row[1].strip()
    return out


def client_of(source: Any) -> RegistryClient:
    """The HTTP client behind a `registry_source(...)` instance (request counts in `.stats`)."""
    for resource in source.resources.values():
        gen = getattr(getattr(resource, "_pipe", None), "gen", None)
        for cell in getattr(gen, "__closure__", None) or ():
            if isinstance(cell.cell_contents, RegistryClient):
                return cell.cell_contents
    raise LookupError("no registry client found in this source")
