"""Recording what happened to claimed deliveries: the SQL, and a writer of its own for a sender.

    writer = store.outcome_writer(owner, bounce_limit)
    await writer.write(outcomes, now)      # one transaction
    await writer.close()

A sender records outcomes a few at a time, as they happen (syndicate.mail.recorder), so a
transaction's own cost counts. Through the async engine every statement of it is a trip to
aiosqlite's thread and back (on PostgreSQL a pool check-out with a ping, and a reset after),
about six times the CPU of the same transaction on a plain connection run in a thread of its
own: 4.1 against 0.7 ms on SQLite, measured on a busy two-core machine. So the writer holds
one synchronous connection, used only by its one thread, and a transaction is one hop there
and back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, update

from syndicate.statuses import DeliveryStatus, SubscriberStatus
from syndicate.store.engine import WRITE_OPTION, create_sync_engine
from syndicate.store.tables import deliveries, subscribers


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one claimed delivery, to be recorded with others in one go."""

    delivery_id: int
    subscriber_id: int
    status: str  # a DeliveryStatus: sent, deferred, failed, skipped, pending (released unsent)
    message_id: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    bounced: bool = False  # a permanent refusal of the address: counts towards "bounced"


# Built once: a sender records outcomes a few at a time, and building these statements cost
# more than running them (SQLAlchemy reuses the compiled form of the same statement object).
_MINE = and_(
    deliveries.c.id == bindparam("b_id"),
    deliveries.c.claimed_by == bindparam("b_owner"),
    deliveries.c.status == DeliveryStatus.SENDING,
)
# Nearly every outcome is "sent": few values a row.
_SENT = (
    update(deliveries)
    .where(_MINE)
    .values(
        status=DeliveryStatus.SENT,
        message_id=bindparam("b_message_id"),
        last_error=None,
        next_attempt_at=None,
        sent_at=bindparam("b_now"),
    )
)
_OTHER = (
    update(deliveries)
    .where(_MINE)
    .values(
        status=bindparam("b_status"),
        message_id=bindparam("b_message_id"),
        last_error=bindparam("b_error"),
        next_attempt_at=bindparam("b_next"),
        sent_at=None,
        # A released row was not tried: give its attempt back.
        attempts=deliveries.c.attempts - bindparam("b_untried"),
    )
)


def write_outcomes(
    conn: Connection, outcomes: Sequence[Outcome], owner: str, now: datetime, bounce_limit: int
) -> None:
    """Record outcomes, in the caller's transaction.

    Only rows still claimed by `owner` change: if this sender was presumed dead and its
    rows were taken over, the new owner's record wins.
    """
    sent = [
        {"b_id": o.delivery_id, "b_owner": owner, "b_message_id": o.message_id, "b_now": now}
        for o in outcomes
        if o.status == DeliveryStatus.SENT
    ]
    others = [
        {
            "b_id": outcome.delivery_id,
            "b_owner": owner,
            "b_status": outcome.status,
            "b_message_id": outcome.message_id,
            "b_error": outcome.error,
            "b_next": outcome.next_attempt_at,
            "b_untried": 1 if outcome.status == DeliveryStatus.PENDING else 0,
        }
        for outcome in outcomes
        if outcome.status != DeliveryStatus.SENT
    ]
    bounced = [outcome.subscriber_id for outcome in outcomes if outcome.bounced]
    if sent:
        conn.execute(_SENT, sent)
    if others:
        conn.execute(_OTHER, others)
    if bounced:
        conn.execute(
            update(subscribers)
            .where(subscribers.c.id.in_(bounced))
            .values(bounce_count=subscribers.c.bounce_count + 1)
        )
        conn.execute(
            update(subscribers)
            .where(
                subscribers.c.id.in_(bounced),
                subscribers.c.status == SubscriberStatus.ACTIVE,
                subscribers.c.bounce_count >= bounce_limit,
            )
            .values(status=SubscriberStatus.BOUNCED)
        )


