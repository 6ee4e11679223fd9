"""`crm-etl resolve`: a data engineer deduplicates a CRM export without the pipeline."""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from scale_people import generate_contacts  # noqa: E402

from crm_etl_cli import main  # noqa: E402


def test_resolve_a_csv_export_with_its_own_column_names(tmp_path):
    people = generate_contacts(600, seed=8)
    # an export as a CRM gives it: French headers, no source_system column
    export = people.drop(columns=["person_key", "source_system"]).rename(
        columns={"source_id": "ID", "first_name": "Prénom", "last_name": "Nom", "email": "Courriel",
                 "job_title": "Fonction ?"})
    csv = tmp_path / "export.csv"
    export.to_csv(csv, index=False)
    out, golden = tmp_path / "clusters.parquet", tmp_path / "golden.csv"
    result = CliRunner().invoke(main, [
        "resolve", "contacts", str(csv), "--out", str(out), "--golden-out", str(golden), "--source-system", "hubspot",
        "--map", "source_id=ID", "--map", "first_name=Prénom", "--map", "last_name=Nom", "--map", "email=Courriel"])
    assert result.exit_code == 0, result.output
    assert "600 records ->" in result.output
    crosswalk = pd.read_parquet(out)
    # every input row once, with its entity, rule and probability
    assert sorted(crosswalk.source_id.astype(str)) == sorted(export.ID.astype(str))
    assert set(crosswalk.source_system) == {"hubspot"}
    assert crosswalk[["entity_key", "rule", "match_probability"]].notna().all().all()
    # the export's duplicates are found: records of one person share an entity far more often than not
    truth = people.assign(source_id=people.source_id.astype(str))[["source_id", "person_key"]]
    joined = crosswalk.assign(source_id=crosswalk.source_id.astype(str)).merge(truth, on="source_id")
    pairs = joined.merge(joined, on="person_key").query("source_id_x < source_id_y")
    assert len(pairs) > 50 and (pairs.entity_key_x == pairs.entity_key_y).mean() > 0.9
    assert len(pd.read_csv(golden)) == crosswalk.entity_key.nunique()


def test_resolve_names_a_wrong_mapping(tmp_path):
    csv = tmp_path / "export.csv"
    pd.DataFrame({"ID": ["1"], "Nom": ["Martin"]}).to_csv(csv, index=False)
    result = CliRunner().invoke(main, ["resolve", "contacts", str(csv), "--out", str(tmp_path / "o.parquet"),
                                       "--map", "last_name=Surname"])
    assert result.exit_code == 2 and "no column 'Surname'" in result.output
    result = CliRunner().invoke(main, ["resolve", "contacts", str(csv), "--out", str(tmp_path / "o.parquet"),
                                       "--map", "surname=Nom"])
    assert result.exit_code == 2 and "unknown field 'surname'" in result.output


def test_identity_model_needs_a_recorded_run(tmp_path):
    csv = tmp_path / "export.csv"
    pd.DataFrame({"source_id": ["1"], "last_name": ["Martin"]}).to_csv(csv, index=False)
    env = {"CRM_ETL_WAREHOUSE_URL": f"duckdb:///{tmp_path / 'empty.duckdb'}"}
    result = CliRunner().invoke(main, ["resolve", "contacts", str(csv), "--out", str(tmp_path / "o.parquet"),
                                       "--identity-model", "latest"], env=env)
    assert result.exit_code == 1 and "no identity run recorded" in result.output
    result = CliRunner().invoke(main, ["resolve", "contacts", str(csv), "--out", str(tmp_path / "o.parquet"),
                                       "--identity-model", "latest", "--threshold", "0.5"], env=env)
    assert result.exit_code == 2 and "drop --threshold" in result.output
    result = CliRunner().invoke(main, ["resolve", "contacts", str(csv), "--out", str(tmp_path / "o.parquet"),
                                       "--identity-model", "latest", "--region", "BE"], env=env)
    assert result.exit_code == 2 and "drop --region" in result.output
