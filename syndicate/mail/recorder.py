"""Recording delivery outcomes as they happen, many to a transaction (group commit).

    recorder = OutcomeRecorder(write, connections=16)  # write(outcomes): one transaction
    ticket = recorder.add(outcome)      # queued with the others not yet written
    await recorder.stored(ticket)       # before this connection sends its next message
    await recorder.close()              # stores what is left, then stops

The sender waits for a connection's previous outcome to be stored before that connection
sends its next message, so after a kill -9 the only messages sent but not recorded are those
on the wire: one per connection. A transaction per message would cost too much; instead
outcomes queue until a connection waits for one of them (it has built its next message
meanwhile), and then every queued outcome goes in one transaction; those that arrive while
it is written go in the next. How long a write waits for company depends on how busy the
process is (see BUSY): behind a slow relay it goes at once, since every connection's wait
would slow the send; when the event loop is busy it waits until the whole pool waits, so a
pool of 16 has about 9 outcomes a write instead of 5 (bench/send.py). The writes go through
syndicate.store.outcomes, on a connection of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from syndicate.store.outcomes import Outcome

# Whether the process is busy: the recorder, asked for a write, waited at least BUSY seconds
# to run (measured: 1 to 6 ms with 16 connections sending as fast as they can, 0.04 ms behind
# a relay taking 100 ms a message). Then waiting a little longer costs nothing, since the
# other connections have work meanwhile: the write waits until every connection waits for it,
# at most PATIENCE seconds.
BUSY = 0.0005
PATIENCE = 0.01


class OutcomeRecorder:
    """Group commit of delivery outcomes; see the module docstring. `connections`: how many
    senders may wait at once. Runs in the event loop it is created in. If a write fails, its
    outcomes' futures and every later add() carry the error, and close() raises it."""

    def __init__(
        self, write: Callable[[list[Outcome]], Awaitable[None]], *, connections: int = 1
    ) -> None:
        self._write = write
        self._connections = connections
        self._loop = asyncio.get_running_loop()
        self._waiting: list[Outcome] = []
        self._stored: asyncio.Future[None] = self._loop.create_future()  # of `_waiting`
        self._blocked = 0  # connections waiting for `_waiting` to be stored
        self._asked_at = 0.0  # when the first of them asked (loop time)
        self._wake = asyncio.Event()
        self._all_blocked = asyncio.Event()
        self._closing = False
        self._failed: BaseException | None = None
        self._task = asyncio.ensure_future(self._run())

    def add(self, outcome: Outcome) -> asyncio.Future[None]:
        """Queue `outcome`; the future (pass it to stored()) is done once it is stored."""
        if self._failed is not None:
            failed: asyncio.Future[None] = self._loop.create_future()
            self._settle(failed, self._failed)
            return failed
        self._waiting.append(outcome)
        return self._stored

    async def stored(self, ticket: asyncio.Future[None]) -> None:
        """Wait until the outcome that add() gave `ticket` for is stored; its group is
        written now if its write has not begun yet (see BUSY)."""
        if ticket is self._stored and not ticket.done():
            if self._blocked == 0:
                self._asked_at = self._loop.time()
                self._wake.set()
            self._blocked += 1
            if self._blocked >= self._connections:
                self._all_blocked.set()
        await ticket

    async def close(self) -> None:
        """Store every outcome added so far, then stop; raises what a write raised."""
        self._closing = True
        self._wake.set()
        self._all_blocked.set()
        await self._task

    async def _run(self) -> None:
        while True:
            if self._waiting and (self._blocked or self._closing):
                await self._gather()
                self._blocked = 0
                outcomes, self._waiting = self._waiting, []
                stored, self._stored = self._stored, self._loop.create_future()
                try:
                    await self._write(outcomes)
                except BaseException as error:
                    self._fail(stored, error)
                    raise
                stored.set_result(None)
            elif self._closing:
                return
            else:
                await self._wake.wait()
                self._wake.clear()

    async def _gather(self) -> None:
        """When the process is busy, wait until every connection waits (or PATIENCE)."""
        busy = self._loop.time() - self._asked_at >= BUSY
        if self._closing or not busy or self._blocked >= self._connections:
            return
        self._all_blocked.clear()
        timer = self._loop.call_later(PATIENCE, self._all_blocked.set)
        try:
            await self._all_blocked.wait()
        finally:
            timer.cancel()

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
