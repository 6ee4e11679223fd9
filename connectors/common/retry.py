"""Retry policy for vendor HTTP calls: honour Retry-After, back off with jitter on 429 / 5xx / timeouts,
give up after a bounded number of attempts, and stop at once on errors that waiting cannot fix.

Why not dlt's `dlt.sources.helpers.requests.Client` as is: it honours Retry-After and backs off on 429/5xx,
but (dlt 1.31) its backoff has no jitter, a 429 is always retried (a daily-quota 429 would be retried for
minutes instead of failing with a clear message) and it cannot tell a rate limiter to pause. The same
building block (tenacity, a dlt dependency) is used here with those three additions. The HTTP session
itself stays dlt's (`dlt.sources.helpers.requests.Session`).
"""
from __future__ import annotations

import email.utils
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, FrozenSet, Optional, Tuple, Type

import requests
from tenacity import RetryCallState, Retrying, retry_base, stop_after_attempt
from tenacity.wait import wait_base

logger = logging.getLogger(__name__)

TRANSIENT_EXCEPTIONS: Tuple[Type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class NonRetryableError(RuntimeError):
    """An error that retrying will not fix (bad credentials, exhausted quota...)."""


class QuotaExhaustedError(NonRetryableError):
    """The vendor's long-period quota (e.g. a daily request quota) is used up: stop the run now."""

    def __init__(self, message: str, *, quota: str, resets_at: Optional[str] = None) -> None:
        super().__init__(message)
        self.quota = quota
        self.resets_at = resets_at


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Delays are in seconds."""

    max_attempts: int = 6  # first try included
    backoff_base: float = 1.0  # first backoff is up to this, doubling each attempt
    backoff_max: float = 60.0
    max_retry_after: float = 600.0  # a longer Retry-After is clamped to this
    retry_statuses: FrozenSet[int] = field(
        default_factory=lambda: frozenset({408, 429} | set(range(500, 600)))
    )


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent/garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp() - (now if now is not None else time.time())
    return max(0.0, seconds)


def _outcome(state: RetryCallState) -> Tuple[Optional[requests.Response], Optional[BaseException]]:
    if state.outcome is None:
        return None, None
    exc = state.outcome.exception()
    if exc is not None:
        return getattr(exc, "response", None), exc
    return state.outcome.result(), None


class _retry_transient(retry_base):
    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, state: RetryCallState) -> bool:
        response, exc = _outcome(state)
        if exc is not None:
            return isinstance(exc, TRANSIENT_EXCEPTIONS)
        return response is not None and response.status_code in self.policy.retry_statuses


class _wait_retry_after_or_jitter(wait_base):
    """Retry-After when the server sends one; else exponential backoff with 'equal jitter'
    (half fixed, half random) so parallel clients do not retry in lockstep."""

    def __init__(self, policy: RetryPolicy, rng: random.Random) -> None:
        self.policy = policy
        self.rng = rng

    def __call__(self, state: RetryCallState) -> float:
        response, _ = _outcome(state)
        if response is not None:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None:
                return min(retry_after, self.policy.max_retry_after)
        ceiling = min(self.policy.backoff_max, self.policy.backoff_base * 2 ** (state.attempt_number - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)


def send_with_retry(
    send: Callable[[], requests.Response],
    policy: RetryPolicy,
    *,
    check: Optional[Callable[[requests.Response], None]] = None,
    on_backoff: Optional[Callable[[Optional[requests.Response], Optional[BaseException], float], None]] = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: Optional[random.Random] = None,
    description: str = "request",
) -> requests.Response:
    """Call `send()` until it returns a response that is not transient-failed, within `policy`.

    `check(response)` runs on every response before the retry decision and may raise (e.g. a
    `QuotaExhaustedError` for a daily-quota 429): such an error propagates at once.
    `on_backoff(response, exception, delay)` runs before each wait (log it, pause a rate limiter...).
    When attempts run out, the last response is returned (the caller's raise_for_status names it) or the
    last exception is raised.
    """

    def _send() -> requests.Response:
        response = send()
        if check is not None:
            check(response)
        return response

    def _before_sleep(state: RetryCallState) -> None:
        response, exc = _outcome(state)
        delay = state.next_action.sleep if state.next_action else 0.0
        reason = f"HTTP {response.status_code}" if response is not None else type(exc).__name__
        logger.warning(
            "%s: %s, retry %d/%d in %.2fs", description, reason, state.attempt_number, policy.max_attempts - 1, delay
        )
        if on_backoff is not None:
            on_backoff(response, exc, delay)

    retrying = Retrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=_wait_retry_after_or_jitter(policy, rng or random.Random()),
        retry=_retry_transient(policy),
        before_sleep=_before_sleep,
        sleep=sleep,
        reraise=True,
        retry_error_callback=lambda state: state.outcome.result(),  # out of attempts: hand back the response
    )
    return retrying(_send)


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()
