"""`crm-etl forget`: a person present in HubSpot and Koban, erased by email from a real warehouse (the tiny sandbox
world through the whole pipeline), then looked for in every text column of every table of every schema.

The pipeline runs once, into DuckDB; the PostgreSQL case gets a copy of every table of that warehouse (same schemas,
tables and values, no second pipeline run). It runs with dlt's `load.delete_completed_jobs` off, as a deployment that
loaded before the project's .dlt/config.toml turned it on: the loaded packages on disk keep their data files, which
forget must find and delete.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import fresh_postgres_database
from warehouse import Warehouse
from warehouse.connection import qualify

pytestmark = pytest.mark.slow

SEED = 7
#: Kept by design (accounting retention): never scanned for the email.
BILLING = re.compile(r"^(raw_stripe(_staging)?\..*|staging\.billing_.*|raw_koban(_staging)?\.invoices.*)$")
SYSTEM_SCHEMAS = ("information_schema", "pg_catalog", "pg_toast")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The tiny world through every asset into DuckDB (one quarantined contact, as in test_end_to_end)."""
    from sandbox.generator import generate_world
    from sandbox.pipeline_run import run_full_pipeline, sandbox_environment

    tmp = tmp_path_factory.mktemp("forget")
    url = f"duckdb:///{tmp / 'warehouse.duckdb'}"
    env_before = dict(os.environ)
    os.environ["CRM_ETL_WAREHOUSE_URL"] = url
    os.environ["DLT_DATA_DIR"] = str(tmp / "dlt")
    os.environ["LOAD__DELETE_COMPLETED_JOBS"] = "false"  # the loaded packages keep their data (see the module doc)
    try:
        with sandbox_environment(generate_world(seed=SEED, size="tiny"), tmp / "files",
                                 faults={"malformed_record": "bad_id"}):
            result = run_full_pipeline(echo=lambda _: None)
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    assert result.success
    import shutil

    shutil.copy(tmp / "warehouse.duckdb", tmp / "pristine.duckdb")  # for the PostgreSQL copy, made later
    return url


def _tables(wh: Warehouse) -> list[tuple[str, str]]:
    return [(r["s"], r["t"]) for r in wh.query(
        "select table_schema as s, table_name as t from information_schema.tables where table_type = 'BASE TABLE' "
        f"and table_schema not in {SYSTEM_SCHEMAS} order by 1, 2")]


@pytest.fixture(scope="module")
def postgres_copy(built):
    """A fresh PostgreSQL database holding a copy of every table of the built DuckDB warehouse."""
    with fresh_postgres_database("crm_forget") as url:
        duck, pg = Warehouse(built.replace("warehouse.duckdb", "pristine.duckdb")), Warehouse(url)
        pg.ensure_schemas()
        for schema, table in _tables(duck):
            pg.write_frame(schema, table, duck.query_arrow(f"select * from {qualify(schema, table)}"))
        yield url
        pg.dispose()


def _text_columns(wh: Warehouse) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for r in wh.query(
            "select c.table_schema as s, c.table_name as t, c.column_name as c from information_schema.columns c "
            "join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name "
            f"where t.table_type = 'BASE TABLE' and c.table_schema not in {SYSTEM_SCHEMAS} "
            "and lower(c.data_type) in ('varchar', 'text', 'character varying', 'json')"):
        out.setdefault((r["s"], r["t"]), []).append(r["c"])
    return out


def holding(wh: Warehouse, needle: str) -> dict[str, int]:
    """Every text column (outside billing) of every table holding `needle` (case-insensitive): rows per column.
    One query per table, on one connection."""
    hits = {}
    with wh.session():
        for (schema, table), cols in _text_columns(wh).items():
            if BILLING.match(f"{schema}.{table}"):
                continue
            sums = ", ".join(f'sum(case when strpos(lower(cast("{c}" as text)), :n) > 0 then 1 else 0 end) as c{i}'
                             for i, c in enumerate(cols))
            row = wh.query(f"select {sums} from {qualify(schema, table)}", {"n": needle.lower()})[0]
            hits.update({f"{schema}.{table}.{c}": int(row[f"c{i}"]) for i, c in enumerate(cols) if row[f"c{i}"]})
    return hits


