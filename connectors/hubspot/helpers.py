"""HubSpot HTTP client: auth, paging, search windowing past the 10k cap, rate limiting, retries.

The session is dlt's (`dlt.sources.helpers.requests.Session`: default timeouts, no built-in retry); retries and
pacing come from `connectors.common` (see the reasons there). Nothing here knows about dlt tables.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple
from urllib.parse import urlencode

import requests
from dlt.sources.helpers.requests import Session

from connectors.common.stats import RequestStats  # noqa: F401  (re-exported)
from connectors.common.retry import NonRetryableError, QuotaExhaustedError, RetryPolicy, send_with_retry
from connectors.common.throttle import RateLimiter
from connectors.hubspot import settings
from connectors.hubspot.settings import ApiPaths

logger = logging.getLogger("connectors.hubspot")


class HubSpotError(RuntimeError):
    """A HubSpot call failed in a way the connector cannot work around."""


def _date_header(headers: Any) -> Optional[datetime]:
    """The HTTP `Date` of a response (the server's clock, to the second), UTC; None if absent or unreadable."""
    value = headers.get("Date")
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


# Above this gap between HubSpot's clock and this machine's, sync_start() says so (once per client).
CLOCK_SKEW_WARNING = timedelta(minutes=1)


def _int_header(headers: Any, name: str) -> Optional[int]:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class HubSpotClient:
    def __init__(
        self,
        base_url: str,
        access_token: str,
        api_version: str = settings.DEFAULT_API_VERSION,
        *,
        rate_limit_calls: int = settings.DEFAULT_RATE_LIMIT_CALLS,
        rate_limit_period: float = settings.DEFAULT_RATE_LIMIT_PERIOD,
        search_rate_per_second: float = settings.DEFAULT_SEARCH_RATE_PER_SECOND,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        retry_policy: Optional[RetryPolicy] = None,
        search_result_cap: int = settings.SEARCH_RESULT_CAP,
        association_batch_size: int = settings.ASSOCIATION_BATCH_SIZE,
    ) -> None:
        if not access_token:
            raise HubSpotError("No HubSpot access token: set SOURCES__HUBSPOT__ACCESS_TOKEN (or secrets.toml)")
        self.base_url = base_url.rstrip("/")
        self.paths = ApiPaths(api_version)
        self.timeout = (connect_timeout, read_timeout)
        self.retry_policy = retry_policy or RetryPolicy()
        self.search_result_cap = search_result_cap
        self.association_batch_size = association_batch_size
        self.general_limiter = RateLimiter(rate_limit_calls, rate_limit_period, name="general")
        # The search bucket is per second; expressed as N calls per 1 s window.
        self.search_limiter = RateLimiter(max(1, int(search_rate_per_second)), 1.0, name="search")
        self.stats = RequestStats()
        self.daily_remaining: Optional[int] = None
        # HubSpot's clock: the Date header of the latest response (second resolution), and this machine's
        # clock when that response arrived
        self.server_date: Optional[datetime] = None
        self.server_date_received: Optional[datetime] = None
        self._skew_warned = False
        self.session = Session(timeout=self.timeout, raise_for_status=False)
        self.session.headers.update({"Authorization": f"Bearer {access_token}", "Accept": "application/json"})

    # ---------------------------------------------------------------- low level

    def _check(self, response: requests.Response) -> None:
        """Runs on every response before the retry decision: fail at once on what waiting cannot fix."""
        if response.status_code == 429:
            body = _json_or_empty(response)
            policy = str(body.get("policyName") or "").upper()
            if policy == "DAILY":
                limit = response.headers.get("X-HubSpot-RateLimit-Daily")
                resets = body.get("resetsAt") or response.headers.get("X-HubSpot-RateLimit-Daily-Reset")
                when = resets or "midnight in the HubSpot account's time zone"
                raise QuotaExhaustedError(
                    f"HubSpot DAILY API quota exhausted (policyName DAILY"
                    f"{', daily limit ' + limit if limit else ''}): it resets at {when}. "
                    "Stopping now; rerun after the reset (cursors are kept, nothing is lost).",
                    quota="DAILY",
                    resets_at=resets,
                )
        elif response.status_code in (401, 403):
            body = _json_or_empty(response)
            raise NonRetryableError(
                f"HubSpot refused the token (HTTP {response.status_code}: {body.get('message', response.reason)}); "
                "check the private app / service key and its scopes"
            )

    def _observe(self, response: requests.Response, limiter: RateLimiter) -> None:
        headers = response.headers
        limit = _int_header(headers, "X-HubSpot-RateLimit-Max")
        remaining = _int_header(headers, "X-HubSpot-RateLimit-Remaining")
        interval_ms = _int_header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
        if limit is not None or remaining is not None:
            limiter.observe(limit, remaining, interval_ms / 1000.0 if interval_ms else None)
        daily = _int_header(headers, "X-HubSpot-RateLimit-Daily-Remaining")
        if daily is not None:
            self.daily_remaining = daily
        date = _date_header(headers)
        if date is not None:
            self.server_date, self.server_date_received = date, datetime.now(timezone.utc)

    def sync_start(self, local_start: datetime) -> datetime:
        """When a read began, to cap the cursor it stores: the earlier of this machine's clock just before the
        read's first request (`local_start`) and HubSpot's, the Date header of the latest response (call it
        once the first page has arrived). HubSpot stamps updatedAt on its own clock, so the cap is read there;
        a Date is later than the page it dates by the response time only (well inside the overlap window) and
        is cut to the second, which only moves it earlier. A wrong cap costs little one way and much the other:
        too early, the next sync re-reads more (unchanged records are skipped); too late, changes made during
        this read are never read. So when the two clocks disagree (a skewed machine, no Date), the earlier
        one is taken."""
        local_start = local_start.astimezone(timezone.utc)
        server, received = self.server_date, self.server_date_received
        if server is None or received is None:
            return local_start
        skew = server - received  # HubSpot's clock minus this machine's, to the second
        if abs(skew) > CLOCK_SKEW_WARNING and not self._skew_warned:
            self._skew_warned = True
            logger.warning("HubSpot's clock is %+.0f s from this machine's (Date header %s); incremental cursors "
                           "are capped at the earlier of the two clocks", skew.total_seconds(), server.isoformat())
        return min(local_start, server)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Optional[Dict[str, Any]] = None,
        json: Any = None,
        kind: str = "meta",
        search: bool = False,
    ) -> Dict[str, Any]:
        url = self.base_url + path
        limiters = [self.search_limiter, self.general_limiter] if search else [self.general_limiter]

        def send() -> requests.Response:
            for limiter in limiters:
                limiter.acquire()
            self.stats.count(kind)
            response = self.session.request(method, url, params=params, json=json, timeout=self.timeout)
            # X-HubSpot-RateLimit-* describe the general (10-second) budget, whatever the endpoint
            self._observe(response, self.general_limiter)
            return response

        def on_backoff(response: Optional[requests.Response], exc: Optional[BaseException], delay: float) -> None:
            self.stats.retries += 1
            if response is not None and response.status_code == 429:
                # The budget is the account's: hold every request back, not just this one.
                for limiter in limiters:
                    limiter.pause_for(delay)

        response = send_with_retry(
            send, self.retry_policy, check=self._check, on_backoff=on_backoff, description=f"HubSpot {method} {path}"
        )
        if response.status_code >= 400:
            body = _json_or_empty(response)
            raise HubSpotError(
                f"HubSpot {method} {path} failed: HTTP {response.status_code} "
                f"{body.get('message') or response.text[:300]}"
            )
        return _json_or_empty(response)

    # ---------------------------------------------------------------- paging

    def get_pages(self, path: str, params: Dict[str, Any], kind: str) -> Iterator[Dict[str, Any]]:
        """GET a cursor-paged list (`paging.next.after`) to its last page."""
        params = dict(params)
        while True:
            page = self.request("GET", path, params=params, kind=kind)
            yield page
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return
            params["after"] = after

    def _fits_url(self, path: str, params: Dict[str, Any]) -> bool:
        return len(self.base_url + path + "?" + urlencode(params)) + 40 <= settings.MAX_URL_LENGTH  # 40: `after`

    def list_objects(
        self,
        object_type: str,
        properties: Sequence[str],
        history_properties: Sequence[str] = (),
        archived: bool = False,
    ) -> Iterator[List[Dict[str, Any]]]:
        """Every record of `object_type` (only archived ones when `archived`), page by page.

        Properties go in the query string as far as the URL budget allows; the rest are fetched with
        POST batch/read for the page's ids (one extra request per page) and merged in, so no URL is too long.
        """
        path = self.paths.objects(object_type)
        limit = settings.LIST_PAGE_SIZE_WITH_HISTORY if history_properties else settings.LIST_PAGE_SIZE
        base: Dict[str, Any] = {"limit": limit, "archived": str(archived).lower()}
        if history_properties:
            base["propertiesWithHistory"] = ",".join(history_properties)
        in_url: List[str] = []
        rest = list(properties)
        while rest and self._fits_url(path, {**base, "properties": ",".join(in_url + rest[:1])}):
            in_url.append(rest.pop(0))
        if in_url:
            base["properties"] = ",".join(in_url)
        n_pages = n_records = 0
        for page in self.get_pages(path, base, kind="list"):
            records = page.get("results") or []
            if rest and records:
                extra = self.batch_read(object_type, [r.get("id") for r in records], rest, archived=archived)
                for record in records:
                    more = extra.get(str(record.get("id")))
                    if more is not None and isinstance(record.get("properties"), dict):
                        record["properties"].update(more.get("properties") or {})
            n_pages += 1
            n_records += len(records)
            logger.info("%s%s: list page %d, %d records so far", object_type, " (archived)" if archived else "",
                        n_pages, n_records)
            yield records

    def batch_read(
        self,
        object_type: str,
        ids: Iterable[Any],
        properties: Sequence[str],
        history_properties: Sequence[str] = (),
        archived: bool = False,
    ) -> Dict[str, Dict[str, Any]]:
        """POST batch/read for `ids` (properties in the body: no URL limit). Returns id -> record."""
        size = settings.BATCH_READ_SIZE_WITH_HISTORY if history_properties else settings.BATCH_READ_SIZE
        id_list = [str(i) for i in ids if i is not None]
        out: Dict[str, Dict[str, Any]] = {}
        for start in range(0, len(id_list), size):
            body: Dict[str, Any] = {
                "inputs": [{"id": i} for i in id_list[start:start + size]],
                "properties": list(properties),
            }
            if history_properties:
                body["propertiesWithHistory"] = list(history_properties)
            params = {"archived": "true"} if archived else None
            page = self.request("POST", self.paths.batch_read(object_type), params=params, json=body, kind="batch")
            for record in page.get("results") or []:
                out[str(record.get("id"))] = record
        return out

    def search_modified(
        self,
        object_type: str,
        since_ms: int,
        properties: Sequence[str],
    ) -> Iterator[List[Dict[str, Any]]]:
        """Records modified at or after `since_ms` (epoch ms), through POST search, page by page.

        Sorted by hs_object_id; when the `after` offset nears the result cap (10,000 at HubSpot), the query
        restarts with hs_object_id > last id seen, so any number of changes is read (bulk updates can give
        more than 10k records the same timestamp, so windowing on the timestamp alone is not enough).
        """
        path = self.paths.search(object_type)
        cursor_prop = settings.last_modified_property(object_type)
        limit = min(settings.SEARCH_PAGE_SIZE, self.search_result_cap)
        last_id: Optional[int] = None
        after: Optional[str] = None
        n_pages = n_records = n_windows = 0
        while True:
            filters: List[Dict[str, Any]] = [{"propertyName": cursor_prop, "operator": "GTE", "value": str(since_ms)}]
            if last_id is not None:
                filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)})
            body: Dict[str, Any] = {
                "filterGroups": [{"filters": filters}],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "properties": list(properties),
                "limit": limit,
            }
            if after is not None:
                body["after"] = after
            page = self.request("POST", path, json=body, kind="search", search=True)
            records = page.get("results") or []
            n_pages += 1
            n_records += len(records)
            logger.info("%s: search page %d, %d changed records so far", object_type, n_pages, n_records)
            if records:
                yield records
            next_after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not next_after or not records:
                return
            if int(next_after) + limit > self.search_result_cap:
                ids = [_as_int(r.get("id")) for r in records]
                ids = [i for i in ids if i is not None]
                if not ids:
                    raise HubSpotError(f"{object_type}: cannot window the search past the result cap (no ids)")
                last_id = max(ids + ([last_id] if last_id is not None else []))
                after = None
                n_windows += 1
                logger.info("%s: search window %d restarts after id %d (result cap %d)", object_type, n_windows,
                            last_id, self.search_result_cap)
            else:
                after = next_after

    # ---------------------------------------------------------------- metadata

    def property_definitions(self, object_type: str) -> List[Dict[str, Any]]:
        page = self.request("GET", self.paths.properties(object_type), kind="meta")
        return list(page.get("results") or [])

    def owners(self, archived: bool = False) -> Iterator[Dict[str, Any]]:
        params = {"limit": 100, "archived": str(archived).lower()}
        for page in self.get_pages(self.paths.owners(), params, kind="meta"):
            yield from page.get("results") or []

    def pipelines(self, object_type: str) -> List[Dict[str, Any]]:
        page = self.request("GET", self.paths.pipelines(object_type), kind="meta")
        return list(page.get("results") or [])

    def associations(self, from_type: str, to_type: str, ids: Sequence[str],
                     unlinked: Optional[set] = None) -> Iterator[Tuple[str, str, Dict]]:
        """(from id, to id, association type {category, typeId, label}) for every link of `ids`,
        through the associations batch read, following per-record paging. `unlinked` (optional) receives the ids
        HubSpot says have no link (its 207 error NO_ASSOCIATIONS_FOUND); any other per-record error is logged,
        and its id is in neither: what it had stays unknown, not emptied."""
        path = self.paths.associations_batch_read(from_type, to_type)
        pending = [{"id": str(i)} for i in ids]
        while pending:
            batch, pending = pending[: self.association_batch_size], pending[self.association_batch_size:]
            page = self.request("POST", path, json={"inputs": batch}, kind="associations")
            for error in page.get("errors") or []:
                named = [str(i) for i in ((error.get("context") or {}).get("fromObjectId") or [])]
                if error.get("subCategory") == "crm.associations.NO_ASSOCIATIONS_FOUND":
                    if unlinked is not None:
                        unlinked.update(named)
                else:
                    logger.warning("hubspot %s -> %s links of %s not read (%s: %s); kept as last loaded",
                                   from_type, to_type, ", ".join(named) or "?", error.get("category"),
                                   error.get("message"))
            for result in page.get("results") or []:
                from_id = str((result.get("from") or {}).get("id"))
                for to in result.get("to") or []:
                    to_id = str(to.get("toObjectId") or to.get("id"))
                    types = to.get("associationTypes") or [{}]
                    for assoc_type in types:
                        yield from_id, to_id, assoc_type
                after = ((result.get("paging") or {}).get("next") or {}).get("after")
                if after:  # more links for this record: ask again for it alone, from the cursor
                    pending.append({"id": from_id, "after": after})


def _as_int(value: Any) -> Optional[int]:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _json_or_empty(response: requests.Response) -> Dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {"results": body}
