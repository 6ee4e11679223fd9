"""Koban HTTP client: the two auth headers, the `{Success, Message, Errors, Result}` envelope, GetUpdated offset
paging (re-passes when records move during paging), pacing and retries from `connectors.common`.
Nothing here knows about dlt tables."""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Optional

import requests
from dlt.sources.helpers.requests import Session

from connectors.common.stats import RequestStats  # noqa: F401  (re-exported)
from connectors.common.retry import NonRetryableError, RetryPolicy, send_with_retry
from connectors.common.throttle import RateLimiter
from connectors.koban import settings

logger = logging.getLogger("connectors.koban")

_DOTNET = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


class KobanError(RuntimeError):
    """A Koban call failed in a way the connector cannot work around."""


class BadValue(ValueError):
    pass


@dataclass
class PagingReport:
    """How a `get_updated` read ended: `complete` is False when records kept moving while it paged and some may
    not have been served (fewer distinct records seen than the server's Length after every re-pass)."""

    complete: bool = True
    seen: int = 0
    total: int = 0


def parse_koban_date(value: Any) -> Optional[datetime]:
    """Koban dates -> aware UTC datetime. Accepts "/Date(ms)/" (offset suffix ignored: ms are UTC), unix seconds
    or ms (numbers), ISO 8601 and DD/MM/YYYY (the POST format). None / "" / .NET MinValue -> None; garbage raises."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadValue(f"not a date: {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
        ms = number if abs(number) >= 1e11 else number * 1000  # seconds until year 5138
        if ms <= settings.DOTNET_MIN_MS:
            return None
        return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    if not isinstance(value, str):
        raise BadValue(f"not a date: {value!r}")
    text = value.strip()
    m = _DOTNET.match(text)
    if m:
        ms = int(m.group(1))
        return None if ms <= settings.DOTNET_MIN_MS else datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    if text.isdigit():
        return parse_koban_date(int(text))
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        try:
            parsed = datetime.strptime(text, "%d/%m/%Y")
        except ValueError:
            raise BadValue(f"not a date: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class KobanClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        user_key: str,
        *,
        rate_limit_calls: int = settings.DEFAULT_RATE_LIMIT_CALLS,
        rate_limit_period: float = settings.DEFAULT_RATE_LIMIT_PERIOD,
        page_length: int = settings.PAGE_LENGTH,
        max_passes: int = settings.MAX_PASSES,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        retry_policy: Optional[RetryPolicy] = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key, self.user_key = api_key, user_key
        self.page_length = page_length
        self.max_passes = max(1, max_passes)
        self.timeout = (connect_timeout, read_timeout)
        self.retry_policy = retry_policy or RetryPolicy()
        self.limiter = RateLimiter(rate_limit_calls, rate_limit_period, name="koban")
        self.stats = RequestStats()
        self._session: Optional[Session] = None

    @property
    def session(self) -> Session:
        if self._session is None:
            if not self.api_key or not self.user_key:
                raise KobanError("No Koban keys: set SOURCES__KOBAN__API_KEY and SOURCES__KOBAN__USER_KEY "
                                 "(Koban: Paramètres > API)")
            self._session = Session(timeout=self.timeout, raise_for_status=False)
            self._session.headers.update({"X-ncApi": self.api_key, "X-ncUser": self.user_key,
                                          "Accept": "application/json"})
        return self._session

    def _check(self, response: requests.Response) -> None:
        if response.status_code in (401, 403):
            body = _json_or_none(response) or {}
            message = body.get("Message") if isinstance(body, dict) else None
            raise NonRetryableError(
                f"Koban refused the keys (HTTP {response.status_code}: {message or response.reason}); check the "
                "API key (X-ncApi) and user key (X-ncUser) under Paramètres > API")

    def get(self, path: str, params: Optional[Dict[str, Any]] = None, kind: str = "meta") -> Any:
        url = f"{self.base_url}/{path.lstrip('/')}"

        def send() -> requests.Response:
            self.limiter.acquire()
            self.stats.count(kind)
            return self.session.get(url, params=params, timeout=self.timeout)

        def on_backoff(response: Optional[requests.Response], exc: Optional[BaseException], delay: float) -> None:
            self.stats.retries += 1
            if response is not None and response.status_code == 429:
                self.limiter.pause_for(delay)  # the whole account is being told to slow down

        response = send_with_retry(send, self.retry_policy, check=self._check, on_backoff=on_backoff,
                                   description=f"Koban GET {path}")
        if response.status_code >= 400:
            body = _json_or_none(response)
            detail = body.get("Message") if isinstance(body, dict) else response.text[:200]
            raise KobanError(f"Koban GET {path} failed: HTTP {response.status_code}: {detail}")
        body = _json_or_none(response)
        if body is None:
            raise KobanError(f"Koban GET {path}: response is not JSON: {response.text[:200]!r}")
        if isinstance(body, dict) and "Success" in body:  # the envelope
            if not body.get("Success"):
                errors = "; ".join(str(e) for e in body.get("Errors") or [])
                raise KobanError(f"Koban GET {path}: {body.get('Message') or errors or 'Success=false'}")
            return body.get("Result")
        return body

    def get_all(self, controller: str) -> List[Dict[str, Any]]:
        result = self.get(f"{controller}/GetAll", kind="meta")
        return list(result or [])

    def get_updated(self, controller: str, updated: int,
                    report: Optional[PagingReport] = None) -> Iterator[List[Any]]:
        """Pages of records of `controller` changed since `updated` (unix seconds), offset-paged.

        Offset paging over a list sorted by last change is not stable: a record changed while we page jumps to the
        end and every later record shifts down one place, so one record at a page boundary is never served. The
        server's `Length` (matching total) tells: fewer distinct records than the last Length means some were
        skipped, and the pass is repeated (only unseen or changed records are yielded again), up to max_passes.
        If records are still missing after the last pass, `report.complete` is set False once the pages are
        exhausted: the caller must not move its cursor past this read (a skipped record may be older than the
        newest one seen).
        """
        report = report if report is not None else PagingReport()
        seen: Dict[str, Any] = {}
        for attempt in range(self.max_passes):
            if attempt:
                self.stats.passes += 1
                logger.warning("%s: records moved while paging (%d of %d seen), re-reading", controller,
                               len(seen), total)
            start, total = 0, 0
            while True:
                body = self.get(f"{controller}/GetUpdated",
                                {"updated": int(updated), "s": start, "l": self.page_length}, kind="list")
                if isinstance(body, dict) and "List" in body:
                    items, total = list(body.get("List") or []), int(body.get("Length") or 0)
                elif isinstance(body, list):  # tolerate a bare list
                    items, total = body, max(total, start + len(body))
                else:
                    raise KobanError(f"Koban {controller}/GetUpdated: unexpected body {str(body)[:200]!r}")
                fresh = []
                for item in items:
                    # a record without a usable Guid (quarantined later) is keyed by its content
                    key = item.get("Guid") if isinstance(item, dict) else None
                    key = key or json.dumps(item, sort_keys=True, default=str)
                    stamp = item.get(settings.UPDATED_FIELD) if isinstance(item, dict) else None
                    if key not in seen or seen[key] != stamp:
                        fresh.append(item)
                    seen[key] = stamp
                if fresh:
                    yield fresh
                start += len(items)
                if len(items) < self.page_length or start >= total:
                    break
            report.seen, report.total = len(seen), total
            if len(seen) >= total:
                report.complete = True
                return
        report.complete = False
        logger.warning("%s: %d of %d records seen after %d passes; the cursor stays where it was, so the next run "
                       "reads this window again", controller, len(seen), total, self.max_passes)
