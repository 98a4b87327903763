"""The delivery ledger: one row per (issue, subscriber), whose status says what was sent.

    pending ──claim──► sending ──► sent
       ▲                 │ ├─────► deferred ──(next_attempt_at passes)──► claimable again
       └──release────────┘ ├─────► failed   (5xx, or too many transient failures)
                           └─────► skipped  (unsubscribed meanwhile, nothing for them)

A row is claimed by one sender at a time: on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so two
processes claiming together take different rows without waiting for each other; on SQLite
the claim runs in a BEGIN IMMEDIATE transaction, which serialises writers anyway. A row left
"sending" by a sender that died is claimable again once its owner is known dead, or once its
lease has run out (an owner on another machine cannot be asked).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)

from syndicate.models import ClaimedDelivery, Recipient
from syndicate.statuses import DeliveryStatus, SubscriberStatus
from syndicate.store.base import Queries
from syndicate.store.outcomes import Outcome, OutcomeWriter
from syndicate.store.tables import deliveries, digest_issues, subscribers

__all__ = ["DeliveryQueries", "Outcome"]


class DeliveryQueries(Queries):
    async def snapshot_deliveries(self, issue_id: int, now: datetime) -> int:
        """Write one pending row per active subscriber, once per issue; the rows created.

        The issue row is locked first, so two senders starting together snapshot once; a
        second call (a resumed send) creates nothing, so someone who subscribed after the
        snapshot does not get an old issue.
        """
        async with self.write() as conn:
            issue = (
                await conn.execute(
                    select(digest_issues.c.snapshot_at)
                    .where(digest_issues.c.id == issue_id)
                    .with_for_update()
                )
            ).one()
            if issue.snapshot_at is not None:
                return 0
            recipients = select(
                literal(issue_id),
                subscribers.c.id,
                literal(DeliveryStatus.PENDING.value),
                literal(0),
            ).where(subscribers.c.status == SubscriberStatus.ACTIVE)
            # No ON CONFLICT: the issue has no rows before its snapshot (only the snapshot
            # writes them, once, under the issue's lock; the unique constraint still holds),
            # and on PostgreSQL its speculative insertion of each row is a large part of a
            # million-row snapshot (bench/scale_send.py).
            statement = insert(deliveries).from_select(
                ["issue_id", "subscriber_id", "status", "attempts"], recipients
            )
            # The rows created, counted before and after: rowcount of INSERT ... SELECT is not
            # portable, and RETURNING would hold one row per recipient in memory (12 MiB at
            # 100,000 subscribers, bench/send.py), so peak memory would grow with the list.
            # Exact: only a snapshot adds rows, and it holds the issue row locked.
            rows = select(func.count()).where(deliveries.c.issue_id == issue_id)
            before = (await conn.execute(rows)).scalar_one()
            await conn.execute(statement)
            created = (await conn.execute(rows)).scalar_one() - before
            await conn.execute(
                update(digest_issues).where(digest_issues.c.id == issue_id).values(snapshot_at=now)
            )
        if created and self.engine.dialect.name == "postgresql":
            # The planner's idea of the ledger is from before these rows (autovacuum's
            # ANALYZE comes minutes later, if at all before the send ends): taking the
            # issue's few rows for many, it read and sorted every pending row at each claim
            # (0.4 s a claim at 1,000,000 subscribers, bench/scale_send.py).
            async with self.write() as conn:
                await conn.execute(text("ANALYZE deliveries"))
        return created

    async def claim_deliveries(
        self,
        issue_id: int,
        owner: str,
        now: datetime,
        limit: int,
        *,
        lease_expired_before: datetime,
        dead_owners: Collection[str] = (),
        pending_after: int = 0,
    ) -> list[ClaimedDelivery]:
        """Take up to `limit` rows that are due (pending, deferred and due, or "sending" for
        an owner that is dead or whose lease expired), mark them sending for `owner`, and
        return them with their subscribers, in id order.

        `pending_after`: take only pending rows past this id (a sender passes the last id
        it claimed, and looks from the start again when the claim comes back short).
        """
        # One query per kind, each an index range on (issue_id, status, id): a single OR of
        # the three makes the database walk the issue's rows in id order, past every row
        # already sent, which grows with the list (quadratic over a send). So can the
        # pending one on PostgreSQL, whose statistics (all pending, from the snapshot) make
        # the primary key's order look as good: `pending_after` starts either walk where
        # the last claim ended (1.2 s a claim, 900,000 rows into a send to a million).
        claimable = (
            and_(deliveries.c.status == DeliveryStatus.PENDING, deliveries.c.id > pending_after),
            and_(
                deliveries.c.status == DeliveryStatus.DEFERRED, deliveries.c.next_attempt_at <= now
            ),
            and_(
                deliveries.c.status == DeliveryStatus.SENDING,
                or_(
                    deliveries.c.claimed_at < lease_expired_before,
                    deliveries.c.claimed_by.in_(list(dead_owners)),
                ),
            ),
        )
        async with self.write() as conn:
            ids: list[int] = []
            for condition in claimable:
                chosen = (
                    select(deliveries.c.id)
                    .where(deliveries.c.issue_id == issue_id, condition)
                    .order_by(deliveries.c.id)
                    .limit(limit - len(ids))
                    .with_for_update(skip_locked=True)
                )
                ids.extend((await conn.execute(chosen)).scalars())
                if len(ids) >= limit:
                    break
            if not ids:
                return []
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.id.in_(ids))
                .values(
                    status=DeliveryStatus.SENDING,
                    claimed_by=owner,
                    claimed_at=now,
                    attempts=deliveries.c.attempts + 1,
                )
            )
            rows = (
                await conn.execute(
                    select(
                        deliveries.c.id,
                        deliveries.c.attempts,
                        subscribers.c.id,
                        subscribers.c.email,
                        subscribers.c.name,
                        subscribers.c.status,
                        subscribers.c.categories,
                        subscribers.c.language,
                        subscribers.c.other_languages,
                    )
                    .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
                    .where(deliveries.c.id.in_(ids))
                    .order_by(deliveries.c.id)
                )
            ).all()
        return [
            ClaimedDelivery(
                row[0],
                row[1],
                Recipient(row[2], row[3], row[4], row[5], tuple(row[6] or ()), row[7], row[8]),
            )
            for row in rows
        ]

    def outcome_writer(self, owner: str, bounce_limit: int) -> OutcomeWriter:
        """A writer of `owner`'s outcomes on a connection of its own, for a sender that
        records them a few at a time (syndicate.store.outcomes); close() it when done."""
        return OutcomeWriter(self.url, owner, bounce_limit, self._sqlite_writer)

    async def issues_with_due_deliveries(
        self, now: datetime, lease_expired_before: datetime
    ) -> list[int]:
        """Issues with rows to send now: pending, deferred and due, or abandoned "sending"
        (past the lease), oldest issue first."""

        # One EXISTS per kind, each an index range on (issue_id, status) that stops at its
        # first row: an OR of the three would read every pending row of an issue being sent
        # (a million, at every check of the worker's during a send to a million).
        def any_row(*condition: ColumnElement[bool]) -> ColumnElement[bool]:
            return exists().where(deliveries.c.issue_id == digest_issues.c.id, *condition)

        query = (
            select(digest_issues.c.id)
            .where(
                or_(
                    any_row(deliveries.c.status == DeliveryStatus.PENDING),
                    any_row(
                        deliveries.c.status == DeliveryStatus.DEFERRED,
                        deliveries.c.next_attempt_at <= now,
                    ),
                    any_row(
                        deliveries.c.status == DeliveryStatus.SENDING,
                        deliveries.c.claimed_at < lease_expired_before,
                    ),
                )
            )
            .order_by(digest_issues.c.id)
        )
        async with self.read() as conn:
            return list((await conn.execute(query)).scalars())

    async def sending_owners(self, issue_id: int) -> set[str]:
        """Who holds rows of the issue in "sending" (to find owners that died)."""
        query = (
            select(deliveries.c.claimed_by)
            .where(deliveries.c.issue_id == issue_id, deliveries.c.status == DeliveryStatus.SENDING)
            .distinct()
        )
        async with self.read() as conn:
            return {owner for owner in (await conn.execute(query)).scalars() if owner}

    async def delivery_counts(self, issue_id: int | None = None) -> dict[str, int]:
        """Rows by status, for one issue or the whole ledger."""
        query = select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
        if issue_id is not None:
            query = query.where(deliveries.c.issue_id == issue_id)
        async with self.read() as conn:
            return {status: count for status, count in (await conn.execute(query)).all()}

    async def deliveries_of(
        self, subscriber_id: int, issues: int = 12
    ) -> list[tuple[str, str, datetime | None, str | None]]:
        """(period, status, sent_at, last_error) of one subscriber's copies of the newest
        `issues` issues, newest first. Each is found through the (issue, subscriber) unique
        index: the ledger has no index on the subscriber alone, and needs none for this."""
        newest = (
            select(digest_issues.c.id, digest_issues.c.period)
            .order_by(digest_issues.c.id.desc())
            .limit(issues)
            .subquery()
        )
        query = (
            select(
                newest.c.period,
                deliveries.c.status,
                deliveries.c.sent_at,
                deliveries.c.last_error,
            )
            .join(
                deliveries,
                and_(
                    deliveries.c.issue_id == newest.c.id,
                    deliveries.c.subscriber_id == subscriber_id,
                ),
            )
            .order_by(newest.c.id.desc())
        )
        async with self.read() as conn:
            return [tuple(row) for row in (await conn.execute(query)).all()]  # type: ignore[misc]

    async def sent_since(self, since: datetime) -> int:
        """Deliveries sent at or after `since`, across issues (the send rate for /metrics)."""
        query = select(func.count()).where(
            deliveries.c.status == DeliveryStatus.SENT, deliveries.c.sent_at >= since
        )
        async with self.read() as conn:
            return (await conn.execute(query)).scalar_one()

    async def next_retry_at(self, issue_id: int) -> datetime | None:
        """When the earliest deferred delivery of the issue is due again."""
        query = select(func.min(deliveries.c.next_attempt_at)).where(
            deliveries.c.issue_id == issue_id, deliveries.c.status == DeliveryStatus.DEFERRED
        )
        async with self.read() as conn:
            return (await conn.execute(query)).scalar_one_or_none()
