"""Koban CRM (app-koban.com API v1) as a dlt source; runnable alone with `python -m connectors.koban`.

Tables (the project's dataset is `raw_koban`), one row per record, merged on `id` (the Koban Guid):
- `accounts` (ncThird), `contacts` (ncContact), `leads` (ncLead), `deals` (ncDeal), `actions` (ncAction),
  `invoices` (ncInvoice). Vendor fields are kept as Koban sends them (dlt snake-cases the names and flattens
  nested objects: `Status.Code` -> `status__code`, `Third.Guid` -> `third__guid`; lists such as Tags, MoreFields,
  Lines become child tables `<table>__tags`...). Added: `created_at` / `updated_at` (from CreationDate /
  LastUpdateDate, .NET "/Date(ms)/" dates, typed), `is_deleted` (= `Obsolete`: Koban normally keeps deleted records
  and flags them, so deletes arrive as soft deletes), `_koban_synced_at`. DPrev, DResult, DStart, DEnd, DTerm,
  InvoiceDate, DueDate are typed timestamps (.NET MinValue = null; an unparsable one is null and named in
  `_invalid_fields`).
- `users` (ncUser/GetAll), `deal_processes` and `deal_process_steps` (ncDealProcess/GetAll, step order kept; a
  position a listed process no longer has is deleted).
- `gone_records` (object_type = the table, id, gone_at, reason): records loaded before that a reconciliation
  listing no longer holds, i.e. removed outright in Koban (purged, deleted through the API), which GetUpdated never
  shows again. Their raw rows stay as last loaded (a merge replaces a whole row and its child rows, and Koban no
  longer serves the record to rewrite it flagged); staging reads them as deleted. A flagged record listed again is
  rewritten and taken out (a `_koban_restored` row, dlt `hard_delete`, never stored).
- `_quarantine`: records without a Guid or with an unparsable CreationDate / LastUpdateDate.

Sync: every run asks `<controller>/GetUpdated?updated=<unix s>&s=<offset>&l=<length>` from the cursor (last change
seen, never later than the start of the sync that stored it: a record dated in the future must not make later syncs
skip real changes) minus an overlap window (the first run from `initial_updated`, default 0 = everything; a cursor
found in the future, stored by an older version, also reads everything again). Records re-read in
the overlap with an unchanged LastUpdateDate are not rewritten, so a rerun with no change writes nothing. Offset
paging is re-passed when records moved during paging (see helpers); if records are still missing after the last
pass, what was read is loaded but the cursor stays, so the next run reads the window again.
Reconciliation (hard deletes): every `reconcile_every_days` (default 7, 0 = never; last time in resource state) a
sync reads GetUpdated from 0 instead, the only listing of every record Koban offers, writes only the records of
its usual window, and compares the ids listed with those in the destination table (read there, not kept in state:
see `_loaded_ids`). The missing ones go to `gone_records`. A listing left incomplete by paging drift marks nothing
and the next sync reconciles again. A first sync from 0 is a reconciliation for free. Koban publishes no
rate limit: the client paces itself (default 3 requests/s, configurable) and retries 429 / 5xx / timeouts
honouring Retry-After.
Calling `koban_source(...)` does no network I/O; everything is fetched inside the resources.
"""
from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set

import dlt
from dlt.sources import DltResource

from connectors.common.loaded import tables_with_data
from connectors.common.quarantine import quarantine_hints, quarantine_item
from connectors.common.retry import RetryPolicy
from connectors.koban import settings
from connectors.koban.helpers import BadValue, KobanClient, KobanError, PagingReport, parse_koban_date

__all__ = ["koban_source", "KobanClient", "KobanError", "client_of", "record_to_row", "parse_koban_date",
           "resync_state_paths"]

logger = logging.getLogger("connectors.koban")
SOURCE = "koban"
STEP_REMOVED = "_koban_step_removed"  # a deal_process_steps position no longer served (dlt `hard_delete`)
GONE_TABLE = "gone_records"  # (object_type, id) of records hard-deleted in Koban, found by a reconciliation
GONE_RESTORED = "_koban_restored"  # a gone_records row taken out: the record is listed again (dlt `hard_delete`)
GONE_REASON = "missing from a complete GetUpdated listing"

