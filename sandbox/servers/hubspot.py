"""HubSpot CRM API stand-in, served from a `sandbox.stores.HubSpotStore`.

Mounted at <base>/hubspot. Both path families are answered (see /work/shared/reference/crm-apis.md §1):
legacy `/crm/v3/...` + `/crm/v4/associations/...` and date-based `/crm/{api}/2026-03/...` (the DBV form
is only confirmed for objects, search and associations; the others mirror that pattern).

Served: list (limit/after/properties/propertiesWithHistory/associations/archived), get one, batch read,
search (filters, one sort, 200/page, 10,000-result cap, own 5 req/s limit), properties, pipelines,
owners, associations (v3 and v4 shapes), daily API usage. Bearer auth, the 10-second rolling and daily
rate limits with HubSpot's headers and 429 bodies.

HubSpot's clock: `app.now()` stamps what the server modifies (faults) and the batch / usage timestamps, and
every response carries it in a `Date` header, as HubSpot's do. It is the machine's UTC clock unless
`app.advance_clock(delta)` moved it (a long sync's duration, or a client whose clock is skewed from HubSpot's).
"""
from __future__ import annotations

import bisect
import email.utils
import functools
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

from sandbox.faults import Faults
from sandbox.servers import Request, Response, VendorApp
from sandbox.stores import HubSpotStore

# -- object types ------------------------------------------------------------------------------
OBJECT_TYPES = {
    # plural name: (type id, singular)
    "contacts": ("0-1", "contact"),
    "companies": ("0-2", "company"),
    "deals": ("0-3", "deal"),
    "tickets": ("0-5", "ticket"),
    "products": ("0-7", "product"),
    "line_items": ("0-8", "line_item"),
    "quotes": ("0-14", "quote"),
    "communications": ("0-18", "communication"),
    "tasks": ("0-27", "task"),
    "notes": ("0-46", "note"),
    "meetings": ("0-47", "meeting"),
    "calls": ("0-48", "call"),
    "emails": ("0-49", "email"),
    "leads": ("0-136", "lead"),
}
_TYPE_ALIASES = {}
for _plural, (_tid, _singular) in OBJECT_TYPES.items():
    _TYPE_ALIASES[_plural] = _TYPE_ALIASES[_tid] = _TYPE_ALIASES[_singular] = _plural

# Default properties returned when none are asked for; the "always" ones come back on every record.
DEFAULT_PROPERTIES = {
    "contacts": ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"],
    "companies": ["createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"],
    "deals": ["amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
              "hs_object_id", "pipeline"],
}
DEFAULT_ENGAGEMENT_PROPERTIES = ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"]
ALWAYS_PROPERTIES = {"contacts": ["createdate", "hs_object_id", "lastmodifieddate"]}
ALWAYS_OTHER = ["createdate", "hs_createdate", "hs_lastmodifieddate", "hs_object_id"]

# Free-text `query` in search looks at these (HubSpot's default searchable properties, abridged).
QUERY_PROPERTIES = {
    "contacts": ["firstname", "lastname", "email", "phone", "company", "hs_additional_emails"],
    "companies": ["name", "domain", "website", "phone"],
    "deals": ["dealname"],
}

# HubSpot-defined association type ids: id -> inverse id (both directions listed).
_ASSOC_PAIRS = [(1, 2), (279, 280), (3, 4), (5, 6), (341, 342),
                (193, 194), (181, 182), (205, 206),  # calls
                (199, 200), (187, 188), (211, 212),  # meetings
                (201, 202), (189, 190), (213, 214),  # notes
                (203, 204), (191, 192), (215, 216),  # tasks
                (197, 198), (185, 186), (209, 210)]  # emails
INVERSE_ASSOC = {a: b for a, b in _ASSOC_PAIRS} | {b: a for a, b in _ASSOC_PAIRS}
PRIMARY_ASSOC = {1, 2, 5, 6}
UNLABELED_V3_SUFFIX = {279, 280, 341, 342}

SEARCH_OPERATORS = {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY",
                    "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}

_MISSING = object()
_ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


@dataclass
class HubSpotConfig:
    token: str | None = None  # default: "sandbox-hubspot-<seed>"
    rate_limit_max: int = 190  # per rolling interval (Professional private app)
    rate_limit_interval_ms: int = 10_000
    daily_limit: int = 650_000
    search_rate_limit: int = 5  # per second, its own bucket
    retry_after_seconds: int = 1  # Retry-After value on 429s that carry one (rolling window: time to free)
    retry_after_every: int = 2  # Retry-After on every N-th 429 (1 = always, 0 = never): HubSpot is inconsistent
    search_result_cap: int = 10_000
    list_max_limit: int = 100
    history_max_limit: int = 50
    search_max_limit: int = 200
    batch_max_inputs: int = 100
    association_page_size: int = 500  # v4 per-record page
    dbv_versions: tuple[str, ...] = ("2026-03",)
    search_ratelimit_headers: bool = False  # search responses reportedly lack the standard headers
    account_time_zone: str = "Europe/Paris"  # the daily quota resets at midnight here
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)  # injectable for tests


def make_app(world: Any, faults: Faults, **options: Any) -> "HubSpotApp | None":
    store = world if isinstance(world, HubSpotStore) else getattr(world, "hubspot", None)
    if store is None:
        return None
    known = {f.name for f in fields(HubSpotConfig)}
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"unknown hubspot option(s) {sorted(unknown)}; known: {sorted(known)}")
    config = HubSpotConfig(**options)
    if config.token is None:
        config.token = f"sandbox-hubspot-{getattr(world, 'seed', 0)}"
    return HubSpotApp(store, faults, config)


