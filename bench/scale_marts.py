"""Scale generator for the marts benchmark: fills the marts' input tables (staging.*, core crosswalks, staging.cfg_*)
with SQL generate_series, so 100% (1,000,000 contacts, 200,000 companies, 300,000 deals, 5,000,000 activities,
500,000 invoices) is written by the database itself in seconds. Deterministic (no random()): every attribute is
a modular function of the row number, the same on DuckDB and PostgreSQL."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from marts_world import load_world, world  # noqa: E402  (the config rows of the hand-made world)
from warehouse.connection import Warehouse  # noqa: E402

FULL = {"contacts": 1_000_000, "companies": 200_000, "deals": 300_000, "activities": 5_000_000, "invoices": 500_000}
T0 = "cast('2024-01-01 00:00:00+00' as timestamptz)"
AS_OF = "2026-12-31 23:00:00+00"


def sizes(scale: float) -> dict[str, int]:
    return {k: max(10, int(v * scale)) for k, v in FULL.items()}


def statements(scale: float) -> list[str]:
    n = sizes(scale)
    nc, nd, na, ni, nk = n["companies"], n["deals"], n["activities"], n["invoices"], n["contacts"]
    nh = nc * 9 // 10  # hubspot companies; the rest are koban, half of them duplicates of hubspot ones
    ncus = nc // 4  # stripe customers
    # bigint: at 100% i * 7919 passes 2^31 (PostgreSQL's generate_series(int, int) is int4)
    gs = "generate_series(cast(1 as bigint), {}) as g(i)".format
    day = "interval '1 day'"
    minute = "interval '1 minute'"
    deal_t0 = (f"case when i % 10 >= 7 then cast('{AS_OF}' as timestamptz) - (i % 120) * {day} "
               f"else {T0} + ((i * 17) % 1000) * {day} + (i % 600) * {minute} end")
    dur = "case when i % 10 >= 7 then (i % 120) else 10 + (i % 80) end"
    return [
        # reps: 60 in HubSpot, 6 teams; 10 also in Koban (same email); 20 changed team on 2025-06-01
        f"insert into staging.owners (source_system, owner_id, email, first_name, last_name, full_name, team_id, team_name, is_active, created_at, updated_at) select 'hubspot', 'o' || i, 'rep' || i || '@acme.fr', 'Rep', 'N' || i, 'Rep N' || i, "
        f"'t' || (i % 6), 'Team ' || (i % 6), true, {T0}, {T0} from {gs(60)}",
        f"insert into staging.owners (source_system, owner_id, email, first_name, last_name, full_name, team_id, team_name, is_active, created_at, updated_at) select 'koban', 'k' || i, 'rep' || i || '@acme.fr', 'Rep', 'N' || i, 'Rep N' || i, "
        f"'kt', 'Team ' || (i % 6), true, {T0} + interval '30 day', {T0} from {gs(10)}",
        f"insert into staging.owner_team_history (source_system, owner_id, team_id, team_name, valid_from, valid_to) select 'hubspot', 'o' || i, 't9', 'Team 9', {T0} - interval '365 day', "
        f"cast('2025-06-01 00:00:00+00' as timestamptz) from {gs(20)}",
        f"insert into staging.owner_team_history (source_system, owner_id, team_id, team_name, valid_from, valid_to) select 'hubspot', 'o' || i, 't' || (i % 6), 'Team ' || (i % 6), "
        f"cast('2025-06-01 00:00:00+00' as timestamptz), null from {gs(20)}",
        # companies + crosswalk
        f"insert into staging.companies (source_system, company_id, name, domain, siren, siret, vat_number, phone, address, postcode, city, country, naf_code, headcount, tier, account_type, lifecycle_stage, owner_id, created_at, updated_at, is_deleted) select case when i <= {nh} then 'hubspot' else 'koban' end, 'c' || i, "
        f"'Company ' || i, 'c' || i || '.fr', null, null, null, null, null, lpad(cast(i % 95 + 1 as text), 2, '0') || '000', "
        f"'City', 'FR', null, i % 200, case when i % 10 < 3 then 'Or' when i % 10 < 6 then 'Argent' when i % 10 < 9 then 'Bronze' end, "
        f"case when i % 4 = 0 then 'customer' when i % 4 = 1 then 'prospect' when i % 4 = 2 then 'partner' else 'other' end, "
        f"'lead', 'o' || (i % 60 + 1), {T0} + (i % 700) * {day}, {T0} + (i % 900) * {day}, false from {gs(nc)}",
        f"insert into core.company_crosswalk (source_system, source_id, entity_key, rule, match_probability, model_version) select case when i <= {nh} then 'hubspot' else 'koban' end, 'c' || i, "
        f"'E' || case when i > {nh} and i % 2 = 0 then (i - {nh}) else i end, 'bench', 1.0, 'bench' from {gs(nc)}",
        f"insert into core.company_crosswalk (source_system, source_id, entity_key, rule, match_probability, model_version) select 'stripe', 'cus_' || i, 'E' || i, 'bench', 1.0, 'bench' from {gs(ncus)}",
        # contacts, crosswalk, lifecycle
        f"insert into staging.contacts (source_system, contact_id, email, first_name, last_name, phone, mobile_phone, job_title, company_id, company_name, owner_id, lifecycle_stage, source_channel, lead_source, city, postcode, page_views, email_opens, email_clicks, form_submissions, hard_bounced, created_at, updated_at, is_deleted) select 'hubspot', 'ct' || i, 'p' || i || '@x.fr', 'F', 'L', null, null, null, "
        f"'c' || ((i * 31) % {nh} + 1), null, 'o' || (i % 60 + 1), 'lead', "
        f"case i % 6 when 0 then 'PAID_SEARCH' when 1 then 'ORGANIC_SEARCH' when 2 then 'OFFLINE' when 3 then 'EMAIL_MARKETING' "
        f"when 4 then 'PAID_SOCIAL' else null end, case when i % 6 = 2 then 'prospecting' end, null, null, 0, 0, 0, 0, false, "
        f"{T0} + ((i * 7) % 1080) * {day}, {T0} + ((i * 7) % 1080) * {day}, false from {gs(nk)}",
        f"insert into core.contact_crosswalk (source_system, source_id, entity_key, rule, match_probability, model_version) select 'hubspot', 'ct' || i, 'P' || case when i % 20 = 0 then i - 1 else i end, "
        f"'bench', 1.0, 'bench' from {gs(nk)}",
        *[
            f"insert into staging.lifecycle_events (source_system, contact_id, stage, entered_at) select 'hubspot', 'ct' || i, '{stage}', "
            f"{T0} + ((i * 7) % 1080) * {day} + {offset} * {day} from {gs(nk)} where i % {mod} = 0"
            for stage, mod, offset in [("lead", 1, 0), ("mql", 2, 5), ("sql", 4, 10), ("opportunity", 8, 20), ("customer", 16, 40)]
        ],
        # deals: 30% won, 40% lost, 30% open (created in the last 120 days); stage path and property history
        f"insert into staging.deals (source_system, deal_id, deal_name, pipeline_id, stage_id, amount, currency, amount_home, probability, is_closed, is_won, created_at, close_date, closed_at, owner_id, company_id, contact_id, source_channel, lead_source, deal_type, updated_at, is_deleted) select 'hubspot', 'd' || i, 'Deal ' || i, 'default', "
        f"case when i % 10 < 3 then 'won' when i % 10 < 7 then 'lost' else 'proposal' end, "
        f"1000 + (i * 37) % 50000, case when i % 20 = 0 then 'CHF' else 'EUR' end, "
        f"cast((1000 + (i * 37) % 50000) * case when i % 20 = 0 then 1.05 else 1 end as numeric(18,2)), "
        f"case when i % 10 < 3 then 1.0 when i % 10 < 7 then 0.0 else 0.5 end, i % 10 < 7, i % 10 < 3, "
        f"{deal_t0}, {deal_t0} + ({dur} + 10) * {day}, "
        f"case when i % 10 < 7 then {deal_t0} + ({dur}) * {day} end, "
        f"'o' || (i % 60 + 1), 'c' || ((i * 7919) % {nh} + 1), null, "
        f"case i % 5 when 0 then 'PAID_SEARCH' when 1 then 'OFFLINE' when 2 then 'ORGANIC_SEARCH' when 3 then 'PAID_SOCIAL' else null end, "
        f"case when i % 5 = 1 then 'prospecting' end, 'newbusiness', {deal_t0} + ({dur}) * {day}, false from {gs(nd)}",
        f"insert into staging.deal_stage_events (source_system, deal_id, stage_id, entered_at, exited_at) select 'hubspot', 'd' || i, 'qual', {deal_t0}, {deal_t0} + ({dur}) * {day} / 3 from {gs(nd)}",
        f"insert into staging.deal_stage_events (source_system, deal_id, stage_id, entered_at, exited_at) select 'hubspot', 'd' || i, 'proposal', {deal_t0} + ({dur}) * {day} / 3, "
        f"case when i % 10 < 3 then {deal_t0} + ({dur}) * {day} * 2 / 3 when i % 10 < 7 then {deal_t0} + ({dur}) * {day} end "
        f"from {gs(nd)}",
        f"insert into staging.deal_stage_events (source_system, deal_id, stage_id, entered_at, exited_at) select 'hubspot', 'd' || i, 'nego', {deal_t0} + ({dur}) * {day} * 2 / 3, "
        f"{deal_t0} + ({dur}) * {day} from {gs(nd)} where i % 10 < 3",
        f"insert into staging.deal_stage_events (source_system, deal_id, stage_id, entered_at, exited_at) select 'hubspot', 'd' || i, case when i % 10 < 3 then 'won' else 'lost' end, "
        f"{deal_t0} + ({dur}) * {day}, null from {gs(nd)} where i % 10 < 7",
        f"insert into staging.deal_property_history (source_system, deal_id, property, value, changed_at) select 'hubspot', 'd' || i, 'amount', cast(900 + (i * 37) % 50000 as text), {deal_t0} from {gs(nd)}",
        f"insert into staging.deal_property_history (source_system, deal_id, property, value, changed_at) select 'hubspot', 'd' || i, 'probability', '0.2', {deal_t0} from {gs(nd)}",
        f"insert into staging.deal_property_history (source_system, deal_id, property, value, changed_at) select 'hubspot', 'd' || i, 'probability', '0.5', "
        f"{deal_t0} + ({dur}) * {day} / 3 from {gs(nd)}",
        f"insert into staging.deal_property_history (source_system, deal_id, property, value, changed_at) select 'hubspot', 'd' || i, 'close_date', "
        f"cast(cast({deal_t0} + ({dur} + 10) * {day} as date) as text), {deal_t0} from {gs(nd)}",
        # activities
        f"insert into staging.activities (source_system, activity_id, activity_type, occurred_at, duration_minutes, owner_id, company_id, contact_id, deal_id, is_deleted) select 'hubspot', 'a' || i, "
        f"case i % 8 when 0 then 'call' when 1 then 'email' when 2 then 'meeting_in_person' when 3 then 'meeting_phone' "
        f"when 4 then 'meeting_video' when 5 then 'demo' when 6 then 'task' else 'note' end, "
        f"{T0} + ((i * 13) % 1095) * {day} + (i % 600) * {minute}, case when i % 3 = 0 then null else 5 + i % 60 end, "
        f"'o' || (i % 60 + 1), 'c' || ((i * 31) % {nh} + 1), null, case when i % 4 = 0 then 'd' || ((i * 3) % {nd} + 1) end, "
        f"i % 500 = 0 from {gs(na)}",
        # invoices
        f"insert into staging.invoices (source_system, invoice_id, customer_id, status, currency, amount_due, amount_paid, created_at, paid_at, is_deleted) select 'stripe', 'in_' || i, 'cus_' || ((i * 13) % {ncus} + 1), "
        f"case when i % 10 < 8 then 'paid' else 'open' end, case when i % 25 = 0 then 'USD' else 'EUR' end, "
        f"100 + (i * 11) % 5000, case when i % 10 < 8 then 100 + (i * 11) % 5000 else 0 end, "
        f"{T0} + ((i * 7) % 1090) * {day}, case when i % 10 < 8 then {T0} + ((i * 7) % 1090 + 3) * {day} end, false "
        f"from {gs(ni)}",
        # marketing spend: 36 months x 6 channels x 2 campaigns (one tagged)
        "insert into staging.marketing_spend (month, channel, campaign, tier, amount, currency) select cast(cast('2024-01-01' as date) + cast((i - i % 12) / 12 as integer) * interval '1 month' as date), "
        "case cast((i % 12 - i % 2) / 2 as integer) when 0 then 'PAID_SEARCH' when 1 then 'ORGANIC_SEARCH' when 2 then 'EMAIL_MARKETING' "
        "when 3 then 'PAID_SOCIAL' when 4 then 'OFFLINE' else 'EVENTS' end, 'camp' || (i % 2), "
        "case when i % 2 = 1 then 'Or' end, 1000 + (i * 97) % 9000, 'EUR' from generate_series(0, 431) as g(i)",
    ]


def generate(wh: Warehouse, scale: float) -> None:
    """Create and fill every input table of the marts at `scale` (1.0 = 100%)."""
    cfg = {k: v for k, v in world().items() if ".cfg_" in k or k == "staging.pipeline_stages"}
    cfg["staging.cfg_settings"] = [r for r in cfg["staging.cfg_settings"] if r["key"] not in ("as_of", "first_year_window_months", "cohort_window_days")]
    cfg["staging.cfg_settings"] += [{"key": "as_of", "value": AS_OF}, {"key": "first_year_window_months", "value": "12"},
                                    {"key": "cohort_window_days", "value": "180"}]
    cfg["staging.cfg_rep_costs"] = [{"rep_email": f"rep{i}@acme.fr", "hourly_cost": 40 + i, "valid_from": "2024-01-01", "valid_to": None}
                                    for i in range(1, 61)]
    cfg["staging.cfg_fx_rates"] = [{"currency": "EUR", "rate_to_home": 1.0}, {"currency": "CHF", "rate_to_home": 1.05},
                                   {"currency": "USD", "rate_to_home": 0.9}]
    load_world(wh, cfg)
    with wh.connect() as conn:
        for stmt in statements(scale):
            # psycopg2 reads % as a parameter marker even without parameters
            conn.exec_driver_sql(stmt.replace("%", "%%") if wh.dialect == "postgres" else stmt)