_REF = {"data_type": "text"}
# Columns staging reads, declared so they exist (typed) even before a value was seen.
_COMMON = {
    "id": {"data_type": "text", "nullable": False},
    "created_at": {"data_type": "timestamp"},
    "updated_at": {"data_type": "timestamp"},
    "is_deleted": {"data_type": "bool"},
    "_invalid_fields": {"data_type": "text"},
    "_koban_synced_at": {"data_type": "timestamp", "dedup_sort": "desc"},
    "assigned_to__guid": _REF,
    "extcode": _REF,
}
COLUMNS: Dict[str, Dict[str, Dict[str, Any]]] = {
    "accounts": {"label": _REF, "official_number": _REF, "vat": _REF, "phone": _REF, "website": _REF,
                 "e_mail": _REF, "status__code": _REF, "type__code": _REF, "address__street": _REF,
                 "address__zip_code": _REF, "address__city": _REF, "address__country": _REF},
    "contacts": {"name": _REF, "first_name": _REF, "function": _REF, "e_mail": _REF, "phone": _REF, "cell": _REF,
                 "third__guid": _REF, "third__label": _REF, "origin__code": _REF, "invalid_mail": {"data_type": "bool"}},
    "leads": {"e_mail": _REF, "company": _REF, "sales_status__code": _REF, "origin__code": _REF},
    "deals": {"label": _REF, "process__guid": _REF, "process__code": _REF, "status__guid": _REF,
              "status__code": _REF, "third__guid": _REF, "contact__guid": _REF, "amountprev": {"data_type": "double"},
              "amount__currency__code": _REF, "probability": {"data_type": "double"}, "result": _REF,
              "d_prev": {"data_type": "timestamp"}, "d_result": {"data_type": "timestamp"}, "origin__code": _REF},
    "actions": {"label": _REF, "status": _REF, "action_type__code": _REF, "action_type__label": _REF,
                "d_start": {"data_type": "timestamp"}, "d_end": {"data_type": "timestamp"},
                "d_term": {"data_type": "timestamp"}, "deal__guid": _REF, "third__guid": _REF, "contact__guid": _REF},
    "invoices": {"number": _REF, "status": _REF, "third__guid": _REF, "amount": {"data_type": "double"},
                 "amount_ttc": {"data_type": "double"},
                 "invoice_date": {"data_type": "timestamp"}, "due_date": {"data_type": "timestamp"}},
}


def record_to_row(record: Any, synced_at: datetime) -> Dict[str, Any]:
    """One Koban record -> one row; raises BadValue (-> quarantine) when it has no Guid or its stamps do not parse."""
    if not isinstance(record, dict):
        raise BadValue("record is not a JSON object")
    guid = record.get("Guid")
    if not isinstance(guid, str) or not guid.strip():
        raise BadValue(f"Guid is missing or not a string: {guid!r}")
    try:
        created = parse_koban_date(record.get(settings.CREATED_FIELD, record.get("DCreated")))
        updated = parse_koban_date(record.get(settings.UPDATED_FIELD, record.get("DUpdated")))
    except BadValue as exc:
        raise BadValue(f"CreationDate / LastUpdateDate: {exc}") from None
    if updated is None:
        raise BadValue("LastUpdateDate is missing")
    row = {k: v for k, v in record.items() if k not in ("Guid", settings.CREATED_FIELD, settings.UPDATED_FIELD)}
    invalid = []
    for name in settings.DATE_FIELDS:
        if name in row:
            try:
                row[name] = parse_koban_date(row[name])
            except BadValue:
                row[name] = None
                invalid.append(name)
    row.update(id=guid.strip(), created_at=created, updated_at=updated, is_deleted=bool(record.get("Obsolete")),
               _koban_synced_at=synced_at)
    if invalid:
        row["_invalid_fields"] = ",".join(invalid)
    return row


def _stamp(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).isoformat()


def _only_changed(state_key: str, rows: List[Dict[str, Any]], key: Sequence[str],
                  gone: Optional[List[str]] = None,
                  keep: Optional[Callable[[str], bool]] = None) -> List[Dict[str, Any]]:
    """Rows whose content differs from the last run's (a hash per key in state): small full-read tables.
    `gone`, when given, receives the keys ("|"-joined) of the last run that are not among `rows`, except those
    `keep` says to keep: their hashes stay in state as they were (rows not served this time, but not gone)."""
    state = dlt.current.resource_state()
    seen: Dict[str, str] = state.get(state_key) or {}
    current: Dict[str, str] = {}
    out = []
    for row in rows:
        k = "|".join(str(row[c]) for c in key)
        h = hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()[:24]
        current[k] = h
        if seen.get(k) != h:
            out.append(row)
    missing = [k for k in seen if k not in current]
    if keep is not None:
        current.update({k: seen[k] for k in missing if keep(k)})
    state[state_key] = current
    if gone is not None:
        gone.extend(k for k in missing if k not in current)
    return out


