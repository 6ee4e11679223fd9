"""A small hand-made world for the marts tests: input tables (staging.*, core crosswalks, staging.cfg_*) created
from the data dictionary and filled with rows written out by hand. Shared by test_marts.py (DuckDB) and
test_marts_postgres.py (PostgreSQL), so both dialects see exactly the same inputs."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from warehouse.connection import Warehouse, qualify
from warehouse.dictionary import load_dictionary

# Config tables (contract in notes/config_tables.md; the pipeline writes them from sales_model.yaml).
CFG_TABLES = {
    "cfg_settings": {"key": "text", "value": "text"},
    "cfg_segments": {"tier": "text", "planned_share": "double", "sort_order": "integer", "min_headcount": "integer",
                     "max_headcount": "integer", "tagged": "boolean"},
    "cfg_activity_types": {"activity_type": "text", "label": "text", "default_minutes": "double", "is_meeting": "boolean"},
    "cfg_stages": {"pipeline_id": "text", "stage_id": "text", "stage_label": "text", "stage_order": "integer",
                   "expected_probability": "double", "expected_days": "integer", "is_proposal": "boolean"},
    "cfg_fx_rates": {"currency": "text", "rate_to_home": "double"},
    "cfg_channels": {"source_channel": "text", "lead_source": "text", "channel_group": "text"},
    "cfg_rep_costs": {"rep_email": "text", "hourly_cost": "double", "valid_from": "date", "valid_to": "date"},
}


def _sql_type(t: str) -> str:
    return "double precision" if t == "double" else t


def input_tables() -> dict[tuple[str, str], dict[str, str]]:
    d = load_dictionary()
    out = {("staging", t): {c: v["type"] for c, v in doc["columns"].items()} for t, doc in d["staging"].items()}
    for t in ("company_crosswalk", "contact_crosswalk", "company_golden", "contact_golden"):
        out[("core", t)] = {c: v["type"] for c, v in d["core"][t]["columns"].items()}
    out.update({("staging", t): cols for t, cols in CFG_TABLES.items()})
    return out


def _value(typ: str, v):
    if v is None:
        return None
    if typ == "timestamptz" and isinstance(v, str):
        if len(v) == 10:
            v += " 00:00:00"
        return dt.datetime.fromisoformat(v).replace(tzinfo=dt.timezone.utc)
    if typ == "date" and isinstance(v, str):
        return dt.date.fromisoformat(v)
    if typ.startswith("numeric"):
        return Decimal(str(v))
    return v


def load_world(wh: Warehouse, world: dict[str, list[dict]]) -> None:
    """Create every input table (empty unless `world` has rows for it) and insert the rows."""
    wh.ensure_schemas(("staging", "core", "marts"))
    tables = input_tables()
    with wh.connect() as conn:
        for (schema, table), cols in tables.items():
            conn.exec_driver_sql(f"drop table if exists {qualify(schema, table)}")
            ddl = ", ".join(f'"{c}" {_sql_type(t)}' for c, t in cols.items())
            conn.exec_driver_sql(f"create table {qualify(schema, table)} ({ddl})")
            rows = world.get(f"{schema}.{table}", [])
            if not rows:
                continue
            unknown = {k for r in rows for k in r} - set(cols)
            assert not unknown, f"{schema}.{table}: unknown columns {unknown}"
            names = list(cols)
            stmt = sa.text(
                f"insert into {qualify(schema, table)} ({', '.join(chr(34) + c + chr(34) for c in names)}) "
                f"values ({', '.join(':' + c for c in names)})"
            )
            conn.execute(stmt, [{c: _value(cols[c], r.get(c)) for c in names} for r in rows])


def _ts(day: str, hour: int = 10) -> str:
    return f"{day} {hour:02d}:00:00"


def _stage_path(system: str, deal_id: str, path: list[tuple[str, str]]) -> list[dict]:
    """Stage events from [(stage_id, day entered), ...]: each exits when the next is entered."""
    rows = []
    for i, (stage, day) in enumerate(path):
        rows.append({"source_system": system, "deal_id": deal_id, "stage_id": stage, "entered_at": _ts(day),
                     "exited_at": _ts(path[i + 1][1]) if i + 1 < len(path) else None})
    return rows


def world() -> dict[str, list[dict]]:
    """The hand-made world. Home currency EUR. As-of 2026-04-30 (cfg_settings).

    Reps: alice (hubspot o1, team North until 2026-02-15 then South; also koban k1, same email, team North),
          bob (hubspot o2, North).
    Companies (resolved): E1 = hubspot c1 + koban kc1 + stripe cus_1 (tier Or), E2 = hubspot c2 + cus_2
          (tagged 'argent' -> Argent), E3 = hubspot c3 (no tag -> unknown), E4 = stripe cus_3 only (no CRM record).
    Deals: d1 E1 alice won 2026-01-20 10000 | d2 E1 alice won 2026-03-05 5000 (E1 won twice)
           d3 E2 bob lost 2026-01-25 8000 | d4 E2 bob lost 2026-01-15, reopened, won 2026-02-20 6000
           d5 E3 alice lost 2026-02-10 3000 (never reached proposal) | d6 E3 bob open, moved back nego -> proposal
           kd7 (koban) E1 alice won 2026-01-28, 2000 CHF = 2100 EUR.
    """
    hs, kb = "hubspot", "koban"
    w: dict[str, list[dict]] = {}
    w["staging.cfg_settings"] = [
        {"key": "home_currency", "value": "EUR"}, {"key": "as_of", "value": "2026-04-30 23:00:00+00"},
        {"key": "effort_flag_threshold", "value": "0.10"}, {"key": "cohort_window_days", "value": "75"},
        {"key": "stale_factor", "value": "2.0"}, {"key": "default_hourly_cost", "value": "50"},
        {"key": "first_year_window_months", "value": "1"},
    ]
    w["staging.cfg_segments"] = [
        {"tier": "Or", "planned_share": 0.5, "sort_order": 1}, {"tier": "Argent", "planned_share": 0.3, "sort_order": 2},
        {"tier": "Bronze", "planned_share": 0.2, "sort_order": 3}, {"tier": "unknown", "planned_share": 0.0, "sort_order": 4},
    ]
    w["staging.cfg_activity_types"] = [
        {"activity_type": "call", "label": "Call", "default_minutes": 15, "is_meeting": False},
        {"activity_type": "meeting_in_person", "label": "In-person meeting", "default_minutes": 90, "is_meeting": True},
        {"activity_type": "meeting_phone", "label": "Phone meeting", "default_minutes": 30, "is_meeting": True},
        {"activity_type": "meeting_video", "label": "Video meeting", "default_minutes": 45, "is_meeting": True},
        {"activity_type": "demo", "label": "Demo", "default_minutes": 60, "is_meeting": True},
        {"activity_type": "email", "label": "Email", "default_minutes": 6, "is_meeting": False},
        {"activity_type": "note", "label": "Note", "default_minutes": 0, "is_meeting": False},
        {"activity_type": "task", "label": "Task", "default_minutes": 12, "is_meeting": False},
    ]
    w["staging.cfg_stages"] = [
        {"pipeline_id": "default", "stage_id": "qual", "stage_label": "Qualification", "stage_order": 0, "expected_probability": 0.2, "expected_days": 10, "is_proposal": False},
        {"pipeline_id": "default", "stage_id": "proposal", "stage_label": "Proposal", "stage_order": 1, "expected_probability": 0.5, "expected_days": 10, "is_proposal": True},
        {"pipeline_id": "default", "stage_id": "nego", "stage_label": "Negotiation", "stage_order": 2, "expected_probability": 0.8, "expected_days": 10, "is_proposal": False},
        {"pipeline_id": "default", "stage_id": "won", "stage_label": "Won", "stage_order": 3, "expected_probability": 1.0, "expected_days": None, "is_proposal": False},
        {"pipeline_id": "default", "stage_id": "lost", "stage_label": "Lost", "stage_order": 4, "expected_probability": 0.0, "expected_days": None, "is_proposal": False},
        {"pipeline_id": "kp", "stage_id": "k_open", "stage_label": "Ouvert", "stage_order": 0, "expected_probability": 0.3, "expected_days": 20, "is_proposal": False},
        {"pipeline_id": "kp", "stage_id": "k_prop", "stage_label": "Proposition", "stage_order": 1, "expected_probability": 0.6, "expected_days": 20, "is_proposal": True},
        {"pipeline_id": "kp", "stage_id": "k_won", "stage_label": "Gagné", "stage_order": 2, "expected_probability": 1.0, "expected_days": None, "is_proposal": False},
        {"pipeline_id": "kp", "stage_id": "k_lost", "stage_label": "Perdu", "stage_order": 3, "expected_probability": 0.0, "expected_days": None, "is_proposal": False},
    ]
    w["staging.cfg_fx_rates"] = [{"currency": "EUR", "rate_to_home": 1.0}, {"currency": "CHF", "rate_to_home": 1.05},
                                 {"currency": "USD", "rate_to_home": 0.9}]
    w["staging.cfg_channels"] = [
        {"source_channel": "PAID_SEARCH", "lead_source": "*", "channel_group": "marketing"},
        {"source_channel": "ORGANIC_SEARCH", "lead_source": "*", "channel_group": "marketing"},
        {"source_channel": "OFFLINE", "lead_source": "prospecting", "channel_group": "sales"},
        {"source_channel": "OFFLINE", "lead_source": "referral", "channel_group": "sales"},
        {"source_channel": "OFFLINE", "lead_source": "*", "channel_group": "unknown"},
    ]
    w["staging.cfg_rep_costs"] = [
        {"rep_email": "alice@acme.fr", "hourly_cost": 60, "valid_from": "2025-01-01", "valid_to": "2026-01-31"},
        {"rep_email": "alice@acme.fr", "hourly_cost": 80, "valid_from": "2026-02-01", "valid_to": None},
    ]
    # the rep cost files (inputs connector): they win over the sales model's rows of the same day
    w["staging.rep_costs"] = [
        {"rep_email": "bob@acme.fr", "hourly_cost": 65, "valid_from": "2026-02-01", "valid_to": None,
         "source_file": "rep_costs.xlsx"},
        {"rep_email": "alice@acme.fr", "hourly_cost": 70, "valid_from": "2026-02-15", "valid_to": None,
         "source_file": "rep_costs.xlsx"},
    ]
    w["staging.owners"] = [
        {"source_system": hs, "owner_id": "o1", "email": "Alice@acme.fr", "first_name": "Alice", "last_name": "Martin",
         "full_name": "Alice Martin", "team_id": "t2", "team_name": "South", "is_active": True, "created_at": "2024-01-01"},
        {"source_system": hs, "owner_id": "o2", "email": "bob@acme.fr", "first_name": "Bob", "last_name": "Durand",
         "full_name": "Bob Durand", "team_id": "t1", "team_name": "North", "is_active": True, "created_at": "2024-02-01"},
        {"source_system": kb, "owner_id": "k1", "email": "alice@acme.fr", "first_name": "Alice", "last_name": "Martin",
         "full_name": "Alice Martin", "team_id": "kt", "team_name": "North", "is_active": True, "created_at": "2025-01-01"},
    ]
    w["staging.owner_team_history"] = [
        {"source_system": hs, "owner_id": "o1", "team_id": "t1", "team_name": "North", "valid_from": "2025-01-01", "valid_to": "2026-02-15"},
        {"source_system": hs, "owner_id": "o1", "team_id": "t2", "team_name": "South", "valid_from": "2026-02-15", "valid_to": None},
    ]
    w["staging.companies"] = [
        {"source_system": hs, "company_id": "c1", "name": "Boulangerie Dupont", "siren": "732829320", "postcode": "75011", "tier": "Or",
         "account_type": "customer", "owner_id": "o1", "created_at": "2025-10-01", "updated_at": "2026-03-01"},
        {"source_system": kb, "company_id": "kc1", "name": "Boulangerie Dupont SAS", "tier": None,
         "account_type": "customer", "owner_id": "k1", "created_at": "2025-11-01", "updated_at": "2026-01-01"},
        {"source_system": hs, "company_id": "c2", "name": "Garage Leroy", "postcode": "69003", "tier": "argent",
         "account_type": "customer", "owner_id": "o2", "created_at": "2025-10-15", "updated_at": "2026-02-01"},
        {"source_system": hs, "company_id": "c3", "name": "Cabinet Moreau", "postcode": "75002", "tier": None,
         "account_type": "prospect", "owner_id": "o1", "created_at": "2025-12-01", "updated_at": "2026-02-01"},
    ]
    w["staging.companies"] += [
        {"source_system": hs, "company_id": "c5", "name": "Fromagerie Petit", "tier": "Bronze", "account_type": "customer",
         "owner_id": "o1", "created_at": "2025-11-01", "updated_at": "2025-12-01"},
        {"source_system": kb, "company_id": "kc5", "name": "Fromagerie Petit", "tier": "Bronze", "account_type": "customer",
         "owner_id": "k1", "created_at": "2025-11-01", "updated_at": "2025-11-01"},
    ]
    w["core.company_crosswalk"] = [
        {"source_system": s, "source_id": i, "entity_key": e, "rule": "test", "match_probability": 1.0, "model_version": "t"}
        for s, i, e in [(hs, "c1", "E1"), (kb, "kc1", "E1"), ("stripe", "cus_1", "E1"), (hs, "c2", "E2"),
                        ("stripe", "cus_2", "E2"), (hs, "c3", "E3"), ("stripe", "cus_3", "E4"),
                        (hs, "c5", "E5"), (kb, "kc5", "E5")]
    ]
    # E5's golden name (identity survivorship) differs from its CRM records': dim_company shows the golden one
    w["core.company_golden"] = [{"entity_key": "E5", "n_records": 2, "sources": "hubspot, koban",
                                 "name": "Fromagerie Petit & Fils", "name_source": "koban"}]
    w["staging.pipeline_stages"] = [
        {"source_system": hs, "pipeline_id": "default", "pipeline_label": "Sales", "stage_id": s, "stage_label": s,
         "stage_order": o, "probability": p, "is_closed": c, "is_won": won}
        for s, o, p, c, won in [("qual", 0, 0.2, False, False), ("proposal", 1, 0.5, False, False),
                                ("nego", 2, 0.8, False, False), ("won", 3, 1.0, True, True), ("lost", 4, 0.0, True, False)]
    ] + [
        {"source_system": kb, "pipeline_id": "kp", "pipeline_label": "Ventes", "stage_id": s, "stage_label": s,
         "stage_order": o, "probability": p, "is_closed": c, "is_won": won}
        for s, o, p, c, won in [("k_open", 0, 0.3, False, False), ("k_prop", 1, 0.6, False, False),
                                ("k_won", 2, 1.0, True, True), ("k_lost", 3, 0.0, True, False)]
    ]

    def deal(system, did, company, owner, amount, stage, created, closed=None, won=False, currency="EUR",
             amount_home=None, prob=None, close_date=None, channel=None, lead_source=None, pipeline="default"):
        is_closed = closed is not None
        return {"source_system": system, "deal_id": did, "deal_name": did, "pipeline_id": pipeline, "stage_id": stage,
                "amount": amount, "currency": currency, "amount_home": amount if amount_home is None else amount_home,
                "probability": prob if prob is not None else (1.0 if won else 0.0 if is_closed else 0.5),
                "is_closed": is_closed, "is_won": won, "created_at": _ts(created),
                "close_date": _ts(closed or close_date or "2026-05-31"), "closed_at": _ts(closed) if closed else None,
                "owner_id": owner, "company_id": company, "source_channel": channel, "lead_source": lead_source,
                "deal_type": "newbusiness", "updated_at": _ts(closed or created), "is_deleted": False}

    w["staging.deals"] = [
        deal(hs, "d1", "c1", "o1", 10000, "won", "2026-01-02", "2026-01-20", won=True, channel="PAID_SEARCH"),
        deal(hs, "d2", "c1", "o1", 5000, "won", "2026-02-20", "2026-03-05", won=True, channel="OFFLINE", lead_source="existing_customer"),
        deal(hs, "d3", "c2", "o2", 8000, "lost", "2026-01-03", "2026-01-25", channel="OFFLINE", lead_source="prospecting"),
        # d4: staging still carries the first (lost) close time; the stage history knows it was reopened and won.
        dict(deal(hs, "d4", "c2", "o2", 6000, "won", "2026-01-05", "2026-02-20", won=True, channel="OFFLINE", lead_source="prospecting"),
             closed_at=_ts("2026-01-15")),
        deal(hs, "d5", "c3", "o1", 3000, "lost", "2026-01-20", "2026-02-10", channel="PAID_SEARCH"),
        deal(hs, "d6", "c3", "o2", 4000, "proposal", "2026-02-01", prob=0.5, close_date="2026-05-15", channel="PAID_SEARCH"),
        deal(kb, "kd7", "kc1", "k1", 2000, "k_won", "2026-01-10", "2026-01-28", won=True, currency="CHF",
             amount_home=2100, pipeline="kp", channel="PAID_SEARCH"),
        # kd9 migrated from Koban to HubSpot as d9 (imported_from): one deal, counted once
        deal(kb, "kd9", "kc5", "k1", 700, "k_won", "2025-12-01", "2025-12-10", won=True, pipeline="kp"),
        dict(deal(hs, "d9", "c5", "o1", 700, "won", "2025-12-01", "2025-12-10", won=True), imported_from="koban:kd9"),
        # d8: no company, no stage history (one stay in its current stage since creation)
        deal(hs, "d8", None, "o2", 1000, "qual", "2026-01-22", prob=0.5, close_date="2026-06-30"),
    ]
    w["staging.deal_stage_events"] = (
        _stage_path(hs, "d1", [("qual", "2026-01-02"), ("proposal", "2026-01-10"), ("won", "2026-01-20")])
        + _stage_path(hs, "d2", [("qual", "2026-02-20"), ("proposal", "2026-02-25"), ("won", "2026-03-05")])
        + _stage_path(hs, "d3", [("qual", "2026-01-03"), ("proposal", "2026-01-12"), ("lost", "2026-01-25")])
        + _stage_path(hs, "d4", [("qual", "2026-01-05"), ("lost", "2026-01-15"), ("qual", "2026-02-01"),
                                 ("proposal", "2026-02-10"), ("won", "2026-02-20")])
        + _stage_path(hs, "d5", [("qual", "2026-01-20"), ("lost", "2026-02-10")])
        + _stage_path(hs, "d6", [("qual", "2026-02-01"), ("nego", "2026-02-10"), ("proposal", "2026-02-20")])
        + _stage_path(kb, "kd7", [("k_open", "2026-01-10"), ("k_prop", "2026-01-15"), ("k_won", "2026-01-28")])
    )
    w["staging.deal_property_history"] = [
        {"source_system": hs, "deal_id": "d6", "property": p, "value": v, "changed_at": _ts(day)}
        for p, v, day in [("amount", "3000", "2026-02-01"), ("amount", "4000", "2026-02-15"),
                          ("probability", "0.2", "2026-02-01"), ("probability", "0.8", "2026-02-10"),
                          ("probability", "0.1", "2026-02-11"), ("probability", "0.5", "2026-02-20"),
                          ("close_date", "2026-04-15", "2026-02-01"), ("close_date", "2026-05-15", "2026-03-10"),
                          ("owner_id", "o2", "2026-02-01")]
    ]

    def act(system, aid, typ, day, minutes, owner, company=None, deal_id=None, deleted=False):
        return {"source_system": system, "activity_id": aid, "activity_type": typ, "occurred_at": _ts(day),
                "duration_minutes": minutes, "owner_id": owner, "company_id": company, "contact_id": None,
                "deal_id": deal_id, "is_deleted": deleted}

    w["staging.activities"] = [
        act(hs, "a1", "call", "2026-01-05", 30, "o1", "c1"),
        act(hs, "a2", "meeting_in_person", "2026-01-15", None, "o1", "c1"),  # default 90 min
        act(hs, "a3", "email", "2026-01-25", None, "o1", "c1"),  # after E1 became a customer
        act(hs, "a4", "call", "2026-01-10", 60, "o2", "c2"),
        act(hs, "a5", "meeting_video", "2026-02-05", 45, "o1", "c3"),
        act(hs, "a6", "demo", "2026-02-12", None, "o2", None, deal_id="d4"),  # company from the deal
        act(hs, "a7", "task", "2026-06-01", None, "o1", "c3"),  # after the as-of
        act(kb, "a8", "meeting_phone", "2026-01-12", 30, "k1", "kc1"),
        act(hs, "a9", "call", "2026-01-06", 30, "o1", "c1", deleted=True),
        act(hs, "a10", "call", "2026-02-20", 15, "o1", "c3"),  # alice is in South by then
    ]

    def inv(iid, cus, status, created, paid=None, amount=0, currency="EUR", due=None, deleted=False):
        return {"source_system": "stripe", "invoice_id": iid, "customer_id": cus, "status": status,
                "currency": currency, "amount_due": due if due is not None else amount,
                "amount_paid": amount if status == "paid" else 0, "created_at": _ts(created),
                "paid_at": _ts(paid) if paid else None, "is_deleted": deleted}

    # Stripe's amount_paid includes VAT (20% on EUR invoices here, none on the USD one); the lines carry the amount
    # excluding tax and the tax beside it. Revenue = lines excluding tax - issued credit notes excluding tax.
    w["staging.invoices"] = [
        inv("i1", "cus_1", "paid", "2026-01-24", "2026-01-25", 1200),  # 1000 + VAT 200; credited 200 excl. tax
        inv("i2", "cus_1", "paid", "2026-02-09", "2026-02-10", 600),  # 600 - 100 proration + VAT 100
        inv("i3", "cus_2", "paid", "2026-02-28", "2026-03-01", 1000, currency="usd"),  # 900 EUR; credited USD 100
        inv("i4", "cus_3", "paid", "2026-03-14", "2026-03-15", 240),  # E4: a customer by invoice only; 200 + VAT 40
        inv("i5", "cus_1", "open", "2026-04-01", None, 0, due=360),
        inv("i6", "cus_9", "paid", "2026-03-19", "2026-03-20", 120),  # billing customer not linked; 100 + VAT 20
        inv("i7", "cus_1", "paid", "2026-03-02", "2026-03-03", 999, deleted=True),
        inv("i8", "cus_1", "paid", "2026-02-14", "2026-02-15", 360),  # 300 + VAT 60, a duplicate credited in full
    ]

    def line(lid, iid, cus, amount, tax, currency="EUR", rate=1.0, proration=False, deleted=False):
        return {"source_system": "stripe", "invoice_line_id": lid, "invoice_id": iid, "customer_id": cus,
                "subscription_id": "sub_1" if iid == "i2" else None,
                "line_type": "subscription_item_details" if iid == "i2" else "invoice_item_details",
                "description": lid, "quantity": 1, "currency": currency, "amount": amount,
                "amount_home": round(amount * rate, 2), "tax_amount": tax, "period_start": None, "period_end": None,
                "is_proration": proration, "is_deleted": deleted}

    w["staging.invoice_lines"] = [
        line("l1", "i1", "cus_1", 1000, 200),
        line("l2a", "i2", "cus_1", 600, 120),
        line("l2b", "i2", "cus_1", -100, -20, proration=True),  # unused time credited on a plan change
        line("l3", "i3", "cus_2", 1000, 0, currency="USD", rate=0.9),
        line("l4", "i4", "cus_3", 200, 40),
        line("l5", "i5", "cus_1", 300, 60),
        line("l6", "i6", "cus_9", 100, 20),
        line("l7", "i7", "cus_1", 999, 0, deleted=True),
        line("l8", "i8", "cus_1", 300, 60),
    ]

    def credit(cid, iid, cus, status, created, amount, excl, currency="EUR", rate=1.0, voided=None, deleted=False,
               reason="order_change"):
        return {"source_system": "stripe", "credit_note_id": cid, "invoice_id": iid, "customer_id": cus,
                "number": cid.upper(), "status": status, "reason": reason, "currency": currency, "amount": amount,
                "amount_excluding_tax": excl, "amount_home": round(amount * rate, 2), "created_at": _ts(created),
                "voided_at": _ts(voided) if voided else None, "is_deleted": deleted}

    w["staging.credit_notes"] = [
        credit("cn1", "i1", "cus_1", "issued", "2026-02-05", 240, 200),  # January's invoice, credited in February
        credit("cn3", "i3", "cus_2", "issued", "2026-03-05", 100, 100, currency="USD", rate=0.9),  # 90 EUR
        credit("cn3v", "i3", "cus_2", "void", "2026-03-04", 300, 300, currency="USD", rate=0.9, voided="2026-03-06"),
        credit("cn4d", "i4", "cus_3", "issued", "2026-03-20", 240, 200, deleted=True),  # deleted: ignored
        credit("cn8", "i8", "cus_1", "issued", "2026-03-10", 360, 300, reason="duplicate"),  # the whole invoice
    ]
    w["staging.marketing_spend"] = [
        {"month": "2026-01-01", "channel": "PAID_SEARCH", "campaign": "brand", "tier": None, "amount": 1200, "currency": "EUR"},
        {"month": "2026-01-01", "channel": "paid_search", "campaign": "garages", "tier": "Argent", "amount": 300, "currency": "EUR"},
        {"month": "2026-02-01", "channel": "EMAIL_MARKETING", "campaign": "newsletter", "tier": None, "amount": 500, "currency": "EUR"},
        {"month": "2026-02-01", "channel": "PAID_SEARCH", "campaign": "brand", "tier": None, "amount": 100, "currency": "USD"},
    ]
    w["staging.contacts"] = [
        {"source_system": hs, "contact_id": "ct1", "email": "paul@dupont.fr", "company_id": "c1", "owner_id": "o1",
         "source_channel": "PAID_SEARCH", "created_at": _ts("2026-01-03"), "is_deleted": False},
        {"source_system": kb, "contact_id": "kct1", "email": "paul@dupont.fr", "company_id": "kc1", "owner_id": "k1",
         "source_channel": "OFFLINE", "created_at": _ts("2026-01-10"), "is_deleted": False},
        {"source_system": hs, "contact_id": "ct2", "email": "luc@leroy.fr", "company_id": "c2", "owner_id": "o2",
         "source_channel": "OFFLINE", "lead_source": "prospecting", "created_at": _ts("2026-01-15"), "is_deleted": False},
        {"source_system": hs, "contact_id": "ct3", "email": "eve@moreau.fr", "company_id": "c3", "owner_id": "o1",
         "source_channel": "paid_search", "created_at": _ts("2026-01-20"), "is_deleted": False},
        {"source_system": hs, "contact_id": "ct4", "email": "x@y.fr", "created_at": _ts("2026-02-02"), "is_deleted": False},
    ]
    w["core.contact_crosswalk"] = [
        {"source_system": s_, "source_id": i, "entity_key": e, "rule": "test", "match_probability": 1.0, "model_version": "t"}
        for s_, i, e in [(hs, "ct1", "P1"), (kb, "kct1", "P1"), (hs, "ct2", "P2"), (hs, "ct3", "P3"), (hs, "ct4", "P4")]
    ]
    w["staging.lifecycle_events"] = [
        {"source_system": s_, "contact_id": c, "stage": st, "entered_at": _ts(day)}
        for s_, c, st, day in [
            (hs, "ct1", "lead", "2026-01-03"), (hs, "ct1", "mql", "2026-01-08"), (hs, "ct1", "sql", "2026-01-13"),
            (hs, "ct1", "opportunity", "2026-01-18"), (hs, "ct1", "customer", "2026-01-20"),
            (kb, "kct1", "lead", "2026-01-10"),
            (hs, "ct2", "lead", "2026-01-15"), (hs, "ct2", "sql", "2026-01-25"), (hs, "ct2", "opportunity", "2026-02-01"),
            (hs, "ct3", "lead", "2026-01-20"), (hs, "ct3", "mql", "2026-01-30"),
        ]
    ]
    return w
