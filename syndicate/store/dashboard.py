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

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, func, literal, literal_column, or_, select

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
        status = subscribers.c.status
        unsubscribed_at = case(
            (
                status == SubscriberStatus.UNSUBSCRIBED,
                func.coalesce(subscribers.c.unsubscribed_at, subscribers.c.consented_at),
            ),
            else_=None,
        )
        bounced_at = case(
            (
                status == SubscriberStatus.BOUNCED,
                func.coalesce(
                    last_bounce.c.at, subscribers.c.confirmed_at, subscribers.c.consented_at
                ),
            ),
            else_=None,
        )
        active_from = case(
            (
                status == SubscriberStatus.ACTIVE,
                func.coalesce(subscribers.c.confirmed_at, subscribers.c.consented_at),
            ),
            else_=subscribers.c.confirmed_at,
        )
        # Each subscriber's status at every point, as a row of small codes; grouped by that
        # row, so what comes back is one row per distinct path through the statuses (a
        # few hundred at most for twelve points, whatever the number of subscribers), and
        # each status is worked out once per point rather than once per point and status.
        states = []
        for number, point in enumerate(points):
            at = _moment(point)
            states.append(
                case(
                    (subscribers.c.consented_at > at, -1),
                    (unsubscribed_at <= at, CODES[SubscriberStatus.UNSUBSCRIBED]),
                    (bounced_at <= at, CODES[SubscriberStatus.BOUNCED]),
                    (active_from <= at, CODES[SubscriberStatus.ACTIVE]),
                    else_=CODES[SubscriberStatus.PENDING],
                ).label(f"s{number}")
            )
        query = (
            select(func.count(), *states)
            .select_from(
                subscribers.outerjoin(last_bounce, last_bounce.c.subscriber_id == subscribers.c.id)
            )
            .group_by(*(literal_column(f"s{number}") for number in range(len(points))))
        )
        history = [dict.fromkeys(STATUSES, 0) for _ in points]
        async with self.read() as conn:
            for count, *path in await conn.execute(query):
                for counts, code in zip(history, path, strict=True):
                    if code >= 0:
                        counts[STATUSES[code]] += count
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
            .where(deliveries.c.issue_id.in_(select(window.c.id)))
            .group_by(deliveries.c.issue_id, deliveries.c.status)
        )
        bounced = (
            select(bounce_events.c.issue_id, func.count(bounce_events.c.subscriber_id.distinct()))
            .where(
                bounce_events.c.issue_id.in_(select(window.c.id)),
                bounce_events.c.kind.in_((BounceKind.HARD, BounceKind.SOFT)),
            )
            .group_by(bounce_events.c.issue_id)
        )
        left: ColumnElement[bool] = and_(
            subscribers.c.unsubscribed_at >= window.c.sent_at,
            or_(window.c.next_at.is_(None), subscribers.c.unsubscribed_at < window.c.next_at),
        )
        unsubscribed = (
            select(window.c.id, func.count())
            .select_from(
                window.join(deliveries, deliveries.c.issue_id == window.c.id).join(
                    subscribers, subscribers.c.id == deliveries.c.subscriber_id
                )
            )
            .where(window.c.sent_at.is_not(None), subscribers.c.unsubscribed_at.is_not(None), left)
            .group_by(window.c.id)
        )
        async with self.read() as conn:
            issues = (await conn.execute(select(window).order_by(window.c.period))).all()
            statuses: dict[int, dict[str, int]] = {}
            for issue_id, status, count in await conn.execute(by_status):
                statuses.setdefault(issue_id, {})[status] = count
            bounces = {issue_id: count for issue_id, count in await conn.execute(bounced)}
            gone = {issue_id: count for issue_id, count in await conn.execute(unsubscribed)}
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
        counts = (
            select(deliveries.c.status, func.count())
            .where(deliveries.c.status.in_(unsent))
            .group_by(deliveries.c.status)
        )
        retry = select(func.min(deliveries.c.next_attempt_at)).where(
            deliveries.c.status == DeliveryStatus.DEFERRED
        )
        async with self.read() as conn:
            found = {status: count for status, count in await conn.execute(counts)}
            next_retry = (await conn.execute(retry)).scalar_one_or_none()
        return QueueNow(
            pending=found.get(DeliveryStatus.PENDING, 0),
            sending=found.get(DeliveryStatus.SENDING, 0),
            deferred=found.get(DeliveryStatus.DEFERRED, 0),
            next_retry_at=next_retry,
        )


def _moment(point: datetime) -> ColumnElement[datetime]:
    # Bound with the column type, so SQLite compares its stored UTC text with UTC text.
    return literal(point, UTCDateTime())
