"""Registry connector against the sandbox registry (no mocks): identifier checks before any call, look-ups of the
wanted SIRENs only (cache by fetch date, refresh when stale), name + postcode candidates, rate limit and 5xx,
malformed answers, the Sirene stock files as the bulk path, and the staging tables built on what was loaded."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import dlt
import pytest
import requests

from connectors.registry import check_identifier, client_of, registry_source, search_key
from connectors.registry.__main__ import main as registry_cli
from connectors.registry.helpers import RegistryClient, RegistryError
from sandbox.generator import generate_world
from sandbox.ids import new_siren
from sandbox.registry_render import write_naf_labels, write_stock_files
from sandbox.server import SandboxServer
from transforms import staging
from warehouse import Warehouse

FAST = dict(backoff_base=0.01, backoff_max=0.05, max_retry_after=2.0)
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _quiet_logs(caplog):
    caplog.set_level(logging.WARNING, logger="connectors.registry")


@pytest.fixture(scope="module")
def world():
    return generate_world(seed=42, size="tiny")


@pytest.fixture
def server(world):
    # The sandbox's 7/s limit is lifted for speed, except in the test that checks pacing.
    with SandboxServer(world, port=0, vendors=["registry"], registry={"rate_limit_per_second": 10_000}) as srv:
        yield srv


class Sync:
    def __init__(self, srv: SandboxServer, tmp_path, **kwargs):
        self.srv = srv
        self.kwargs = {"base_url": srv.vendor_url("registry"), "rate_limit_per_second": 500, **FAST, **kwargs}
        self.db = str(tmp_path / "warehouse.duckdb")
        self.pipeline = dlt.pipeline(pipeline_name="registry_test", destination=dlt.destinations.duckdb(self.db),
                                     dataset_name="raw_registry", pipelines_dir=str(tmp_path / "dlt"))
        self.source = None

    def run(self, **overrides) -> int:
        before = self.srv.stats()["total"]
        self.source = registry_source(**{**self.kwargs, **overrides})
        self.pipeline.run(self.source)
        return self.srv.stats()["total"] - before

    def query(self, sql: str):
        with self.pipeline.sql_client() as client:
            return client.execute_sql(sql)

    def cached(self) -> dict:
        """What the pipeline passes back: the latest fetch per key (look-ups and stock rows)."""
        out = {}
        try:
            out.update({k: ts for k, ts in self.query("select lookup_key, max(fetched_at) from lookups group by 1")})
        except Exception:  # nothing looked up yet
            pass
        try:
            out.update({k: ts for k, ts in self.query("select siren, max(fetched_at) from stock_companies group by 1")
                        if k not in out or ts > out[k]})
        except Exception:
            pass
        return out


def _crm_entities(world):
    return [e for e in world.registry if e.company_key is not None]


def _wanted(world):
    return [{"siren": c.siren, "ref": c.key} for c in world.companies]


# ------------------------------------------------------------------------------------------- identifiers

def test_identifiers_checked_with_checksums():
    assert check_identifier(siren="404 833 048").siren == "404833048"
    assert "checksum" in check_identifier(siren="404833047").error
    assert check_identifier(siret="35600000049837").siren == "356000000"  # La Poste: digit sum, not Luhn
    assert check_identifier(siret="35600000049838").error
    assert check_identifier(vat="FR46443121975").siren == "443121975"
    assert check_identifier(vat="FR47443121975").error  # wrong key
    assert check_identifier(siren="12345678").error  # length
    assert check_identifier() is None
    assert search_key("Société  Générale", "75 009") == search_key("societe generale", "75009")


def test_creating_the_source_does_no_network_io():
    # Port 9 (discard) is closed here: any call would fail. Creating the source and listing its resources must not.
    source = registry_source(wanted=[{"siren": "404833048"}], base_url="http://127.0.0.1:9")
    assert set(source.resources) == {"companies", "candidates", "stock_companies", "code_labels"}
    assert "stock_companies" not in source.selected_resources  # no stock files configured


# ------------------------------------------------------------------------------------------- API syncs

def test_full_sync_lands_the_registry_view_of_every_wanted_company(world, server, tmp_path):
    sync = Sync(server, tmp_path)
    bad = {"siren": "404833047", "ref": "typo"}
    unknown = new_siren(__import__("random").Random(7), {e.siren for e in world.registry})
    co = world.companies[5]
    wanted = _wanted(world) + [bad, {"siren": unknown}, {"name": co.legal_name, "postcode": co.postcode},
                               {"siret": world.companies[0].siret}]  # same SIREN twice: asked once
    requests_sent = sync.run(wanted=wanted, now=NOW)
    # one call per distinct valid SIREN + the unknown one + one search; the typo is never sent
    assert requests_sent == len(world.companies) + 1 + 1
    assert not any("404833047" in p for p in server.stats()["by_path"])
    rows = {r[0]: r[1:] for r in sync.query(
        "select siren, legal_name, naf_code, headcount_band, legal_form_code, category, etat_administratif, "
        "postcode, city, vat_number, siret_head_office, created_on, ceased_on, source from companies")}
    expected = {e.siren: e for e in _crm_entities(world)}
    assert set(rows) == set(expected)
    for siren, e in expected.items():
        (name, naf, band, form, cat, etat, pc, city, vat, siret, created, ceased, source) = rows[siren]
        assert (name, naf, band, form, cat, etat, pc, city, siret, created, ceased, source) == (
            e.legal_name, e.naf_code, e.headcount_band, e.legal_form_code, e.category, e.etat, e.postcode, e.city,
            e.siret, e.creation_date, e.closure_date, "api")
        assert vat == e.vat
    status = dict(sync.query("select lookup_key, status from lookups"))
    assert status[unknown] == "not_found"
    assert status[search_key(co.legal_name, co.postcode)] == "candidates"
    quarantined = sync.query("select object_type, record_id, reason from _quarantine")
    assert quarantined == [("wanted", "siren=404833047", quarantined[0][2])]
    assert "invalid SIREN" in quarantined[0][2]
    cands = sync.query("select siren, rank, score from candidates order by rank")
    assert cands[0][0] == co.siren and cands[0][1] == 1 and cands[0][2] is not None


def test_incremental_asks_only_missing_or_stale_keys(world, server, tmp_path):
    sync = Sync(server, tmp_path)
    first = world.companies[:20]
    assert sync.run(wanted=[{"siren": c.siren} for c in first], now=NOW) == 20
    before = sync.query("select siren, fetched_at from companies order by siren")
    # rerun: everything is fresh, nothing asked, nothing changed
    assert sync.run(wanted=[{"siren": c.siren} for c in first], cached=sync.cached(), now=NOW) == 0
    assert sync.query("select siren, fetched_at from companies order by siren") == before
    # ten more companies: only those are asked
    more = world.companies[:30]
    assert sync.run(wanted=[{"siren": c.siren} for c in more], cached=sync.cached(),
                    now=NOW + timedelta(days=1)) == 10
    # 30.5 days later the first twenty are stale (default max age 30 days), the ten newer ones are not
    later = NOW + timedelta(days=30, hours=12)
    assert sync.run(wanted=[{"siren": c.siren} for c in more], cached=sync.cached(), now=later) == 20
    assert sync.query("select count(*), count(distinct siren) from companies") == [(30, 30)]
    assert sync.query("select count(*) from companies where fetched_at = '2026-12-02 21:00:00+00'")[0][0] == 20
    # a configurable age: with 60 days nothing is stale
    assert sync.run(wanted=[{"siren": c.siren} for c in more], cached=sync.cached(), now=later,
                    max_age_days=60) == 0


def test_rate_limit_storm_and_5xx_survived_without_loss_or_duplicates(world, server, tmp_path):
    server.faults.set(rate_limit_storm=3, server_errors=2)
    sync = Sync(server, tmp_path)
    sync.run(wanted=_wanted(world), now=NOW)
    assert server.stats()["by_status"].get("429") == 3
    assert sum(v for k, v in server.stats()["by_status"].items() if k.startswith("5")) == 2
    assert sync.query("select count(*), count(distinct siren) from companies") == [(len(world.companies),) * 2]
    assert client_of(sync.source).stats.retries == 5


def test_client_paces_itself_under_the_7_per_second_limit(world, tmp_path):
    with SandboxServer(world, port=0, vendors=["registry"]) as srv:  # the real 7 requests/s per IP
        sync = Sync(srv, tmp_path, rate_limit_per_second=7)
        sync.run(wanted=[{"siren": c.siren} for c in world.companies[:16]], now=NOW)
        assert srv.stats()["by_status"] == {"200": 16}  # no 429: the client waited instead
        assert client_of(sync.source).limiter.waited_seconds > 0


def test_malformed_answer_is_quarantined_and_the_load_goes_on(world, server, tmp_path):
    server.faults.set(malformed_record="bad_date", malformed_object_type="registry")
    sync = Sync(server, tmp_path)
    sync.run(wanted=_wanted(world), now=NOW)
    spoiled = world.companies[0].siren
    assert sync.query("select object_type, record_id from _quarantine") == [("companies", spoiled)]
    assert "date_creation is not a date" in sync.query("select reason from _quarantine")[0][0]
    sirens = {r[0] for r in sync.query("select siren from companies")}
    assert sirens == {c.siren for c in world.companies} - {spoiled}


def test_api_limits_and_erreur_bodies(world, server):
    url = server.vendor_url("registry") + "/search"
    assert requests.get(url, params={"q": "abc", "per_page": 26}).status_code == 400
    r = requests.get(url, params={"q": "abc", "per_page": 25, "page": 401})
    assert r.status_code == 400 and "10 000" in r.json()["erreur"]
    assert requests.get(url).json() == {"erreur": "Veuillez indiquer au moins un paramètre de recherche."}
    siret = world.companies[2].siret
    page = requests.get(url, params={"q": siret, "code_postal": "00000"}).json()  # filters ignored on a SIRET
    assert page["results"][0]["siren"] == siret[:9]
    assert page["results"][0]["matching_etablissements"][0]["siret"] == siret
    client = RegistryClient(server.vendor_url("registry"))
    with pytest.raises(RegistryError, match="10000"):
        client.search({"q": "abc", "per_page": 25, "page": 401})  # refused before it is sent
    with pytest.raises(RegistryError, match="Numéro Siren invalide"):
        client.search({"q": "404833047"})


# ------------------------------------------------------------------------------------------- stock + staging

def _build_staging(db: str) -> Warehouse:
    from transforms.sales_model import load_sales_model

    wh = Warehouse(f"duckdb:///{db}")
    wh.ensure_schemas()
    for n, df in load_sales_model("sales_model.yaml").config_frames().items():
        wh.write_frame("staging", n, df)
    for table, table_parts in staging.parts(["registry"]).items():
        if table_parts:
            sql, _ = staging.union_sql(table, table_parts, wh.dialect, wh.table_exists, wh.columns)
            wh.build_table("staging", table, sql)
    return wh


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_stock_files_load_with_no_call_and_spare_the_api(world, server, tmp_path, fmt):
    unites, etabs = write_stock_files(world, tmp_path / "stock", fmt)
    labels = write_naf_labels(world, tmp_path / "stock" / "naf.csv")
    db = str(tmp_path / "warehouse.duckdb")
    before = server.stats()["total"]
    assert registry_cli(["--duckdb-path", db, "--pipelines-dir", str(tmp_path / "dlt"), "--pipeline-name",
                         "registry_test", "--quiet", "load-stock", "--unites", str(unites), "--etablissements",
                         str(etabs), "--as-of", "2026-10-31", "--naf-labels", str(labels)]) == 0
    assert server.stats()["total"] == before
    sync = Sync(server, tmp_path)
    assert sync.query("select count(*) from stock_companies")[0][0] == len(world.registry)
    # the CRM companies are all in the stock (dated 2026-10-31): looking them up two days later asks nothing
    assert sync.run(wanted=_wanted(world), cached=sync.cached(), now=NOW) == 0

    wh = _build_staging(db)
    rows = {r["siren"]: r for r in wh.query("select * from staging.registry_companies")}
    assert len(rows) == len(world.registry)
    for e in world.registry:
        r = rows[e.siren]
        assert (r["legal_name"], r["naf_code"], r["naf_label"], r["postcode"], r["city"], r["is_ceased"],
                r["ceased_on"], r["siret_head_office"], r["vat_number"], r["source"]) == (
            e.legal_name, e.naf_code, e.naf_label, e.postcode, e.city, e.etat == "C", e.closure_date, e.siret,
            e.vat, "stock")
        assert r["address"] and r["created_on"] == e.creation_date

    # a fresher API look-up of one company wins over its stock row
    co = world.companies[1]
    assert sync.run(wanted=[{"siren": co.siren}], now=NOW) == 1
    wh = _build_staging(db)
    assert wh.query("select source, legal_form_label from staging.registry_companies where siren = :s",
                    {"s": co.siren}) == [{"source": "api", "legal_form_label": wh.query(
                        "select label from raw_registry.code_labels where nomenclature = 'legal_form' "
                        "and code = :c", {"c": co.legal_form_code})[0]["label"]}]
    assert wh.row_count("staging", "registry_companies") == len(world.registry)


def test_staging_from_api_only_and_candidates(world, server, tmp_path):
    sync = Sync(server, tmp_path)
    co = world.companies[7]
    sync.run(wanted=_wanted(world)[:10] + [{"name": co.legal_name, "postcode": co.postcode}], now=NOW)
    wh = _build_staging(sync.db)
    assert wh.row_count("staging", "registry_companies") == 10
    assert {r["source"] for r in wh.query("select source from staging.registry_companies")} == {"api"}
    cands = wh.query("select * from staging.registry_candidates order by rank")
    assert cands and cands[0]["siren"] == co.siren and cands[0]["rank"] == 1
    assert cands[0]["query_key"] == search_key(co.legal_name, co.postcode)


@pytest.mark.postgres
def test_staging_on_postgresql(world, server, tmp_path, postgres_warehouse, monkeypatch):
    """Same loads into PostgreSQL: the staging SQL runs there and gives the DuckDB answer."""
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS__PASSWORD", "trust-auth-ignores-it")  # dlt requires one
    unites, etabs = write_stock_files(world, tmp_path / "stock", "csv")
    answers = []
    for name, destination in (("duck", dlt.destinations.duckdb(str(tmp_path / "w.duckdb"))),
                              ("pg", postgres_warehouse.dlt_destination())):
        pipeline = dlt.pipeline(pipeline_name=f"registry_{name}", destination=destination,
                                dataset_name="raw_registry", pipelines_dir=str(tmp_path / f"dlt_{name}"))
        pipeline.run(registry_source(stock_unites=str(unites), stock_etablissements=str(etabs),
                                     stock_as_of="2026-10-31").with_resources("stock_companies", "code_labels"))
        co = world.companies[3]
        pipeline.run(registry_source(wanted=_wanted(world)[:5] + [{"name": co.legal_name, "postcode": co.postcode}],
                                     base_url=server.vendor_url("registry"), rate_limit_per_second=500, now=NOW,
                                     **FAST))
        wh = postgres_warehouse if name == "pg" else Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
        wh.ensure_schemas()
        for table, table_parts in staging.parts(["registry"]).items():
            if table_parts:
                sql, _ = staging.union_sql(table, table_parts, wh.dialect, wh.table_exists, wh.columns)
                wh.build_table("staging", table, sql)
        answers.append((
            sorted(tuple(str(v) for v in r.values()) for r in wh.query(
                "select siren, legal_name, naf_code, naf_label, legal_form_label, created_on, ceased_on, is_ceased, "
                "vat_number, source from staging.registry_companies")),
            sorted(tuple(str(v) for v in r.values()) for r in wh.query(
                "select query_key, siren, rank, score from staging.registry_candidates")),
        ))
    assert answers[0] == answers[1]
    assert len(answers[0][0]) == len(world.registry) and answers[0][1]
