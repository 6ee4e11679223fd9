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


def _excel_export(rows: list[list[str]], delimiter: str) -> str:
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buf.getvalue()


_FRENCH_EXPORT = [
    ["Id", "Prénom", "Nom", "Courriel", "Société", "Fonction"],
    ["1", "Aurélie", "Lœuvre", "aurelie.loeuvre@cœur-et-co.fr", "Cœur & Co", "Responsable d’achats (budget 10 000 €)"],
    ["2", "Aurelie", "LŒUVRE", " Aurelie.Loeuvre@CŒUR-ET-CO.fr ", "Coeur et Co SAS", "Acheteuse"],
    ["3", "Zoé", "Dupont", "zoe@exemple.fr", "Exemple; SARL", "Gérante"],
]
_FRENCH_MAP = ["--map", "source_id=Id", "--map", "first_name=Prénom", "--map", "last_name=Nom", "--map", "email=Courriel",
               "--map", "company_name=Société", "--map", "job_title=Fonction"]


def test_resolve_reads_excel_exports_in_windows_1252_and_utf_16(tmp_path):
    # French Excel saves "CSV (séparateur: point-virgule)" in Windows-1252 (œ, ’ and € are not Latin-1) and
    # "Texte Unicode" as tab-separated UTF-16: both must read as the user typed them
    exports = {"cp1252.csv": _excel_export(_FRENCH_EXPORT, ";").encode("cp1252"),
               "unicode.txt.csv": _excel_export(_FRENCH_EXPORT, "\t").encode("utf-16")}
    for name, data in exports.items():
        path = tmp_path / name
        path.write_bytes(data)
        out, golden = tmp_path / f"{name}.parquet", tmp_path / f"{name}.golden.parquet"
        result = CliRunner().invoke(main, ["resolve", "contacts", str(path), "--out", str(out), "--golden-out",
                                           str(golden), "--source-system", "excel", *_FRENCH_MAP])
        assert result.exit_code == 0, result.output
        assert ("read as Windows-1252" in result.output) == (name == "cp1252.csv")
        crosswalk = pd.read_parquet(out).set_index("source_id")
        assert crosswalk.loc["1", "entity_key"] == crosswalk.loc["2", "entity_key"] != crosswalk.loc["3", "entity_key"]
        g = pd.read_parquet(golden)
        assert "Responsable d’achats (budget 10 000 €)" in set(g.job_title) or "Acheteuse" in set(g.job_title)
        assert {"Aurélie", "Aurelie"} & set(g.first_name) and "Exemple; SARL" in set(g.company_name)
        assert "Zoé" in set(g.first_name)


