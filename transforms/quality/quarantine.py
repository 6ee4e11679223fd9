"""quality.quarantine: records that could not be loaded or typed at all, with their raw payload and the reason.

Two ways in:
- connectors yield bad records to `raw_<source>._quarantine` during their dlt load
  (connectors/common/quarantine.py); `collect_connector_quarantine(wh)` copies them here;
- transforms (typing in staging, e.g. a contact whose create date is not a date) call `quarantine(wh, rows)`.
A row is keyed by a hash of (source, object, reason, payload) -- the same key the connectors use -- so seeing the same
bad record again only moves `seen_at`; `first_seen_at` keeps when it first arrived. Nothing is ever dropped silently.
The table exists (empty) even when nothing was ever set aside: both ways in create it, and so does every quality
run (transforms/quality/violations.ensure_quality_tables), so `select count(*) from quality.quarantine` always works.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, Iterable, Mapping

import sqlalchemy as sa

from transforms.quality.lookups import insert_rows
from warehouse.connection import Warehouse, qualify

QUARANTINE_DDL = """create table if not exists quality.quarantine (
    quarantine_id text not null, source text not null, object text not null, record_id text,
    reason text not null, payload text not null, first_seen_at timestamptz not null, seen_at timestamptz not null)"""

COLUMNS = ("quarantine_id", "source", "object", "record_id", "reason", "payload", "first_seen_at", "seen_at")


def ensure_quarantine_table(wh: Warehouse) -> None:
    wh.ensure_schemas(["quality"])
    wh.execute(QUARANTINE_DDL)


def quarantine_id(source: str, obj: str, reason: str, payload_json: str) -> str:
    return hashlib.sha256("\x1f".join([source, obj, reason, payload_json]).encode("utf-8")).hexdigest()[:32]


def quarantine(wh: Warehouse, rows: Iterable[Mapping[str, Any]], seen_at: dt.datetime | None = None) -> int:
    """Write bad records: each row has source, object, record_id (may be None), reason, payload (any JSON-able
    value, or already-serialised text). Returns how many rows were written."""
    seen_at = seen_at or dt.datetime.now(dt.timezone.utc)
    out: dict[str, dict] = {}
    for r in rows:
        payload = r.get("payload")
        raw = payload if isinstance(payload, str) else json.dumps(payload, sort_keys=True, ensure_ascii=False,
                                                                   default=str)
        source, obj, reason = str(r["source"]), str(r["object"]), str(r["reason"])
        qid = quarantine_id(source, obj, reason, raw)
        rid = r.get("record_id")
        when = _utc(r.get("seen_at") or seen_at)
        out[qid] = {"quarantine_id": qid, "source": source, "object": obj,
                    "record_id": None if rid is None else str(rid), "reason": reason, "payload": raw,
                    "first_seen_at": when, "seen_at": when}
    ensure_quarantine_table(wh)  # even with nothing to write: an empty quarantine is a count of 0, not an error
    if not out:
        return 0
    with wh.connect() as conn:
        # keep first_seen_at of rows seen before; the delete + insert runs in one transaction
        ids = list(out)
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            binds = {f"q{i}": q for i, q in enumerate(part)}
            for row in conn.execute(sa.text(
                    "select quarantine_id, first_seen_at from quality.quarantine where quarantine_id in ("
                    + ", ".join(f":{k}" for k in binds) + ")"), binds):
                out[row.quarantine_id]["first_seen_at"] = min(_utc(row.first_seen_at), out[row.quarantine_id]["first_seen_at"])
            conn.execute(sa.text("delete from quality.quarantine where quarantine_id in ("
                                 + ", ".join(f":{k}" for k in binds) + ")"), binds)
        insert_rows(wh, "quality.quarantine", list(out.values()), conn=conn)
    return len(out)


def collect_connector_quarantine(wh: Warehouse) -> int:
    """Copy every raw_<source>._quarantine table (written by the connectors) into quality.quarantine (created empty
    when no connector set anything aside)."""
    ensure_quarantine_table(wh)
    tables = wh.query(
        "select table_schema from information_schema.tables "
        "where table_name = '_quarantine' and table_schema like 'raw\\_%' escape '\\'"
    )
    total = 0
    for t in tables:
        rows = wh.query(
            f"select source, object_type as object, record_id, reason, payload, seen_at "
            f"from {qualify(t['table_schema'], '_quarantine')}"
        )
        total += quarantine(wh, rows)
    return total


def _utc(value: dt.datetime) -> dt.datetime:
    # timestamps without a zone are UTC throughout the warehouse
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