def counts(wh: Warehouse) -> dict[str, int]:
    with wh.session():
        return {f"{s}.{t}": wh.row_count(s, t) for s, t in _tables(wh)}


def pick_subject(wh: Warehouse) -> dict:
    """A HubSpot contact with a Koban twin in the crosswalk, with activities, whose email no billing record holds."""
    rows = wh.query("""
        select h.contact_id as hubspot_id, k.contact_id as koban_id, h.email, x.entity_key,
               (select count(*) from staging.activities a
                where (a.source_system = 'hubspot' and a.contact_id = h.contact_id)
                   or (a.source_system = 'koban' and a.contact_id = k.contact_id)) as activities
        from staging.contacts h
        join core.contact_crosswalk x on x.source_system = 'hubspot' and x.source_id = h.contact_id
        join core.contact_crosswalk y on y.entity_key = x.entity_key and y.source_system = 'koban'
        join staging.contacts k on k.source_system = 'koban' and k.contact_id = y.source_id
        where h.source_system = 'hubspot' and h.email is not null
          and lower(h.email) not in (select lower(email) from staging.billing_customers where email is not null)
        order by activities desc, h.contact_id""")
    assert rows and rows[0]["activities"] > 0, "the tiny world has a person in both CRMs with activities"
    return rows[0]


def dlt_dir(built: str) -> Path:
    """The DLT_DATA_DIR the built warehouse's pipeline ran with (its PostgreSQL copy shares it)."""
    return Path(built.removeprefix("duckdb:///")).parent / "dlt"


def files_naming(root: Path, needle: str) -> list[str]:
    """Every file under `root` holding `needle` (case-insensitive), gzip-compressed files read decompressed."""
    hits = []
    for f in sorted(root.rglob("*")):
        if f.is_file():
            data = f.read_bytes()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            if needle.lower().encode() in data.lower():
                hits.append(str(f.relative_to(root)))
    return hits


def run_forget(url: str, dlt: Path, *args: str):
    from crm_etl_cli import main

    env = {"CRM_ETL_WAREHOUSE_URL": url, "DLT_DATA_DIR": str(dlt)}
    return CliRunner().invoke(main, ["forget", *args], env=env, catch_exceptions=False)


