"""An in-memory sliding-window rate limit, keyed by client address.

    limiter = RateLimiter(limit=5, window=timedelta(minutes=10), clock=clock)
    retry_after = limiter.hit("203.0.113.7")   # None: go ahead; else seconds to wait

Each web process keeps its own counts, so with N processes a client gets N times the limit:
that is fine for what it guards (the subscribe form sending confirmation emails to whatever
address is typed), and keeps the database out of every form post. The clock is the app's
(services(request).clock), so tests move time instead of sleeping.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from datetime import datetime, timedelta

from syndicate.clock import Clock

# Past this many tracked clients the least recently seen are dropped, so a flood of
# spoofed or rotating addresses cannot grow the process without bound. Forgetting one
# only resets its count, which errs on the side of letting a person subscribe.
MAX_CLIENTS = 10_000


class RateLimiter:
    def __init__(self, *, limit: int, window: timedelta, clock: Clock) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window = window
        self.clock = clock
        self._hits: OrderedDict[str, deque[datetime]] = OrderedDict()

    def hit(self, key: str) -> int | None:
        """Count one request from `key`. None when it is allowed; otherwise the whole
        seconds until it would be (for Retry-After), and the refused request is not counted
        (a client that keeps retrying too early is not locked out for longer)."""
        now = self.clock.now()
        hits = self._hits.pop(key, None) or deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        self._hits[key] = hits  # re-inserted last: the most recently seen
        if len(hits) >= self.limit:
            wait = (hits[0] + self.window - now).total_seconds()
            return max(1, math.ceil(wait))
        hits.append(now)
        while len(self._hits) > MAX_CLIENTS:
            self._hits.popitem(last=False)
        return None
