"""Recording delivery outcomes as they happen, many to a transaction (group commit).

    recorder = OutcomeRecorder(write)   # write(outcomes): stores them in one transaction
    ticket = recorder.add(outcome)      # queued with the others not yet written
    await recorder.stored(ticket)       # before this connection sends its next message
    await recorder.close()              # stores what is left, then stops

The sender waits for a connection's previous outcome to be stored before that connection
sends its next message, so after a kill -9 the only messages sent but not recorded are those
on the wire: one per connection. A transaction per message would cost too much; instead
outcomes queue until some connection waits for one of them (it has built its next message
meanwhile), and then every queued outcome goes in one transaction; those that arrive while
it is written go in the next. The groups grow by themselves when it matters: the busier the
process, the more outcomes queue before a write comes back (measured: about 3 a write with
16 connections on a loaded machine, 5 when the process had a core to itself). The writes go
through syndicate.store.outcomes, a connection of their own.
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
        self._wanted = False  # someone waits for `_waiting` to be stored
        self._wake = asyncio.Event()
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
        """Wait until the outcome that add() gave `ticket` for is stored: its group is
        written now if its write has not begun yet."""
        if ticket is self._stored and not ticket.done():
            self._wanted = True
            self._wake.set()
        await ticket

    async def close(self) -> None:
        """Store every outcome added so far, then stop; raises what a write raised."""
        self._closing = True
        self._wake.set()
        await self._task

    async def _run(self) -> None:
        while True:
            if self._waiting and (self._wanted or self._closing):
                self._wanted = False
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
