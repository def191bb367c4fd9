"""Per-editor rate limit (sliding one-minute window, per process): ingest's uploads, presigns and
confirms; the validator's pre-check.

Each ingest replica enforces the limit on its own; behind N replicas an editor may get up to N times
the limit. That bounds abuse well enough here; a shared limiter (Redis) is the next step if
it ever matters.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, subject: str) -> tuple[bool, float]:
        """Record a hit if allowed; returns (allowed, seconds until the next slot)."""
        now = self.clock()
        hits = self._hits[subject]
        while hits and now - hits[0] >= 60:
            hits.popleft()
        if len(hits) >= self.per_minute:
            return False, 60 - (now - hits[0])
        hits.append(now)
        return True, 0.0