def _gone_hints() -> Any:
    return dlt.mark.make_hints(
        table_name=GONE_TABLE, write_disposition="merge", primary_key=["object_type", "id"],
        columns={"object_type": {"data_type": "text", "nullable": False},
                 "id": {"data_type": "text", "nullable": False}, "gone_at": {"data_type": "timestamp"},
                 "reason": {"data_type": "text"}, GONE_RESTORED: {"data_type": "bool", "hard_delete": True}},
    )


def _loaded_ids(table: str) -> Optional[Set[str]]:
    """Ids of `table` already in the destination, or None when they cannot be read (the source iterated outside a
    pipeline run, a destination without SQL): then there is nothing to reconcile against.

    Read from the destination rather than kept in state: it is the truth of what staging will show (rows loaded by
    any version, including those before reconciliations existed), and it costs no state growth (a set of every id
    in state would be rewritten at each sync that adds a record)."""
    loaded = tables_with_data()
    if loaded is None:
        return None
    if table not in loaded:
        return set()
    try:
        with dlt.current.pipeline().sql_client() as sql:
            rows = sql.execute_sql(f"select id from {sql.make_qualified_table_name(table)}")
    except Exception as exc:  # noqa: BLE001 - any failure only postpones the reconciliation
        logger.warning("%s: cannot read the ids loaded before (%s): no hard-delete reconciliation this run", table, exc)
        return None
    return {r[0] for r in rows}


