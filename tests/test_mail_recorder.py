"""Group commit of delivery outcomes (syndicate.mail.recorder).

The write function is the recorder's interface to the store; here it is a function that
notes each group and waits until the test lets it finish, so the order of events is set by
the test, not by timing. The real store behind it is tested in test_store_deliveries.py,
test_mail_send.py and the process tests.
"""

from __future__ import annotations

import asyncio

import pytest

from syndicate.mail.recorder import OutcomeRecorder
from syndicate.store.outcomes import Outcome


class GatedWrites:
    """A write function whose every call is noted and held until release()."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.groups: list[list[int]] = []
        self.started = asyncio.Semaphore(0)  # one release per write that began
        self._gates: list[asyncio.Event] = []
        self.fail = fail

    async def __call__(self, outcomes: list[Outcome]) -> None:
        self.groups.append([outcome.delivery_id for outcome in outcomes])
        gate = asyncio.Event()
        self._gates.append(gate)
        self.started.release()
        await gate.wait()
        if self.fail is not None:
            raise self.fail

    def release(self) -> None:
        self._gates[len(self.groups) - 1].set()


def outcome(delivery_id: int) -> Outcome:
    return Outcome(delivery_id, delivery_id, "sent", message_id=f"<{delivery_id}@test>")


async def test_outcomes_are_written_together_when_one_of_them_is_waited_for() -> None:
    writes = GatedWrites()
    recorder = OutcomeRecorder(writes)
    first = recorder.add(outcome(1))
    second = recorder.add(outcome(2))
    assert first is second  # one transaction for both
    waiting = asyncio.ensure_future(recorder.stored(first))
    await writes.started.acquire()  # writing [1, 2], because someone waits for them
    third = recorder.add(outcome(3))  # arrives during that write: goes in the next one
    fourth = recorder.add(outcome(4))
    assert third is fourth and third is not first
    assert not waiting.done()
    writes.release()
    await waiting
    assert first.done() and not third.done()  # nobody waits for [3, 4] yet
    waiting = asyncio.ensure_future(recorder.stored(fourth))
    await writes.started.acquire()
    writes.release()
    await waiting
    await recorder.stored(first)  # stored already: returns at once
    await recorder.close()
    assert writes.groups == [[1, 2], [3, 4]]


async def test_close_stores_what_is_left() -> None:
    writes = GatedWrites()
    recorder = OutcomeRecorder(writes)
    tickets = [recorder.add(outcome(n)) for n in range(1, 4)]
    closing = asyncio.ensure_future(recorder.close())
    await writes.started.acquire()
    recorder.add(outcome(4))  # arrives while [1, 2, 3] are written: stored before close ends
    writes.release()
    await writes.started.acquire()
    writes.release()
    await closing
    assert writes.groups == [[1, 2, 3], [4]]
    assert all(ticket.done() and ticket.exception() is None for ticket in tickets)


async def test_a_failed_write_fails_its_outcomes_later_ones_and_close() -> None:
    writes = GatedWrites(fail=OSError("disk I/O error"))
    recorder = OutcomeRecorder(writes)
    first = recorder.add(outcome(1))
    waiting = asyncio.ensure_future(recorder.stored(first))
    await writes.started.acquire()
    queued = recorder.add(outcome(2))  # queued behind the write that will fail
    writes.release()
    with pytest.raises(OSError, match="disk I/O error"):
        await waiting
    with pytest.raises(OSError, match="disk I/O error"):
        await recorder.stored(queued)
    with pytest.raises(OSError, match="disk I/O error"):
        await recorder.stored(recorder.add(outcome(3)))
    with pytest.raises(OSError, match="disk I/O error"):
        await recorder.close()
    assert writes.groups == [[1]]  # nothing is written after a failure


async def test_with_several_connections_a_write_takes_those_that_wait_together() -> None:
    writes = GatedWrites()
    recorder = OutcomeRecorder(writes, connections=2)
    first = recorder.add(outcome(1))
    recorder.add(outcome(2))
    # Both connections wait: one write holds both, whether or not the loop is busy.
    waiting = [asyncio.ensure_future(recorder.stored(first)) for _ in range(2)]
    await writes.started.acquire()
    writes.release()
    await asyncio.gather(*waiting)
    # One connection waits and the other never does: it is written all the same.
    third = recorder.add(outcome(3))
    alone = asyncio.ensure_future(recorder.stored(third))
    await writes.started.acquire()
    writes.release()
    await alone
    await recorder.close()
    assert writes.groups == [[1, 2], [3]]
