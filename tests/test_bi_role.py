"""The BI role reads marts and quality, and nothing else; it cannot write (connecting as that role)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from warehouse import Warehouse
from warehouse.grants import setup_bi_role

pytestmark = pytest.mark.postgres


@pytest.fixture
def bi_setup(postgres_warehouse):
    wh = postgres_warehouse
    wh.ensure_schemas(["staging", "core", "quality", "marts", "raw_hubspot"])
    wh.execute("create table raw_hubspot.contacts as select 'a@b.fr' as email")
    wh.build_table("staging", "contacts", "select 'a@b.fr' as email")
    wh.build_table("marts", "mart_win_rate", "select 1 as deals_won")
    wh.execute("create table quality.quarantine as select '{\"email\": \"a@b.fr\"}' as payload")
    role = "crm_etl_bi_test"
    setup_bi_role(wh, role, password="s3cret-for-test")
    bi_url = wh.url.replace("postgres@", f"{role}:s3cret-for-test@")
    bi = Warehouse(bi_url)
    yield wh, bi
    bi.dispose()
    with wh.connect() as conn:
        for schema in ("marts", "quality", "core"):
            conn.exec_driver_sql(f'alter default privileges in schema {schema} revoke select on tables from {role}')
        conn.exec_driver_sql(f"drop owned by {role}")
        conn.exec_driver_sql(f"drop role {role}")


def test_bi_role_reads_marts_even_after_a_rebuild(bi_setup):
    wh, bi = bi_setup
    assert bi.scalar("select deals_won from marts.mart_win_rate") == 1
    wh.build_table("marts", "mart_win_rate", "select 2 as deals_won")  # swapped-in table: readable at once
    assert bi.scalar("select deals_won from marts.mart_win_rate") == 2


@pytest.mark.parametrize("sql", [
    "select * from raw_hubspot.contacts",
    "select * from staging.contacts",
    "select * from quality.quarantine",
])
def test_bi_role_cannot_read_raw_staging_or_personal_data(bi_setup, sql):
    _, bi = bi_setup
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        bi.query(sql)


def test_bi_role_cannot_write(bi_setup):
    _, bi = bi_setup
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        bi.execute("insert into marts.mart_win_rate values (3)")
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        bi.execute("create table marts.evil as select 1 as x")


def test_password_is_not_echoed(postgres_warehouse):
    statements = setup_bi_role(postgres_warehouse, "crm_etl_bi_pw", password="top-secret")
    assert not any("top-secret" in s for s in statements)
    with postgres_warehouse.connect() as conn:
        conn.exec_driver_sql("drop owned by crm_etl_bi_pw")
        conn.exec_driver_sql("drop role crm_etl_bi_pw")


def test_a_sales_ops_role_reads_core_and_loses_it_when_refreshed_without(bi_setup):
    # sales ops' working lists (contacts likely gone, the hand-off list...) live in core, with the personal data
    wh, bi = bi_setup
    wh.build_table("core", "contact_flags", "select 'P-1' as contact_key, true as likely_gone")
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        bi.query("select * from core.contact_flags")
    setup_bi_role(wh, "crm_etl_bi_test", with_core=True)
    assert bi.scalar("select count(*) from core.contact_flags where likely_gone") == 1
    wh.build_table("core", "contact_flags", "select 'P-2' as contact_key, false as likely_gone")  # swapped in
    assert bi.scalar("select contact_key from core.contact_flags") == "P-2"
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        bi.query("select * from quality.quarantine")  # raw payloads stay out
    setup_bi_role(wh, "crm_etl_bi_test")
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        bi.query("select * from core.contact_flags")