def _object_resource(client: KobanClient, table: str, controller: str, initial_updated: int,
                     overlap_seconds: int, reconcile_every_days: float,
                     max_gone_share: float = settings.RECONCILE_MAX_GONE_SHARE) -> DltResource:
    @dlt.resource(name=table, write_disposition="merge", primary_key="id")
    def objects() -> Iterator[Any]:
        started = datetime.now(timezone.utc)  # the sync's start: no cursor is stored beyond it (see below)
        state = dlt.current.resource_state()
        cursor: Optional[str] = state.get("cursor")  # ISO stamp of the last change loaded
        recent: Dict[str, str] = dict(state.get("recent") or {})
        if cursor and datetime.fromisoformat(cursor) > started:
            # Stored by a version that did not cap it (or our clock went back): every change since the real
            # time of that run was skipped, and when that was is unknown, so read everything once again.
            logger.warning("%s: stored cursor %s is in the future (now %s): reading from initial_updated again",
                           table, cursor, _stamp(started))
            cursor = None
        since = int(datetime.fromisoformat(cursor).timestamp()) - overlap_seconds if cursor else initial_updated
        since = max(0, since)
        # Hard deletes: a record removed outright (not made Obsolete) never shows in GetUpdated again. Every
        # `reconcile_every_days` the read starts from 0 instead, a listing of every record, and the ids loaded
        # before that it no longer holds are flagged in gone_records. Records older than the incremental window
        # are only counted as listed, not rewritten. A read from 0 (first sync) lists everything anyway.
        gone_before: Set[str] = set(state.get("gone") or [])  # ids this resource flagged in gone_records
        last_reconciled = state.get("reconciled_at")
        known: Optional[Set[str]] = None  # ids loaded before; set when this run reconciles
        if reconcile_every_days > 0:
            if since == 0:
                due = True
            elif last_reconciled is None:
                # never reconciled: due for a pipeline upgraded with a cursor; a first sync from initial_updated
                # starts the clock instead (a full listing would defeat initial_updated)
                due = cursor is not None
            else:
                due = started - datetime.fromisoformat(last_reconciled) >= timedelta(days=reconcile_every_days)
            if due:
                known = _loaded_ids(table)
        listing_from = 0 if known is not None else since
        since_at = datetime.fromtimestamp(since, tz=timezone.utc)
        listed: Set[str] = set()
        emitted: Dict[str, str] = {}
        max_seen = datetime.fromisoformat(cursor) if cursor else None
        n_quarantined = 0
        paging = PagingReport()
        for page in client.get_updated(controller, listing_from, paging):
            synced_at = datetime.now(timezone.utc)
            rows = []
            for record in page:
                guid = record.get("Guid") if isinstance(record, dict) else None
                if isinstance(guid, str) and guid.strip():
                    listed.add(guid.strip())  # quarantined or not, it exists in Koban: never taken for gone
                try:
                    row = record_to_row(record, synced_at)
                except BadValue as exc:
                    rid = record.get("Guid") if isinstance(record, dict) else None
                    n_quarantined += 1
                    yield quarantine_item(SOURCE, table, rid, str(exc), record)
                    continue
                stamp = _stamp(row["updated_at"])
                if row["id"] not in gone_before:  # one flagged gone is listed again: rewritten whatever its stamp
                    if known is not None and row["updated_at"] < since_at:
                        continue  # reconciliation listing: older than the incremental window, so loaded before
                    if recent.get(row["id"]) == stamp or emitted.get(row["id"]) == stamp:
                        continue  # unchanged since loaded (overlap window, or a re-pass)
                emitted[row["id"]] = stamp
                max_seen = row["updated_at"] if max_seen is None else max(max_seen, row["updated_at"])
                rows.append(row)
            if rows:
                yield rows
        if not paging.complete:
            # Records moved while we paged and some were never served: they may be older than the newest change
            # seen, so moving the cursor would lose them for good. What was read is loaded (merge: rewriting it
            # next time duplicates nothing); cursor and `recent` stay, and the next run reads this window again.
            logger.warning("%s: %d of %d records served; cursor kept at %s", table, paging.seen, paging.total,
                           cursor or "the start")
            # what was loaded is remembered all the same, so that the next run's re-read does not rewrite it again
            # (a busy tenant whose reads stay incomplete would otherwise rewrite a growing window every sync)
            state["recent"] = {**recent, **emitted}
        elif max_seen is not None:
            # The cursor is the newest LastUpdateDate loaded, but never later than this sync's start (UTC): one
            # record dated in the future (a bad value, a skewed clock) would otherwise carry the cursor past every
            # real change made until that date, and each later sync would ask only for records newer than it.
            # Records dated after the start are re-read by the next syncs and skipped while unchanged (`recent`).
            max_seen = min(max_seen, started)
            state["cursor"] = _stamp(max_seen)
            floor = _stamp(datetime.fromtimestamp(max_seen.timestamp() - overlap_seconds - 1, tz=timezone.utc))
            state["recent"] = {k: v for k, v in {**recent, **emitted}.items() if v >= floor}
        gone: List[str] = []
        if known is not None and paging.complete:
            gone = sorted(known - listed - gone_before)
            state["reconciled_at"] = _stamp(started)
            if len(gone) > max_gone_share * len(known):
                # a mass disappearance: refuse it (the next reconciliation tries again), never empty the marts
                logger.error("%s: %d of %d records loaded before are no longer listed by Koban: more than %.0f%%, so "
                             "none is marked gone (has the API user lost access?). If they were really deleted, set "
                             "SOURCES__KOBAN__RECONCILE_MAX_GONE_SHARE=1 for one sync", table, len(gone), len(known),
                             100 * max_gone_share)
                gone = []
            if gone:
                logger.warning("%s: %d records loaded before are no longer listed by Koban (hard-deleted): flagged in "
                               "%s (%s)", table, len(gone), GONE_TABLE, ", ".join(gone[:10]))
        elif known is not None:
            # a record not served may simply have moved during paging: mark nothing, and try again next run
            logger.warning("%s: the listing was incomplete: no record marked gone; reconciling again next run", table)
        elif last_reconciled is None and cursor is None:
            state["reconciled_at"] = _stamp(started)  # a first sync from initial_updated starts the clock
        restored = sorted(gone_before & listed)
        if restored:
            logger.warning("%s: %d records flagged gone are listed again: live again (%s)", table, len(restored),
                           ", ".join(restored[:10]))
        gone_rows = [{"object_type": table, "id": g, "gone_at": started, "reason": GONE_REASON} for g in gone]
        gone_rows += [{"object_type": table, "id": r, GONE_RESTORED: True} for r in restored]
        if gone or restored:
            state["gone"] = sorted((gone_before - set(restored)) | set(gone))
        if gone_rows:
            yield dlt.mark.with_hints(gone_rows, _gone_hints(), create_table_variant=True)
        logger.info("%s: %s sync from updated=%d%s, %d rows written, %d quarantined", table,
                    "incremental" if cursor else "full", since,
                    " with a reconciliation listing from 0" if known is not None else "", len(emitted), n_quarantined)

    # declare the variants before the table's own column hints (they must not leak into them)
    for q in (quarantine_hints(), _gone_hints()):
        objects.apply_hints(table_name=q["table_name"], write_disposition=q.get("write_disposition"),
                            columns=q.get("original_columns") or q.get("columns"), primary_key=q.get("primary_key"),
                            create_table_variant=True)
    objects.apply_hints(columns={**_COMMON, **COLUMNS.get(table, {})})
    return objects


