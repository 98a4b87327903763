"""Digest issues: one row per period, so building twice never makes a second issue."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from syndicate.models import DigestIssue, IssueSummary
from syndicate.store.base import Queries
from syndicate.store.tables import digest_issues


class IssueQueries(Queries):
    async def issue(self, period: str) -> DigestIssue | None:
        async with self.read() as conn:
            row = (
                await conn.execute(select(digest_issues).where(digest_issues.c.period == period))
            ).first()
        return _issue(row._mapping) if row else None

    async def create_issue(
        self,
        period: str,
        subject: str,
        post_ids: Sequence[int],
        html: str,
        text: str,
        now: datetime,
        *,
        content: Mapping[str, Any] | None = None,
    ) -> tuple[DigestIssue, bool]:
        """Store the period's issue; if another process stored it first, return that one.

        The second value says whether this call created it. `content` is what the issue is
        made of, as JSON (syndicate.digest.issue).
        """
        try:
            async with self.write() as conn:
                await conn.execute(
                    insert(digest_issues).values(
                        period=period,
                        subject=subject,
                        post_ids=list(post_ids),
                        html=html,
                        text=text,
                        created_at=now,
                        content=dict(content) if content is not None else None,
                    )
                )
            created = True
        except IntegrityError:
            created = False
        issue = await self.issue(period)
        assert issue is not None
        return issue, created

    async def latest_sent_period(self) -> str | None:
        """The period of the newest issue whose sending has begun (its recipients are in
        the ledger), e.g. "2015-12"; None before the first."""
        async with self.read() as conn:
            return (  # type: ignore[no-any-return]
                await conn.execute(
                    select(digest_issues.c.period)
                    .where(digest_issues.c.snapshot_at.is_not(None))
                    .order_by(digest_issues.c.period.desc())
                    .limit(1)
                )
            ).scalar()

    async def issues(self) -> list[DigestIssue]:
        async with self.read() as conn:
            rows = await conn.execute(select(digest_issues).order_by(digest_issues.c.period))
            return [_issue(row._mapping) for row in rows]

    async def issue_list(self) -> list[IssueSummary]:
        """Every issue's period, subject and build time, newest period first: the list of
        past issues, without the bodies and content (which may be large)."""
        columns = (digest_issues.c.period, digest_issues.c.subject, digest_issues.c.created_at)
        async with self.read() as conn:
            rows = await conn.execute(select(*columns).order_by(digest_issues.c.period.desc()))
            return [IssueSummary(row.period, row.subject, row.created_at) for row in rows]


def _issue(row: object) -> DigestIssue:
    values = dict(row)  # type: ignore[call-overload]
    values["post_ids"] = tuple(values["post_ids"])
    return DigestIssue(**values)
