"""A throw-away PostgreSQL database for a benchmark: created empty, dropped (its sessions ended) when the block ends.

    with scratch_database("bench_marts") as url:   # None when PostgreSQL cannot be reached and missing_ok=True
        ...

The server: CRM_ETL_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/postgres), as the tests use it."""
from __future__ import annotations

import contextlib
import os
import uuid
from typing import Iterator

ADMIN_URL = os.environ.get("CRM_ETL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def scratch_database(prefix: str, missing_ok: bool = False) -> Iterator[str | None]:
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'create database "{name}"')
        except sa.exc.OperationalError as exc:
            if not missing_ok:
                raise
            print(f"PostgreSQL not reachable at {ADMIN_URL.split('@')[-1]} ({type(exc).__name__})")
            yield None
            return
        try:
            yield sa.engine.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'drop database if exists "{name}" with (force)')
    finally:
        admin.dispose()
