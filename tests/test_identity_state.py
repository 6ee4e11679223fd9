"""Identity state between runs (transforms.identity.state), on real DuckDB files: the first run is full, an
unchanged input costs no resolution, a few new or changed records take the incremental path and give the full
rebuild's result, so do deletions (a deleted bridge splits its entity), and large changes, a changed config, a corrupted or
interrupted state fall back to full."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from scale_people import generate_companies, generate_contacts  # noqa: E402

from transforms.identity import ContactsConfig  # noqa: E402
from transforms.identity.state import resolve_with_state, state_dir  # noqa: E402

CW = ["source_system", "source_id", "entity_key", "rule", "match_probability", "model_version"]


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    return generate_contacts(2500, seed=11).drop(columns="person_key").reset_index(drop=True)


def _run(kind, data, path, **kw):
    """mode, reason, counts, crosswalk and golden of one run against the state file `path`."""
    with resolve_with_state(kind, data, path=path, **kw) as run:
        res = run.resolution
        golden = res.con.execute(f"SELECT * EXCLUDE (sources) FROM {res.golden} ORDER BY entity_key").df()
        return run, res.crosswalk_df()[CW], golden


def _full(kind, data, tmp_path):
    """The reference: a full resolution of `data` in a state of its own."""
    return _run(kind, data, tmp_path / "reference" / f"{kind}.duckdb", full_rebuild=True)


def _assert_same(a, b):
    pd.testing.assert_frame_equal(a[1], b[1])  # crosswalk: keys, rules, probabilities
    pd.testing.assert_frame_equal(a[2], b[2])  # golden records


def _edit(people: pd.DataFrame) -> pd.DataFrame:
    """Two changed records: a corrected e-mail, a new job title (a later updated_at for both)."""
    out = people.copy()
    out.loc[10, "email"] = "new.address@exemple.fr"
    out.loc[20, "job_title"] = "Directrice commerciale"
    out.loc[[10, 20], "updated_at"] = pd.Timestamp("2027-01-01")
    return out


def test_full_then_unchanged_then_incremental_equals_full_rebuild(people, tmp_path):
    path = tmp_path / "identity" / "contacts.duckdb"
    base = people.iloc[:2450]
    first = _run("contacts", base, path)
    assert (first[0].mode, first[0].reason) == ("full", "no state yet")
    assert first[0].records == 2450

    # no change: nothing resolved (no Splink, no rule), the stored result is read back
    again = _run("contacts", base.sample(frac=1, random_state=3), path)  # row order means nothing
    assert again[0].mode == "unchanged", again[0].reason
    assert set(again[0].timings) == {"state_diff"} and (again[0].new, again[0].changed, again[0].deleted) == (0, 0, 0)
    _assert_same(again, first)

    # 50 new records (2%) and 2 changed ones: only they are resolved, and the result is a full rebuild's
    grown = _edit(people)
    inc = _run("contacts", grown, path)
    assert inc[0].mode == "incremental", inc[0].reason
    assert (inc[0].new, inc[0].changed, inc[0].deleted, inc[0].records) == (50, 2, 0, 2500)
    assert "splink" in inc[0].timings
    ref = _full("contacts", grown, tmp_path)
    assert ref[0].mode == "full"
    _assert_same(inc, ref)
    # the new records were really placed: some of them joined an existing entity
    assert inc[1].entity_key.nunique() < len(inc[1])

    # the saved hashes and rule tables are those of the updated state: the same input again is unchanged,
    # and a further change is still resolved like a full rebuild
    assert _run("contacts", grown, path)[0].mode == "unchanged"
    more = grown.copy()
    more.loc[30, "last_name"] = "Dupont-Moretti"
    more.loc[30, "updated_at"] = pd.Timestamp("2027-02-01")
    inc2 = _run("contacts", more, path)
    assert (inc2[0].mode, inc2[0].changed) == ("incremental", 1)
    _assert_same(inc2, _full("contacts", more, tmp_path))
    # only the state is kept in the file: no scratch table of the update, no Splink cache
    with duckdb.connect(str(path), read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT schema_name || '.' || table_name FROM duckdb_tables()").fetchall()}
    assert tables == {"identity_state.meta", "identity_state.record_hash", "identity_state.delta_records",
                      "identity_state.delta_entities"} | {
        f"main.identity_contacts_{t}" for t in ("normalized", "edges", "clusters", "crosswalk", "golden",
                                                "blocking_keys")} | {
        f"main.identity_contacts_{t}" for t in ("det", "rare", "name_counts", "part_counts")}


def test_companies_incremental_equals_full_rebuild(tmp_path):
    df = generate_companies(1500, seed=5).drop(columns="company_key").reset_index(drop=True)
    path = tmp_path / "companies.duckdb"
    assert _run("companies", df.iloc[:1480], path)[0].mode == "full"
    changed = df.copy()
    changed.loc[5, "domain"] = "nouveau-domaine.fr"
    inc = _run("companies", changed, path)
    assert (inc[0].mode, inc[0].new, inc[0].changed) == ("incremental", 20, 1)
    _assert_same(inc, _full("companies", changed, tmp_path))


def _bridge() -> pd.DataFrame:
    """Three records of one person: A and C share a mailbox, C and B a phone and the name; A and B alone share
    nothing that links them (different companies and towns). C is the bridge, and the smallest uid (the key)."""
    row = dict(first_name="Camille", last_name="Zorglubier", email=None, phone=None, mobile_phone=None,
               company_name=None, company_source_id=None, city=None, postcode=None, job_title=None,
               updated_at=pd.Timestamp("2026-03-01"))
    return pd.DataFrame([
        {**row, "source_system": "hubspot", "source_id": "zz-a", "email": "camille.zorglubier@acme-pont.fr",
         "company_name": "Acme Pont", "city": "Brest", "postcode": "29200"},
        {**row, "source_system": "hubspot", "source_id": "zz-b", "mobile_phone": "06 71 23 45 67",
         "company_name": "Transports Quimperlé", "city": "Nice", "postcode": "06000"},
        {**row, "source_system": "hubspot", "source_id": "aa-c", "email": "camille.zorglubier@acme-pont.fr",
         "mobile_phone": "06 71 23 45 67"},
    ])


def test_deletions_are_incremental_and_equal_full_rebuild(people, tmp_path):
    path = tmp_path / "contacts.duckdb"
    with_bridge = pd.concat([people, _bridge()], ignore_index=True)
    first = _run("contacts", with_bridge, path)
    key = first[1].set_index("source_id").entity_key
    assert key["zz-a"] == key["zz-b"] == key["aa-c"]
    # the bridge and two other records deleted: their components are re-clustered without them
    gone = with_bridge[~with_bridge.source_id.isin(["aa-c", people.source_id[7], people.source_id[8]])]
    run = _run("contacts", gone, path)
    assert (run[0].mode, run[0].deleted, run[0].new, run[0].changed) == ("incremental", 3, 0, 0), run[0].reason
    assert len(run[1]) == len(gone)
    _assert_same(run, _full("contacts", gone, tmp_path))
    key = run[1].set_index("source_id").entity_key
    assert key["zz-a"] != key["zz-b"]  # split: the bridge is gone
    # deletions, new and changed records in one run; then the bridge back (a new record again)
    mixed = _edit(gone.drop(index=gone.index[100:103]))
    mixed = pd.concat([mixed, people.iloc[[7]]], ignore_index=True)
    run = _run("contacts", mixed, path)
    assert (run[0].mode, run[0].deleted, run[0].new, run[0].changed) == ("incremental", 3, 1, 2), run[0].reason
    _assert_same(run, _full("contacts", mixed, tmp_path))
    back = pd.concat([mixed, _bridge().iloc[[2]]], ignore_index=True)
    run = _run("contacts", back, path)
    assert (run[0].mode, run[0].new) == ("incremental", 1)
    _assert_same(run, _full("contacts", back, tmp_path))
    key = run[1].set_index("source_id").entity_key
    assert key["zz-a"] == key["zz-b"] == key["aa-c"]
    # only deletions, on companies too (their rules are recomputed whole)
    df = generate_companies(1500, seed=5).drop(columns="company_key").reset_index(drop=True)
    cpath = tmp_path / "companies.duckdb"
    _run("companies", df, cpath)
    fewer = df.drop(index=df.index[::150])
    run = _run("companies", fewer, cpath)
    assert (run[0].mode, run[0].deleted) == ("incremental", 10)
    _assert_same(run, _full("companies", fewer, tmp_path))


def _syllable_name(i: int) -> str:
    """A made-up alphabetic name per i (digits are not names), none of them Aurèle or Vantongeren."""
    syl = ["ba", "ke", "li", "mo", "nu", "pa", "re", "si", "to", "vu", "za", "fe", "gi", "ho", "ju", "ly"]
    return "".join(syl[(i // 16 ** k) % 16] for k in range(3)).capitalize() + "x"


def test_a_name_that_becomes_rare_through_other_records_is_linked_as_a_full_rebuild_links_it(tmp_path):
    """Rarity is relative, both ways: 'Aurèle Vantongeren', borne by two records of one postcode, is not rare while 110 of
    500 records are named Aurèle (chance bearers expected: 2 x 110 x 2 / 500 = 0.88), and becomes rare within one
    place once 20 of them are deleted (2 x 90 x 2 / 480 = 0.75): its two records are then one person by the
    rare_name_place rule. Its own count never changed: the update finds the name through the counts that moved
    (rare_moved in core), as a full rebuild does."""
    row = dict(email=None, phone=None, mobile_phone=None, company_name=None, company_source_id=None,
               job_title=None, updated_at=pd.Timestamp("2026-03-01"))
    pair = [{**row, "source_system": system, "source_id": "pair", "first_name": "Aurèle",
             "last_name": "Vantongeren", "city": "Brest", "postcode": "29200"} for system in ("hubspot", "koban")]
    aureles = [{**row, "source_system": "hubspot", "source_id": f"aurele-{i}", "first_name": "Aurèle",
                "last_name": _syllable_name(i), "city": "Lyon", "postcode": "69003"} for i in range(108)]
    filler = [{**row, "source_system": "koban", "source_id": f"f-{i}", "first_name": _syllable_name(1000 + i),
               "last_name": _syllable_name(2000 + i), "city": "Paris", "postcode": "75011"} for i in range(390)]
    base = pd.DataFrame(pair + aureles + filler)
    path = tmp_path / "contacts.duckdb"
    first = _run("contacts", base, path)
    assert "rare_name_place" not in set(first[1].rule)
    later = base[~base.source_id.isin([f"aurele-{i}" for i in range(20)])]
    run = _run("contacts", later, path)
    assert (run[0].mode, run[0].deleted) == ("incremental", 20), run[0].reason
    pair_rows = run[1][run[1].source_id == "pair"]
    assert pair_rows.entity_key.nunique() == 1 and set(pair_rows.rule) == {"rare_name_place"}
    _assert_same(run, _full("contacts", later, tmp_path))
    # and back: the 20 Aurèles return, the name is common again, the rule no longer holds (the name leaves the set)
    back = _run("contacts", base, path)
    assert (back[0].mode, back[0].new) == ("incremental", 20), back[0].reason
    assert "rare_name_place" not in set(back[1].rule)
    _assert_same(back, _full("contacts", base, tmp_path))


def test_record_key_collisions_and_repeated_records_stay_exact(people, tmp_path, monkeypatch):
    """The diff joins on a 64-bit key of (source_system, source_id); two records with one key must never be taken
    for one. Collisions are forced here (RECORD_KEY gives the new record `collide-new` the key of a stored one):
    each case goes to the string-keyed comparison and still gives the full rebuild's result."""
    from transforms.identity import state

    by_uid = []
    orig = state.IdentityState._diff_by_uid
    monkeypatch.setattr(state.IdentityState, "_diff_by_uid", lambda self, *a: by_uid.append(1) or orig(self, *a))
    old = people.source_id[5]
    monkeypatch.setattr(state, "RECORD_KEY", f"hash(source_system, replace(source_id, 'collide-new', '{old}'))")
    path = tmp_path / "contacts.duckdb"
    _run("contacts", people, path)
    newcomer = people.iloc[[5]].assign(source_id="collide-new", email="someone.else@exemple.fr", first_name="Zoé",
                                       last_name="Marchetti", updated_at=pd.Timestamp("2027-03-01"))

    # no collision: the key path alone (no string comparison)
    edited = _edit(people)
    run = _run("contacts", edited, path)
    assert (run[0].mode, run[0].changed, by_uid) == ("incremental", 2, []), run[0].reason
    _assert_same(run, _full("contacts", edited, tmp_path))

    # the stored record deleted and the newcomer with its key added: matched on the key, not the same record
    swapped = pd.concat([edited.drop(index=5), newcomer], ignore_index=True)
    run = _run("contacts", swapped, path)
    assert (run[0].mode, run[0].new, run[0].changed, run[0].deleted) == ("incremental", 1, 0, 1), run[0].reason
    assert by_uid
    _assert_same(run, _full("contacts", swapped, tmp_path))

    # both in the input (two input rows with one key): stored, the keys are no longer unique, and the next runs
    # compare the strings from the start
    both = pd.concat([edited, newcomer], ignore_index=True)
    run = _run("contacts", both, path)
    assert (run[0].mode, run[0].new, run[0].changed, run[0].deleted) == ("incremental", 1, 0, 0), run[0].reason
    _assert_same(run, _full("contacts", both, tmp_path))
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT value FROM identity_state.meta WHERE key = 'unique_keys'").fetchone() == ("false",)
    again = both.copy()
    again.loc[40, "city"] = "Quimper"
    run = _run("contacts", again, path)
    assert (run[0].mode, run[0].changed) == ("incremental", 1), run[0].reason
    _assert_same(run, _full("contacts", again, tmp_path))

    # a record given twice (the latest version wins, as in a full run), from a state with unique keys again
    monkeypatch.setattr(state, "RECORD_KEY", "hash(source_system, source_id)")
    assert _run("contacts", edited, path, full_rebuild=True)[0].mode == "full"
    older = edited.iloc[[30, 31]].assign(city="Ancienne", updated_at=pd.Timestamp("2020-01-01"))
    newer = edited.iloc[[32]].assign(city="Nouvelle", updated_at=pd.Timestamp("2028-01-01"))
    twice = pd.concat([edited, older, newer, edited.iloc[[33]]], ignore_index=True)
    by_uid.clear()
    run = _run("contacts", twice, path)
    assert (run[0].mode, run[0].new, run[0].changed, run[0].deleted) == ("incremental", 0, 1, 0), run[0].reason
    assert by_uid
    _assert_same(run, _full("contacts", twice, tmp_path))


