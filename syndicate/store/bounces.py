"""Mail that came back, and what it did to subscribers: one transaction per mail.

    recorded = await store.record_inbound(mail, event, policy, now)
    if recorded.duplicate: ...        # read before (a poll that stopped before moving it)

The mail's row and its event are stored with the subscriber's change in one transaction, and
the mail's hash is unique: a mail read twice, or by two workers at once, acts once. What an
event does ([bounces] in the config):

    hard         bounce_count + 1; "bounced" once hard_limit hard events are stored
    soft         "bounced" once soft_limit soft events fall within soft_window
    complaint    unsubscribed at once, and the address suppressed (never re-added)
    unsubscribe  unsubscribed (mail to their unsubscribe mailbox address)

Only an active subscriber becomes bounced; every event is stored whatever their status, so
`subscribers show` tells the whole story.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from syndicate.models import BounceEvent, BouncePolicy, InboundMail, RecordedMail
from syndicate.statuses import BounceKind, SubscriberStatus
from syndicate.store.base import Queries
from syndicate.store.subscribers import suppress
from syndicate.store.tables import (
    bounce_events,
    deliveries,
    digest_issues,
    inbound_mail,
    subscribers,
)


class BounceQueries(Queries):
    async def record_inbound(
        self,
        mail: InboundMail,
        event: BounceEvent | None,
        policy: BouncePolicy,
        now: datetime,
    ) -> RecordedMail:
        """Store `mail` and its `event`, and apply the event to its subscriber (see above);
        RecordedMail(duplicate=True) and nothing done when the mail was stored before."""
        try:
            async with self.write() as conn:
                known = await conn.execute(
                    select(inbound_mail.c.id).where(inbound_mail.c.sha256 == mail.sha256)
                )
                if known.first() is not None:
                    return RecordedMail(duplicate=True)
                mail_id = (
                    await conn.execute(
                        insert(inbound_mail)
                        .values(
                            sha256=mail.sha256,
                            origin=mail.origin,
                            kind=mail.kind,
                            outcome=mail.outcome,
                            detail=mail.detail,
                            received_at=mail.received_at,
                        )
                        .returning(inbound_mail.c.id)
                    )
                ).scalar_one()
                if event is None:
                    return RecordedMail(duplicate=False)
                return await _apply(conn, mail_id, event, policy, now)
        except IntegrityError:
            # Another worker stored the same mail between our lookup and our insert.
            return RecordedMail(duplicate=True)

    async def is_inbound_known(self, sha256: str) -> bool:
        query = select(inbound_mail.c.id).where(inbound_mail.c.sha256 == sha256)
        async with self.read() as conn:
            return (await conn.execute(query)).first() is not None

    async def was_sent(self, issue_id: int, subscriber_id: int, message_id: str) -> bool:
        """Whether the copy of `issue_id` for `subscriber_id` went out with `message_id`."""
        query = select(deliveries.c.id).where(
            deliveries.c.issue_id == issue_id,
            deliveries.c.subscriber_id == subscriber_id,
            deliveries.c.message_id == message_id,
        )
        async with self.read() as conn:
            return (await conn.execute(query)).first() is not None

    async def bounce_event_counts(self, since: datetime | None = None) -> dict[str, int]:
        """Events by kind (all time, or received since `since`)."""
        query = select(bounce_events.c.kind, func.count()).group_by(bounce_events.c.kind)
        if since is not None:
            query = query.where(bounce_events.c.received_at >= since)
        async with self.read() as conn:
            return {kind: count for kind, count in (await conn.execute(query)).all()}

    async def inbound_counts(self, since: datetime | None = None) -> dict[str, int]:
        """Inbound mail by outcome (all time, or received since `since`)."""
        query = select(inbound_mail.c.outcome, func.count()).group_by(inbound_mail.c.outcome)
        if since is not None:
            query = query.where(inbound_mail.c.received_at >= since)
        async with self.read() as conn:
            return {outcome: count for outcome, count in (await conn.execute(query)).all()}

    async def bounce_events_of(self, subscriber_id: int, limit: int = 50) -> list[BounceEvent]:
        """A subscriber's newest events first, at most `limit`."""
        query = (
            select(bounce_events)
            .where(bounce_events.c.subscriber_id == subscriber_id)
            .order_by(bounce_events.c.received_at.desc(), bounce_events.c.id.desc())
            .limit(limit)
        )
        async with self.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_event(row._mapping) for row in rows]


async def _apply(
    conn: AsyncConnection, mail_id: int, event: BounceEvent, policy: BouncePolicy, now: datetime
) -> RecordedMail:
    found = (
        await conn.execute(
            select(subscribers.c.email, subscribers.c.status).where(
                subscribers.c.id == event.subscriber_id
            )
        )
    ).first()
    if found is None:  # forgotten since the mail was matched: keep the mail, not the event
        return RecordedMail(duplicate=False)
    issue_id = event.issue_id
    if issue_id is not None:  # a signed token names an issue; it may have been deleted since
        issue = select(digest_issues.c.id).where(digest_issues.c.id == issue_id)
        issue_id = (await conn.execute(issue)).scalar_one_or_none()
    await conn.execute(
        insert(bounce_events).values(
            subscriber_id=event.subscriber_id,
            issue_id=issue_id,
            mail_id=mail_id,
            kind=event.kind,
            status_code=event.status_code[:16],
            diagnostic=event.diagnostic,
            received_at=event.received_at,
        )
    )
    before = found.status
    after = before
    mine = subscribers.c.id == event.subscriber_id
    if event.kind == BounceKind.HARD:
        await conn.execute(
            update(subscribers).where(mine).values(bounce_count=subscribers.c.bounce_count + 1)
        )
        if before == SubscriberStatus.ACTIVE:
            hard = await _count(conn, event.subscriber_id, BounceKind.HARD, None)
            if hard >= policy.hard_limit:
                after = SubscriberStatus.BOUNCED
    elif event.kind == BounceKind.SOFT:
        if before == SubscriberStatus.ACTIVE:
            since = now - policy.soft_window
            soft = await _count(conn, event.subscriber_id, BounceKind.SOFT, since)
            if soft >= policy.soft_limit:
                after = SubscriberStatus.BOUNCED
    elif event.kind in (BounceKind.COMPLAINT, BounceKind.UNSUBSCRIBE):
        if before != SubscriberStatus.UNSUBSCRIBED:
            after = SubscriberStatus.UNSUBSCRIBED
        if event.kind == BounceKind.COMPLAINT:
            # A complaint is a "never again", as `forget` is.
            await suppress(conn, hashlib.sha256(found.email.encode("utf-8")).hexdigest(), now)
    if after != before:
        values: dict[str, Any] = {"status": after}
        if after == SubscriberStatus.UNSUBSCRIBED:
            values["unsubscribed_at"] = now
        await conn.execute(update(subscribers).where(mine).values(values))
    return RecordedMail(duplicate=False, status_before=before, status_after=after)


async def _count(
    conn: AsyncConnection, subscriber_id: int, kind: str, since: datetime | None
) -> int:
    query = select(func.count()).where(
        bounce_events.c.subscriber_id == subscriber_id, bounce_events.c.kind == kind
    )
    if since is not None:
        query = query.where(bounce_events.c.received_at >= since)
    return (await conn.execute(query)).scalar_one()


def _event(row: Any) -> BounceEvent:
    return BounceEvent(
        subscriber_id=row["subscriber_id"],
        issue_id=row["issue_id"],
        kind=row["kind"],
        status_code=row["status_code"],
        diagnostic=row["diagnostic"],
        received_at=row["received_at"],
    )
