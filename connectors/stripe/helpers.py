"""Stripe HTTP client: auth, pinned API version, cursor paging, pacing, retries. Knows nothing about dlt tables.

Why not the `stripe` SDK here: it does not retry a 429 by itself (only when Stripe sends `Stripe-Should-Retry`),
its retries cannot pause a shared rate limiter, and it wraps every object in StripeObject (to be converted back
to dicts). The session is dlt's; retries and pacing come from connectors.common (see the reasons there).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import requests
from dlt.sources.helpers.requests import Session

from connectors.common.stats import RequestStats  # noqa: F401  (re-exported)
from connectors.common.retry import NonRetryableError, RetryPolicy, send_with_retry
from connectors.common.throttle import RateLimiter
from connectors.stripe import settings

logger = logging.getLogger("connectors.stripe")

Params = List[Tuple[str, Union[str, int]]]


class StripeApiError(RuntimeError):
    """A Stripe call failed in a way the connector cannot work around (the Stripe error is in the message).
    `status` is the HTTP status and `code` Stripe's error code (e.g. "resource_missing") when there was an answer."""

    def __init__(self, message: str, *, status: Optional[int] = None, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    @property
    def missing(self) -> bool:
        """The object does not exist (HTTP 404 / resource_missing), as opposed to a failure to read it."""
        return self.status == 404 or self.code == "resource_missing"


def _error(response: requests.Response) -> Dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    err = body.get("error") if isinstance(body, dict) else None
    return err if isinstance(err, dict) else {}


def _error_text(response: requests.Response) -> str:
    err = _error(response)
    if not err:
        return response.text[:200]
    parts = [str(err.get(k)) for k in ("type", "code") if err.get(k)]
    return f"{'/'.join(parts)}: {err.get('message', '')}".strip(": ")


class StripeClient:
    def __init__(
        self,
        base_url: str,
        secret_key: str,
        api_version: str = settings.DEFAULT_API_VERSION,
        *,
        rate_limit_per_second: Optional[int] = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        retry_policy: Optional[RetryPolicy] = None,
        page_size: int = settings.PAGE_SIZE,
    ) -> None:
        if not secret_key or not secret_key.startswith(("sk_", "rk_")):
            raise StripeApiError("No usable Stripe secret key: set SOURCES__STRIPE__SECRET_KEY (sk_live_... / "
                                 "sk_test_... or a restricted rk_... key with read access)")
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.live = "_live_" in secret_key
        rate = rate_limit_per_second or (settings.RATE_LIMIT_LIVE if self.live else settings.RATE_LIMIT_TEST)
        self.limiter = RateLimiter(rate, 1.0, name="stripe")
        self.retry_policy = retry_policy or RetryPolicy()
        self.timeout = (connect_timeout, read_timeout)
        self.page_size = page_size
        self.stats = RequestStats()
        self.session = Session(timeout=self.timeout, raise_for_status=False)
        self.session.headers.update({
            "Authorization": f"Bearer {secret_key}",
            "Stripe-Version": api_version,
            "Accept": "application/json",
        })

    def _check(self, response: requests.Response) -> None:
        if response.status_code in (401, 403):
            raise NonRetryableError(f"Stripe refused the key (HTTP {response.status_code} {_error_text(response)}); "
                                    "check SOURCES__STRIPE__SECRET_KEY and its permissions")

    def get(self, path: str, params: Optional[Params] = None, kind: str = "retrieve") -> Dict[str, Any]:
        url = self.base_url + path

        def send() -> requests.Response:
            self.limiter.acquire()
            self.stats.count(kind)
            return self.session.get(url, params=params, timeout=self.timeout)

        def on_backoff(response: Optional[requests.Response], exc: Optional[BaseException], delay: float) -> None:
            self.stats.retries += 1
            if response is not None and response.status_code == 429:
                self.limiter.pause_for(delay)  # the budget is the account's: hold every request back

        response = send_with_retry(send, self.retry_policy, check=self._check, on_backoff=on_backoff,
                                   description=f"Stripe GET {path}")
        if response.status_code >= 400:
            code = _error(response).get("code")
            raise StripeApiError(f"Stripe GET {path} failed: HTTP {response.status_code} {_error_text(response)}",
                                 status=response.status_code, code=code if isinstance(code, str) else None)
        try:
            body = response.json()
        except ValueError:
            raise StripeApiError(f"Stripe GET {path}: the answer is not JSON ({response.text[:120]!r})") from None
        if not isinstance(body, dict):
            raise StripeApiError(f"Stripe GET {path}: unexpected answer {str(body)[:120]!r}")
        return body

    def list_pages(self, path: str, params: Optional[Params] = None, kind: str = "list") -> Iterator[List[Any]]:
        """Every page of a Stripe list (newest first), following `starting_after` while `has_more`."""
        base: Params = [("limit", self.page_size)] + list(params or [])
        cursor: Optional[str] = None
        while True:
            page = self.get(path, base + ([("starting_after", cursor)] if cursor else []), kind=kind)
            data = page.get("data") or []
            yield data
            if not page.get("has_more") or not data:
                return
            last = data[-1]
            cursor = last.get("id") if isinstance(last, dict) else None
            if not isinstance(cursor, str) or not cursor:
                raise StripeApiError(f"Stripe {path}: cannot page on, the last object has no usable id")

    def events(self, types: Sequence[str], created_gte: Optional[int]) -> Iterator[List[Dict[str, Any]]]:
        params: Params = [("types[]", t) for t in types]
        if created_gte is not None:
            params.append(("created[gte]", int(created_gte)))
        return self.list_pages("/v1/events", params, kind="events")

    def newest_event(self, types: Sequence[str]) -> Optional[Dict[str, Any]]:
        page = self.get("/v1/events", [("limit", 1)] + [("types[]", t) for t in types], kind="events")
        data = page.get("data") or []
        return data[0] if data else None
