"""Recording delivery outcomes as they happen, many to a transaction (group commit).

    recorder = OutcomeRecorder(write)   # write(outcomes): stores them in one transaction
    stored = recorder.add(outcome)      # a future, done once the outcome is in the database
    await stored                        # before this connection sends its next message
    await recorder.close()              # stores what is left, then stops

The sender waits for a connection's previous outcome to be stored before that connection
sends its next message, so after a kill -9 the only messages sent but not recorded are those
on the wire: one per connection. A transaction per message would cost too much; instead the
recorder writes, in one transaction, every outcome that arrived while it was writing the
previous ones, without waiting for more. So the groups grow by themselves when it matters:
the busier the process (or the slower the database), the longer a write takes to come back
and the more outcomes it finds waiting. A connection waits little: it builds its next
message meanwhile. The writes go through syndicate.store.outcomes (a connection of its own).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from syndicate.store.outcomes import Outcome


class OutcomeRecorder:
    """Group commit of delivery outcomes; see the module docstring. Runs in the event loop
    it is created in. If a write fails, its outcomes' futures and every later add() carry
    the error, and close() raises it."""

    def __init__(self, write: Callable[[list[Outcome]], Awaitable[None]]) -> None:
        self._write = write
        self._loop = asyncio.get_running_loop()
        self._waiting: list[Outcome] = []
        self._stored: asyncio.Future[None] = self._loop.create_future()  # of `_waiting`
        self._arrived = asyncio.Event()
        self._closing = False
        self._failed: BaseException | None = None
        self._task = asyncio.ensure_future(self._run())

    def add(self, outcome: Outcome) -> asyncio.Future[None]:
        """Queue `outcome`; the future is done when it is stored (or failed to be)."""
        if self._failed is not None:
            failed: asyncio.Future[None] = self._loop.create_future()
            self._settle(failed, self._failed)
            return failed
        self._waiting.append(outcome)
        self._arrived.set()
        return self._stored

    async def close(self) -> None:
        """Store every outcome added so far, then stop; raises what a write raised."""
        self._closing = True
        self._arrived.set()
        await self._task

    async def _run(self) -> None:
        while True:
            if not self._waiting:
                if self._closing:
                    return
                await self._arrived.wait()
                self._arrived.clear()
                continue
            outcomes, self._waiting = self._waiting, []
            stored, self._stored = self._stored, self._loop.create_future()
            try:
                await self._write(outcomes)
            except BaseException as error:
                self._fail(stored, error)
                raise
            stored.set_result(None)

    def _fail(self, stored: asyncio.Future[None], error: BaseException) -> None:
        self._failed = error
        self._settle(stored, error)
        self._settle(self._stored, error)

    @staticmethod
    def _settle(future: asyncio.Future[None], error: BaseException) -> None:
        if isinstance(error, asyncio.CancelledError):
            future.cancel()
            return
        future.set_exception(error)
        # Retrieved here: a future nobody awaits (its connection had finished) must not be
        # logged as "exception never retrieved"; close() raises the error anyway.
        future.exception()
