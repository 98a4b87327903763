"""What the /admin dashboard shows, counted in SQL.

Every query here returns a number of rows bounded by what is drawn (points in time, the
newest issues, statuses), never by the number of subscribers or deliveries: the counting is
done by the database (SUM over CASE, GROUP BY), so a list of 100,000 renders as fast as one
of ten. The same statements run on SQLite and PostgreSQL.

How a subscriber's status at a past moment is derived (the page says it too): the rows keep
dates, not a history. A subscriber counts from `consented_at`; as unsubscribed from
`unsubscribed_at` if they are unsubscribed now; as bounced from their latest bounce report
if they are bounced now (a refusal while sending has no date of its own: then from their
confirmation); as active from `confirmed_at` (or from consent, for an active row without
one, as imports may be); pending before that. At the present moment this gives exactly the
counts by status.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    and_,
    bindparam,
    case,
    func,
    literal,
    literal_column,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from syndicate.statuses import BounceKind, DeliveryStatus, SubscriberStatus
from syndicate.store.base import Queries
from syndicate.store.tables import bounce_events, deliveries, digest_issues, subscribers
from syndicate.store.types import UTCDateTime

STATUSES = tuple(status.value for status in SubscriberStatus)
CODES = {status: number for number, status in enumerate(STATUSES)}


@dataclass(frozen=True, slots=True)
class IssueDeliveries:
    """One issue's ledger in numbers."""

    period: str
    subject: str
    sent_at: datetime | None  # when its recipients were written into the ledger
    by_status: dict[str, int] = field(default_factory=dict)  # ledger rows per DeliveryStatus
    bounced: int = 0  # subscribers with a hard or soft bounce report naming this issue
    unsubscribed_after: int = 0  # its recipients who unsubscribed before the next issue

    def count(self, status: str) -> int:
        return self.by_status.get(status, 0)


@dataclass(frozen=True, slots=True)
class QueueNow:
    """The ledger's unsent rows at this moment, over every issue."""

    pending: int
    sending: int
    deferred: int
    next_retry_at: datetime | None  # when the earliest deferred row is due again


