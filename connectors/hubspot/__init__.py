"""HubSpot CRM as a dlt source (no orchestrator inside; runnable alone with `python -m connectors.hubspot`).

Tables (the dataset name is the pipeline's; the project uses `raw_hubspot`):
- `contacts`, `companies`, `deals`, `calls`, `meetings`, `emails`, `notes`, `tasks`: one row per record, merged on
  `id`. HubSpot properties are flattened to top-level columns named exactly as the HubSpot property (no
  `properties__` prefix; dlt only normalises odd characters), all text as HubSpot sends them (typing is
  staging's job). Plus `created_at`, `updated_at`, `archived`, `archived_at` (typed) and `_hubspot_synced_at`
  (when the row was fetched). On a name clash the record-level field wins over a property.
- `<object>_property_history` (contacts, companies, deals by default): object_id, property, value, timestamp,
  source_type (+ source_id, updated_by_user_id); merged on (object_id, property, value, timestamp, source_type);
  a null value / source type is stored as "" because key columns cannot be null.
- `associations_contact_company`, `associations_deal_company`, `associations_deal_contact`,
  `associations_engagement_{contact,company,deal}` (engagement = call/meeting/email/note/task, in
  `from_object_type`): from_id, to_id, type_id, category, label. The links of every record read in a run
  replace that record's previous links (merge key = the from record); a record read with no link left gets a
  tombstone row (`_hubspot_unlinked` = true, dlt `hard_delete`) that deletes its old links and is never stored.
- `owners` (active and archived), `pipelines`, `pipeline_stages` (label, display_order, probability, is_closed as
  HubSpot sends them), `properties` (property definitions with labels and options), `_quarantine`.
- `owner_team_changes` (append-only): owner_id, team_id, team_name (the primary team, else the first listed; null
  when the owner has none), observed_at (the sync's time). HubSpot keeps no team history, so the connector records
  it: the first sync writes every owner's team, later syncs one row per owner whose team changed since the team this
  table last recorded (kept in the resource's state). What happened before the first sync is unknown.

Sync: the first run lists everything (GET list endpoints, properties by name, history inline); later runs ask
POST search for records modified since the cursor minus an overlap window (`overlap_minutes`, 5 by default: the
search index lags behind), then batch-read their property history and their associations. The cursor (dlt
incremental on `updated_at`, per object) is the newest change loaded but never later than the start of the read
that loaded it: both reads page by id, not by date, and one that lasts longer than the overlap (hours for a large
portal under the rate limits) would otherwise let a change made late in it, to a record it reads late, carry the
cursor past an earlier change to a record it had already read. The start is the earlier of this machine's clock
and HubSpot's (the `Date` header of the read's first page), as a skewed clock must not move it later. Records
changed after the start are loaded all the same and read again by the next sync; re-read records whose
updatedAt did not change are not rewritten (ids and stamps of the window are kept in resource state), so a rerun
with no change writes nothing. Every run also lists archived records (search never returns them) and merges
them with archived=true (soft delete). Records that cannot be loaded go to `_quarantine`.
Known limit: a change to associations only (no property change) does not bump HubSpot's last-modified date,
so it is picked up the next time either record changes, or after `crm-etl resync hubspot [--resource contacts ...]`
(`resync_state_paths` below): the next sync reads those objects in full again and merges (no duplicates).
"""
from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import dlt
from dlt.sources import DltResource

from connectors.common.loaded import tables_with_data
from connectors.common.quarantine import quarantine_hints, quarantine_item
from connectors.common.retry import RetryPolicy
from connectors.hubspot import settings
from connectors.hubspot.helpers import HubSpotClient, HubSpotError

__all__ = ["hubspot_source", "HubSpotClient", "HubSpotError", "resync_state_paths"]

logger = logging.getLogger("connectors.hubspot")

SOURCE = "hubspot"
RECORD_FIELDS = ("id", "created_at", "updated_at", "archived", "archived_at", "_hubspot_synced_at")


# ------------------------------------------------------------------------------------------- record shaping

class MalformedRecord(ValueError):
    pass