def test_large_change_falls_back_to_full(people, tmp_path):
    path = tmp_path / "contacts.duckdb"
    _run("contacts", people, path)
    # a quarter of the records changed: rebuilt in full
    moved = people.copy()
    idx = moved.index[: len(moved) // 4]
    moved.loc[idx, "city"] = "Saint-Glinglin"
    run = _run("contacts", moved, path)
    assert (run[0].mode, run[0].changed) == ("full", len(idx))
    assert "records new, changed or deleted" in run[0].reason
    _assert_same(run, _full("contacts", moved, tmp_path))


def test_state_rebuilt_once_updates_rewrote_too_many_records(people, tmp_path):
    """Each update leaves the rows it replaces as dead rows in the state (read by every later scan): those of the
    changed records and of every member of an entity it re-clustered. Once the updates since the last full run have
    rewritten the rows of more than 30% of the records, the next run rebuilds in full, and the count starts again."""
    path = tmp_path / "contacts.duckdb"
    _run("contacts", people, path)
    step = int(len(people) * 0.15)  # under the 20% a single update may change
    moved, modes, total = people.copy(), [], 0
    for i in range(4):
        idx = moved.index[i * step:(i + 1) * step]
        moved.loc[idx, "city"] = f"Ville {i}"
        moved.loc[idx, "updated_at"] = pd.Timestamp("2027-01-01") + pd.Timedelta(days=i)
        run = _run("contacts", moved, path)
        modes.append(run[0].mode)
        with duckdb.connect(str(path), read_only=True) as con:
            counted = int(con.execute("SELECT value FROM identity_state.meta WHERE key = 'replaced_since_full'")
                          .fetchone()[0])
            if run[0].mode == "incremental":
                # the records whose crosswalk rows it replaced (no new record here): the changed ones and the
                # other members of the entities it re-clustered
                rewritten = con.execute("SELECT count(*) FROM identity_state.delta_records").fetchone()[0]
        if run[0].mode == "incremental":
            assert rewritten >= step
            total += rewritten
        else:
            assert "the updates since the last full resolution rewrote" in run[0].reason
            _assert_same(run, _full("contacts", moved, tmp_path))
            total = 0
        assert counted == total
    # 15%, 30% (not above 30%): in place; 45%: rebuilt; then 15% again since that rebuild
    assert modes == ["incremental", "incremental", "full", "incremental"]


def test_config_change_and_requested_rebuild_are_full(people, tmp_path, monkeypatch):
    path = tmp_path / "contacts.duckdb"
    _run("contacts", people, path)
    run = _run("contacts", people, path, config=ContactsConfig(match_threshold=0.95))
    assert run[0].mode == "full" and "config" in run[0].reason
    _assert_same(run, _run("contacts", people, tmp_path / "other.duckdb", config=ContactsConfig(match_threshold=0.95)))
    assert _run("contacts", people, path, full_rebuild=True, config=ContactsConfig(match_threshold=0.95))[0].reason == \
        "full rebuild requested"
    monkeypatch.setenv("CRM_ETL_IDENTITY_FULL_REBUILD", "1")
    assert _run("contacts", people, path, config=ContactsConfig(match_threshold=0.95))[0].mode == "full"


def test_corrupted_state_is_rebuilt(people, tmp_path):
    path = tmp_path / "contacts.duckdb"
    _run("contacts", people.iloc[:2400], path)
    with open(path, "r+b") as f:  # a damaged file: its header overwritten
        f.write(b"\0garbage" * 512)
    run = _run("contacts", people, path)
    assert run[0].mode == "full" and "unreadable" in run[0].reason
    _assert_same(run, _full("contacts", people, tmp_path))
    assert _run("contacts", people, path)[0].mode == "unchanged"  # the rebuilt state is trusted again


def test_interrupted_update_is_not_trusted(people, tmp_path):
    """A process killed after the update rewrote the tables but before it saved the hashes and rule tables:
    the next run must not build on that state (it would miss the changes or compare with stale groups)."""
    path = tmp_path / "contacts.duckdb"
    base, grown = people.iloc[:2450], _edit(people)
    base.to_parquet(tmp_path / "base.parquet")
    grown.to_parquet(tmp_path / "grown.parquet")
    script = textwrap.dedent(f"""
        import os, sys
        import pandas as pd
        sys.path.insert(0, {str(ROOT)!r})
        from transforms.identity.state import resolve_with_state

        def die_after_update(msg):
            if "update computed" in msg:
                os._exit(3)  # no clean-up, no checkpoint: as if the machine went down

        with resolve_with_state("contacts", pd.read_parquet({str(tmp_path / 'base.parquet')!r}), path={str(path)!r}):
            pass
        with resolve_with_state("contacts", pd.read_parquet({str(tmp_path / 'grown.parquet')!r}), path={str(path)!r},
                                log=die_after_update):
            pass
        """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 3, proc.stderr[-2000:]
    run = _run("contacts", grown, path)
    assert (run[0].mode, run[0].reason) == ("full", "the previous run did not complete")
    _assert_same(run, _full("contacts", grown, tmp_path))


def test_state_dir_follows_the_warehouse(tmp_path, monkeypatch):
    monkeypatch.delenv("CRM_ETL_IDENTITY_STATE_DIR", raising=False)
    assert state_dir(f"duckdb:///{tmp_path}/warehouse.duckdb") == tmp_path / "identity"
    assert state_dir(f"duckdb:///{tmp_path}/other.duckdb") == tmp_path / "identity" / "other"
    pg_a = state_dir("postgresql://u:secret@h:5432/a")
    assert pg_a != state_dir("postgresql://u@h:5432/b") and pg_a == state_dir("postgresql://u:other@h:5432/a")
    monkeypatch.setenv("CRM_ETL_IDENTITY_STATE_DIR", str(tmp_path / "s"))
    assert state_dir(f"duckdb:///{tmp_path}/warehouse.duckdb") == tmp_path / "s"


def _staging(wh, contacts: pd.DataFrame, companies: pd.DataFrame) -> None:
    c = contacts.rename(columns={"source_id": "contact_id", "company_source_id": "company_id"}).assign(is_deleted=False)
    k = companies.rename(columns={"source_id": "company_id"}).assign(is_deleted=False)
    wh.write_frame("staging", "contacts", c)
    wh.write_frame("staging", "companies", k)


@pytest.mark.parametrize("backend", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_dagster_asset_reports_the_mode(backend, request, tmp_path, monkeypatch):
    """The asset on either warehouse: the run's mode, and the cheapest write that brings each copy to the state."""
    import dagster as dg

    wh = request.getfixturevalue(f"{backend}_warehouse")
    if backend == "postgres":
        monkeypatch.setenv("CRM_ETL_IDENTITY_STATE_DIR", str(tmp_path / "identity"))

    from pipelines.identity_assets import identity_resolution
    from pipelines.resources import WarehouseResource

    contacts = generate_contacts(400, seed=4).drop(columns="person_key")
    companies = generate_companies(300, seed=4).drop(columns="company_key")
    _staging(wh, contacts, companies)
    resources = {"warehouse": WarehouseResource(url=wh.url)}

    def run(config=None):
        result = dg.materialize([identity_resolution], resources=resources,
                                run_config={"ops": {"identity_resolution": {"config": config}}} if config else None)
        assert result.success
        return {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}

    first = run()
    assert {k: v["identity_mode"].value for k, v in first.items()} == {
        "company_crosswalk": "full", "company_golden": "full", "contact_crosswalk": "full", "contact_golden": "full"}
    assert (tmp_path / "identity" / "contacts.duckdb").exists()  # beside a DuckDB warehouse file
    contacts.loc[contacts.index[0], "email"] = "changed@exemple.fr"
    _staging(wh, contacts, companies)
    second = run()
    assert second["company_crosswalk"]["identity_mode"].value == "unchanged"
    assert second["contact_crosswalk"]["identity_mode"].value == "incremental"
    assert second["contact_crosswalk"]["records_changed"].value == 1
    assert "splink" in second["contact_crosswalk"]["identity_step_seconds"].value
    assert wh.row_count("core", "contact_crosswalk") == len(contacts)
    # the warehouse's copies follow the state by the cheapest write their version allows
    assert {k: v["warehouse_write"].value for k, v in second.items()} == {
        "company_crosswalk": "none (already this version)", "company_golden": "none (already this version)",
        "contact_crosswalk": "delta", "contact_golden": "delta"}
    assert second["contact_crosswalk"]["rows_written"].value < len(contacts) / 10

    def tables():
        return {t: wh.query_df(f"select * from core.{t}").sort_values(key).reset_index(drop=True)
                for t, key in (("contact_crosswalk", ["source_system", "source_id"]), ("contact_golden", "entity_key"))}

    def crosswalk_only():  # the golden copy is not written (as when its write failed): it falls a version behind
        _staging(wh, contacts, companies)
        assert dg.materialize([identity_resolution], resources=resources, selection=["core/contact_crosswalk"]).success

    # deleted and changed records: the next run, with nothing new, still brings the golden copy up by the kept delta
    contacts = contacts.iloc[3:].copy()
    contacts.loc[contacts.index[0], "last_name"] = "Nouveau-Nom"
    crosswalk_only()
    third = run()
    assert third["contact_crosswalk"]["identity_mode"].value == "unchanged"
    assert third["contact_crosswalk"]["warehouse_write"].value == "none (already this version)"
    assert third["contact_golden"]["warehouse_write"].value == "delta"
    # two versions behind: no delta leads there, the copy is rewritten whole
    contacts.loc[contacts.index[2], "first_name"] = "Anne-Sophie"
    crosswalk_only()
    contacts.loc[contacts.index[4], "phone"] = "+33 6 12 34 56 78"
    _staging(wh, contacts, companies)
    fourth = run()
    assert fourth["contact_crosswalk"]["warehouse_write"].value == "delta"
    assert fourth["contact_golden"]["warehouse_write"].value == "full"
    assert wh.row_count("core", "contact_crosswalk") == len(contacts)
    incremental = tables()

    forced = run({"full_rebuild": True})
    assert forced["contact_crosswalk"]["identity_mode_reason"].value == "full rebuild requested"
    assert forced["contact_crosswalk"]["warehouse_write"].value == "full"  # a new state: its tables copied whole
    # the copies written by deltas are the full rebuild's tables, row for row
    for name, frame in tables().items():
        pd.testing.assert_frame_equal(incremental[name], frame, check_like=True, obj=name)
    # a copy rewritten by someone else (no version) is written whole on the next run, never patched
    wh.write_frame("core", "contact_crosswalk", wh.query_df("select * from core.contact_crosswalk"))
    contacts.loc[contacts.index[1], "email"] = "autre@exemple.fr"
    _staging(wh, contacts, companies)
    fifth = run()
    assert fifth["contact_crosswalk"]["identity_mode"].value == "incremental"
    assert fifth["contact_crosswalk"]["warehouse_write"].value == "full"
    assert fifth["contact_golden"]["warehouse_write"].value == "delta"
    # a row lost from the copy by hand, its version kept: the delta would not add up, the copy is written whole
    wh.execute("delete from core.contact_crosswalk where source_id = (select min(source_id) "
                             "from core.contact_crosswalk)")
    contacts.loc[contacts.index[5], "city"] = "Quimper"
    _staging(wh, contacts, companies)
    sixth = run()
    assert sixth["contact_crosswalk"]["warehouse_write"].value == "full"
    assert wh.row_count("core", "contact_crosswalk") == len(contacts)


def test_input_given_as_a_function_is_read_under_the_lock(people, tmp_path):
    """The pipeline passes its input reader: it runs only once this run holds the state's lock, so of two
    concurrent runs the later one reads the later input (read earlier, it would look like deletions and overwrite
    a newer crosswalk with an older one)."""
    import fcntl

    path = tmp_path / "contacts.duckdb"
    held = []

    def read_input():
        with open(f"{path}.lock", "a+") as other:  # a second run trying to take the same lock
            try:
                fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                held.append(False)
            except BlockingIOError:
                held.append(True)
        return people

    run, crosswalk, _ = _run("contacts", read_input, path)
    assert held == [True] and len(crosswalk) == len(people)


def test_identity_settings_come_from_the_sales_model_and_are_kept_in_the_warehouse(duckdb_warehouse, tmp_path,
                                                                                   monkeypatch):
    """A data engineer raises the contacts threshold in sales_model.yaml: the next run rebuilds in full with it and
    the weaker merges split; core.identity_models keeps each model and setting used, and `crm-etl resolve
    --identity-model` reproduces the crosswalk from them outside the pipeline."""
    import json

    import dagster as dg

    from pipelines.identity_assets import CONTACT_INPUTS, identity_resolution
    from pipelines.resources import WarehouseResource
    from click.testing import CliRunner

    from crm_etl_cli import main
    from transforms.identity import ContactsConfig
    from transforms.sales_model import SAMPLE_PATH

    contacts = generate_contacts(600, seed=6).drop(columns="person_key")
    companies = generate_companies(100, seed=6).drop(columns="company_key")
    _staging(duckdb_warehouse, contacts, companies)
    sales_model, sample = tmp_path / "sales_model.yaml", SAMPLE_PATH.read_text(encoding="utf-8")
    monkeypatch.setenv("CRM_ETL_SALES_MODEL", str(sales_model))

    def run(threshold: float) -> dict:
        sales_model.write_text(sample.replace("  contacts:\n    match_threshold: 0.9\n",
                                              f"  contacts:\n    match_threshold: {threshold}\n"), encoding="utf-8")
        result = dg.materialize([identity_resolution], resources={"warehouse": WarehouseResource(url=duckdb_warehouse.url)},
                                selection=["core/contact_crosswalk"])
        assert result.success
        (meta,) = [e.materialization.metadata for e in result.get_asset_materialization_events()]
        return meta

    loose = run(0.9)
    strict = run(0.9999)
    assert (strict["identity_mode"].value, strict["identity_mode_reason"].value) == (
        "full", "model, match config, identity code or library versions changed")
    assert strict["links_by_rule"].value.get("splink", 0) < loose["links_by_rule"].value["splink"]
    assert strict["entities"].value > loose["entities"].value  # the weaker merges split again
    models = duckdb_warehouse.query_df("select * from core.identity_models where kind = 'contacts' order by first_used_at")
    assert list(models.match_threshold) == [0.9, 0.9999]
    assert list(models.config_sha256) == [loose["identity_model"].value, strict["identity_model"].value]
    assert json.loads(models.blocking_rules[1]) and models.model_version[1] == strict["model_version"].value

    row = models.iloc[1]
    cfg = ContactsConfig.model_validate_json(row.match_config)
    assert cfg.match_threshold == row.match_threshold == 0.9999 and cfg.survivorship.source_priority == ["hubspot", "koban"]
    # what the warehouse kept reproduces the crosswalk outside the pipeline: `crm-etl resolve --identity-model`
    export = tmp_path / "contacts.parquet"
    duckdb_warehouse.query_arrow(CONTACT_INPUTS[("staging", "contacts")](duckdb_warehouse)).to_pandas().to_parquet(export)
    out = tmp_path / "again.parquet"
    cli = CliRunner().invoke(main, ["resolve", "contacts", str(export), "--out", str(out),
                                    "--identity-model", strict["identity_model"].value[:10]],
                             env={"CRM_ETL_WAREHOUSE_URL": duckdb_warehouse.url})
    assert cli.exit_code == 0, cli.output
    again, kept = pd.read_parquet(out), duckdb_warehouse.query_df("select * from core.contact_crosswalk")
    cols = ["source_system", "source_id", "entity_key", "rule"]
    pd.testing.assert_frame_equal(again[cols].sort_values(cols[:2]).reset_index(drop=True),
                                  kept[cols].sort_values(cols[:2]).reset_index(drop=True))

    # back to 0.9: the first row is used again (no new row), its last use moves
    run(0.9)
    again_models = duckdb_warehouse.query_df(
        "select * from core.identity_models where kind = 'contacts' order by first_used_at")
    assert list(again_models.config_sha256) == list(models.config_sha256)
    assert again_models.last_used_at[0] > models.last_used_at[0]


def test_two_copies_of_one_state_never_name_their_updates_alike(people, tmp_path):
    """A state file restored from a backup or baked into two workers: each copy's next update starts from the same
    version but must not be named alike, or a warehouse holding one copy's update would be taken for the other's
    (and never rewritten)."""
    import shutil

    path, copy = tmp_path / "a" / "contacts.duckdb", tmp_path / "b" / "contacts.duckdb"
    base = people.iloc[:800]
    first = _run("contacts", base, path)[0]
    copy.parent.mkdir()
    shutil.copy(path, copy)
    a = _run("contacts", base.iloc[:-1], path)[0]
    b = _run("contacts", base.iloc[:-2], copy)[0]
    assert a.mode == b.mode == "incremental"
    assert a.delta_from == b.delta_from == first.version and a.version != b.version


def test_contacts_of_two_crms_compare_through_their_resolved_company(duckdb_warehouse):
    """A HubSpot and a Koban record of one Eric Martin, each hanging on its own CRM's record of one company (linked by
    the SIREN in the company crosswalk), neither naming the company: the pipeline hands the contacts the resolved
    company, so they are one person. The Eric Martin of another company stays apart."""
    import dagster as dg
    from datetime import datetime

    from pipelines.identity_assets import identity_resolution
    from pipelines.resources import WarehouseResource

    t = datetime(2026, 1, 1)
    company = dict(siret=None, vat_number=None, phone=None, address=None, postcode="30000", city="Nîmes",
                   updated_at=t, is_deleted=False)
    companies = pd.DataFrame([
        dict(source_system="hubspot", company_id="h1", name="Garage Roux", siren="732829320", domain="garageroux.fr", **company),
        dict(source_system="koban", company_id="k7", name="GARAGE ROUX SARL", siren="732829320", domain=None, **company),
        dict(source_system="koban", company_id="k8", name="Transports Vilot", siren="552100554", domain=None, **company),
    ])

    def contact(src, cid, first, last, company_id):
        return dict(source_system=src, contact_id=cid, first_name=first, last_name=last, email=None, phone=None,
                    mobile_phone=None, company_name=None, company_id=company_id, city="Nîmes", postcode="30000",
                    job_title=None, updated_at=t, is_deleted=False)

    # Eric and Martin common in the base, so that no rare-name rule links the records whatever their company
    filler = ([contact("hubspot", f"e{i}", "Eric", f"Nom{i}", None) for i in range(40)]
              + [contact("hubspot", f"m{i}", f"Prenom{i}", "Martin", None) for i in range(40)]
              + [contact("hubspot", f"f{i}", f"Autre{i}", f"Famille{i}", None) for i in range(320)])
    contacts = pd.DataFrame(filler + [contact("hubspot", "c1", "Eric", "Martin", "h1"),
                                      contact("koban", "c2", "ERIC", "MARTIN", "k7"),
                                      contact("koban", "c3", "Eric", "Martin", "k8")])
    duckdb_warehouse.write_frame("staging", "companies", companies)
    duckdb_warehouse.write_frame("staging", "contacts", contacts)
    result = dg.materialize([identity_resolution], resources={"warehouse": WarehouseResource(url=duckdb_warehouse.url)})
    assert result.success
    keys = dict(duckdb_warehouse.query_df(
        "select source_system || ':' || source_id as k, entity_key from core.contact_crosswalk").itertuples(index=False))
    companies_linked = duckdb_warehouse.query_df(
        "select count(distinct entity_key) as n from core.company_crosswalk where source_id in ('h1', 'k7')").n[0]
    assert companies_linked == 1
    assert keys["hubspot:c1"] == keys["koban:c2"] != keys["koban:c3"]


def test_no_progress_bar_in_the_run_output(tmp_path):
    """DuckDB draws a progress bar on stdout for any query slower than 2 s, also into a pipe: in a Dagster compute
    log or a scripted `crm-etl resolve ... > out` it is noise. The connections this project opens (identity state,
    core.resolve, the warehouse) switch it off; dlt's loads into the warehouse have it off already (guarded here).
    Checked in a process of its own: under pytest's capture DuckDB turns the bar off by itself. The identity state's
    connection also checkpoints without merging row groups (state._connect: max_vacuum_tasks = 0)."""
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(ROOT / "bench")!r})
        import duckdb
        from scale_people import generate_contacts
        from transforms.identity import resolve_contacts
        from transforms.identity.state import _connect
        from warehouse import Warehouse

        setting = "SELECT current_setting('enable_progress_bar')"
        res = resolve_contacts(generate_contacts(50, seed=3).drop(columns="person_key"))
        out = {{"plain": duckdb.connect().execute(setting).fetchone()[0],
               "state": _connect({str(tmp_path / "s.duckdb")!r}).execute(setting).fetchone()[0],
               "state_vacuum": _connect({str(tmp_path / "v.duckdb")!r}).execute(
                   "SELECT current_setting('max_vacuum_tasks')").fetchone()[0],
               "resolve": res.con.execute(setting).fetchone()[0]}}
        wh = Warehouse({f"duckdb:///{tmp_path / 'w.duckdb'}"!r})
        with wh.connect() as conn:
            out["warehouse"] = conn.connection.driver_connection.execute(setting).fetchone()[0]
        import dlt  # the loads into the warehouse
        pipe = dlt.pipeline("progress", destination=wh.dlt_destination(), dataset_name="raw_progress",
                            pipelines_dir={str(tmp_path / "dlt")!r})
        pipe.run([{{"a": 1}}], table_name="t")
        with pipe.sql_client() as client:
            out["dlt"] = client.execute_sql(setting)[0][0]
        print(json.dumps(out))
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr[-2000:]
    # a plain connection would draw it (into this pipe); ours do not
    assert p.stdout.strip().splitlines()[-1] == ('{"plain": true, "state": false, "state_vacuum": 0, "resolve": false, "warehouse": false, "dlt": false}')