def _meta_resources(client: KobanClient) -> List[DltResource]:
    times = {"created_at": {"data_type": "timestamp"}, "updated_at": {"data_type": "timestamp"}}

    @dlt.resource(name="users", write_disposition="merge", primary_key="id",
                  columns={"id": {"data_type": "text", "nullable": False}, "is_active": {"data_type": "bool"},
                           **times})
    def users() -> Iterator[Any]:
        rows = []
        for u in client.get_all("ncUser"):
            row = {k: v for k, v in u.items() if k not in ("Guid", "IsActive", "CreationDate", "LastUpdateDate")}
            row.update(id=u.get("Guid"), is_active=u.get("IsActive", True) is not False,
                       created_at=parse_koban_date(u.get("CreationDate")),
                       updated_at=parse_koban_date(u.get("LastUpdateDate")))
            rows.append(row)
        changed = _only_changed("hashes", rows, ["id"])
        if changed:
            yield changed

    cache: Dict[str, List[Dict[str, Any]]] = {}

    def processes() -> List[Dict[str, Any]]:
        if "p" not in cache:
            cache["p"] = client.get_all("ncDealProcess")
        return cache["p"]

    @dlt.resource(name="deal_processes", write_disposition="merge", primary_key="id")
    def deal_processes() -> Iterator[Any]:
        rows = [{"id": p.get("Guid"), "extcode": p.get("Extcode"), "label": p.get("Label"),
                 "is_active": p.get("IsActive"), "is_active_deals": p.get("IsActiveDeals")} for p in processes()]
        changed = _only_changed("hashes", rows, ["id"])
        if changed:
            yield changed

    @dlt.resource(name="deal_process_steps", write_disposition="merge", primary_key=["process_id", "step_order"],
                  columns={"step_order": {"data_type": "bigint", "nullable": False},
                           STEP_REMOVED: {"data_type": "bool", "hard_delete": True}})
    def deal_process_steps() -> Iterator[Any]:
        served = processes()
        rows = [{"process_id": p.get("Guid"), "step_order": i, "id": s.get("Guid"), "extcode": s.get("Extcode"),
                 "label": s.get("Label")}
                for p in served for i, s in enumerate(p.get("Steps") or [])]
        # Steps are keyed by position: a process that lost a step (removed, or its last ones) would keep its old
        # last positions in the table, e.g. the same step twice. Each position loaded before and no longer served
        # by a process Koban still lists is sent as a row marked STEP_REMOVED (dlt's `hard_delete`): the merge
        # deletes the old row and does not store the marker. A process no longer listed keeps its steps as last
        # loaded (its deals still point at them), and their hashes stay in state: should it be listed again with
        # fewer steps, its old last positions are then found gone and deleted.
        listed = {p.get("Guid") for p in served}
        gone: List[str] = []
        changed = _only_changed("hashes", rows, ["process_id", "step_order"], gone,
                                keep=lambda k: k.rpartition("|")[0] not in listed)
        for k in gone:
            process_id, _, order = k.rpartition("|")
            changed.append({"process_id": process_id, "step_order": int(order), STEP_REMOVED: True})
        if changed:
            yield changed

    return [users, deal_processes, deal_process_steps]