# -- helpers -----------------------------------------------------------------------------------
def iso_ms(dt: datetime) -> str:
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time(value: str) -> datetime | None:
    """ISO-8601 (with Z / offset / date only) or epoch milliseconds -> aware datetime."""
    if value is None:
        return None
    text = str(value).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=timezone.utc)
    if not _ISO_RE.match(text):
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _as_number(value: Any) -> float | None:
    """Numbers and dates (ISO or epoch ms) compare as numbers, like HubSpot's typed search index."""
    if value is None:
        return None
    return _text_as_number(str(value))


@functools.lru_cache(maxsize=1 << 20)  # a sync pages the same filter over the same values many times
def _text_as_number(value: str) -> float | None:
    text = value.strip()
    try:
        number = float(text)
        if number == number and abs(number) != float("inf"):
            return number
    except ValueError:
        pass
    if _ISO_RE.match(text):
        dt = parse_time(text)
        if dt is not None:
            return dt.timestamp() * 1000
    return None


def _id_key(record_id: str) -> tuple[int, int, str]:
    return (0, int(record_id), "") if record_id.isdigit() else (1, 0, record_id)


def _correlation_id() -> str:
    return str(uuid.uuid4())


def _error(status: int, message: str, category: str, **extra: Any) -> Response:
    body = {"status": "error", "message": message, "correlationId": _correlation_id(), "category": category}
    body.update(extra)
    return Response(status, body)


