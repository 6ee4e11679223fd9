"""`crm-etl resync SOURCE`: the next sync reads everything again from the vendor and merges into the raw tables it
has (no duplicates), which are never emptied; the reset survives a lost working folder and a sync failing midway.
Against the sandbox servers, into a real DuckDB warehouse, through the project's own pipeline (pipelines.ingest)."""
from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from connectors.hubspot import HubSpotClient, hubspot_source
from connectors.koban import koban_source
from connectors.stripe import stripe_source
from crm_etl_cli import main as cli
from pipelines.ingest import make_pipeline
from pipelines.resync import ResyncError, resync
from pipelines.sources import ALL_SOURCES
from sandbox.generator import generate_world
from sandbox.server import SandboxServer
from warehouse import Warehouse

FAST = dict(backoff_base=0.01, backoff_max=0.05)
HS_OBJECTS = ["contacts", "companies"]
HS_TABLES = ("contacts", "companies", "associations_contact_company", "contacts_property_history")


@pytest.fixture(autouse=True)
def _own_dirs(tmp_path, monkeypatch, caplog):
    """This test's warehouse and dlt working folders (the CLI reads the same environment)."""
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.setenv("CRM_ETL_WAREHOUSE_URL", f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    caplog.set_level(logging.WARNING)


@pytest.fixture
def world():
    return generate_world(seed=42, size="tiny")


class Project:
    """Syncs of one source through the project's pipeline (crm_etl_<source>, raw_<source>) into the test warehouse."""

    def __init__(self, srv: SandboxServer, source: str, make_source):
        self.srv, self.source, self.make_source = srv, source, make_source
        self.wh = Warehouse()
        self.counts: list[dict[str, int]] = []

    def sync(self) -> dict[str, int]:
        """Run one sync; returns the sandbox requests by path it made."""
        before = dict(self.srv.stats()["by_path"])
        try:
            make_pipeline(ALL_SOURCES[self.source], self.wh).run(self.make_source())
        finally:
            self.record()
        after = self.srv.stats()["by_path"]
        return {p: n - before.get(p, 0) for p, n in after.items() if n != before.get(p, 0)}

    def query(self, sql: str) -> list[tuple]:
        return [tuple(r.values()) for r in self.wh.query(sql)]

    def count(self, table: str) -> int:
        return self.query(f"select count(*) as n from raw_{self.source}.{table}")[0][0]

    def record(self, tables=None) -> None:
        """Row counts now: the raw tables must never shrink (never emptied, no rows lost) across the steps."""
        tables = tables or self.tables
        self.counts.append({t: self.count(t) for t in tables})

    def assert_never_shrank(self) -> None:
        for earlier, later in zip(self.counts, self.counts[1:]):
            assert all(later[t] >= earlier[t] > 0 for t in earlier), self.counts

    def state(self) -> dict:
        return make_pipeline(ALL_SOURCES[self.source], self.wh).state["sources"][self.source]["resources"]


def _searched(requests: dict[str, int], object_type: str) -> bool:
    return any(p.endswith(f"/{object_type}/search") for p in requests)


def _listed(requests: dict[str, int], object_type: str) -> bool:
    """Read in full: the list endpoint (also read every sync for archived records, one page here) and no search."""
    return not _searched(requests, object_type) and any(p.endswith(f"/objects/2026-03/{object_type}")
                                                        for p in requests)


def _hubspot(srv: SandboxServer):
    return lambda: hubspot_source(access_token=srv.apps["hubspot"].config.token, base_url=srv.vendor_url("hubspot"),
                                  objects=HS_OBJECTS, **FAST)


def _links(p: Project) -> set[tuple]:
    return set(p.query("select from_id, to_id from raw_hubspot.associations_contact_company"))


def _contact_and_a_company_it_is_not_linked_to(store) -> tuple[str, str]:
    contact = next(c for c, _, _ in store.associations[("contacts", "companies")])
    other = next(co for co in store.objects["companies"] if (contact, co, 1) not in store.associations[
        ("contacts", "companies")] and not store.objects["companies"][co]["archived"])
    return contact, other


def _link(store, contact: str, company: str) -> None:
    """An association-only change in HubSpot: no property, so no lastmodifieddate bump."""
    with store.lock:
        store.associations[("contacts", "companies")].append((contact, company, 1))


@contextlib.contextmanager
def _synced_then_linked(world):
    """A HubSpot sync into the test warehouse, then an association-only change in HubSpot: (server, project,
    contact, the company it is newly linked to), the server running inside the block."""
    contact, other = _contact_and_a_company_it_is_not_linked_to(world.hubspot)
    with SandboxServer(world, port=0) as srv:
        p = Project(srv, "hubspot", _hubspot(srv))
        p.tables = HS_TABLES
        p.sync()
        _link(world.hubspot, contact, other)
        yield srv, p, contact, other


def _assert_no_duplicates(p: Project) -> None:
    for table in HS_OBJECTS:
        assert p.query(f"select count(*) - count(distinct id) from raw_hubspot.{table}")[0][0] == 0, table
    assert p.query("select count(*) - count(distinct (from_id, to_id, type_id)) "
                   "from raw_hubspot.associations_contact_company")[0][0] == 0
    cols = [r[0] for r in p.query("select column_name from information_schema.columns where table_schema = "
                                  "'raw_hubspot' and table_name = 'contacts_property_history' "
                                  "and column_name not like '\\_dlt%' escape '\\'")]
    assert cols and not any(c.startswith("_dlt") for c in cols), cols
    assert p.query(f"select count(*) from (select distinct {', '.join(cols)} "
                   "from raw_hubspot.contacts_property_history) d")[0][0] == p.count("contacts_property_history")


def test_hubspot_resync_reads_an_association_only_change_and_merges(world, tmp_path):
    store = world.hubspot
    contact, company = next((c, co) for c, co, _ in store.associations[("contacts", "companies")])
    other = next(co for co in store.objects["companies"] if (contact, co, 1) not in store.associations[
        ("contacts", "companies")] and not store.objects["companies"][co]["archived"])
    with SandboxServer(world, port=0) as srv:
        p = Project(srv, "hubspot", _hubspot(srv))
        p.tables = HS_TABLES
        first = p.sync()
        assert _listed(first, "contacts") and not _searched(first, "contacts")
        contacts_before = dict(p.query("select id, updated_at from raw_hubspot.contacts"))

        # an association-only change: the contact is linked to a second company; no property, no lastmodifieddate
        _link(store, contact, other)
        incremental = p.sync()
        assert _searched(incremental, "contacts") and not _listed(incremental, "contacts")
        assert (contact, other) not in _links(p), "the known limit: an incremental sync does not see it"

        with pytest.raises(ResyncError, match="no resource"):
            resync("hubspot", ["contact"])  # a typo changes nothing
        result = CliRunner().invoke(cli, ["resync", "hubspot", "--resource", "contacts"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "hubspot.resources.contacts" in result.output and "companies" not in result.output
        assert srv.apps["hubspot"].config.token not in result.output
        assert "contacts" not in p.state()  # its cursor and `recent` map are gone
        assert "incremental" in p.state()["companies"]  # not asked: untouched
        p.record()  # the reset itself empties nothing

        resynced = p.sync()
        assert _listed(resynced, "contacts") and not _listed(resynced, "companies")
        assert (contact, other) in _links(p) and (contact, company) in _links(p)
        again = p.sync()  # and back to incremental, with nothing to rewrite
        assert _searched(again, "contacts") and not _listed(again, "contacts")

    _assert_no_duplicates(p)
    assert dict(p.query("select id, updated_at from raw_hubspot.contacts")) == contacts_before
    assert p.counts[-1]["contacts"] == p.counts[0]["contacts"] == len(store.objects["contacts"])
    assert p.counts[-1]["associations_contact_company"] == p.counts[0]["associations_contact_company"] + 1
    p.assert_never_shrank()


def test_hubspot_resync_survives_a_lost_working_folder_and_a_sync_failing_midway(world, tmp_path, monkeypatch):
    """The reset is in the warehouse (dlt's _dlt_pipeline_state), not only in the working folder: a sync on a
    machine without the folder still reads everything. A full read that fails midway commits no state: the next
    sync reads everything again. Repeating the reset is harmless."""
    with _synced_then_linked(world) as (srv, p, contact, other):
        assert resync("hubspot").reset  # every resource, owner_team_changes aside
        assert resync("hubspot").reset == []  # repeated: nothing left to reset, nothing changes
        shutil.rmtree(Path(tmp_path / "dlt" / "pipelines" / "crm_etl_hubspot"))  # another machine, a new pod

        real = HubSpotClient.associations

        def failing(self, *args, **kwargs):  # after the contacts' first pages were read
            raise RuntimeError("network gone mid-sync")

        monkeypatch.setattr(HubSpotClient, "associations", failing)
        with pytest.raises(Exception, match="network gone"):
            p.sync()
        monkeypatch.setattr(HubSpotClient, "associations", real)
        assert (contact, other) not in _links(p)

        resynced = p.sync()
        assert _listed(resynced, "contacts") and _listed(resynced, "companies")
        assert (contact, other) in _links(p)
    _assert_no_duplicates(p)
    p.assert_never_shrank()


@pytest.mark.postgres
def test_hubspot_resync_on_postgresql_survives_a_lost_working_folder(world, tmp_path, monkeypatch, postgres_url):
    """On the production warehouse: the reset is loaded into PostgreSQL's _dlt_pipeline_state, so a sync without
    the working folder (a new pod) restores it from there and reads the contacts in full."""
    monkeypatch.setenv("CRM_ETL_WAREHOUSE_URL", postgres_url)
    with _synced_then_linked(world) as (srv, p, contact, other):
        assert resync("hubspot", ["contacts"]).reset == ["resources.contacts"]
        shutil.rmtree(Path(tmp_path / "dlt" / "pipelines" / "crm_etl_hubspot"))
        resynced = p.sync()
        assert _listed(resynced, "contacts") and not _listed(resynced, "companies")
        assert (contact, other) in _links(p)
    _assert_no_duplicates(p)
    p.assert_never_shrank()
    p.wh.dispose()


def test_a_person_erased_then_read_again_by_a_resync_is_erased_again(world, tmp_path):
    """HubSpot keeps a deleted contact 90 days (archived): after `crm-etl forget`, a full read (a resync) loads it
    again. The sync asset then erases it again (transforms.erasure.reapply), matched by the hashes quality.erasures
    keeps: the person's email and records never stay back in the warehouse."""
    from transforms.erasure import erase, reapply

    with SandboxServer(world, port=0) as srv:
        p = Project(srv, "hubspot", _hubspot(srv))
        p.tables = ("companies",)
        p.sync()
        [(cid, email)] = p.query("select id, email from raw_hubspot.contacts where archived and email is not null "
                                 "order by id limit 1")
        named = f"select count(*) from raw_hubspot.contacts where id = '{cid}' or lower(email) = '{email.lower()}'"
        assert reapply(p.wh) is None  # nobody erased yet: nothing to do
        erase(p.wh, emails=[email])
        assert p.query(named)[0][0] == 0
        p.sync()
        assert p.query(named)[0][0] == 0  # incremental: archived records already loaded are not rewritten
        resync("hubspot")
        p.sync()
        assert p.query(named)[0][0] == 1, "the full read brings the deleted contact back"
        again = reapply(p.wh)
        assert again is not None and again.deleted
        assert p.query(named)[0][0] == 0
        assert reapply(p.wh) is None  # and stays erased
        erasures = p.query("select subject, erased from quality.erasures order by erased_at")
        assert len(erasures) == 2 and all(email.lower() not in str(row) for row in erasures)  # hashes only
        p.sync()
        assert p.query(named)[0][0] == 0


def test_the_hubspot_sync_asset_erases_again_a_person_a_full_read_brought_back(world, tmp_path):
    """The same through Dagster: the sync asset itself re-applies the erasures after loading."""
    import dagster as dg
    from dagster_dlt import DagsterDltResource

    from pipelines.ingest import raw_assets
    from pipelines.resources import WarehouseResource
    from sandbox.pipeline_run import sandbox_environment
    from transforms.erasure import erase

    def sync():
        result = dg.materialize([raw_assets(ALL_SOURCES["hubspot"])], raise_on_error=True,
                                resources={"warehouse": WarehouseResource(), "dlt": DagsterDltResource()})
        assert result.success

    wh = Warehouse()
    with sandbox_environment(world, tmp_path / "files"):
        sync()
        [(cid, email)] = [tuple(r.values()) for r in wh.query(
            "select id, email from raw_hubspot.contacts where archived and email is not null order by id limit 1")]
        named = f"select count(*) as n from raw_hubspot.contacts where id = '{cid}'"
        erase(wh, emails=[email])
        resync("hubspot")  # the archived listing (contacts_archived) too
        sync()
        assert wh.query(named)[0]["n"] == 0
    assert len(wh.query("select * from quality.erasures")) == 2  # the request, then the sync's re-erasure


@pytest.mark.parametrize("dialect", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_erased_records_are_found_again_by_their_hashes_alone(dialect, request, tmp_path):
    """transforms.erasure.returned: sha256 of the email (trimmed, lower-cased) or of SOURCE:ID, computed by the
    warehouse (DuckDB's sha256, PostgreSQL's encode(sha256(...))), matches what quality.erasures keeps."""
    from transforms.erasure import returned, subject_hashes

    wh = Warehouse(request.getfixturevalue("postgres_url")) if dialect == "postgres" else Warehouse()
    wh.ensure_schemas()
    with wh.connect() as conn:
        for schema, table, col in (("raw_hubspot", "contacts", "email"), ("raw_koban", "contacts", "e_mail")):
            conn.exec_driver_sql(f"create schema if not exists {schema}")
            conn.exec_driver_sql(f"create table {schema}.{table} (id text, {col} text)")
            conn.exec_driver_sql(f"insert into {schema}.{table} values ('1', ' Jeanne.Martin@Exemple.fr '), "
                                 "('2', 'autre@exemple.fr'), ('3', null)")
        conn.exec_driver_sql("create table raw_koban.leads (id text, e_mail text)")
        conn.exec_driver_sql("insert into raw_koban.leads values ('L1', 'prospect@exemple.fr'), ('L2', null)")
    hashes = set(subject_hashes(["jeanne.martin@exemple.fr"], [("koban", "3")]))
    emails, records = returned(wh, hashes)
    assert records == {("hubspot", "1"), ("koban", "1"), ("koban", "3")}
    assert emails == {"jeanne.martin@exemple.fr"}
    # a lead alone, with an erased email: found by its email
    assert returned(wh, set(subject_hashes(["Prospect@exemple.fr"], []))) == ({"prospect@exemple.fr"}, set())
    assert returned(wh, set(subject_hashes(["personne@exemple.fr"], []))) == (set(), set())
    wh.dispose()


def test_a_hubspot_cursor_in_the_future_stops_the_sync_and_resync_mends_it(world, tmp_path):
    """A cursor ahead of the clock (a clock that went back, an edited state) would make every incremental search
    skip the changes since: the sync refuses with the command to run, and after it the next sync reads in full."""
    from datetime import datetime, timedelta, timezone

    with SandboxServer(world, port=0) as srv:
        p = Project(srv, "hubspot", _hubspot(srv))
        p.tables = HS_TABLES
        p.sync()
        pipeline = make_pipeline(ALL_SOURCES["hubspot"], p.wh)
        with pipeline.managed_state() as state:
            inc = state["sources"]["hubspot"]["resources"]["contacts"]["incremental"]["updated_at"]
            inc["last_value"] = datetime.now(timezone.utc) + timedelta(days=2)
        with pytest.raises(Exception, match=r"crm-etl resync hubspot --resource contacts"):
            p.sync()
        resync("hubspot", ["contacts"])
        resynced = p.sync()
        assert _listed(resynced, "contacts")
        assert _searched(p.sync(), "contacts")  # incremental again, from a cursor in the past
    _assert_no_duplicates(p)
    p.assert_never_shrank()


def test_koban_resync_reads_everything_again_and_keeps_what_it_must(tmp_path, world):
    """A change the cursor missed (as after a connector bug: the record's LastUpdateDate did not move past the
    cursor) is read after `resync koban`; a record flagged gone before stays flagged as it was (state `gone` kept)."""
    with SandboxServer(world, port=0) as srv:
        info = srv.apps["koban"].connection_info(srv.vendor_url("koban"))
        reconcile = {"days": 7.0}
        p = Project(srv, "koban", lambda: koban_source(
            api_key=info["SOURCES__KOBAN__API_KEY"], user_key=info["SOURCES__KOBAN__USER_KEY"],
            base_url=info["SOURCES__KOBAN__BASE_URL"], reconcile_every_days=reconcile["days"],
            rate_limit_calls=1000, **FAST))
        p.tables = ("contacts", "accounts", "deals")
        store = srv.apps["koban"].store
        p.sync()
        purged = store.purge("ncDeal", next(iter(store.objects["ncDeal"])))["Guid"]
        reconcile["days"] = 1e-9  # reconcile now: the purged deal is flagged in gone_records
        p.sync()
        reconcile["days"] = 7.0
        gone = p.query("select id, gone_at from raw_koban.gone_records")
        assert [g[0] for g in gone] == [purged]

        guid = next(g for g, r in store.objects["ncContact"].items() if not r.get("Obsolete"))
        with store.lock:
            store.objects["ncContact"][guid]["Function"] = "Directrice des achats (manquée)"
        p.sync()
        missed = f"select function from raw_koban.contacts where id = '{guid}'"
        assert p.query(missed)[0][0] != "Directrice des achats (manquée)"

        result = CliRunner().invoke(cli, ["resync", "koban"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "koban.resources.contacts.cursor" in result.output and "Kept: deal_process_steps" in result.output
        assert info["SOURCES__KOBAN__API_KEY"] not in result.output
        assert "cursor" not in p.state()["contacts"] and "gone" in p.state()["deals"]
        p.record()
        p.sync()
        assert p.query(missed)[0][0] == "Directrice des achats (manquée)"
        assert "cursor" in p.state()["contacts"]
        assert p.query("select id, gone_at from raw_koban.gone_records") == gone  # not flagged anew
    for table in p.tables:
        assert p.query(f"select count(*) - count(distinct id) from raw_koban.{table}")[0][0] == 0
    p.assert_never_shrank()


def test_stripe_resync_reads_a_change_no_event_carried(tmp_path, world):
    """A change no event brought (an event missed by a connector bug, or gone after Stripe's 30 days) is read after
    `resync stripe`: the next sync re-lists every object and merges; what was loaded is neither duplicated nor lost."""
    with SandboxServer(world, port=0, vendors=["stripe"]) as srv:
        app = srv.apps["stripe"]
        p = Project(srv, "stripe", lambda: stripe_source(secret_key=app.config.secret_key,
                                                         base_url=srv.vendor_url("stripe"), **FAST))
        p.tables = ("customers", "invoices", "subscriptions")
        p.sync()
        store = app.store
        cid = next(c for c in store.objects["customers"] if c not in store.deleted["customers"])
        with store.lock:  # changed in Stripe, no event emitted
            store.objects["customers"][cid]["email"] = "compta.corrigee@example.fr"
        email = f"select email from raw_stripe.customers where id = '{cid}'"
        p.sync()
        assert p.query(email)[0][0] != "compta.corrigee@example.fr", "events only: the change is not seen"

        result = CliRunner().invoke(cli, ["resync", "stripe"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "stripe.sync.watermark" in result.output and app.config.secret_key not in result.output
        p.record()
        listed = p.sync()
        assert any(path.endswith("/v1/customers") for path in listed), listed
        assert p.query(email)[0][0] == "compta.corrigee@example.fr"
        assert set(p.sync()) == {"GET /stripe/v1/events"}  # back to the events feed
    for table in p.tables:
        assert p.query(f"select count(*) - count(distinct id) from raw_stripe.{table}")[0][0] == 0, table
    p.assert_never_shrank()


def test_resync_job_in_dagster_resets_like_the_cli(world, tmp_path):
    """The resync_<source> job (Dagster UI launchpad: resources, dry_run) does what `crm-etl resync` does."""
    from pipelines.ingest import resync_job
    from pipelines.resources import WarehouseResource

    job = resync_job(ALL_SOURCES["hubspot"])

    def launch(**config) -> list[str]:
        """Run the job; the state paths its output metadata says it reset (or would)."""
        result = job.execute_in_process(run_config={"ops": {"reset_hubspot_read_position": {"config": config}}},
                                        resources={"warehouse": WarehouseResource()})
        assert result.success
        [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
        return output.event_specific_data.metadata["reset"].value

    with SandboxServer(world, port=0) as srv:
        p = Project(srv, "hubspot", _hubspot(srv))
        p.tables = HS_TABLES
        p.sync()
        assert launch(resources=["contacts"], dry_run=True) == ["resources.contacts"]
        assert "incremental" in p.state()["contacts"]  # a dry run changes nothing
        assert launch(resources=["contacts"]) == ["resources.contacts"]
        assert "contacts" not in p.state() and "incremental" in p.state()["companies"]
        resynced = p.sync()
        assert _listed(resynced, "contacts") and not _listed(resynced, "companies")
    p.assert_never_shrank()


def test_resync_refusals_change_nothing(tmp_path):
    runner = CliRunner()
    out = runner.invoke(cli, ["resync", "stripe", "--resource", "invoices"])
    assert out.exit_code != 0 and "as a whole" in out.output
    out = runner.invoke(cli, ["resync", "registry"])
    assert out.exit_code != 0 and "MAX_AGE_DAYS" in out.output
    out = runner.invoke(cli, ["resync", "salesforce"])
    assert out.exit_code != 0 and "unknown source 'salesforce'; known: hubspot, inputs, koban" in out.output
    out = runner.invoke(cli, ["resync", "hubspot"])  # never synced in this warehouse
    assert out.exit_code == 0 and "never synced" in out.output, out.output


def test_one_sync_or_resync_of_a_source_at_a_time(world, tmp_path):
    """A resync while a sync of the source runs would be undone by that sync's state (it commits the read position
    the resync removed): it is refused (a dry run too), nothing changed, with the holder named. A sync
    started while another sync or a resync holds the source waits for it (logged), then runs."""
    import threading
    import time

    import dagster as dg
    from dagster_dlt import DagsterDltResource

    from pipelines.ingest import raw_assets
    from warehouse.locks import sync_lock
    from pipelines.resources import WarehouseResource
    from sandbox.pipeline_run import sandbox_environment

    with SandboxServer(world, port=0) as srv:
        p = Project(srv, "hubspot", _hubspot(srv))
        p.tables = HS_TABLES
        p.sync()
        with sync_lock("hubspot"):  # as a sync in another process holds it
            with pytest.raises(ResyncError, match=r"a sync or resync of hubspot is running \(pid \d+ on .* since"):
                resync("hubspot")
            out = CliRunner().invoke(cli, ["resync", "hubspot"])
            assert out.exit_code != 0 and "is running" in out.output and "Nothing was changed" in out.output
            assert "incremental" in p.state()["contacts"]  # nothing was reset
            with pytest.raises(ResyncError, match="is running"):  # reading the state may write the folder too
                resync("hubspot", dry_run=True)
            resync("koban")  # another source is not held
        assert resync("hubspot").reset and "contacts" not in p.state()  # free again

    requests_while_held = []

    def hold(srv: SandboxServer, seconds: float, ready: threading.Event) -> None:
        with sync_lock("hubspot"):
            before = sum(srv.stats()["by_path"].values())
            ready.set()
            time.sleep(seconds)
            requests_while_held.append(sum(srv.stats()["by_path"].values()) - before)

    ready = threading.Event()
    with sandbox_environment(world, tmp_path / "files") as srv:
        holder = threading.Thread(target=hold, args=(srv, 2.0, ready))
        holder.start()
        ready.wait(10)
        instance = dg.DagsterInstance.ephemeral()
        result = dg.materialize([raw_assets(ALL_SOURCES["hubspot"])], raise_on_error=True, instance=instance,
                                resources={"warehouse": WarehouseResource(), "dlt": DagsterDltResource()})
    holder.join()
    assert result.success and requests_while_held == [0]  # the sync asked HubSpot nothing before the lock was free
    waited = [e.user_message for e in instance.all_logs(result.run_id) if "waiting for it to end" in e.user_message]
    assert waited and "a sync or resync of hubspot is running (pid" in waited[0]


def test_the_sync_asset_keeps_only_the_newest_dlt_state_versions(world, tmp_path, monkeypatch):
    """Each sync that moves a cursor adds a version of the whole dlt state to raw_<source>._dlt_pipeline_state; the
    sync asset keeps the newest DLT_STATE_VERSIONS_KEPT (here 1). A worker without the working folder still reads
    on from the newest one (an incremental search, not a full listing)."""
    import dagster as dg
    from dagster_dlt import DagsterDltResource

    import pipelines.ingest as ingest
    from pipelines.resources import WarehouseResource
    from sandbox.pipeline_run import sandbox_environment
    from warehouse.connection import dlt_pipelines_dir

    monkeypatch.setattr(ingest, "DLT_STATE_VERSIONS_KEPT", 1)
    wh = Warehouse()
    versions = "select version from raw_hubspot._dlt_pipeline_state order by version"

    def sync() -> list[str]:
        instance = dg.DagsterInstance.ephemeral()
        result = dg.materialize([ingest.raw_assets(ALL_SOURCES["hubspot"])], raise_on_error=True, instance=instance,
                                resources={"warehouse": WarehouseResource(), "dlt": DagsterDltResource()})
        assert result.success
        return [e.user_message for e in instance.all_logs(result.run_id) if "of the dlt state" in e.user_message]

    with sandbox_environment(world, tmp_path / "files") as srv:
        assert sync() == []  # the first version
        world.advance()
        assert sync() == ["hubspot: 1 older version of the dlt state deleted from raw_hubspot._dlt_pipeline_state "
                          "(the newest 1 kept)"]
        assert [r["version"] for r in wh.query(versions)] == [2]
        shutil.rmtree(dlt_pipelines_dir())  # a new worker: no local state
        world.advance()
        before = dict(srv.stats()["by_path"])
        sync()
        requests = {p: n - before.get(p, 0) for p, n in srv.stats()["by_path"].items() if n != before.get(p, 0)}
        assert _searched(requests, "contacts") and not _listed(requests, "contacts")  # read on from version 2
        assert [r["version"] for r in wh.query(versions)] == [3]


@pytest.mark.postgres
def test_a_postgresql_warehouse_holds_a_source_across_machines(postgres_url, tmp_path):
    """Two machines (two dlt working folders) loading into one PostgreSQL warehouse: while a HubSpot sync runs on
    one, a resync on the other refuses and names the holder (it would be undone when that sync commits its read
    position), a sync there waits (logged) and runs once the first has ended; another source is free. The holder
    keeps no transaction open through its sync (VACUUM would keep every dead row meanwhile)."""
    import os
    import threading

    import sqlalchemy as sa

    from warehouse.locks import SyncBusy, sync_lock

    one, two = tmp_path / "one" / "pipelines", tmp_path / "two" / "pipelines"
    waited, waiting, ran = [], threading.Event(), threading.Event()

    def log(message: str) -> None:
        waited.append(message)
        waiting.set()

    def sync_on_two() -> None:
        with sync_lock("hubspot", pipelines_dir=two, warehouse_url=postgres_url, log=log):
            ran.set()

    with sync_lock("hubspot", pipelines_dir=one, warehouse_url=postgres_url):
        with pytest.raises(SyncBusy, match=rf"hubspot is running \(pid {os.getpid()} on .+ \(warehouse lock\)\)"):
            with sync_lock("hubspot", wait=False, pipelines_dir=two, warehouse_url=postgres_url):
                pass
        # the resync command's own check, from this test's dlt folder (another machine's than `one`)
        with pytest.raises(ResyncError, match="hubspot is running .*Nothing was changed"):
            resync("hubspot", wh=Warehouse(postgres_url))
        with sync_lock("koban", wait=False, pipelines_dir=two, warehouse_url=postgres_url):
            pass
        engine = sa.create_engine(postgres_url)
        with engine.connect() as conn:
            sessions = conn.execute(sa.text(
                "select state, xact_start from pg_stat_activity where application_name like 'crm-etl pid %'")).all()
        engine.dispose()
        assert [(state, xact) for state, xact in sessions] == [("idle", None)]
        second = threading.Thread(target=sync_on_two, daemon=True)
        second.start()
        assert waiting.wait(10) and not ran.is_set()
        assert len(waited) == 1 and "hubspot is running" in waited[0] and "(warehouse lock)" in waited[0]
    second.join(15)
    assert ran.is_set()
