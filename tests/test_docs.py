"""The published data dictionary says what the YAML says (and so what the Dagster UI shows)."""
from warehouse.docs import DOC_PATH, render
from warehouse.dictionary import load_dictionary


def test_data_dictionary_doc_is_up_to_date():
    assert DOC_PATH.read_text() == render(), "docs/data-dictionary.md is stale: run `python -m warehouse.docs`"


def test_every_table_documents_grain_key_and_every_column():
    for schema, tables in load_dictionary().items():
        for table, doc in tables.items():
            where = f"{schema}.{table}"
            assert doc.get("description"), f"{where}: no description"
            assert doc.get("grain"), f"{where}: no grain"
            assert doc.get("columns"), f"{where}: no columns"
            for col, spec in doc["columns"].items():
                assert spec.get("type") and spec.get("description"), f"{where}.{col}: type and description needed"
            for key_col in doc.get("primary_key", []):
                assert key_col in doc["columns"], f"{where}: key column {key_col} not documented"