# The usual group, all "sent", in plain SQL on the driver's connection: SQLAlchemy's own work
# for an execute (finding the compiled statement, processing parameters, setting up a result)
# cost more CPU than SQLite's, and the writer runs often. SQLite runs one UPDATE a row in
# process; PostgreSQL gets one statement for the group (the rows as two arrays), which is a
# transaction of its own: one round trip. 'sent' and 'sending' are DeliveryStatus values,
# spelled out in the SQL (tests/test_statuses.py reads them back).
_SENT_SQLITE = (
    "UPDATE deliveries SET status = 'sent', message_id = ?, last_error = NULL,"
    " next_attempt_at = NULL, sent_at = ?"
    " WHERE id = ? AND claimed_by = ? AND status = 'sending'"
)
_SENT_POSTGRESQL = (
    "UPDATE deliveries SET status = 'sent', message_id = sent.message_id, last_error = NULL,"
    " next_attempt_at = NULL, sent_at = %s"
    " FROM unnest(%s::integer[], %s::text[]) AS sent(id, message_id)"
    " WHERE deliveries.id = sent.id AND claimed_by = %s AND status = 'sending'"
)


class OutcomeWriter:
    """Writes one owner's outcomes on a connection of its own; see the module docstring.
    Made by Store.outcome_writer(); close() it when done."""

    def __init__(
        self, url: str, owner: str, bounce_limit: int, sqlite_writer: asyncio.Lock | None
    ) -> None:
        self.owner = owner
        self.bounce_limit = bounce_limit
        # This process's SQLite writers queue here rather than in SQLite's busy handler.
        self._sqlite_writer = sqlite_writer
        self._engine = create_sync_engine(url)
        dialect = self._engine.dialect
        self._sqlite = dialect.name == "sqlite"
        # sent_at as SQLAlchemy would bind it (UTCDateTime: naive UTC on SQLite).
        self._sent_at = deliveries.c.sent_at.type.bind_processor(dialect)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="syndicate-outcomes")
        self._conn: Connection | None = None  # opened, used and closed in `_thread` only

    async def write(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        """Record `outcomes` in one transaction."""
        if not outcomes:
            return
        loop = asyncio.get_running_loop()
        async with self._sqlite_writer or contextlib.nullcontext():
            await loop.run_in_executor(self._thread, self._write, outcomes, now)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._thread, self._close)
        finally:
            self._thread.shutdown(wait=False)

    def _write(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        if self._conn is None:
            self._conn = self._engine.connect().execution_options(**{WRITE_OPTION: True})
            if not self._sqlite:
                # A commit need not wait for PostgreSQL's disk flush: it survives the
                # sender's death (what this is for), and a crash of the server itself
                # loses at most the last moments, as SQLite's synchronous=NORMAL does.
                with self._conn.begin():
                    self._conn.exec_driver_sql("SET synchronous_commit TO OFF")
        if all(outcome.status == DeliveryStatus.SENT for outcome in outcomes):
            self._write_sent(outcomes, now)
            return
        with self._conn.begin():
            write_outcomes(self._conn, outcomes, self.owner, now, self.bounce_limit)

    def _write_sent(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        """What write_outcomes does for "sent" outcomes, on the driver's connection."""
        assert self._conn is not None
        driver = self._conn.connection.dbapi_connection
        assert driver is not None
        sent_at = self._sent_at(now) if self._sent_at is not None else now
        cursor = driver.cursor()
        try:
            if self._sqlite:  # the connection is in autocommit mode (syndicate.store.engine)
                cursor.execute("BEGIN IMMEDIATE")
                rows = [(o.message_id, sent_at, o.delivery_id, self.owner) for o in outcomes]
                cursor.executemany(_SENT_SQLITE, rows)
                cursor.execute("COMMIT")
            else:
                ids = [outcome.delivery_id for outcome in outcomes]
                message_ids = [outcome.message_id for outcome in outcomes]
                driver.autocommit = True  # one statement: a transaction of its own
                try:
                    cursor.execute(_SENT_POSTGRESQL, (sent_at, ids, message_ids, self.owner))
                finally:
                    driver.autocommit = False
        except BaseException:
            driver.rollback()
            raise
        finally:
            cursor.close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._engine.dispose()