def test_resolve_explains_a_file_it_cannot_read(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(_excel_export(_FRENCH_EXPORT, ";").encode("cp1252"))
    run = lambda *extra: CliRunner().invoke(  # noqa: E731
        main, ["resolve", "contacts", str(path), "--out", str(tmp_path / "o.parquet"), "--source-system", "x", *extra])
    # told it is UTF-8 when it is not: an error naming the fix, no traceback
    result = run("--encoding", "utf-8", *_FRENCH_MAP)
    assert result.exit_code == 1 and "--encoding" in result.output and "Traceback" not in result.output
    result = run("--encoding", "klingon")
    assert result.exit_code == 2 and "unknown encoding 'klingon'" in result.output
    # a line with more fields than the header, further down the file
    lines = ["Id;Nom;Courriel"] + [f"{i};Nom{i};n{i}@exemple.fr" for i in range(5000)] + ["9999;Martin;m@x.fr;extra;fields"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run("--map", "source_id=Id", "--map", "last_name=Nom", "--map", "email=Courriel")
    assert result.exit_code == 1 and result.output.startswith(f"Error: cannot read {path}"), result.output
    assert "Traceback" not in result.output
    # beyond the rows DuckDB samples to guess the dialect: found while reading, named with its line number
    lines[1:1] = [f"{i};Nom{i};n{i}@exemple.fr" for i in range(5000, 30000)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run("--map", "source_id=Id", "--map", "last_name=Nom", "--map", "email=Courriel")
    assert result.exit_code == 1 and "cannot read" in result.output and "line 30002: more fields than the header's 3" in result.output, result.output


def test_resolve_an_export_without_ids_names_rows_by_their_place(tmp_path):
    # a trade-show list: no source system, no ids; the output must still map every row back to the file
    path = tmp_path / "salon-2026.csv"
    path.write_text("Raison sociale;SIRET;CP;Ville\nACME SAS;552 100 554 00013;69003;Lyon\n"
                    "Boulangerie Dupont SARL;;75011;Paris\nAcme;55210055400013;69003;LYON\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(main, ["resolve", "companies", str(path), "--out", str(out), "--map",
                                       "name=Raison sociale", "--map", "siret=SIRET", "--map", "postcode=CP"])
    assert result.exit_code == 0, result.output
    assert "source_system = 'salon-2026'" in result.output and "record's number in the file" in result.output
    crosswalk = pd.read_csv(out, dtype=str).set_index("source_id")
    assert set(crosswalk.source_system) == {"salon-2026"}
    # rows 1 and 3 are one company (same SIRET), row 2 another
    assert crosswalk.loc["1", "entity_key"] == crosswalk.loc["3", "entity_key"] != crosswalk.loc["2", "entity_key"]


def _resolve(*args, env=None):
    return CliRunner().invoke(main, ["resolve", *map(str, args)], env=env)


def test_a_line_that_does_not_fit_the_header_stops_the_run_named(tmp_path):
    # a ';' inside an unquoted company name: DuckDB's dialect sniffing took that line for the header (every record
    # lost) or read the file as one column (nothing matched), exit 0 both times
    good = "Jean;Martin;jean.martin@acme.fr;Acme SAS"
    for name, rows in {"last.csv": [good] * 10 + ["Paul;Durand;p.durand@acme.fr;Durand; Fils SARL"],
                       "middle.csv": [good] * 7 + ["Paul;Durand;p.durand@acme.fr;Durand; Fils SARL"] + [good] * 30}.items():
        path, out = tmp_path / name, tmp_path / f"{name}.parquet"
        path.write_text("first_name;last_name;email;company_name\n" + "\n".join(rows) + "\n", encoding="utf-8")
        result = _resolve("contacts", path, "--out", out)
        line = 12 if name == "last.csv" else 9
        assert result.exit_code == 1, result.output
        assert f"line {line}: more fields than the header's 4" in result.output and "Durand; Fils" in result.output
        assert not out.exists() and "Traceback" not in result.output


def test_french_column_names_are_read_without_map_and_a_file_without_them_is_refused(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("\ufeffPrénom;Nom;E-mail;Téléphone;Société;Code postal;Ville\n"
                    "Jérôme;Lefèvre;j.lefevre@acme.fr;01 23 45 67 89;Acme SAS;75011;Paris\n"
                    "JEROME;LEFEVRE;J.Lefevre@ACME.fr;+33 1 23 45 67 89;ACME;75011;PARIS\n"
                    "Anaïs;Noël;anais@exemple.fr;;Exemple SARL;69003;Lyon\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    result = _resolve("contacts", path, "--out", out)
    assert result.exit_code == 0, result.output
    assert "Prénom -> first_name" in result.output and "Code postal -> postcode" in result.output
    crosswalk = pd.read_csv(out, dtype=str).set_index("source_id")
    assert crosswalk.loc["1", "entity_key"] == crosswalk.loc["2", "entity_key"] != crosswalk.loc["3", "entity_key"]
    # nothing to match on: an error naming the columns and --map, not one entity per row
    path.write_text("Civilité;Intitulé\nM.;Acheteur\nMme;Gérante\n", encoding="utf-8")
    result = _resolve("contacts", path, "--out", out)
    assert result.exit_code == 1 and "Civilité, Intitulé" in result.output and "--map" in result.output


def test_records_the_matcher_would_drop_stop_the_run_named(tmp_path):
    path, out = tmp_path / "export.csv", tmp_path / "out.csv"
    header = "ID;Prénom;Nom;E-mail\n"
    path.write_text(header + "1;Jean;Martin;jm@acme.fr\n;Luc;Petit;lp@acme.fr\n", encoding="utf-8")
    result = _resolve("contacts", path, "--out", out)
    assert result.exit_code == 1 and "have no source_id" in result.output and "records 2;" in result.output
    # one id, two different people
    path.write_text(header + "1;Jean;Martin;jm@acme.fr\n2;Paul;Durand;pd@acme.fr\n2;Sophie;Bernard;sb@x.fr\n",
                    encoding="utf-8")
    result = _resolve("contacts", path, "--out", out)
    assert result.exit_code == 1 and "'2' (records 2, 3)" in result.output and not out.exists()
    # a row repeated exactly is one record, said so; the crosswalk follows the file's order, not the ids' text
    path.write_text(header + "10;Jean;Martin;jm@acme.fr\n9;Paul;Durand;pd@acme.fr\n10;Jean;Martin;jm@acme.fr\n"
                    "100;Luc;Petit;lp@acme.fr\n", encoding="utf-8")
    result = _resolve("contacts", path, "--out", out)
    assert result.exit_code == 0 and "1 row(s) of" in result.output and "repeat another row exactly" in result.output
    assert list(pd.read_csv(out, dtype=str).source_id) == ["10", "9", "100"]


def test_french_dates_decide_the_golden_record(tmp_path):
    # the older record has the higher id, which breaks ties when dates are not read
    path, golden = tmp_path / "export.csv", tmp_path / "golden.csv"
    path.write_text("id;first_name;last_name;email;company_name;updated_at\n"
                    "1;Jean;Martin;Jean.Martin@acme.fr;Nouvelle Société SAS;28/02/2024 09:30\n"
                    "2;Jean;Martin;jean.martin@acme.fr;Ancienne Société SARL;05/01/2024 10:00\n"
                    "3;Anne;Roux;anne.roux@acme.fr;Acme;hier\n", encoding="utf-8")
    result = _resolve("contacts", path, "--out", tmp_path / "out.csv", "--golden-out", golden)
    assert result.exit_code == 0, result.output
    assert "1 updated_at value(s) are not dates (e.g. 'hier'" in result.output
    g = pd.read_csv(golden, dtype=str).set_index("email")
    assert g.loc["jean.martin@acme.fr", "company_name"] == "Nouvelle Société SAS"
    assert g.loc["jean.martin@acme.fr", "last_updated_at"].startswith("2024-02-28 09:30")


def test_mistakes_are_refused_before_any_work_and_touch_nothing(tmp_path, monkeypatch):
    import zipfile

    path = tmp_path / "export.csv"
    text = "id;first_name;last_name;email\n1;Jean;Martin;jm@acme.fr\n"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "out.csv"
    for args, says in [(["--out", path], "is also the input"),
                       (["--out", out, "--golden-out", out], "is also --out"),
                       (["--out", tmp_path / "out.json"], "write .parquet or .csv"),
                       (["--out", tmp_path / "nodir" / "out.csv"], "no folder"),
                       (["--out", out, "--threshold", "1.5"], "0<x<1"),
                       (["--out", out, "--threshold", "0"], "0<x<1"),
                       (["--out", out, "--map", "email=email", "--map", "email=id"], "field email is already mapped")]:
        result = _resolve("contacts", path, *args)
        assert result.exit_code == 2 and says in result.output and "Traceback" not in result.output, (args, result.output)
    model = tmp_path / "model.json"
    model.write_text("{}")
    result = _resolve("contacts", path, "--out", out, "--model", model)
    assert result.exit_code == 2 and "is not a Splink model" in result.output
    result = _resolve("contacts", path, "--out", out, "--retrain")
    assert result.exit_code == 1 and "--retrain needs at least 1,000 records" in result.output
    assert "Traceback" not in result.output
    assert path.read_text(encoding="utf-8") == text and not out.exists()
    # a workbook saved as is
    book = tmp_path / "export.xlsx"
    with zipfile.ZipFile(book, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    result = _resolve("contacts", book, "--out", out)
    assert result.exit_code == 1 and "save the sheet as CSV" in result.output
    # no warehouse where the model should be kept: said so, and no empty warehouse file left behind
    monkeypatch.chdir(tmp_path)
    wh = tmp_path / "data" / "warehouse.duckdb"
    result = _resolve("contacts", path, "--out", out, "--identity-model", "latest",
                      env={"CRM_ETL_WAREHOUSE_URL": f"duckdb:///{wh}"})
    assert result.exit_code == 1 and "no warehouse at" in result.output and not wh.exists() and not wh.parent.exists()


def test_the_delimiter_is_the_one_header_and_lines_agree_on(tmp_path):
    files = {
        # a tab file whose header holds a comma; a ';' file whose header holds more commas than ';'
        "tab.csv": "E-mail\tNom, prénom\njean.dupont@x.fr\tDupont, Jean\njean.dupont@x.fr\tDupont, J.\njm@z.fr\tMartin, Jean\n",
        "semi.csv": "E-mail;Nom, prénom, titre\njean.dupont@x.fr;Dupont, Jean, M.\njean.dupont@x.fr;Dupont, J., M.\n"
                    "jm@z.fr;Martin, Jean, M.\n",
        # a header cell with a line break (quoted), a header ending with the delimiter its lines do not have, CRs
        "quoted.csv": '"Adresse\r\ne-mail";Nom;\r\njean.dupont@x.fr;Dupont\r\njean.dupont@x.fr;Dupont\r\njm@z.fr;Martin\r\n',
    }
    for name, text in files.items():
        path, out = tmp_path / name, tmp_path / f"{name}.out.csv"
        path.write_text(text, encoding="utf-8", newline="")
        result = _resolve("contacts", path, "--out", out, *(["--map", "email=Adresse e-mail"] if name == "quoted.csv"
                                                             else []))
        assert result.exit_code == 0, (name, result.output)
        assert "3 records -> 2 contacts entities" in result.output, (name, result.output)
    # forced: read with ';' the tab file is one column, named by its whole header line
    result = _resolve("contacts", tmp_path / "tab.csv", "--out", tmp_path / "o.csv", "--delimiter", ";")
    assert result.exit_code == 1 and "its columns: E-mail Nom, prénom." in result.output, result.output


def test_a_bad_line_is_named_by_its_line_in_the_file_after_quoted_line_breaks(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text('Id;Nom;E-mail;Note\n1;Dupont;jean@x.fr;"deux\nlignes"\n2;Dupont;jean@x.fr;"trois\nlignes\nici"\n'
                    "3;Martin; Paul;paul@x.fr;ok\n", encoding="utf-8")
    result = _resolve("contacts", path, "--out", tmp_path / "o.csv")
    assert result.exit_code == 1 and "line 7: more fields than the header's 4" in result.output, result.output


def test_dates_short_years_and_us_exports(tmp_path):
    # dd/mm/yy: DuckDB's cast reads 28/02/24 as the year 28; a US export (month-first) is recognised as one
    for name, dates, newest_city in [("fr.csv", ["28/02/24 09:30", "05/03/24 10:00"], "Lyon"),
                                     ("us.csv", ["02/28/2024 09:30 AM", "03/05/2024"], "Lyon"),
                                     ("us2.csv", ["03/01/2024 10:00 AM", "02/03/2024"], "Paris")]:
        path, golden = tmp_path / name, tmp_path / f"{name}.golden.csv"
        path.write_text(f"Id;Prénom;Nom;E-mail;Ville;Date de modification\n1;Jean;Dupont;jean@x.fr;Paris;{dates[0]}\n"
                        f"2;Jean;Dupont;jean@x.fr;Lyon;{dates[1]}\n", encoding="utf-8")
        result = _resolve("contacts", path, "--out", tmp_path / f"{name}.out.csv", "--golden-out", golden)
        assert result.exit_code == 0, result.output
        assert ("read month-first" in result.output) == name.startswith("us"), result.output
        g = pd.read_csv(golden, dtype=str)
        assert g.city.tolist() == [newest_city] and g.last_updated_at[0].startswith("2024-03-0"), (name, g.T)


def test_a_file_mostly_utf8_is_not_garbled_whole(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes("Id;Prénom;Nom;E-mail\n1;Jérôme;Lefèvre;j@x.fr\n".encode() + b"2;Zo\xe9;Dupont;z@x.fr\n")
    result = _resolve("contacts", path, "--out", tmp_path / "o.csv")
    assert result.exit_code == 1 and "is UTF-8 but for line 3" in result.output, result.output


def test_unsure_or_empty_columns_are_said_not_guessed(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text('Id;Nom;Nom de famille;Tél;Note "interne"\n1;Dupont;Dupont;0102030405;a\n2;Dupont;Dupont;;b\n',
                    encoding="utf-8")
    result = _resolve("contacts", path, "--out", tmp_path / "o.csv")
    assert result.exit_code == 0, result.output  # (a column name with a double quote is read too)
    assert "Nom and Nom de famille could both be last_name: neither read" in result.output
    companies = tmp_path / "companies.csv"
    companies.write_text("Id;Raison sociale;SIRET\n1;;\n2;;\n", encoding="utf-8")
    result = _resolve("companies", companies, "--out", tmp_path / "c.csv")
    assert result.exit_code == 1 and "name, siret: empty in every record" in result.output
    broken = tmp_path / "export.parquet"
    broken.write_bytes(b"PAR1 not really")
    result = _resolve("contacts", broken, "--out", tmp_path / "o.csv")
    assert result.exit_code == 1 and "not a readable Parquet file" in result.output


def test_a_header_no_line_fits_still_gives_the_delimiter(tmp_path):
    # no data line with the header's field count: the delimiter that splits the header, not a tie going to tab
    path = tmp_path / "export.csv"
    path.write_text("Prénom;Nom;E-mail;Société\nJean;Dupont;j@x.fr;Dupont; Fils\n", encoding="utf-8")
    result = _resolve("contacts", path, "--out", tmp_path / "o.csv")
    assert result.exit_code == 1 and "line 2: more fields than the header's 4" in result.output, result.output
    path.write_text("Prénom;Nom;E-mail\n", encoding="utf-8")
    result = _resolve("contacts", path, "--out", tmp_path / "o.csv")
    assert result.exit_code == 0 and "the input holds no records" in result.output, result.output