class _HttpError(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _bad_request(message: str, **extra: Any) -> _HttpError:
    return _HttpError(_error(400, message, "VALIDATION_ERROR", **extra))


def _not_found(message: str, **extra: Any) -> _HttpError:
    return _HttpError(_error(404, message, "OBJECT_NOT_FOUND", **extra))


def resolve_type(name: str) -> str:
    plural = _TYPE_ALIASES.get(name.lower())
    if plural is None:
        raise _bad_request(f"Unable to infer object type from: {name}")
    return plural


# -- rate limits -------------------------------------------------------------------------------
class RollingWindow:
    def __init__(self, limit: int, interval_s: float, clock: Callable[[], float]) -> None:
        self.limit, self.interval_s, self.clock = limit, interval_s, clock
        self.hits: deque[float] = deque()
        self.lock = threading.Lock()

    def acquire(self) -> tuple[bool, int, float]:
        """(allowed, remaining after this request, seconds until a slot frees)."""
        with self.lock:
            now = self.clock()
            while self.hits and self.hits[0] <= now - self.interval_s:
                self.hits.popleft()
            if len(self.hits) >= self.limit:
                return False, 0, max(0.0, self.hits[0] + self.interval_s - now)
            self.hits.append(now)
            return True, self.limit - len(self.hits), 0.0

    def reset(self) -> None:
        with self.lock:
            self.hits.clear()


class DailyQuota:
    def __init__(self, limit: int, tz: str) -> None:
        self.limit, self.tz = limit, ZoneInfo(tz)
        self.used = 0
        self.resets_at = self._next_midnight()
        self.lock = threading.Lock()

    def _next_midnight(self) -> datetime:
        local = datetime.now(self.tz)
        return (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)

    def acquire(self) -> tuple[bool, int]:
        with self.lock:
            if datetime.now(self.tz) >= self.resets_at:
                self.used, self.resets_at = 0, self._next_midnight()
            if self.used >= self.limit:
                return False, 0
            self.used += 1
            return True, self.limit - self.used

    def remaining(self) -> int:
        with self.lock:
            return max(0, self.limit - self.used)

    def reset(self) -> None:
        with self.lock:
            self.used, self.resets_at = 0, self._next_midnight()


# -- the app -----------------------------------------------------------------------------------
class HubSpotApp(VendorApp):
    name = "hubspot"

    def __init__(self, store: HubSpotStore, faults: Faults, config: HubSpotConfig) -> None:
        self.store, self.faults, self.config = store, faults, config
        self.window = RollingWindow(config.rate_limit_max, config.rate_limit_interval_ms / 1000, config.clock)
        self.search_window = RollingWindow(config.search_rate_limit, 1.0, config.clock)
        self.daily = DailyQuota(config.daily_limit, config.account_time_zone)
        self._429_count = 0
        self._count_lock = threading.Lock()
        self._sorted_cache: dict[str, tuple[int, list[tuple], list[str]]] = {}
        self._definitions_cache: dict[str, tuple[int, set[str]]] = {}
        self._assoc_cache: dict[tuple[str, str], tuple[tuple, dict[str, list[tuple[str, int]]]]] = {}
        self._clock_offset = timedelta(0)
        self._clock_lock = threading.Lock()

    # -- HubSpot's clock -----------------------------------------------------------------------
    def now(self) -> datetime:
        """HubSpot's current time (UTC): the machine's clock plus whatever advance_clock added."""
        with self._clock_lock:
            return datetime.now(timezone.utc) + self._clock_offset

    def advance_clock(self, delta: timedelta) -> datetime:
        """Move HubSpot's clock by `delta` (negative: back); returns the new time."""
        with self._clock_lock:
            self._clock_offset += delta
        return self.now()

    @staticmethod
    def _dated(response: Response, at: datetime) -> Response:
        response.headers.setdefault("Date", email.utils.format_datetime(at, usegmt=True))
        return response

    # -- VendorApp interface -------------------------------------------------------------------
    def connection_info(self, base_url: str) -> dict[str, str]:
        return {"SOURCES__HUBSPOT__BASE_URL": base_url, "SOURCES__HUBSPOT__ACCESS_TOKEN": self.config.token}

    def reset_limits(self) -> None:
        self.window.reset()
        self.search_window.reset()
        self.daily.reset()

    def fault_response(self, kind: str, status: int) -> Response:
        return self._dated(self._fault_response(kind, status), self.now())

    def _fault_response(self, kind: str, status: int) -> Response:
        if kind == "rate_limit":
            return self._rate_limited("TEN_SECONDLY_ROLLING", self.config.retry_after_seconds)
        if status == 500:
            return _error(500, "internal error", "INTERNAL_ERROR")
        # HubSpot's edge answers 502/503 with an HTML page, not JSON: clients must not assume a JSON body.
        reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}.get(status, "Server Error")
        html = f"<html><head><title>{status} {reason}</title></head><body><h1>{status} {reason}</h1></body></html>"
        return Response(status, html, content_type="text/html; charset=utf-8")

    def handle(self, req: Request) -> Response:
        # dated when it is answered, before any data fault makes time pass after serving it
        at = self.now()
        return self._dated(self._handle(req), at)

    def _handle(self, req: Request) -> Response:
        auth = req.headers.get("authorization", "")
        if not auth:
            return _error(401, "Authentication credentials not found. This API supports OAuth 2.0 authentication "
                               "and you can find more details at https://developers.hubspot.com/docs/methods/auth/"
                               "oauth-overview", "INVALID_AUTHENTICATION")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.config.token:
            return _error(401, "Authentication credentials not found. This API supports OAuth 2.0 authentication "
                               "and you can find more details at https://developers.hubspot.com/docs/methods/auth/"
                               "oauth-overview", "INVALID_AUTHENTICATION")
        try:
            handler, params, is_search = self._route(req)
        except _HttpError as err:
            return err.response
        limited, remaining = self._take_rate_limit(is_search)
        if limited is not None:
            return limited
        try:
            response = handler(req, **params)
        except _HttpError as err:
            response = err.response
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # a malformed body or parameter
            response = _error(400, f"Invalid input: {exc}", "VALIDATION_ERROR")
        if not is_search or self.config.search_ratelimit_headers:
            response.headers.update(self._limit_headers(remaining))
        return response

    # -- rate limiting -------------------------------------------------------------------------
    def _take_rate_limit(self, is_search: bool) -> tuple[Response | None, int]:
        """(429 response or None, requests left in the 10-second window). Rejected calls cost nothing."""
        ok, _daily_remaining = self.daily.acquire()
        if not ok:
            return self._rate_limited("DAILY", None), 0
        if is_search:  # search has its own per-second bucket, apart from the general one
            ok, _remaining, wait = self.search_window.acquire()
            if not ok:
                self._refund_daily()
                return self._rate_limited("SECONDLY", wait), 0
            return None, self.config.rate_limit_max - len(self.window.hits)
        ok, remaining, wait = self.window.acquire()
        if not ok:
            self._refund_daily()
            return self._rate_limited("TEN_SECONDLY_ROLLING", wait), 0
        return None, remaining

    def _refund_daily(self) -> None:
        with self.daily.lock:
            self.daily.used = max(0, self.daily.used - 1)

    def _limit_headers(self, limited_remaining: int) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Max": str(self.config.rate_limit_max),
            "X-HubSpot-RateLimit-Remaining": str(max(0, limited_remaining)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.config.rate_limit_interval_ms),
            "X-HubSpot-RateLimit-Daily": str(self.config.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(self.daily.remaining()),
        }

    def _rate_limited(self, policy: str, wait_s: float | None) -> Response:
        with self._count_lock:
            self._429_count += 1
            nth = self._429_count
        if policy == "DAILY":
            message = "You have reached your daily limit."
        elif policy == "SECONDLY":
            message = "You have reached your secondly limit."
        else:
            message = "You have reached your ten_secondly_rolling limit."
        body = {"status": "error", "message": message, "errorType": "RATE_LIMIT",
                "correlationId": _correlation_id(), "policyName": policy, "requestId": _correlation_id()}
        headers = self._limit_headers(0)
        if policy == "DAILY":
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = "0"
        elif self.config.retry_after_every and nth % self.config.retry_after_every == 0:
            seconds = max(self.config.retry_after_seconds, int(-(-(wait_s or 0) // 1)))
            headers["Retry-After"] = str(max(1, seconds))
        return Response(429, body, headers)

    # -- routing -------------------------------------------------------------------------------
    def _route(self, req: Request) -> tuple[Callable[..., Response], dict[str, Any], bool]:
        segs = [s for s in req.path.split("/") if s]
        m, n = req.method, len(segs)

        def need(method: str) -> None:
            if m != method:
                raise _HttpError(_error(405, f"Method {m} not allowed", "VALIDATION_ERROR"))

        if n >= 4 and segs[0] == "account-info" and (segs[1] == "v3" or segs[1] in self.config.dbv_versions) \
                and segs[2:] == ["api-usage", "daily", "private-apps"]:
            need("GET")
            return self.api_usage, {}, False
        if n < 3 or segs[0] != "crm":
            raise _not_found(f"No route for {m} {req.path}")
        # Normalise /crm/v3/{api}/... , /crm/v4/{api}/... and /crm/{api}/{YYYY-MM}/... to (api, flavour, rest)
        if segs[1] in ("v3", "v4"):
            flavour, api, rest = segs[1], segs[2], segs[3:]
        elif segs[2] in self.config.dbv_versions:
            flavour, api, rest = "dbv", segs[1], segs[3:]
        else:
            raise _not_found(f"No route for {m} {req.path}")
        k = len(rest)
        if api == "objects" and flavour in ("v3", "dbv"):
            if k == 1:
                need("GET")
                return self.list_objects, {"object_type": rest[0]}, False
            if k == 2 and rest[1] == "search":
                need("POST")
                return self.search, {"object_type": rest[0]}, True
            if k == 3 and rest[1:] == ["batch", "read"]:
                need("POST")
                return self.batch_read, {"object_type": rest[0]}, False
            if k == 2:
                need("GET")
                return self.get_object, {"object_type": rest[0], "record_id": rest[1]}, False
            if k == 4 and rest[2] == "associations":
                need("GET")
                shape = "v3" if flavour == "v3" else "v4"
                return self.record_associations, {"from_type": rest[0], "record_id": rest[1], "to_type": rest[3],
                                                  "shape": shape}, False
        if api == "objects" and flavour == "v4" and k == 4 and rest[2] == "associations":
            need("GET")
            return self.record_associations, {"from_type": rest[0], "record_id": rest[1], "to_type": rest[3],
                                              "shape": "v4"}, False
        if api == "associations" and k == 4 and rest[2:] == ["batch", "read"]:
            need("POST")
            shape = "v3" if flavour == "v3" else "v4"
            return self.associations_batch_read, {"from_type": rest[0], "to_type": rest[1], "shape": shape}, False
        if api == "properties" and flavour in ("v3", "dbv") and k in (1, 2):
            need("GET")
            return self.properties, {"object_type": rest[0], "name": rest[1] if k == 2 else None}, False
        if api == "pipelines" and flavour in ("v3", "dbv") and 1 <= k <= 3:
            need("GET")
            if k == 3 and rest[2] != "stages":
                raise _not_found(f"No route for {m} {req.path}")
            return self.pipelines, {"object_type": rest[0], "pipeline_id": rest[1] if k >= 2 else None,
                                    "stages_only": k == 3}, False
        if api == "owners" and flavour in ("v3", "dbv") and k <= 1:
            need("GET")
            return self.owners, {"owner_id": rest[0] if k == 1 else None}, False
        raise _not_found(f"No route for {m} {req.path}")

    # -- store access --------------------------------------------------------------------------
    def _sorted_ids(self, object_type: str) -> tuple[list[tuple], list[str]]:
        """Record ids of a type in HubSpot's stable order (numeric id), cached until the type grows."""
        records = self.store.objects.get(object_type, {})
        cached = self._sorted_cache.get(object_type)
        if cached is not None and cached[0] == len(records):
            return cached[1], cached[2]
        ids = sorted(records, key=_id_key)
        keys = [_id_key(i) for i in ids]
        self._sorted_cache[object_type] = (len(records), keys, ids)
        return keys, ids

    def _assoc_index(self, from_type: str, to_type: str) -> dict[str, list[tuple[str, int]]]:
        """from id -> [(to id, type id)], from the store's list in either direction."""
        forward = self.store.associations.get((from_type, to_type))
        backward = self.store.associations.get((to_type, from_type)) if from_type != to_type else None
        stamp = (id(forward), len(forward or ()), id(backward), len(backward or ()))
        cached = self._assoc_cache.get((from_type, to_type))
        if cached is not None and cached[0] == stamp:
            return cached[1]
        index: dict[str, list[tuple[str, int]]] = {}
        seen: set[tuple[str, str, int]] = set()
        for a, b, type_id in forward or ():
            if (a, b, type_id) not in seen:
                seen.add((a, b, type_id))
                index.setdefault(a, []).append((b, type_id))
        for a, b, type_id in backward or ():
            inverse = INVERSE_ASSOC.get(type_id, type_id)
            if (b, a, inverse) not in seen:
                seen.add((b, a, inverse))
                index.setdefault(b, []).append((a, inverse))
        for targets in index.values():
            targets.sort(key=lambda t: (_id_key(t[0]), t[1]))
        self._assoc_cache[(from_type, to_type)] = (stamp, index)
        return index

    def _definitions(self, object_type: str) -> set[str]:
        definitions = self.store.property_definitions.get(object_type, [])
        cached = self._definitions_cache.get(object_type)
        if cached is None or cached[0] != len(definitions):  # definitions are only ever appended
            cached = (len(definitions), {d["name"] for d in definitions})
            self._definitions_cache[object_type] = cached
        return cached[1]

    @staticmethod
    def _value(record: dict[str, Any], name: str) -> Any:
        props = record.get("properties") or {}
        if name in props:
            return props[name]
        if name == "hs_object_id":
            return record["id"]
        if name == "hs_lastmodifieddate" and "lastmodifieddate" not in props:
            # only non-contacts: a deal searched on `lastmodifieddate` matches nothing, as on HubSpot
            # (the silent-loss trap of airbyte PR #85019), so connectors using the wrong name fail here too
            return record.get("updatedAt")
        if name == "createdate":
            return record.get("createdAt")
        return _MISSING

    def _malformed_target(self, object_type: str) -> tuple[str | None, str | None]:
        s = self.faults.settings
        if s.malformed_record is None or s.malformed_object_type != object_type:
            return None, None
        _keys, ids = self._sorted_ids(object_type)
        live = [i for i in ids if not self.store.objects[object_type][i].get("archived")]
        if not live:
            return None, None
        # the middle record: not on the first page, so a client must survive it mid-sync
        return live[len(live) // 2], s.malformed_record

    def _render(self, object_type: str, record: dict[str, Any], properties: list[str] | None,
                history: list[str] | None = None, assoc_types: list[str] | None = None,
                malformed: tuple[str | None, str | None] = (None, None)) -> dict[str, Any]:
        if properties:
            always = ALWAYS_PROPERTIES.get(object_type, ALWAYS_OTHER)
            names = list(dict.fromkeys([*always, *properties, *(history or [])]))
            defined = self._definitions(object_type)
            explicit = set(properties) | set(history or [])
        else:
            names = list(DEFAULT_PROPERTIES.get(object_type, DEFAULT_ENGAGEMENT_PROPERTIES))
            names += [n for n in history or [] if n not in names]
            defined, explicit = set(), set(history or [])
        props: dict[str, Any] = {}
        for name in names:
            value = self._value(record, name)
            if value is _MISSING:
                if name in explicit and (name in defined or not defined):
                    props[name] = None  # asked and known to the portal, but never set on this record
                continue
            props[name] = value
        out: dict[str, Any] = {"id": record["id"], "properties": props, "createdAt": record["createdAt"],
                               "updatedAt": record["updatedAt"], "archived": bool(record.get("archived"))}
        if record.get("archived"):
            out["archivedAt"] = record.get("archivedAt")
        if history:
            per_record = self.store.property_history.get(object_type, {}).get(record["id"], {})
            out["propertiesWithHistory"] = {name: list(per_record.get(name, [])) for name in history}
        if assoc_types:
            assoc: dict[str, Any] = {}
            for to_type in assoc_types:
                targets = self._assoc_index(object_type, to_type).get(record["id"], [])
                if targets:
                    assoc[to_type] = {"results": [{"id": to_id, "type": self._v3_label(object_type, to_type, t)}
                                                  for to_id, t in targets]}
            if assoc:
                out["associations"] = assoc
        target_id, kind = malformed
        if target_id is not None and record["id"] == target_id:
            if kind == "bad_date":
                date_prop = "createdate" if "createdate" in props or object_type == "contacts" else "hs_createdate"
                props[date_prop] = "not-a-date"
            elif kind == "bad_id":
                out["id"] = f"{record['id']}x"
                props["hs_object_id"] = out["id"]
        return out

    @staticmethod
    def _v3_label(from_type: str, to_type: str, type_id: int) -> str:
        label = f"{OBJECT_TYPES[from_type][1]}_to_{OBJECT_TYPES[to_type][1]}"
        return f"{label}_unlabeled" if type_id in UNLABELED_V3_SUFFIX else label

    @staticmethod
    def _v4_type(type_id: int) -> dict[str, Any]:
        known = type_id in INVERSE_ASSOC
        return {"category": "HUBSPOT_DEFINED" if known else "USER_DEFINED", "typeId": type_id,
                "label": "Primary" if type_id in PRIMARY_ASSOC else None}

    @staticmethod
    def _bool_arg(req: Request, name: str) -> bool:
        return (req.arg(name, "false") or "false").lower() == "true"

    def _limit(self, raw: Any, default: int, maximum: int, what: str) -> int:
        try:
            limit = int(raw) if raw not in (None, "") else default
        except (TypeError, ValueError):
            raise _bad_request(f"limit must be an integer, got {raw!r}")
        if limit < 1:
            raise _bad_request("limit must be at least 1")
        if limit > maximum:
            raise _bad_request(f"limit {limit} is above the maximum of {maximum} for {what}",
                               context={"limit": [str(limit)], "maximum": [str(maximum)]})
        return limit

    def _assoc_types_arg(self, names: list[str]) -> list[str]:
        return [resolve_type(n) for n in names]

    # -- endpoints -----------------------------------------------------------------------------
    def list_objects(self, req: Request, object_type: str) -> Response:
        object_type = resolve_type(object_type)
        history = req.arg_list("propertiesWithHistory")
        if history:
            limit = self._limit(req.arg("limit"), 10, self.config.history_max_limit,
                                "requests with propertiesWithHistory")
        else:
            limit = self._limit(req.arg("limit"), 10, self.config.list_max_limit, "list requests")
        properties = req.arg_list("properties")
        assoc_types = self._assoc_types_arg(req.arg_list("associations"))
        archived = self._bool_arg(req, "archived")
        after = req.arg("after")
        with self.store.lock:
            records = self.store.objects.get(object_type, {})
            keys, ids = self._sorted_ids(object_type)
            start = 0
            if after:
                if not after.isdigit():
                    raise _bad_request(f"Invalid 'after' cursor: {after}")
                start = bisect.bisect_left(keys, _id_key(after))
            malformed = self._malformed_target(object_type)
            page: list[dict[str, Any]] = []
            next_after = None
            for pos in range(start, len(ids)):
                record = records[ids[pos]]
                if bool(record.get("archived")) != archived:
                    continue
                if len(page) == limit:
                    next_after = ids[pos]
                    break
                page.append(record)
            results = [self._render(object_type, r, properties, history, assoc_types, malformed) for r in page]
        body: dict[str, Any] = {"results": results}
        if next_after is not None:
            body["paging"] = {"next": {"after": next_after, "link": req.url_with(after=next_after)}}
        if page and self.faults.count_list_page(object_type):
            self._touch_record(object_type, page[0]["id"])
        if page and not archived and self.faults.count_race_page(object_type):
            self._slow_sync_race(object_type, [r["id"] for r in page])
        return Response(200, body)

    def _modify(self, object_type: str, record_id: str, stamp: datetime) -> str:
        """One user edit of a record at `stamp` (store lock held): notes_last_updated changes (with a history
        entry), and so do updatedAt and the last-modified property. Returns the new stamp."""
        stamp_iso = iso_ms(stamp)
        record = self.store.objects[object_type][record_id]
        record["updatedAt"] = stamp_iso
        props = record.setdefault("properties", {})
        modified = "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"
        props[modified] = stamp_iso
        props["notes_last_updated"] = stamp_iso
        hist = self.store.property_history.setdefault(object_type, {}).setdefault(record_id, {})
        hist.setdefault("notes_last_updated", []).insert(
            0, {"value": stamp_iso, "timestamp": stamp_iso, "sourceType": "CRM_UI", "sourceId": None})
        return stamp_iso

    def _after_latest(self, object_type: str) -> datetime:
        """Now on HubSpot's clock, or just after the newest stamp of the type if the store is ahead of it."""
        latest = max((parse_time(r["updatedAt"]) for r in self.store.objects[object_type].values()), default=None)
        now = self.now()
        return max(now, latest + timedelta(milliseconds=1)) if latest else now

    def _touch_record(self, object_type: str, record_id: str) -> None:
        """The update-during-paging fault: modify a record a running sync has already read."""
        with self.store.lock:
            stamp_iso = self._modify(object_type, record_id, self._after_latest(object_type))
        self.faults.record({"fault": "update_during_paging", "object_type": object_type, "id": record_id,
                            "updatedAt": stamp_iso})

    def _slow_sync_race(self, object_type: str, page_ids: list[str]) -> None:
        """The slow-sync race fault (see sandbox.faults): the sync has just been served `page_ids`; time runs
        `race_minutes` ahead, during which the page's first record (read) and the highest live id past the page
        (not read yet) are modified, in that order, race_minutes - 1 apart."""
        minutes = float(self.faults.settings.race_minutes)
        with self.store.lock:
            t0 = self._after_latest(object_type)
            read_id = page_ids[0]
            last_served = max(_id_key(i) for i in page_ids)
            records = self.store.objects[object_type]
            later = [i for i in self._sorted_ids(object_type)[1]
                     if _id_key(i) > last_served and not records[i].get("archived")]
            unread_id = later[-1] if later else None
            read_stamp = self._modify(object_type, read_id, t0 + timedelta(minutes=1))
            unread_stamp = (self._modify(object_type, unread_id, t0 + timedelta(minutes=minutes))
                            if unread_id is not None else None)
            # HubSpot's clock now stands just past the last change: the sync has been paging for race_minutes
            target = t0 + timedelta(minutes=minutes, seconds=1)
            self.advance_clock(max(timedelta(0), target - self.now()))
        self.faults.record({"fault": "slow_sync_race", "object_type": object_type,
                            "read": {"id": read_id, "updatedAt": read_stamp},
                            "unread": {"id": unread_id, "updatedAt": unread_stamp},
                            "clock": iso_ms(self.now())})

    def get_object(self, req: Request, object_type: str, record_id: str) -> Response:
        object_type = resolve_type(object_type)
        id_property = req.arg("idProperty")
        archived = self._bool_arg(req, "archived")
        with self.store.lock:
            record = self._find(object_type, record_id, id_property)
            if record is None or bool(record.get("archived")) != archived:
                raise _not_found("Object not found.  objectId are usually numeric.", context={"id": [record_id]})
            body = self._render(object_type, record, req.arg_list("properties"), req.arg_list("propertiesWithHistory"),
                                self._assoc_types_arg(req.arg_list("associations")),
                                self._malformed_target(object_type))
        return Response(200, body)

    def _find(self, object_type: str, key: str, id_property: str | None) -> dict[str, Any] | None:
        records = self.store.objects.get(object_type, {})
        if not id_property or id_property == "hs_object_id":
            return records.get(str(key))
        wanted = str(key).casefold()
        for record in records.values():
            value = (record.get("properties") or {}).get(id_property)
            if value is not None and str(value).casefold() == wanted:
                return record
        return None

    def batch_read(self, req: Request, object_type: str) -> Response:
        object_type = resolve_type(object_type)
        body = req.json() or {}
        inputs = body.get("inputs") or []
        if len(inputs) > self.config.batch_max_inputs:
            raise _bad_request(f"Too many inputs: {len(inputs)} > {self.config.batch_max_inputs}")
        archived = self._bool_arg(req, "archived")
        started = iso_ms(self.now())
        results, missing = [], []
        with self.store.lock:
            malformed = self._malformed_target(object_type)
            for item in inputs:
                key = str(item["id"])
                record = self._find(object_type, key, body.get("idProperty"))
                if record is None or bool(record.get("archived")) != archived:
                    missing.append(key)
                    continue
                results.append(self._render(object_type, record, body.get("properties") or [],
                                            body.get("propertiesWithHistory") or [], None, malformed))
        out: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                               "completedAt": iso_ms(self.now())}
        if missing:
            singular = OBJECT_TYPES[object_type][1].upper()
            out["numErrors"] = 1
            out["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND",
                              "message": f"Could not get some {singular} objects, they may be deleted or not exist. "
                                         "Check that ids are valid.", "context": {"ids": missing}}]
            return Response(207, out)
        return Response(200, out)

    # -- search --------------------------------------------------------------------------------
    def search(self, req: Request, object_type: str) -> Response:
        object_type = resolve_type(object_type)
        body = req.json() or {}
        limit = self._limit(body.get("limit"), 10, self.config.search_max_limit, "search requests")
        try:
            after = int(body.get("after") or 0)
        except (TypeError, ValueError):
            raise _bad_request(f"Invalid 'after': {body.get('after')!r}")
        cap = self.config.search_result_cap
        if after + limit > cap:
            raise _bad_request(f"Search results are capped at {cap}: after ({after}) + limit ({limit}) is past the cap. "
                               "Narrow the query (e.g. a window on hs_object_id) and start again from after=0.",
                               context={"after": [str(after)], "limit": [str(limit)]})
        groups = [[self._compile(f) for f in group]
                  for group in self._parse_filter_groups(body.get("filterGroups") or [])]
        sort = self._parse_sorts(body.get("sorts") or [])
        query = (body.get("query") or "").strip().casefold()
        with self.store.lock:
            records = self.store.objects.get(object_type, {})
            _keys, ids = self._sorted_ids(object_type)
            matches = []
            for record_id in ids:
                record = records[record_id]
                if record.get("archived"):
                    continue  # search never sees archived records
                if groups and not any(all(test(record) for test in group) for group in groups):
                    continue
                if query and not self._query_match(object_type, record, query):
                    continue
                matches.append(record)
            if sort is not None and sort[0] == "hs_object_id":
                if sort[1]:  # already in id order
                    matches.reverse()
            elif sort is not None:
                name, descending = sort
                present = [r for r in matches if self._value(r, name) not in (None, _MISSING, "")]
                absent = [r for r in matches if self._value(r, name) in (None, _MISSING, "")]
                present.sort(key=lambda r: self._sort_key(self._value(r, name)), reverse=descending)
                matches = present + absent
            page = matches[after:after + limit]
            malformed = self._malformed_target(object_type)
            results = [self._render(object_type, r, body.get("properties") or [], None, None, malformed) for r in page]
        out: dict[str, Any] = {"total": len(matches), "results": results}
        if after + limit < len(matches):
            out["paging"] = {"next": {"after": str(after + limit)}}
        if page and self.faults.count_race_page(object_type):
            self._slow_sync_race(object_type, [r["id"] for r in page])
        return Response(200, out)

    def _parse_filter_groups(self, groups: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        if len(groups) > 5:
            raise _bad_request(f"Too many filter groups ({len(groups)}); the maximum is 5")
        parsed, total = [], 0
        for group in groups:
            filters = group.get("filters") or []
            if len(filters) > 10:
                raise _bad_request(f"Too many filters in a group ({len(filters)}); the maximum is 10")
            total += len(filters)
            for f in filters:
                op = str(f.get("operator", "")).upper()
                if op not in SEARCH_OPERATORS:
                    raise _bad_request(f"Unknown operator {f.get('operator')!r}")
                if not f.get("propertyName"):
                    raise _bad_request("A filter needs a propertyName")
                if op in ("IN", "NOT_IN") and not isinstance(f.get("values"), list):
                    raise _bad_request(f"Operator {op} needs a 'values' list")
                if op == "BETWEEN" and (f.get("value") is None or f.get("highValue") is None):
                    raise _bad_request("Operator BETWEEN needs 'value' and 'highValue'")
                if op not in ("IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY") and f.get("value") is None:
                    raise _bad_request(f"Operator {op} needs a 'value'")
            parsed.append([{**f, "operator": str(f["operator"]).upper()} for f in filters])
        if total > 25:
            raise _bad_request(f"Too many filters ({total}); the maximum is 25")
        return parsed

    @staticmethod
    def _parse_sorts(sorts: list[Any]) -> tuple[str, bool] | None:
        if not sorts:
            return None
        if len(sorts) > 1:
            raise _bad_request("Only one sort is supported")
        s = sorts[0]
        if isinstance(s, str):
            return (s[1:], True) if s.startswith("-") else (s, False)
        return s["propertyName"], str(s.get("direction", "ASCENDING")).upper() == "DESCENDING"

    @staticmethod
    def _sort_key(value: Any) -> tuple[int, float, str]:
        number = _as_number(value)
        return (0, number, "") if number is not None else (1, 0.0, str(value).casefold())

    def _compile(self, f: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
        """One filter -> a predicate on a record; the filter's own values are parsed once, not per record."""
        op, name, value_of = f["operator"], f["propertyName"], self._value

        def current(record: dict[str, Any]) -> Any:
            value = value_of(record, name)
            return None if value is _MISSING or value == "" else value

        if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
            want = op == "HAS_PROPERTY"
            return lambda r: (current(r) is not None) == want
        if op in ("IN", "NOT_IN"):
            wanted = [str(v) for v in f["values"]]
            want = op == "IN"
            return lambda r: (current(r) is not None and any(self._equal(current(r), v) for v in wanted)) == want
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            token, want = str(f["value"]), op == "CONTAINS_TOKEN"
            return lambda r: bool(current(r) is not None and self._contains_token(str(current(r)), token)) == want
        if op in ("EQ", "NEQ"):
            target, want = str(f["value"]), op == "EQ"
            return lambda r: (current(r) is not None and self._equal(current(r), target)) == want
        low = self._sort_key(str(f["value"]))
        if op == "BETWEEN":
            high = self._sort_key(str(f["highValue"]))
            compare = lambda k: low <= k <= high  # noqa: E731
        else:
            compare = {"GT": lambda k: k > low, "GTE": lambda k: k >= low,
                       "LT": lambda k: k < low, "LTE": lambda k: k <= low}[op]

        def ordered(record: dict[str, Any]) -> bool:
            value = current(record)
            return value is not None and compare(self._sort_key(value))
        return ordered

    @staticmethod
    def _equal(value: Any, wanted: Any) -> bool:
        a, b = _as_number(value), _as_number(wanted)
        if a is not None and b is not None:
            return a == b
        return str(value).casefold() == str(wanted).casefold()

    @staticmethod
    def _contains_token(value: str, token: str) -> bool:
        pattern = re.escape(token.casefold()).replace(r"\*", ".*")
        words = re.split(r"[\s,;@.]+", value.casefold())
        return any(re.fullmatch(pattern, w) for w in words) or ("*" in token and re.search(pattern, value.casefold()))

    def _query_match(self, object_type: str, record: dict[str, Any], query: str) -> bool:
        props = record.get("properties") or {}
        for name in QUERY_PROPERTIES.get(object_type, []):
            value = props.get(name)
            if value and query in str(value).casefold():
                return True
        return False

    # -- associations --------------------------------------------------------------------------
    def associations_batch_read(self, req: Request, from_type: str, to_type: str, shape: str) -> Response:
        from_type, to_type = resolve_type(from_type), resolve_type(to_type)
        body = req.json() or {}
        inputs = body.get("inputs") or []
        if len(inputs) > 1000:
            raise _bad_request(f"Too many inputs: {len(inputs)} > 1000")
        started = iso_ms(self.now())
        page_size = self.config.association_page_size
        results, empty = [], []
        with self.store.lock:
            index = self._assoc_index(from_type, to_type)
            for item in inputs:
                from_id = str(item["id"])
                targets = index.get(from_id, [])
                if not targets:
                    empty.append(from_id)
                    continue
                if shape == "v3":
                    results.append({"from": {"id": from_id},
                                    "to": [{"id": t, "type": self._v3_label(from_type, to_type, k)} for t, k in targets]})
                    continue
                grouped: dict[str, list[int]] = {}
                for to_id, type_id in targets:
                    grouped.setdefault(to_id, []).append(type_id)
                to_ids = list(grouped)
                offset = int(item.get("after") or 0)
                chunk = to_ids[offset:offset + page_size]
                entry: dict[str, Any] = {
                    "from": {"id": from_id},
                    "to": [{"toObjectId": int(t) if t.isdigit() else t,
                            "associationTypes": [self._v4_type(k) for k in grouped[t]]} for t in chunk]}
                if offset + page_size < len(to_ids):
                    entry["paging"] = {"next": {"after": str(offset + page_size)}}
                results.append(entry)
        out: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                               "completedAt": iso_ms(self.now())}
        if empty:
            singular_from, singular_to = OBJECT_TYPES[from_type][1].upper(), OBJECT_TYPES[to_type][1].upper()
            out["numErrors"] = len(empty)
            out["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND",
                              "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                              "message": f"No {singular_to} is associated with {singular_from} {i}.",
                              "context": {"fromObjectId": [i]}} for i in empty]
            return Response(207, out)
        return Response(200, out)

    def record_associations(self, req: Request, from_type: str, record_id: str, to_type: str, shape: str) -> Response:
        from_type, to_type = resolve_type(from_type), resolve_type(to_type)
        limit = self._limit(req.arg("limit"), 500, 500, "association requests")
        offset = int(req.arg("after") or 0)
        with self.store.lock:
            targets = self._assoc_index(from_type, to_type).get(record_id, [])
            if shape == "v3":
                rows = [{"id": t, "type": self._v3_label(from_type, to_type, k)} for t, k in targets]
            else:
                grouped: dict[str, list[int]] = {}
                for t, k in targets:
                    grouped.setdefault(t, []).append(k)
                rows = [{"toObjectId": int(t) if t.isdigit() else t,
                         "associationTypes": [self._v4_type(k) for k in ks]} for t, ks in grouped.items()]
        out: dict[str, Any] = {"results": rows[offset:offset + limit]}
        if offset + limit < len(rows):
            out["paging"] = {"next": {"after": str(offset + limit), "link": req.url_with(after=str(offset + limit))}}
        return Response(200, out)

    # -- metadata endpoints --------------------------------------------------------------------
    def properties(self, req: Request, object_type: str, name: str | None) -> Response:
        object_type = resolve_type(object_type)
        with self.store.lock:
            definitions = list(self.store.property_definitions.get(object_type, []))
        if name is None:
            return Response(200, {"results": definitions})
        for definition in definitions:
            if definition["name"] == name:
                return Response(200, definition)
        raise _not_found(f"Unable to find property {name} for object type {object_type}")

    def pipelines(self, req: Request, object_type: str, pipeline_id: str | None, stages_only: bool) -> Response:
        object_type = resolve_type(object_type)
        with self.store.lock:
            pipelines = list(self.store.pipelines.get(object_type, []))
        if pipeline_id is None:
            return Response(200, {"results": pipelines})
        for pipeline in pipelines:
            if str(pipeline["id"]) == pipeline_id:
                return Response(200, {"results": pipeline.get("stages", [])} if stages_only else pipeline)
        raise _not_found(f"Unable to find pipeline {pipeline_id} for object type {object_type}")

    def owners(self, req: Request, owner_id: str | None) -> Response:
        archived = self._bool_arg(req, "archived")
        with self.store.lock:
            owners = [o for o in self.store.owners if bool(o.get("archived")) == archived]
        if owner_id is not None:
            id_property = (req.arg("idProperty") or "id").lower()
            for owner in owners:
                key = owner.get("userId") if id_property == "userid" else owner.get("id")
                if str(key) == owner_id:
                    return Response(200, owner)
            raise _not_found(f"Unable to find owner {owner_id}")
        email = req.arg("email")
        if email:
            owners = [o for o in owners if str(o.get("email", "")).casefold() == email.casefold()]
        limit = self._limit(req.arg("limit"), 100, 500, "owners")
        offset = int(req.arg("after") or 0)
        out: dict[str, Any] = {"results": owners[offset:offset + limit]}
        if offset + limit < len(owners):
            out["paging"] = {"next": {"after": str(offset + limit), "link": req.url_with(after=str(offset + limit))}}
        return Response(200, out)

    def api_usage(self, req: Request) -> Response:
        now = self.now()
        return Response(200, {"results": [{
            "name": "private-apps-api-calls-daily",
            "usageLimit": self.config.daily_limit,
            "currentUsage": self.config.daily_limit - self.daily.remaining(),
            "collectedAt": iso_ms(now),
            "fetchStatus": "SUCCESS",
            "resetsAt": iso_ms(self.daily.resets_at),
        }]})