class DashboardQueries(Queries):
    @asynccontextmanager
    async def _counting(self) -> AsyncIterator[AsyncConnection]:
        """A read for the dashboard's counts. On PostgreSQL without JIT compilation: the
        planner's cost of a scan of a million-row ledger passes jit_above_cost, and
        compiling took 40-230 ms per statement, more than it saved (bench/dashboard.py)."""
        async with self.read() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SET LOCAL jit = off"))
            yield conn

    async def subscriber_history(self, points: Sequence[datetime]) -> list[dict[str, int]]:
        """For each moment in `points`, how many subscribers had each status then (derived
        as the module docstring says); one scan of the subscribers, whatever their number."""
        if not points:
            return []
        last_bounce = (
            select(
                bounce_events.c.subscriber_id,
                func.max(bounce_events.c.received_at).label("at"),
            )
            .where(bounce_events.c.kind.in_((BounceKind.HARD, BounceKind.SOFT)))
            .group_by(bounce_events.c.subscriber_id)
            .subquery()
        )
        # Each date reduced to its rank among the points: the first point at or after it
        # (len(points) for none, -1 for no date), grouped with the status. What comes back
        # is one row per distinct combination (a few hundred at most for twelve points,
        # whatever the number of subscribers), from which the status at every point is
        # worked out below. A binary search per date, of plain columns: a CASE per point,
        # grouped by twelve columns, took 2.7 s at a million subscribers on SQLite and
        # 1.4 s on PostgreSQL (bench/dashboard.py).
        ordered = sorted(range(len(points)), key=lambda number: points[number])
        moments = [_moment(points[number]) for number in ordered]
        dates = (
            subscribers.c.consented_at,
            subscribers.c.confirmed_at,
            subscribers.c.unsubscribed_at,
            last_bounce.c.at,
        )
        # The status and the four ranks packed into one integer, digit by digit in base
        # `base`: SQLite sorts the rows to group them, and one integer key sorts faster
        # than five columns (0.7 s against 1.0 s at a million subscribers).
        base = len(points) + 2  # a rank + 1 is a digit: 0 (no date) ... len(points) + 1
        key: ColumnElement[int] = case(
            *((subscribers.c.status == name, code) for name, code in CODES.items()),
            else_=len(STATUSES),
        )
        for date in dates:
            key = key * base + _rank(date, moments) + 1
        query = (
            select(func.count(), key.label("path"))
            .select_from(
                subscribers.outerjoin(last_bounce, last_bounce.c.subscriber_id == subscribers.c.id)
            )
            .group_by(literal_column("path"))
        )
        history = [dict.fromkeys(STATUSES, 0) for _ in points]
        never = len(points)
        async with self._counting() as conn:
            rows = (await conn.execute(query)).all()
        for count, path in rows:
            digits = []
            for _ in dates:
                path, digit = divmod(path, base)
                digits.append(digit - 1)
            bounced, unsubscribed, confirmed, consented = digits
            status = STATUSES[path] if path < len(STATUSES) else ""  # none other exists
            # Ranks of the moments the module docstring derives (a coalesce of dates is
            # the rank of the first one present).
            active = confirmed if confirmed >= 0 else never
            left = never
            if status == SubscriberStatus.ACTIVE and confirmed < 0:
                active = consented
            elif status == SubscriberStatus.UNSUBSCRIBED:
                left = unsubscribed if unsubscribed >= 0 else consented
            elif status == SubscriberStatus.BOUNCED:
                left = next(rank for rank in (bounced, confirmed, consented) if rank >= 0)
            for rank, number in enumerate(ordered):
                if rank < consented:
                    continue  # not yet a subscriber then
                if rank >= left:
                    then = status  # unsubscribed or bounced by then
                elif rank >= active:
                    then = SubscriberStatus.ACTIVE
                else:
                    then = SubscriberStatus.PENDING
                history[number][then] += count
        return history

    async def issue_deliveries(self, limit: int = 12) -> list[IssueDeliveries]:
        """The newest `limit` issues (by period, oldest first), each with its ledger counts,
        its bounces, and its recipients who unsubscribed after it was sent and before the
        next issue was (or until now, for the newest)."""
        sent = digest_issues.c.snapshot_at
        window = (
            select(
                digest_issues.c.id,
                digest_issues.c.period,
                digest_issues.c.subject,
                sent.label("sent_at"),
                # The next issue's send, among issues sent (NULLs sort apart: skipped).
                func.lead(sent, type_=UTCDateTime())
                .over(order_by=(sent.is_(None), sent, digest_issues.c.id))
                .label("next_at"),
            )
            .order_by(digest_issues.c.period.desc())
            .limit(limit)
            .subquery()
        )
        by_status = (
            select(deliveries.c.issue_id, deliveries.c.status, func.count())
            .where(deliveries.c.issue_id.in_(bindparam("ids", expanding=True)))
            .group_by(deliveries.c.issue_id, deliveries.c.status)
        )
        bounced = (
            select(bounce_events.c.issue_id, func.count(bounce_events.c.subscriber_id.distinct()))
            .where(
                bounce_events.c.issue_id.in_(bindparam("ids", expanding=True)),
                bounce_events.c.kind.in_((BounceKind.HARD, BounceKind.SOFT)),
            )
            .group_by(bounce_events.c.issue_id)
        )
        async with self._counting() as conn:
            issues = (await conn.execute(select(window).order_by(window.c.period))).all()
            statuses: dict[int, dict[str, int]] = {}
            # The issues' ids as values (at most `limit`), not a subquery: PostgreSQL then
            # filters its scan of the ledger instead of hash-joining every row to them.
            ids = {"ids": [issue.id for issue in issues]}
            for issue_id, status, count in await conn.execute(by_status, ids):
                statuses.setdefault(issue_id, {})[status] = count
            bounces = {issue_id: count for issue_id, count in await conn.execute(bounced, ids)}
            unsubscribed = _unsubscribed_after(issues)
            gone = (
                {issue_id: count for issue_id, count in await conn.execute(unsubscribed)}
                if unsubscribed is not None
                else {}
            )
        return [
            IssueDeliveries(
                period=issue.period,
                subject=issue.subject,
                sent_at=issue.sent_at,
                by_status=statuses.get(issue.id, {}),
                bounced=bounces.get(issue.id, 0),
                unsubscribed_after=gone.get(issue.id, 0),
            )
            for issue in issues
        ]

    async def queue_now(self) -> QueueNow:
        """The ledger's pending, sending and deferred rows, and the next retry."""
        unsent = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED)
        # Issue by issue through the (issue_id, status, id) index: a few index ranges per
        # issue, where a filter on the status alone read every ledger row's index entry
        # (0.5 s at a million subscribers and twelve issues, bench/dashboard.py). The next
        # retry is the deferred group's earliest: asked alone, SQLite scanned the table.
        counts = (
            select(
                deliveries.c.status,
                func.count(),
                func.min(deliveries.c.next_attempt_at, type_=UTCDateTime()),
            )
            .where(
                deliveries.c.issue_id.in_(select(digest_issues.c.id)),
                deliveries.c.status.in_(unsent),
            )
            .group_by(deliveries.c.status)
        )
        async with self._counting() as conn:
            rows = (await conn.execute(counts)).all()
        found = {status: count for status, count, _ in rows}
        next_retry = next(
            (first for status, _, first in rows if status == DeliveryStatus.DEFERRED), None
        )
        return QueueNow(
            pending=found.get(DeliveryStatus.PENDING, 0),
            sending=found.get(DeliveryStatus.SENDING, 0),
            deferred=found.get(DeliveryStatus.DEFERRED, 0),
            next_retry_at=next_retry,
        )


