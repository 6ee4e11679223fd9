"""Shared test fixtures: an isolated environment, a DuckDB warehouse file, a throw-away PostgreSQL database."""
from __future__ import annotations

import contextlib
import os
import uuid
from typing import Iterator

import pytest

PG_ADMIN_URL = os.environ.get("CRM_ETL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment(tmp_path_factory):
    """Nothing a test does lands in the user's home or the project's data/ folder; nothing is sent out."""
    root = tmp_path_factory.mktemp("env")
    os.environ["DAGSTER_HOME"] = str(root / "dagster_home")
    os.makedirs(os.environ["DAGSTER_HOME"], exist_ok=True)
    with open(os.path.join(os.environ["DAGSTER_HOME"], "dagster.yaml"), "w") as f:
        f.write("telemetry:\n  enabled: false\n")
    os.environ["DLT_DATA_DIR"] = str(root / "dlt")
    os.environ["CRM_ETL_DATA_DIR"] = str(root / "data")
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    os.environ["DAGSTER_DISABLE_TELEMETRY"] = "true"
    os.environ.pop("CRM_ETL_WAREHOUSE_URL", None)
    yield


@pytest.fixture
def duckdb_url(tmp_path) -> str:
    return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"


@pytest.fixture
def duckdb_warehouse(duckdb_url):
    from warehouse import Warehouse

    wh = Warehouse(duckdb_url)
    wh.ensure_schemas()
    return wh


def _pg_admin():
    import sqlalchemy as sa

    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


@contextlib.contextmanager
def fresh_postgres_database(prefix: str = "crm_etl_test") -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped on exit (its connections ended first)."""
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin()
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'create database "{name}"')
    except sa.exc.OperationalError as exc:  # pragma: no cover - environment problem, say so clearly
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
                (name,),
            )
            conn.exec_driver_sql(f'drop database if exists "{name}"')
        admin.dispose()


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def postgres_warehouse(postgres_url):
    from warehouse import Warehouse

    wh = Warehouse(postgres_url)
    wh.ensure_schemas()
    yield wh
    wh.dispose()
