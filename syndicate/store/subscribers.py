"""Subscribers: the reads the digest needs (issue 7 adds the rest of their life cycle)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from syndicate.models import Subscriber
from syndicate.store.base import Queries
from syndicate.store.tables import subscribers


class SubscriberQueries(Queries):
    async def subscriber_by_email(self, email: str) -> Subscriber | None:
        query = select(subscribers).where(subscribers.c.email == email.strip().lower())
        async with self.read() as conn:
            row = (await conn.execute(query)).first()
        return subscriber_from_row(row._mapping) if row else None

    async def count_subscribers(self, status: str | None = None) -> int:
        query = select(func.count()).select_from(subscribers)
        if status is not None:
            query = query.where(subscribers.c.status == status)
        async with self.read() as conn:
            return (await conn.execute(query)).scalar_one()


def subscriber_from_row(row: Any) -> Subscriber:
    values = dict(row)
    values["categories"] = tuple(values["categories"] or ())
    return Subscriber(**values)
