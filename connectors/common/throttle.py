"""Client-side rate limiting: stay under a vendor's request budget instead of bumping into its 429s.

dlt's retrying session only reacts to 429s; it does not pace requests, so this is written by hand.
"""
from __future__ import annotations

import collections
import threading
import time
from typing import Callable, Optional


class RateLimiter:
    """Sliding-window limiter: at most `max_calls` calls in any `period` seconds. Thread-safe.

    `observe()` folds in what the server reports (its budget and what is left of it), so requests made by
    other clients of the same account (which share the vendor's budget) slow us down too.
    `pause_for()` stops every caller for a while (a Retry-After that applies to the whole account).
    """

    def __init__(
        self,
        max_calls: int,
        period: float,
        *,
        name: str = "",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_calls < 1 or period <= 0:
            raise ValueError("RateLimiter needs max_calls >= 1 and period > 0")
        self.max_calls = max_calls
        self.period = float(period)
        self.name = name
        self._clock = clock
        self._sleep = sleep
        self._calls: collections.deque[float] = collections.deque()
        self._paused_until = 0.0
        self._lock = threading.Lock()
        self.waited_seconds = 0.0  # total time callers spent waiting (for metrics / tests)

    def _prune(self, now: float) -> None:
        while self._calls and self._calls[0] <= now - self.period:
            self._calls.popleft()

    def acquire(self) -> None:
        """Block until one more call fits in the window, then record it."""
        while True:
            with self._lock:
                now = self._clock()
                self._prune(now)
                wait = self._paused_until - now
                if wait <= 0 and len(self._calls) < self.max_calls:
                    self._calls.append(now)
                    return
                if wait <= 0:
                    wait = self._calls[0] + self.period - now
            wait = max(wait, 0.001)
            self.waited_seconds += wait
            self._sleep(wait)

    def observe(self, limit: Optional[int], remaining: Optional[int], interval: Optional[float] = None) -> None:
        """Adapt to the server's view of the budget (e.g. X-...-RateLimit-Max / -Remaining headers).

        A lower server limit lowers ours; a `remaining` lower than ours means someone else spends the same
        budget, so phantom calls are added to the window to account for them.
        """
        with self._lock:
            now = self._clock()
            if interval and interval > 0 and abs(interval - self.period) > 1e-9 and limit:
                # Server counts over another window: keep the same rate on our window.
                limit = max(1, int(limit * self.period / interval))
                if remaining is not None:
                    remaining = max(0, int(remaining * self.period / interval))
            if limit is not None and 0 < limit < self.max_calls:
                self.max_calls = limit
            if remaining is None:
                return
            self._prune(now)
            used_by_server = self.max_calls - max(0, remaining)
            missing = used_by_server - len(self._calls)
            for _ in range(max(0, missing)):
                self._calls.append(now)

    def pause_for(self, seconds: float) -> None:
        """Hold every caller back for `seconds` (e.g. after a 429 with Retry-After)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))
