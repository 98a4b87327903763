"""/healthz's view of the database: readable or not, and on SQLite whether quick_check finds
damage (run at the first check and then at most every INTEGRITY_EVERY, as it reads the
whole file). One HealthCheck per app (WebServices.health), so it remembers what it last
found and logs a line only when that changes.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from syndicate.clock import Clock
from syndicate.store import DatabaseHealth, Store

# The name these lines had while the check lived in ops.py (/healthz's module): kept, so a
# log filter or alert that matches it still does.
log = logging.getLogger("syndicate.web.ops")

# SQLite's quick_check reads the whole file: about 60 ms for 25 MB, measured here.
INTEGRITY_EVERY = timedelta(minutes=10)
# /healthz is public: it says what is wrong in general terms; the log has the details.
UNHEALTHY = {
    "unreachable": "cannot connect to or open the database",
    "unreadable": "a table of the database cannot be read",
    "damaged": "the database file is damaged (SQLite quick_check)",
}


class HealthCheck:
    """The database's health for /healthz, with SQLite's quick_check now and then; logs a
    line when the answer changes (not at every poll of a load balancer)."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._lock = asyncio.Lock()  # one check at a time; the others wait for its answer
        self._integrity_checked_at: datetime | None = None
        self._damage: DatabaseHealth | None = None  # what the last quick_check found
        self._last = DatabaseHealth("ok")

    async def check(self) -> DatabaseHealth:
        async with self._lock:
            now = self.clock.now()
            due = (
                self._integrity_checked_at is None
                or now - self._integrity_checked_at >= INTEGRITY_EVERY
            )
            health = await self.store.health(integrity=due)
            if due and health.state in ("ok", "damaged"):  # quick_check ran
                self._integrity_checked_at = now
                self._damage = None if health.ok else health
            if health.ok and self._damage is not None:
                health = self._damage
            return self.noted(health)

    def noted(self, health: DatabaseHealth) -> DatabaseHealth:
        if health.state != self._last.state:
            if health.ok:
                log.warning("healthz: the database can be read again")
            else:
                log.error("healthz: %s: %s", UNHEALTHY[health.state], health.detail)
        self._last = health
        return health