@pytest.mark.parametrize("dialect", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_forget_erases_the_person_everywhere(dialect, request, tmp_path):
    from transforms.identity.state import state_path

    url = request.getfixturevalue("built" if dialect == "duckdb" else "postgres_copy")
    dlt = dlt_dir(request.getfixturevalue("built"))
    wh = Warehouse(url)
    subject = pick_subject(wh)
    email, hubspot_id, koban_id = subject["email"], subject["hubspot_id"], subject["koban_id"]
    assert holding(wh, email), "the email is in the warehouse before"
    named_on_disk = files_naming(dlt, email)
    if dialect == "duckdb":  # the PostgreSQL case runs second, on the same dlt folder
        assert any("/load/loaded/" in f for f in named_on_disk), "dlt's loaded packages hold the email before"
    other = wh.query("select source_system, contact_id, email from staging.contacts where email is not null "
                     "and lower(email) <> lower(:e) and contact_id not in (:h, :k) order by contact_id limit 1",
                     {"e": email, "h": hubspot_id, "k": koban_id})[0]
    other_before = holding(wh, other["email"])
    state = state_path("contacts", wh.url)
    if dialect == "postgres":  # the pipeline ran on DuckDB: stand in for the PostgreSQL warehouse's state
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_bytes(b"state")
    assert state.exists()
    activities_before = wh.row_count("staging", "activities")
    linked = wh.scalar("select count(*) from staging.activities where (source_system = 'hubspot' and contact_id = :h) "
                       "or (source_system = 'koban' and contact_id = :k)", {"h": hubspot_id, "k": koban_id})
    koban_actions = wh.scalar("select count(*) from raw_koban.actions where contact__guid = :k", {"k": koban_id})
    before = counts(wh)

    # a dry run changes nothing and prints no personal value
    dry = run_forget(url, dlt, "--email", f"  {email.upper()} ", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "Dry run: nothing was changed" in dry.output and "staging.contacts" in dry.output
    assert email.lower() not in dry.output.lower() and hubspot_id not in dry.output and koban_id not in dry.output
    assert "Stripe" in dry.output
    assert counts(wh) == before and state.exists() and files_naming(dlt, email) == named_on_disk
    if named_on_disk:
        assert "dlt's files naming them" in dry.output
    # without --yes it asks, and "no" changes nothing
    refused = run_forget(url, dlt, "--email", email)
    assert refused.exit_code != 0 and counts(wh) == before and files_naming(dlt, email) == named_on_disk

    done = run_forget(url, dlt, "--email", f"  {email.upper()} ", "--yes")
    assert done.exit_code == 0, done.output
    assert "delete the person in the CRMs" in done.output and "identity" in done.output
    assert email.lower() not in done.output.lower()

    # the generic scan: no text column of any table holds the email any more (billing, kept by design, aside)
    assert holding(wh, email) == {}
    # nor does any file dlt keeps on disk (load packages, traces, state, schemas)
    assert files_naming(dlt, email) == []
    assert files_naming(dlt, koban_id) == []
    # the Koban twin is gone (the request named only the email)
    for schema, table in (("raw_koban", "contacts"), ("raw_koban_staging", "contacts")):
        assert wh.scalar(f"select count(*) from {schema}.{table} where id = :k", {"k": koban_id}) == 0
    assert holding(wh, koban_id) == {} and holding(wh, hubspot_id) == {}
    for table in ("contact_crosswalk", "contact_golden", "dim_contact", "lead_scores"):
        key = "entity_key" if table in ("contact_crosswalk", "contact_golden") else "contact_key"
        assert wh.scalar(f"select count(*) from core.{table} where {key} = :e", {"e": subject["entity_key"]}) == 0
    # activities stay, unlinked
    assert wh.row_count("staging", "activities") == activities_before
    assert wh.scalar("select count(*) from staging.activities where contact_id is null") >= linked
    assert wh.scalar("select count(*) from raw_koban.actions where contact__guid is null and contact__label is null") \
        >= koban_actions
    # every table lost exactly what the erasure says it deleted
    after = counts(wh)
    erasure = wh.query("select * from quality.erasures")
    assert len(erasure) == 1
    deleted = json.loads(erasure[0]["rows_deleted"])
    assert deleted["raw_hubspot.contacts"] == 1 and deleted["raw_koban.contacts"] == 1
    assert {t: before[t] - after.get(t, 0) for t in before if before[t] != after.get(t, 0)} == deleted
    # the erasure's record holds no personal data, only the hash of what the request named
    assert erasure[0]["subject"] == hashlib.sha256(email.strip().lower().encode()).hexdigest()
    assert erasure[0]["records_found"] >= 2
    files_deleted = json.loads(erasure[0]["files_deleted"])
    if dialect == "duckdb":
        assert files_deleted.get("crm_etl_hubspot", 0) >= 1 and files_deleted.get("crm_etl_koban", 0) >= 1
        assert f"Deleted {sum(files_deleted.values())} dlt file(s)" in done.output
    assert email.lower() not in json.dumps(erasure[0], default=str).lower()
    # an unrelated contact is untouched
    assert holding(wh, other["email"]) == other_before
    assert wh.scalar("select count(*) from staging.contacts where source_system = :s and contact_id = :c",
                     {"s": other["source_system"], "c": other["contact_id"]}) == 1
    # the contacts identity state held their data: deleted, the next identity run rebuilds it in full
    assert not state.exists()
    if dialect == "duckdb":  # a DELETE leaves the bytes in the file's free blocks: the file was rewritten
        from pathlib import Path

        assert email.lower().encode() not in Path(wh.duckdb_path).read_bytes().lower()


def test_forget_removes_a_quarantined_record(built):
    """A contact that never loaded (quarantined for its broken id) is found by the email in its payload."""
    wh = Warehouse(built)
    payloads = [r["payload"] for r in wh.query("select payload from quality.quarantine where object = 'contacts'")]
    reps = {r["e"] for r in wh.query("select lower(email) as e from staging.owners where email is not null")}
    emails = sorted({e for p in payloads for e in re.findall(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", p)} - reps)
    assert emails, payloads
    assert holding(wh, emails[0])
    out = run_forget(built, dlt_dir(built), "--email", emails[0], "--yes")
    assert out.exit_code == 0, out.output
    assert holding(wh, emails[0]) == {}
    assert files_naming(dlt_dir(built), emails[0]) == []


def test_forget_refuses_while_a_pending_load_package_names_the_person(built):
    """A load package extracted but not loaded (a sync that failed after extracting) names the person: erased now,
    they would come back with its load. forget changes nothing and says how to go on; with --drop-pending it aborts
    that pipeline's pending packages (dlt's abort_packages), then erases; not while a sync of that source runs."""
    import dlt

    wh, root = Warehouse(built), dlt_dir(built)
    row = wh.query("select id, email from raw_hubspot.contacts where email is not null order by id limit 1")[0]
    pipeline = dlt.pipeline(pipeline_name="crm_etl_hubspot", pipelines_dir=str(root / "pipelines"),
                            destination=wh.dlt_destination())
    pipeline.extract([{"id": row["id"], "email": row["email"], "firstname": "Changed"}], table_name="contacts")
    assert len(pipeline.list_extracted_load_packages()) == 1
    pending = files_naming(root, row["email"])
    assert any("/normalize/extracted/" in f for f in pending)
    before = counts(wh)

    dry = run_forget(built, root, "--email", row["email"], "--dry-run")
    assert dry.exit_code == 0 and "NOT LOADED YET" in dry.output, dry.output
    refused = run_forget(built, root, "--email", row["email"], "--yes")
    assert refused.exit_code == 1, refused.output
    assert "Refused, nothing was changed" in refused.output and "--drop-pending" in refused.output
    assert "crm-etl run --select 'group:raw_hubspot'" in refused.output
    assert counts(wh) == before and files_naming(root, row["email"]) == pending

    from warehouse.locks import sync_lock

    with sync_lock("hubspot", pipelines_dir=root / "pipelines"):  # a HubSpot sync running now: its packages stay
        busy = run_forget(built, root, "--email", row["email"], "--drop-pending", "--yes")
    assert busy.exit_code == 1 and "a sync or resync of hubspot is running" in busy.output, busy.output
    assert "nothing was changed" in busy.output
    assert counts(wh) == before and files_naming(root, row["email"]) == pending
    assert len(pipeline.list_extracted_load_packages()) == 1

    done = run_forget(built, root, "--email", row["email"], "--drop-pending", "--yes")
    assert done.exit_code == 0, done.output
    assert "Aborted the pending dlt load packages of crm_etl_hubspot" in done.output
    assert pipeline.list_extracted_load_packages() == [] and pipeline.list_normalized_load_packages() == []
    assert files_naming(root, row["email"]) == [] and holding(wh, row["email"]) == {}


def test_loaded_packages_keep_no_records(tmp_path, monkeypatch):
    """The project's dlt config (.dlt/config.toml, [load]) on a pipeline as the raw assets build it: once loaded, a
    package's data files are deleted and the merge's raw_<source>_staging table emptied, so no record accumulates
    on disk or in the staging dataset (what a package keeps: schema, state, load id)."""
    from pipelines.ingest import SourceSpec, make_pipeline

    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    wh = Warehouse(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    pipeline = make_pipeline(SourceSpec("forgettest", make_source=lambda: None), wh)
    pipeline.run([{"id": "1", "email": "someone@example.org"}], table_name="contacts", write_disposition="merge",
                 primary_key="id")
    assert wh.scalar("select count(*) from raw_forgettest.contacts") == 1
    assert wh.scalar("select count(*) from raw_forgettest_staging.contacts") == 0
    (loaded,) = pipeline.list_completed_load_packages()
    assert files_naming(tmp_path / "dlt", "someone@example.org") == []
    assert not list((tmp_path / "dlt" / "pipelines" / "crm_etl_forgettest" / "load" / "loaded" / loaded)
                    .glob("*_jobs/*"))
