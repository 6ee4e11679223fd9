"""Fault switches for the sandbox servers.

One `Faults` object per sandbox server, shared by its vendor apps. Switches are set at start
(constructor / CLI flags) and at run time (`POST /_sandbox/faults` or `faults.set(...)`).

Request-level faults (applied by the router before the vendor app sees the request, rendered in
the vendor's own error format):
  rate_limit_storm      the next N requests get a 429
  server_errors         the next N requests get a 5xx, cycling through server_error_statuses
  delay_ms              sleep this long before answering (to trigger client timeouts);
                        for the next delay_requests requests only, or every request when None

Data faults (applied by the vendor app when it renders records):
  malformed_record      "bad_date" (createdate "not-a-date") or "bad_id" (a non-numeric id) on one
                        record of malformed_object_type; None = off. The store itself is not edited.
  update_during_paging  K: after the K-th list page of update_object_type is served, the first
                        record of that page is modified in the store, its updatedAt moved past the
                        sync start (the "record updated while a sync pages" race). Fires once.
  slow_sync_race        K (HubSpot): the race of a sync that pages for longer than the overlap window
                        (a full sync of a large portal takes hours under HubSpot's rate limits). After the
                        K-th page of race_object_type is served (list pages of live records and search pages
                        both count), time jumps race_minutes ahead on the HubSpot clock (updatedAt stamps,
                        Date headers), during which two records are modified: the first record of page K
                        (already read by the sync) 1 minute after the page was served, and the live record
                        with the highest id past page K (not read yet: a later page serves it, new stamp
                        included) race_minutes after the page. Fires once.
"""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field, fields
from typing import Any

MALFORMED_KINDS = ("bad_date", "bad_id")


@dataclass
class FaultSettings:
    rate_limit_storm: int = 0
    server_errors: int = 0
    server_error_statuses: list[int] = field(default_factory=lambda: [500, 502, 503])
    delay_ms: int = 0
    delay_requests: int | None = None
    malformed_record: str | None = None
    malformed_object_type: str = "contacts"
    update_during_paging: int | None = None
    update_object_type: str = "contacts"
    slow_sync_race: int | None = None
    race_object_type: str = "contacts"
    race_minutes: float = 60.0

    def validate(self) -> None:
        for name in ("rate_limit_storm", "server_errors", "delay_ms"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0")
        if not self.server_error_statuses or any(not 500 <= int(s) <= 599 for s in self.server_error_statuses):
            raise ValueError("server_error_statuses must be a non-empty list of 5xx codes")
        if self.malformed_record not in (None, *MALFORMED_KINDS):
            raise ValueError(f"malformed_record must be one of {MALFORMED_KINDS} or null")
        if self.update_during_paging is not None and int(self.update_during_paging) < 1:
            raise ValueError("update_during_paging must be >= 1 (pages) or null")
        if self.slow_sync_race is not None and int(self.slow_sync_race) < 1:
            raise ValueError("slow_sync_race must be >= 1 (pages) or null")
        if float(self.race_minutes) <= 1:
            raise ValueError("race_minutes must be > 1 (the read record is modified 1 minute after its page)")


@dataclass
class RequestFault:
    """What the router must do to one request."""

    delay_ms: int = 0
    kind: str | None = None  # None | "rate_limit" | "server_error"
    status: int = 200


class Faults:
    """Thread-safe fault switches plus a log of what fired."""

    def __init__(self, **settings: Any) -> None:
        self._lock = threading.Lock()
        self._settings = FaultSettings()
        self._error_cycle = 0
        self._pages_seen: dict[str, int] = {}
        self._race_pages_seen: dict[str, int] = {}
        self.fired: list[dict[str, Any]] = []  # e.g. {"fault": "update_during_paging", "object_type", "id", ...}
        if settings:
            self.set(**settings)

    # -- configuration -------------------------------------------------------------------------
    def set(self, **settings: Any) -> dict[str, Any]:
        """Change some switches (unknown names raise ValueError); returns the new state."""
        known = {f.name for f in fields(FaultSettings)}
        unknown = set(settings) - known
        if unknown:
            raise ValueError(f"unknown fault switch(es): {sorted(unknown)}; known: {sorted(known)}")
        with self._lock:
            candidate = FaultSettings(**{**asdict(self._settings), **settings})
            candidate.validate()
            self._settings = candidate
            if "update_during_paging" in settings or "update_object_type" in settings:
                self._pages_seen.clear()
            if "slow_sync_race" in settings or "race_object_type" in settings:
                self._race_pages_seen.clear()
            return self.snapshot_locked()

    def reset(self) -> dict[str, Any]:
        with self._lock:
            self._settings = FaultSettings()
            self._pages_seen.clear()
            self._race_pages_seen.clear()
            self._error_cycle = 0
            return self.snapshot_locked()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return self.snapshot_locked()

    def snapshot_locked(self) -> dict[str, Any]:
        return {**asdict(self._settings), "fired": list(self.fired)}

    @property
    def settings(self) -> FaultSettings:
        with self._lock:
            return FaultSettings(**asdict(self._settings))

    # -- request-level faults ------------------------------------------------------------------
    def next_request(self) -> RequestFault:
        """Consume the counters for one incoming request and say what to do with it."""
        with self._lock:
            s = self._settings
            out = RequestFault()
            if s.delay_ms and (s.delay_requests is None or s.delay_requests > 0):
                out.delay_ms = s.delay_ms
                if s.delay_requests is not None:
                    s.delay_requests -= 1
            if s.rate_limit_storm > 0:
                s.rate_limit_storm -= 1
                out.kind, out.status = "rate_limit", 429
            elif s.server_errors > 0:
                s.server_errors -= 1
                out.kind = "server_error"
                out.status = int(s.server_error_statuses[self._error_cycle % len(s.server_error_statuses)])
                self._error_cycle += 1
            return out

    # -- data faults ---------------------------------------------------------------------------
    def count_list_page(self, object_type: str) -> bool:
        """Note one list page served; True exactly once, when the update-during-paging switch fires."""
        return self._count_page("update_during_paging", "update_object_type", self._pages_seen, object_type)

    def count_race_page(self, object_type: str) -> bool:
        """Note one page of live records served (list or search); True exactly once, when slow_sync_race fires."""
        return self._count_page("slow_sync_race", "race_object_type", self._race_pages_seen, object_type)

    def _count_page(self, switch: str, type_field: str, seen_pages: dict[str, int], object_type: str) -> bool:
        """Count one page of `object_type` for the page-K fault `switch` (set on `type_field`'s object type); True
        exactly once, on its K-th page, and the switch is then off."""
        with self._lock:
            s = self._settings
            k = getattr(s, switch)
            if k is None or object_type != getattr(s, type_field):
                return False
            seen = seen_pages.get(object_type, 0) + 1
            seen_pages[object_type] = seen
            if seen >= k:
                setattr(s, switch, None)  # fires once
                seen_pages.pop(object_type, None)
                return True
            return False

    def record(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.fired.append(event)
