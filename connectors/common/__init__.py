"""Pieces every connector reuses: a client-side rate limiter, a retry policy for HTTP calls, a quarantine helper.

Kept vendor-neutral on purpose: HubSpot uses them first, Koban / Stripe / the registry next.
"""
from connectors.common.quarantine import QUARANTINE_TABLE, quarantine_hints, quarantine_item
from connectors.common.retry import (
    NonRetryableError,
    QuotaExhaustedError,
    RetryPolicy,
    parse_retry_after,
    send_with_retry,
)
from connectors.common.throttle import RateLimiter

__all__ = [
    "QUARANTINE_TABLE",
    "quarantine_hints",
    "quarantine_item",
    "NonRetryableError",
    "QuotaExhaustedError",
    "RetryPolicy",
    "parse_retry_after",
    "send_with_retry",
    "RateLimiter",
]
