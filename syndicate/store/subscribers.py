"""Subscribers: their life cycle (add, update, list, forget) and the suppression list.

Addresses reach these methods already normalised (syndicate.subscribers does that); the
store only keeps the unique constraint that makes "one row per address" hold under races.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from syndicate.models import Subscriber
from syndicate.statuses import SubscriberStatus
from syndicate.store.base import Queries
from syndicate.store.tables import bounce_events, deliveries, subscribers, suppressions


class SubscriberQueries(Queries):
    async def subscriber_by_email(self, email: str) -> Subscriber | None:
        query = select(subscribers).where(subscribers.c.email == email.strip().lower())
        async with self.read() as conn:
            row = (await conn.execute(query)).first()
        return subscriber_from_row(row._mapping) if row else None

    async def subscriber_by_id(self, subscriber_id: int) -> Subscriber | None:
        query = select(subscribers).where(subscribers.c.id == subscriber_id)
        async with self.read() as conn:
            row = (await conn.execute(query)).first()
        return subscriber_from_row(row._mapping) if row else None

    async def confirm_pending_subscriber(
        self, subscriber_id: int, now: datetime
    ) -> Subscriber | None:
        """pending -> active in one conditional UPDATE, so an unsubscribe that lands between a
        read and a write cannot be undone by a late click; None when it was not pending."""
        query = (
            update(subscribers)
            .where(
                subscribers.c.id == subscriber_id, subscribers.c.status == SubscriberStatus.PENDING
            )
            .values(status=SubscriberStatus.ACTIVE, confirmed_at=now)
            .returning(subscribers)
        )
        async with self.write() as conn:
            row = (await conn.execute(query)).first()
        return subscriber_from_row(row._mapping) if row else None

    async def unsubscribe_subscriber(self, subscriber_id: int, now: datetime) -> Subscriber | None:
        """Mark a subscriber unsubscribed (from any other status) in one conditional UPDATE,
        so a confirm or a second click racing it cannot overwrite the first date; None when
        it was already unsubscribed or does not exist."""
        query = (
            update(subscribers)
            .where(
                subscribers.c.id == subscriber_id,
                subscribers.c.status != SubscriberStatus.UNSUBSCRIBED,
            )
            .values(status=SubscriberStatus.UNSUBSCRIBED, unsubscribed_at=now)
            .returning(subscribers)
        )
        async with self.write() as conn:
            row = (await conn.execute(query)).first()
        return subscriber_from_row(row._mapping) if row else None

    async def update_subscriber_preferences(
        self,
        subscriber_id: int,
        name: str,
        categories: tuple[str, ...],
        language: str | None = None,
        other_languages: str | None = None,
    ) -> Subscriber | None:
        """Set what a subscriber chose on their preferences page (a language or an
        other_languages None: left as it is; other_languages "": back to the site's); None
        when the row is gone (forgotten between the page load and the save)."""
        values: dict[str, Any] = {"name": name, "categories": list(categories)}
        if language is not None:
            values["language"] = language
        if other_languages is not None:
            values["other_languages"] = other_languages or None
        query = (
            update(subscribers)
            .where(subscribers.c.id == subscriber_id)
            .values(values)
            .returning(subscribers)
        )
        async with self.write() as conn:
            row = (await conn.execute(query)).first()
        return subscriber_from_row(row._mapping) if row else None

    async def count_subscribers(self, status: str | None = None) -> int:
        query = select(func.count()).select_from(subscribers)
        if status is not None:
            query = query.where(subscribers.c.status == status)
        async with self.read() as conn:
            return (await conn.execute(query)).scalar_one()

    async def list_subscribers(self, status: str | None = None) -> list[Subscriber]:
        query = select(subscribers).order_by(subscribers.c.id)
        if status is not None:
            query = query.where(subscribers.c.status == status)
        async with self.read() as conn:
            rows = (await conn.execute(query)).all()
        return [subscriber_from_row(row._mapping) for row in rows]

    async def insert_subscriber(self, values: Mapping[str, Any]) -> Subscriber | None:
        """Insert a subscriber; None when the address is already there (maybe just now, by
        another process: the unique constraint decides, not an earlier read)."""
        values = {**values, "categories": list(values.get("categories") or ())}
        try:
            async with self.write() as conn:
                row = (
                    await conn.execute(insert(subscribers).values(values).returning(subscribers))
                ).one()
        except IntegrityError:
            return None
        return subscriber_from_row(row._mapping)

    async def update_subscriber(self, subscriber_id: int, values: Mapping[str, Any]) -> Subscriber:
        values = dict(values)
        if "categories" in values:
            values["categories"] = list(values["categories"] or ())
        async with self.write() as conn:
            row = (
                await conn.execute(
                    update(subscribers)
                    .where(subscribers.c.id == subscriber_id)
                    .values(values)
                    .returning(subscribers)
                )
            ).one()
        return subscriber_from_row(row._mapping)

    async def is_suppressed(self, email_sha256: str) -> bool:
        query = select(suppressions.c.email_sha256).where(
            suppressions.c.email_sha256 == email_sha256
        )
        async with self.read() as conn:
            return (await conn.execute(query)).first() is not None

    async def forget_subscriber(self, email: str, email_sha256: str, now: datetime) -> bool:
        """Delete the subscriber's row and record the address's hash, in one transaction so
        the address is never both forgotten and unsuppressed. False if there is no such row.

        Their delivery rows and bounce events go too: they point at the row being erased, and
        someone who was forgotten is never sent anything again, so they guard nothing.
        """
        async with self.write() as conn:
            found = (
                await conn.execute(select(subscribers.c.id).where(subscribers.c.email == email))
            ).first()
            if found is None:
                return False
            await conn.execute(delete(deliveries).where(deliveries.c.subscriber_id == found.id))
            await conn.execute(
                delete(bounce_events).where(bounce_events.c.subscriber_id == found.id)
            )
            await conn.execute(delete(subscribers).where(subscribers.c.id == found.id))
            await suppress(conn, email_sha256, now)
        return True


async def suppress(conn: AsyncConnection, email_sha256: str, now: datetime) -> None:
    """Refuse the address whose hash this is for good, in the caller's transaction (once:
    suppressing it again keeps the first date). `forget` and a spam complaint do this."""
    known = await conn.execute(
        select(suppressions.c.email_sha256).where(suppressions.c.email_sha256 == email_sha256)
    )
    if known.first() is None:
        await conn.execute(insert(suppressions).values(email_sha256=email_sha256, created_at=now))


def subscriber_from_row(row: Any) -> Subscriber:
    values = dict(row)
    values["categories"] = tuple(values["categories"] or ())
    return Subscriber(**values)