@dlt.source(name="koban")
def koban_source(
    api_key: str = dlt.secrets.value,
    user_key: str = dlt.secrets.value,
    base_url: str = settings.DEFAULT_BASE_URL,
    objects: Optional[List[str]] = None,
    initial_updated: int = 0,
    overlap_seconds: int = settings.OVERLAP_SECONDS,
    reconcile_every_days: float = settings.RECONCILE_EVERY_DAYS,
    reconcile_max_gone_share: float = settings.RECONCILE_MAX_GONE_SHARE,
    page_length: int = settings.PAGE_LENGTH,
    max_passes: int = settings.MAX_PASSES,
    include_users: bool = True,
    include_processes: bool = True,
    rate_limit_calls: int = settings.DEFAULT_RATE_LIMIT_CALLS,
    rate_limit_period: float = settings.DEFAULT_RATE_LIMIT_PERIOD,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    max_attempts: int = 6,
    backoff_base: float = 1.0,
    backoff_max: float = 60.0,
    max_retry_after: float = 600.0,
) -> List[DltResource]:
    """Koban accounts, contacts, leads, deals, actions, invoices, users and deal processes.

    dlt config: `SOURCES__KOBAN__API_KEY` (X-ncApi), `SOURCES__KOBAN__USER_KEY` (X-ncUser), `SOURCES__KOBAN__BASE_URL`
    (default https://app-koban.com/api/v1), or `[sources.koban]` in `.dlt/config.toml` / `secrets.toml`.

    Args:
        objects: tables to sync (default: accounts, contacts, leads, deals, actions, invoices).
        initial_updated: unix seconds the first run starts from (0 = everything).
        overlap_seconds: incremental runs re-ask this much before the last change seen.
        reconcile_every_days: how often a sync lists every record (GetUpdated from 0) to find the ones
            hard-deleted in Koban (flagged in gone_records); 0 = never.
        reconcile_max_gone_share: a reconciliation finding more than this share of the loaded records gone marks
            none (an API user who lost access, not a purge); 1 = no guard.
        page_length: GetUpdated `l`; max_passes: re-passes when records moved during offset paging.
        rate_limit_calls / rate_limit_period: client-side pace (Koban publishes none; default 3 per second).
        max_attempts, backoff_base, backoff_max, max_retry_after: retry policy for 429 / 5xx / timeouts.
    """
    chosen = list(objects or settings.ALL_OBJECTS)
    unknown = [o for o in chosen if o not in settings.OBJECTS]
    if unknown:
        raise ValueError(f"unknown Koban objects {unknown}; known: {list(settings.ALL_OBJECTS)}")
    client = KobanClient(
        base_url, api_key, user_key, rate_limit_calls=rate_limit_calls, rate_limit_period=rate_limit_period,
        page_length=page_length, max_passes=max_passes, connect_timeout=connect_timeout, read_timeout=read_timeout,
        retry_policy=RetryPolicy(max_attempts=max_attempts, backoff_base=backoff_base, backoff_max=backoff_max,
                                 max_retry_after=max_retry_after),
    )
    resources = [_object_resource(client, t, settings.OBJECTS[t], initial_updated, overlap_seconds,
                                  reconcile_every_days, reconcile_max_gone_share) for t in chosen]
    meta = _meta_resources(client)
    if include_users:
        resources.append(meta[0])
    if include_processes:
        resources += meta[1:]
    return resources


def resync_state_paths(resources: Sequence[str]) -> tuple[List[str], Dict[str, str]]:
    """What to drop from this source's dlt state so that the next sync reads these resources in full again (a
    re-sync): (JSON paths relative to the source state, {resource: why its state is kept}).

    An object resource loses `cursor` and `recent` only: it reads GetUpdated from `initial_updated` (0: every
    record, which is also a reconciliation), rewriting every record. It keeps `gone` (the ids it flagged in
    gone_records: one listed again must be taken out, one still missing must not be flagged anew with a later
    date) and `reconciled_at`. users and deal_processes lose `hashes` (written again). deal_process_steps keeps its
    `hashes`: for a process no longer listed they are the only memory of its step positions, needed to delete the
    old last ones should it come back shorter; steps are listed in full at every sync anyway."""
    from connectors.common.resync import plan_by_resource

    def rule(name: str) -> List[str] | str:
        if name in settings.OBJECTS:
            return [f"resources.{name}.cursor", f"resources.{name}.recent"]
        if name == "deal_process_steps":
            return ("its state remembers the step positions of processes Koban no longer lists (to delete them "
                    "should one come back shorter); steps are listed in full at every sync")
        return [f"resources.{name}.hashes"]

    return plan_by_resource(resources, rule)


def client_of(source: Any) -> KobanClient:
    """The HTTP client behind a `koban_source(...)` instance (request counts in `.stats`)."""
    for resource in source.resources.values():
        gen = getattr(getattr(resource, "_pipe", None), "gen", None)
        for cell in getattr(gen, "__closure__", None) or ():
            if isinstance(cell.cell_contents, KobanClient):
                return cell.cell_contents
    raise LookupError("no Koban client found in this source")
