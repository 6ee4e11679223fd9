"""Request counts every connector keeps (tests and run logs read them: requests per sync, retries)."""
from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from typing import Dict


@dataclass
class RequestStats:
    """Requests sent (attempts included) by kind, and retries; safe to count from several threads."""

    total: int = 0
    retries: int = 0
    passes: int = 0  # extra passes a connector made over a list that moved while it paged (Koban)
    by_kind: Dict[str, int] = field(default_factory=collections.Counter)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def count(self, kind: str) -> None:
        with self._lock:
            self.total += 1
            self.by_kind[kind] += 1
