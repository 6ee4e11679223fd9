"""Quarantine: a record a connector cannot load as is goes to a `_quarantine` table with the reason and its
raw payload, and the load goes on. Nothing is dropped silently: a user can count what came in and why some
of it was set aside.

Usage inside a dlt resource: `yield quarantine_item("hubspot", "contacts", rec.get("id"), "bad date", rec)`.
The item carries its own table hints (a dlt table variant), so it lands in `_quarantine` whatever the
resource's own table is. Resources using `dlt.sources.incremental` need `on_cursor_value_missing="include"`
so these rows (which have no cursor field) pass the cursor filter.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any, Optional

import dlt

QUARANTINE_TABLE = "_quarantine"

_COLUMNS: dict[str, dict[str, Any]] = {
    "quarantine_id": {"data_type": "text", "nullable": False},
    "source": {"data_type": "text", "nullable": False},
    "object_type": {"data_type": "text", "nullable": False},
    "record_id": {"data_type": "text", "nullable": True},
    "reason": {"data_type": "text", "nullable": False},
    "payload": {"data_type": "text", "nullable": False},
    "seen_at": {"data_type": "timestamp", "nullable": False},
}


def quarantine_hints() -> Any:
    """Table hints of `_quarantine`: merged on a hash of (source, object type, reason, payload), so seeing the
    same bad record again updates `seen_at` instead of adding a row."""
    return dlt.mark.make_hints(
        table_name=QUARANTINE_TABLE,
        write_disposition="merge",
        primary_key="quarantine_id",
        columns=_COLUMNS,
    )


def quarantine_row(
    source: str,
    object_type: str,
    record_id: Optional[Any],
    reason: str,
    payload: Any,
    seen_at: Optional[datetime] = None,
) -> dict[str, Any]:
    """The `_quarantine` row for one bad record (plain dict, no dlt hints)."""
    raw = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    digest = hashlib.sha256("\x1f".join([source, object_type, reason, raw]).encode("utf-8")).hexdigest()
    return {
        "quarantine_id": digest[:32],
        "source": source,
        "object_type": object_type,
        "record_id": None if record_id is None else str(record_id),
        "reason": reason,
        "payload": raw,
        "seen_at": seen_at or datetime.now(timezone.utc),
    }


def quarantine_item(
    source: str,
    object_type: str,
    record_id: Optional[Any],
    reason: str,
    payload: Any,
    seen_at: Optional[datetime] = None,
) -> Any:
    """A `_quarantine` row wrapped with its table hints, ready to `yield` from any dlt resource."""
    row = quarantine_row(source, object_type, record_id, reason, payload, seen_at)
    return dlt.mark.with_hints(row, quarantine_hints(), create_table_variant=True)