def _parse_ts(value: Any, what: str) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise MalformedRecord(f"{what} is missing or not a string: {value!r}")
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        if text.isdigit():  # epoch milliseconds, as HubSpot sends some date properties
            return datetime.fromtimestamp(int(text) / 1000, tz=timezone.utc)
        raise MalformedRecord(f"{what} is not a date: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).isoformat()


def _as_datetime(value: Any) -> Optional[datetime]:
    """A cursor value from dlt state (datetime, or ISO text) as an aware datetime; None stays None."""
    if value is None or isinstance(value, datetime):
        return value
    return _parse_ts(str(value), "stored cursor")


def record_to_row(record: Any, object_type: str, synced_at: datetime) -> Dict[str, Any]:
    """One HubSpot record -> one flat row; raises MalformedRecord with the reason."""
    if not isinstance(record, dict):
        raise MalformedRecord("record is not a JSON object")
    record_id = record.get("id")
    if not isinstance(record_id, (str, int)) or not str(record_id).isdigit():
        raise MalformedRecord(f"id is not numeric: {record_id!r}")
    props = record.get("properties")
    if not isinstance(props, dict):
        raise MalformedRecord("record has no `properties` object")
    created_at = _parse_ts(record.get("createdAt"), "createdAt")
    updated_at = _parse_ts(record.get("updatedAt"), "updatedAt")
    # The dates the connector and the marts rely on must parse even though property columns stay text.
    for name in (settings.created_property(object_type), settings.last_modified_property(object_type)):
        if props.get(name) not in (None, ""):
            _parse_ts(props[name], f"property {name}")
    archived = bool(record.get("archived", False))
    archived_at = record.get("archivedAt")
    row: Dict[str, Any] = {k: (v if v is None or isinstance(v, str) else str(v)) for k, v in props.items()}
    row.update(
        id=str(record_id),
        created_at=created_at,
        updated_at=updated_at,
        archived=archived,
        archived_at=_parse_ts(archived_at, "archivedAt") if archived_at else None,
        _hubspot_synced_at=synced_at,
    )
    return row


def history_rows(record: Dict[str, Any], object_type: str) -> Tuple[List[Dict[str, Any]], List[Any]]:
    """`propertiesWithHistory` of one record -> history rows (+ quarantine items for entries that do not parse)."""
    rows: List[Dict[str, Any]] = []
    bad: List[Any] = []
    object_id = str(record.get("id"))
    for prop, entries in (record.get("propertiesWithHistory") or {}).items():
        for entry in entries or []:
            try:
                ts = _parse_ts(entry.get("timestamp"), f"history timestamp of {prop}")
            except MalformedRecord as exc:
                bad.append(quarantine_item(SOURCE, f"{object_type}_property_history", object_id, str(exc), entry))
                continue
            value = entry.get("value")
            rows.append({
                "object_id": object_id,
                "property": prop,
                "value": "" if value is None else str(value),
                "timestamp": ts,
                "source_type": entry.get("sourceType") or "",
                "source_id": entry.get("sourceId"),
                "updated_by_user_id": None if entry.get("updatedByUserId") is None
                else str(entry.get("updatedByUserId")),
            })
    return rows, bad


def _content_hash(row: Dict[str, Any]) -> str:
    payload = {k: v for k, v in row.items() if k != "_hubspot_synced_at"}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _only_changed(state_key: str, rows: List[Dict[str, Any]], key: Sequence[str]) -> List[Dict[str, Any]]:
    """Rows whose content differs from what the last run emitted (state keeps a hash per key), so a rerun with
    no change writes nothing. Used for the small full-read tables."""
    state = dlt.current.resource_state()
    seen: Dict[str, str] = state.get(state_key) or {}
    current: Dict[str, str] = {}
    out = []
    for row in rows:
        k = "|".join(str(row[c]) for c in key)
        h = _content_hash(row)
        current[k] = h
        if seen.get(k) != h:
            out.append(row)
    state[state_key] = current
    return out


# ------------------------------------------------------------------------------------------- table hints

def _history_hints(object_type: str) -> Any:
    return dlt.mark.make_hints(
        table_name=f"{object_type}_property_history",
        write_disposition="merge",
        primary_key=["object_id", "property", "value", "timestamp", "source_type"],
        columns={
            "object_id": {"data_type": "text", "nullable": False},
            "property": {"data_type": "text", "nullable": False},
            "value": {"data_type": "text", "nullable": False},
            "timestamp": {"data_type": "timestamp", "nullable": False},
            "source_type": {"data_type": "text", "nullable": False},
            "source_id": {"data_type": "text"},
            "updated_by_user_id": {"data_type": "text"},
        },
    )


UNLINKED = "_hubspot_unlinked"


def _association_hints(table: str) -> Any:
    return dlt.mark.make_hints(
        table_name=table,
        # delete-insert on the from record: re-reading a record's links replaces its old ones (removed links go).
        # A record re-read with no link at all is sent as one tombstone row (UNLINKED = true, dlt's `hard_delete`
        # hint): it deletes the record's old links and is itself never inserted.
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        primary_key=["from_object_type", "from_id", "to_id", "type_id"],
        merge_key=["from_object_type", "from_id"],
        columns={
            "from_object_type": {"data_type": "text", "nullable": False},
            "from_id": {"data_type": "text", "nullable": False},
            "to_object_type": {"data_type": "text", "nullable": False},
            "to_id": {"data_type": "text", "nullable": False},
            "type_id": {"data_type": "bigint", "nullable": False},
            "category": {"data_type": "text"},
            "label": {"data_type": "text"},
            "_hubspot_synced_at": {"data_type": "timestamp"},
            UNLINKED: {"data_type": "bool", "hard_delete": True},
        },
    )


def _tombstone(from_type: str, from_id: str, to_type: str, fetched_at: datetime) -> Dict[str, Any]:
    """The row that clears a record's links (see _association_hints); key columns hold placeholders."""
    return {"from_object_type": from_type, "from_id": from_id, "to_object_type": to_type, "to_id": "",
            "type_id": 0, "category": None, "label": None, "_hubspot_synced_at": fetched_at, UNLINKED: True}


def _object_columns(properties: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    columns: Dict[str, Dict[str, Any]] = {p: {"data_type": "text"} for p in properties}
    columns.update({
        "id": {"data_type": "text", "nullable": False},
        "created_at": {"data_type": "timestamp"},
        "updated_at": {"data_type": "timestamp"},
        "archived": {"data_type": "bool"},
        "archived_at": {"data_type": "timestamp"},
        # two rows for one id in one load (e.g. updated, then archived): the later fetch wins
        "_hubspot_synced_at": {"data_type": "timestamp", "dedup_sort": "desc"},
    })
    return columns


def _with_variants(resource: DltResource, variants: List[Any], columns: Dict[str, Any]) -> DltResource:
    """Declare the extra tables a resource yields to (history, associations, quarantine) BEFORE giving the
    resource its own column hints: dlt seeds a new table variant with a copy of the resource's hints, and the
    object table's columns (e.g. `id` NOT NULL) must not leak into them."""
    for hints in variants:
        resource.apply_hints(
            table_name=hints["table_name"], write_disposition=hints.get("write_disposition"),
            columns=hints.get("original_columns") or hints.get("columns"), primary_key=hints.get("primary_key"),
            merge_key=hints.get("merge_key"), create_table_variant=True,
        )
    resource.apply_hints(columns=columns)
    return resource


# ------------------------------------------------------------------------------------------- the source

class _Context:
    """What the resources of one source instance share: the client and the chosen property lists."""

    def __init__(self, client: HubSpotClient, objects: Sequence[str], custom_properties: Dict[str, Any],
                 history_properties: Dict[str, List[str]], extra_properties: Dict[str, List[str]],
                 overlap: timedelta, include_history: bool, include_associations: bool,
                 discover_properties: bool = True, now: Optional[datetime] = None) -> None:
        self.client = client
        self.now = now
        self._owners: Optional[List[Dict[str, Any]]] = None
        self.objects = list(objects)
        self.overlap = overlap
        self.include_associations = include_associations
        self.definitions: Dict[str, List[Dict[str, Any]]] = {}
        self.properties: Dict[str, List[str]] = {}
        self.history: Dict[str, List[str]] = {}
        for object_type in self.objects:
            # Without discovery (no network at construction: an orchestrator drawing the assets), the curated
            # lists are used as they are.
            defs = client.property_definitions(object_type) if discover_properties else []
            self.definitions[object_type] = defs
            self.properties[object_type] = choose_properties(
                object_type, defs, custom_properties.get(object_type), extra_properties.get(object_type) or []
            )
            known = {d.get("name") for d in defs}
            wanted = history_properties.get(object_type) or [] if include_history else []
            self.history[object_type] = [p for p in wanted if p in known or not known]
            logger.info("%s: %d properties, history for %s", object_type, len(self.properties[object_type]),
                        self.history[object_type] or "none")

    def clock(self) -> datetime:
        """The run's time: `now` when given (tests), else the current UTC time."""
        return self.now or datetime.now(timezone.utc)

    def owners(self) -> List[Dict[str, Any]]:
        """Every owner, active then archived (deactivated users only appear with archived=true), each flagged;
        read once per source instance (the owners and owner_team_changes resources share it)."""
        if self._owners is None:
            out = []
            for archived in (False, True):
                for owner in self.client.owners(archived=archived):
                    row = dict(owner)
                    row["archived"] = archived or bool(row.get("archived"))
                    out.append(row)
            self._owners = out
        return [dict(o) for o in self._owners]


def choose_properties(object_type: str, definitions: List[Dict[str, Any]], custom: Any,
                      extra: Sequence[str] = ()) -> List[str]:
    """The curated HubSpot-defined properties the portal has, plus opt-in custom ones
    (`custom` = list of names, or "all" / True for every non-HubSpot-defined property)."""
    by_name = {d.get("name"): d for d in definitions if d.get("name")}
    wanted = list(settings.DEFAULT_PROPERTIES.get(object_type, [])) + list(extra)
    chosen = [p for p in wanted if p in by_name or not by_name]
    for prefix in settings.DYNAMIC_PROPERTY_PREFIXES.get(object_type, ()):
        chosen += sorted(n for n in by_name if n.startswith(prefix))
    if custom in ("all", "*", True):
        chosen += sorted(n for n, d in by_name.items() if not d.get("hubspotDefined", True))
    elif custom:
        missing = [p for p in custom if by_name and p not in by_name]
        if missing:
            logger.warning("%s: custom properties not defined in the portal, skipped: %s", object_type, missing)
        chosen += [p for p in custom if p in by_name or not by_name]
    for core in ("hs_object_id", settings.created_property(object_type), settings.last_modified_property(object_type)):
        if core not in chosen:
            chosen.append(core)
    return list(dict.fromkeys(chosen))


def _object_resource(ctx: _Context, object_type: str) -> DltResource:
    client = ctx.client
    props = ctx.properties[object_type]
    hist = ctx.history[object_type]
    overlap = ctx.overlap
    pairs = [(to, table) for frm, to, table in settings.ASSOCIATIONS if frm == object_type and to in ctx.objects]

    @dlt.resource(name=object_type, table_name=object_type, write_disposition="merge", primary_key="id")
    def crm_objects(
        updated_at: dlt.sources.incremental[datetime] = dlt.sources.incremental(
            "updated_at",
            lag=overlap.total_seconds(),  # re-read the overlap window: late search-index entries are not lost
            range_start="closed",
            on_cursor_value_missing="include",  # history / association / quarantine rows carry no cursor
        ),
    ) -> Iterator[Any]:
        state = dlt.current.resource_state()
        # ids read in the overlap window with their updated_at: re-reading them does not rewrite their rows
        recent: Dict[str, str] = dict(state.get("recent") or {})
        last_value: Optional[datetime] = updated_at.last_value
        # the cursor as stored by the last run (last_value stands `lag` before it)
        stored = _as_datetime(updated_at.get_state().get("last_value"))
        local_start = datetime.now(timezone.utc)  # this machine's clock, before the read's first request
        started: Optional[datetime] = None  # the read's start, once its first page has come (sync_start)
        if stored is not None and stored - local_start > overlap:
            # A cursor never passes the start of the sync that stored it, so this one comes from a clock that went
            # back or an edited state. dlt would skip every change older than it; when the real last sync was is
            # unknown, so the only safe read is a full one, which the user asks for (nothing is lost meanwhile).
            raise HubSpotError(
                f"{object_type}: the stored cursor {_iso(stored)} is ahead of this machine's clock ({_iso(local_start)}):"
                f" an incremental sync would skip every change since. Check the clock, then run `crm-etl resync "
                f"hubspot --resource {object_type}` (the next sync reads {object_type} in full, merged).")
        full = last_value is None
        if full:
            pages = client.list_objects(object_type, props, hist)
        else:
            # dlt's last_value already stands `lag` (the overlap) before the stored cursor: no second subtraction
            # (it re-read twice the window, every record of it dropped again as older than dlt's own start)
            since = last_value
            pages = client.search_modified(object_type, int(since.timestamp() * 1000), props)
        assoc_ids: List[str] = []
        hist_ids: List[str] = []
        # link tables that may hold old links: a record re-read without links needs a tombstone there (a table
        # never loaded has nothing to clear, so the first full sync sends none)
        loaded = tables_with_data()
        may_hold_links = {table for _, table in pairs if loaded is None or table in loaded}
        emitted: Dict[str, str] = {}
        newest: Optional[datetime] = None

        def flush_history(force: bool) -> Iterator[Any]:
            while hist_ids and (force or len(hist_ids) >= settings.BATCH_READ_SIZE_WITH_HISTORY):
                batch = hist_ids[: settings.BATCH_READ_SIZE_WITH_HISTORY]
                del hist_ids[: settings.BATCH_READ_SIZE_WITH_HISTORY]
                records = client.batch_read(object_type, batch, [], hist)
                rows: List[Dict[str, Any]] = []
                for record in records.values():
                    r, bad = history_rows(record, object_type)
                    rows += r
                    yield from bad
                if rows:
                    yield dlt.mark.with_hints(rows, _history_hints(object_type), create_table_variant=True)

        def flush_associations(force: bool) -> Iterator[Any]:
            while assoc_ids and (force or len(assoc_ids) >= client.association_batch_size):
                batch = assoc_ids[: client.association_batch_size]
                del assoc_ids[: client.association_batch_size]
                for to_type, table in pairs:
                    fetched_at = datetime.now(timezone.utc)
                    from_type, to_singular = settings.SINGULAR[object_type], settings.SINGULAR[to_type]
                    unlinked: set = set()
                    rows = [
                        {
                            "from_object_type": from_type,
                            "from_id": from_id,
                            "to_object_type": to_singular,
                            "to_id": to_id,
                            "type_id": int(t.get("typeId") or 0),
                            "category": t.get("category"),
                            "label": t.get("label"),
                            "_hubspot_synced_at": fetched_at,
                        }
                        for from_id, to_id, t in client.associations(object_type, to_type, batch, unlinked)
                    ]
                    if table in may_hold_links:
                        # only records HubSpot says have no link lose theirs (a record it failed to read keeps them)
                        linked = {r["from_id"] for r in rows}
                        rows += [_tombstone(from_type, i, to_singular, fetched_at) for i in sorted(unlinked - linked)]
                    if rows:
                        yield dlt.mark.with_hints(rows, _association_hints(table), create_table_variant=True)

        for records in pages:
            if started is None:
                started = client.sync_start(local_start)
            fetched_at = datetime.now(timezone.utc)
            rows: List[Dict[str, Any]] = []
            history: List[Dict[str, Any]] = []
            for record in records:
                try:
                    row = record_to_row(record, object_type, fetched_at)
                except MalformedRecord as exc:
                    rid = record.get("id") if isinstance(record, dict) else None
                    yield quarantine_item(SOURCE, object_type, rid, str(exc), record)
                    continue
                stamp = _iso(row["updated_at"])
                if recent.get(row["id"]) == stamp or emitted.get(row["id"]) == stamp:
                    continue  # unchanged since we last loaded it (overlap window)
                emitted[row["id"]] = stamp
                newest = row["updated_at"] if newest is None else max(newest, row["updated_at"])
                rows.append(row)
                if full and hist:
                    h, bad = history_rows(record, object_type)
                    history += h
                    yield from bad
            if rows:
                yield rows
            if history:
                yield dlt.mark.with_hints(history, _history_hints(object_type), create_table_variant=True)
            new_ids = [r["id"] for r in rows]
            if not full and hist:
                hist_ids.extend(new_ids)
                yield from flush_history(False)
            if ctx.include_associations and pairs:
                assoc_ids.extend(new_ids)
                yield from flush_associations(False)
        yield from flush_history(True)
        yield from flush_associations(True)

        # The cursor dlt stores is the newest updated_at emitted (never below the stored one). It must not pass the
        # read's start: the pages go by id, not by date, so a record read early and modified later keeps its old
        # row while one read late carries a change made an hour into the read; a cursor at that change, minus the
        # overlap, would never ask for the first record again. So a cursor past the start is pinned there with
        # dlt's Incremental.advance() (what dlt offers when the range is applied outside it, here by the search
        # filter), never below the stored one. The records newer than the start stay loaded (fresher data); the
        # next sync reads them again and, unchanged, skips them (`recent`), so nothing is rewritten.
        cursor = stored
        if newest is not None:
            cursor = newest if stored is None else max(stored, newest)
            if started is not None and cursor > started:
                cursor = started if stored is None else max(stored, started)
                updated_at.advance(cursor)
                logger.info("%s: cursor held at the read's start %s (newest change read: %s)", object_type,
                            _iso(cursor), _iso(newest))
        if cursor is not None:
            # what the next sync re-reads (cursor - overlap, search GTE) and may skip
            floor = _iso(cursor - overlap)
            merged = {**recent, **emitted}
            state["recent"] = {k: v for k, v in merged.items() if v >= floor}
        logger.info("%s: %s sync done, %d rows written", object_type, "full" if full else "incremental",
                    len(emitted))

    variants = [_history_hints(object_type)] if hist else []
    variants += [_association_hints(table) for _, table in pairs] if ctx.include_associations else []
    return _with_variants(crm_objects, variants + [quarantine_hints()], _object_columns(props))


def _archived_resource(ctx: _Context, object_type: str) -> DltResource:
    client = ctx.client
    props = ctx.properties[object_type]

    @dlt.resource(name=f"{object_type}_archived", table_name=object_type, write_disposition="merge",
                  primary_key="id")
    def archived_objects() -> Iterator[Any]:
        """Archived (soft-deleted) records: search never returns them, so the archived list is read every run;
        rows already loaded as archived (same archivedAt) are not rewritten."""
        state = dlt.current.resource_state()
        seen: Dict[str, str] = dict(state.get("archived") or {})
        current: Dict[str, str] = {}
        n_new = 0
        for records in client.list_objects(object_type, props, archived=True):
            fetched_at = datetime.now(timezone.utc)
            rows = []
            for record in records:
                try:
                    row = record_to_row(record, object_type, fetched_at)
                except MalformedRecord as exc:
                    rid = record.get("id") if isinstance(record, dict) else None
                    yield quarantine_item(SOURCE, object_type, rid, str(exc), record)
                    continue
                row["archived"] = True  # the archived list is authoritative even if a payload forgets the flag
                stamp = _iso(row["archived_at"]) if row["archived_at"] else "archived"
                current[row["id"]] = stamp
                if seen.get(row["id"]) != stamp:
                    rows.append(row)
            n_new += len(rows)
            if rows:
                yield rows
        state["archived"] = current
        logger.info("%s: %d archived records, %d new since last run", object_type, len(current), n_new)

    return _with_variants(archived_objects, [quarantine_hints()], _object_columns(props))


def _owners_resource(ctx: _Context) -> DltResource:
    @dlt.resource(name="owners", write_disposition="merge", primary_key="id",
                  columns={"id": {"data_type": "text", "nullable": False},
                           "created_at": {"data_type": "timestamp"}, "updated_at": {"data_type": "timestamp"},
                           "archived": {"data_type": "bool"}, "user_id": {"data_type": "text"}})
    def owners() -> Iterator[Any]:
        rows = []
        for row in ctx.owners():
            row["id"] = str(row.get("id"))
            for k in ("userId", "userIdIncludingInactive"):
                if row.get(k) is not None:
                    row[k] = str(row[k])
            rows.append(row)
        logger.info("owners: %d read", len(rows))
        changed = _only_changed("hashes", rows, ["id"])
        for row in changed:
            row["_hubspot_synced_at"] = datetime.now(timezone.utc)
        if changed:
            yield changed

    return owners


def primary_team(teams: Any) -> Tuple[Optional[str], Optional[str]]:
    """(id, name) of an owner's primary team, else of the first team listed (as staging.owners picks it);
    (None, None) without a team."""
    listed = [t for t in (teams or []) if isinstance(t, dict)]
    if not listed:
        return None, None
    primary = [t for t in listed if str(t.get("primary")).lower() in ("true", "1")]
    team = (primary or listed)[0]
    return (None if team.get("id") is None else str(team["id"]),
            None if team.get("name") is None else str(team["name"]))


def _owner_team_changes_resource(ctx: _Context) -> DltResource:
    @dlt.resource(name="owner_team_changes", write_disposition="append",
                  columns={"owner_id": {"data_type": "text", "nullable": False},
                           "team_id": {"data_type": "text"}, "team_name": {"data_type": "text"},
                           "observed_at": {"data_type": "timestamp", "nullable": False}})
    def owner_team_changes() -> Iterator[Any]:
        """One row per owner whose team differs from the one this table last recorded for it (every owner on the
        first sync): HubSpot keeps no team history, so it is built from what each sync sees."""
        state = dlt.current.resource_state()
        last: Dict[str, List[Optional[str]]] = dict(state.get("teams") or {})
        observed_at = ctx.clock()
        rows = []
        for owner in ctx.owners():
            owner_id = str(owner.get("id"))
            team = list(primary_team(owner.get("teams")))
            if owner_id in last and list(last[owner_id]) == team:
                continue
            last[owner_id] = team
            rows.append({"owner_id": owner_id, "team_id": team[0], "team_name": team[1], "observed_at": observed_at})
        state["teams"] = last
        logger.info("owner_team_changes: %d owners whose team changed (or first seen)", len(rows))
        if rows:
            yield rows

    return owner_team_changes


def _pipeline_resources(ctx: _Context) -> List[DltResource]:
    cache: Dict[str, List[Dict[str, Any]]] = {}

    def read(object_type: str) -> List[Dict[str, Any]]:
        if object_type not in cache:
            cache[object_type] = ctx.client.pipelines(object_type)
        return cache[object_type]

    objects = [o for o in settings.PIPELINE_OBJECTS if o in ctx.objects]

    times = {"created_at": {"data_type": "timestamp"}, "updated_at": {"data_type": "timestamp"}}

    @dlt.resource(name="pipelines", write_disposition="merge", primary_key=["object_type", "id"], columns=times)
    def pipelines() -> Iterator[Any]:
        rows = [
            {"object_type": o, "id": str(p.get("id")), "label": p.get("label"), "display_order": p.get("displayOrder"),
             "archived": bool(p.get("archived")), "created_at": p.get("createdAt"), "updated_at": p.get("updatedAt")}
            for o in objects for p in read(o)
        ]
        changed = _only_changed("hashes", rows, ["object_type", "id"])
        if changed:
            yield changed

    @dlt.resource(name="pipeline_stages", write_disposition="merge", primary_key=["object_type", "pipeline_id", "id"],
                  columns={"probability": {"data_type": "text"}, "is_closed": {"data_type": "text"}, **times})
    def pipeline_stages() -> Iterator[Any]:
        rows = []
        for o in objects:
            for p in read(o):
                for s in p.get("stages") or []:
                    meta = s.get("metadata") or {}
                    rows.append({
                        "object_type": o, "pipeline_id": str(p.get("id")), "id": str(s.get("id")),
                        "label": s.get("label"), "display_order": s.get("displayOrder"),
                        "probability": None if meta.get("probability") is None else str(meta.get("probability")),
                        "is_closed": None if meta.get("isClosed") is None else str(meta.get("isClosed")).lower(),
                        "archived": bool(s.get("archived")), "created_at": s.get("createdAt"),
                        "updated_at": s.get("updatedAt"),
                    })
        changed = _only_changed("hashes", rows, ["object_type", "pipeline_id", "id"])
        if changed:
            yield changed

    return [pipelines, pipeline_stages]


def _properties_resource(ctx: _Context) -> DltResource:
    @dlt.resource(name="properties", write_disposition="merge", primary_key=["object_type", "name"],
                  columns={"options": {"data_type": "json"}})
    def properties() -> Iterator[Any]:
        rows = [
            {"object_type": o, "name": d.get("name"), "label": d.get("label"), "type": d.get("type"),
             "field_type": d.get("fieldType"), "group_name": d.get("groupName"),
             "hubspot_defined": bool(d.get("hubspotDefined", True)), "options": d.get("options") or [],
             "requested": d.get("name") in ctx.properties[o]}
            for o in ctx.objects for d in ctx.definitions[o] if d.get("name")
        ]
        changed = _only_changed("hashes", rows, ["object_type", "name"])
        if changed:
            yield changed

    return properties


@dlt.source(name="hubspot")
def hubspot_source(
    access_token: str = dlt.secrets.value,
    base_url: str = settings.DEFAULT_BASE_URL,
    api_version: str = settings.DEFAULT_API_VERSION,
    objects: Optional[List[str]] = None,
    custom_properties: Optional[Dict[str, Any]] = None,
    history_properties: Optional[Dict[str, List[str]]] = None,
    extra_properties: Optional[Dict[str, List[str]]] = None,
    overlap_minutes: float = 5.0,
    include_history: bool = True,
    include_associations: bool = True,
    include_archived: bool = True,
    rate_limit_calls: int = settings.DEFAULT_RATE_LIMIT_CALLS,
    rate_limit_period: float = settings.DEFAULT_RATE_LIMIT_PERIOD,
    search_rate_per_second: float = settings.DEFAULT_SEARCH_RATE_PER_SECOND,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    max_attempts: int = 6,
    backoff_base: float = 1.0,
    backoff_max: float = 60.0,
    max_retry_after: float = 600.0,
    search_result_cap: int = settings.SEARCH_RESULT_CAP,
    association_batch_size: int = settings.ASSOCIATION_BATCH_SIZE,
    discover_properties: bool = True,
    now: Optional[datetime] = None,
) -> List[DltResource]:
    """HubSpot CRM objects, history, associations, owners, pipelines, archived records.

    Every argument is dlt config: e.g. `SOURCES__HUBSPOT__ACCESS_TOKEN`, `SOURCES__HUBSPOT__BASE_URL`,
    `SOURCES__HUBSPOT__API_VERSION` ("2026-03" date-based paths, or "v3" legacy), or `[sources.hubspot]` in
    `.dlt/config.toml` / `secrets.toml`.

    Args:
        objects: object types to sync (default: contacts, companies, deals, calls, meetings, emails, notes, tasks).
        custom_properties: opt-in custom properties per object, e.g. {"contacts": ["lead_source"]}, or "all".
        history_properties: properties whose change history is loaded, per object (default: lifecycle stage,
            deal stage, amount, probability, close date, owner).
        extra_properties: more HubSpot-defined properties per object, beyond the curated lists.
        overlap_minutes: incremental runs re-read this much before the cursor (search index lag). The cursor never
            passes the start of the sync that stored it, so changes made while a long sync pages are read next time.
        rate_limit_calls / rate_limit_period: general budget (default 190 per 10 s); search_rate_per_second: 4.
        max_attempts, backoff_base, backoff_max, max_retry_after: retry policy for 429 / 5xx / timeouts.
        search_result_cap: the search API's result cap (10,000 at HubSpot) used for id-windowing.
        discover_properties: read the portal's property definitions when the source is created (default). False
            skips that request (no network I/O at creation) and uses the curated property lists as they are.
        now: the run's clock, stamped on `owner_team_changes.observed_at` (tests); default: the current UTC time.
    """
    chosen = list(objects or settings.ALL_OBJECTS)
    unknown = [o for o in chosen if o not in settings.ALL_OBJECTS]
    if unknown:
        raise ValueError(f"unknown HubSpot objects {unknown}; known: {list(settings.ALL_OBJECTS)}")
    if isinstance(custom_properties, (str, bool)):
        custom_properties = {o: custom_properties for o in chosen}
    client = HubSpotClient(
        base_url, access_token, api_version,
        rate_limit_calls=rate_limit_calls, rate_limit_period=rate_limit_period,
        search_rate_per_second=search_rate_per_second, connect_timeout=connect_timeout, read_timeout=read_timeout,
        retry_policy=RetryPolicy(max_attempts=max_attempts, backoff_base=backoff_base, backoff_max=backoff_max,
                                 max_retry_after=max_retry_after),
        search_result_cap=search_result_cap, association_batch_size=association_batch_size,
    )
    ctx = _Context(
        client, chosen, dict(custom_properties or {}),
        settings.DEFAULT_HISTORY_PROPERTIES if history_properties is None else dict(history_properties),
        dict(extra_properties or {}), timedelta(minutes=overlap_minutes), include_history, include_associations,
        discover_properties, now,
    )
    resources: List[DltResource] = []
    for object_type in chosen:
        resources.append(_object_resource(ctx, object_type))
        if include_archived:
            resources.append(_archived_resource(ctx, object_type))
    resources.append(_owners_resource(ctx))
    resources.append(_owner_team_changes_resource(ctx))
    resources += _pipeline_resources(ctx)
    resources.append(_properties_resource(ctx))
    return resources


def resync_state_paths(resources: Sequence[str]) -> Tuple[List[str], Dict[str, str]]:
    """What to drop from this source's dlt state so that the next sync reads these resources in full again (a
    re-sync): (JSON paths relative to the source state, {resource: why its state is kept}).

    An object resource's state is its read position: the incremental cursor on updated_at and `recent` (ids and
    stamps of the overlap window, skipped when re-read unchanged): both go, so it lists every record again, with
    history and associations. `<object>_archived` (`archived`) and the full-read tables (`hashes`) only remember
    what was written: dropped, everything is written again. `owner_team_changes` keeps its state: it is what that
    append-only table last recorded per owner; dropped, every owner would get a second row, and the owners are read
    in full at every sync anyway."""
    from connectors.common.resync import plan_by_resource

    team_history = ("append-only team history: its state is the team it last recorded per owner (reset, every owner "
                    "would get a second row); owners are read in full at every sync")
    return plan_by_resource(resources, lambda name: team_history if name == "owner_team_changes"
                            else [f"resources.{name}"])


def client_of(source: Any) -> HubSpotClient:
    """The HTTP client behind a `hubspot_source(...)` instance (request counts in `.stats`)."""
    for resource in source.resources.values():
        fn = getattr(resource, "_pipe", None)
        gen = getattr(fn, "gen", None) if fn else None
        closure = getattr(gen, "__closure__", None) or ()
        for cell in closure:
            value = cell.cell_contents
            if isinstance(value, HubSpotClient):
                return value
            if isinstance(value, _Context):
                return value.client
    raise LookupError("no HubSpot client found in this source")