def _unsubscribed_after(issues: Sequence[Row[Any]]) -> Select[tuple[int, int]] | None:
    """Per issue, its recipients who unsubscribed after it was sent and before the next
    issue was (`next_at`; until now for the newest). The intervals are disjoint, so each
    subscriber who ever unsubscribed falls in at most one: a CASE over them picks the
    issue, and one unique-index lookup checks they received it. One scan of the
    subscribers; it used to join every ledger row of the issues to its subscriber (1.1 s
    at a million subscribers on SQLite, bench/dashboard.py)."""
    sent = [issue for issue in issues if issue.sent_at is not None]
    if not sent:
        return None
    moment = subscribers.c.unsubscribed_at
    intervals = []
    for issue in sent:
        after: ColumnElement[bool] = moment >= literal(issue.sent_at, UTCDateTime())
        if issue.next_at is not None:
            after = and_(after, moment < literal(issue.next_at, UTCDateTime()))
        intervals.append((after, issue.id))
    left = (
        select(subscribers.c.id.label("subscriber_id"), case(*intervals).label("issue_id"))
        .where(moment >= literal(min(issue.sent_at for issue in sent), UTCDateTime()))
        .subquery()
    )
    # A scalar subquery with LIMIT, not EXISTS: PostgreSQL turned EXISTS into a hash join
    # reading every ledger row (1.1 s); this is one unique-index lookup per subscriber.
    received = (
        select(literal_column("1"))
        .where(
            deliveries.c.issue_id == left.c.issue_id,
            deliveries.c.subscriber_id == left.c.subscriber_id,
        )
        .limit(1)
        .scalar_subquery()
        .is_not(None)
    )
    return (
        select(left.c.issue_id, func.count())
        .where(left.c.issue_id.is_not(None), received)
        .group_by(left.c.issue_id)
    )


def _rank(date: ColumnElement[Any], points: Sequence[ColumnElement[datetime]]) -> Any:
    """The rank of the first of `points` (ascending) at or after `date`, as SQL: len(points)
    when none is, -1 when `date` is NULL. A binary search, so about log2(len(points))
    comparisons a row."""

    def search(first: int, last: int) -> Any:  # the answer lies in [first, last]
        if first == last:
            return literal_column(str(first))
        middle = (first + last) // 2
        return case((date <= points[middle], search(first, middle)), else_=search(middle + 1, last))

    return case((date.is_(None), -1), else_=search(0, len(points)))


def _moment(point: datetime) -> ColumnElement[datetime]:
    # Bound with the column type, so SQLite compares its stored UTC text with UTC text.
    return literal(point, UTCDateTime())
