"""Digest issues: one row per period, so building twice never makes a second issue."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
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
        fingerprint: str | None = None,
        awaiting_review: bool = False,
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
                        fingerprint=fingerprint,
                        awaiting_review=awaiting_review,
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

    async def latest_issue(self) -> DigestIssue | None:
        """The issue of the latest period built (None before the first)."""
        async with self.read() as conn:
            rows = await conn.execute(
                select(digest_issues).order_by(digest_issues.c.period.desc()).limit(1)
            )
            row = rows.first()
            return _issue(row._mapping) if row is not None else None

    async def issue_list(self) -> list[IssueSummary]:
        """Every issue's period, subject and build time, newest period first: the list of
        past issues, without the bodies and content (which may be large). An issue awaiting
        review is not one yet: only its reviewers may see it."""
        columns = (digest_issues.c.period, digest_issues.c.subject, digest_issues.c.created_at)
        async with self.read() as conn:
            rows = await conn.execute(
                select(*columns)
                .where(digest_issues.c.awaiting_review.is_(False))
                .order_by(digest_issues.c.period.desc())
            )
            return [IssueSummary(row.period, row.subject, row.created_at) for row in rows]

    # -- proof and approval (syndicate/digest/review.py) -----------------------------------

    async def rebuild_issue(
        self,
        issue: DigestIssue,
        subject: str,
        post_ids: Sequence[int],
        html: str,
        text: str,
        content: Mapping[str, Any],
        fingerprint: str,
    ) -> DigestIssue | None:
        """Replace what `issue` (awaiting review, not sending) is made of, as its next
        version; None when it changed under us (approved, rebuilt or sending by now)."""
        async with self.write() as conn:
            result = await conn.execute(
                update(digest_issues)
                .where(
                    digest_issues.c.id == issue.id,
                    digest_issues.c.version == issue.version,
                    digest_issues.c.awaiting_review.is_(True),
                    digest_issues.c.snapshot_at.is_(None),
                )
                .values(
                    subject=subject,
                    post_ids=list(post_ids),
                    html=html,
                    text=text,
                    content=dict(content),
                    fingerprint=fingerprint,
                    version=issue.version + 1,
                )
            )
        return await self.issue(issue.period) if result.rowcount == 1 else None

    async def claim_proof(
        self, issue: DigestIssue, now: datetime, expired_before: datetime
    ) -> bool:
        """Take on sending the proofs of `issue`'s version: True for one caller only, unless
        they were sent already, or another caller claimed them after `expired_before`."""
        c = digest_issues.c
        unclaimed = or_(
            c.proof_version.is_(None),
            c.proof_version < issue.version,
            and_(
                c.proof_sent_at.is_(None),
                or_(c.proof_claimed_at.is_(None), c.proof_claimed_at < expired_before),
            ),
        )
        async with self.write() as conn:
            result = await conn.execute(
                update(digest_issues)
                .where(c.id == issue.id, c.version == issue.version, unclaimed)
                .values(proof_version=issue.version, proof_claimed_at=now, proof_sent_at=None)
            )
        return result.rowcount == 1

    async def proofs_sent(self, issue: DigestIssue, now: datetime, deadline: datetime) -> None:
        """The claimed proofs went out: the window ends at `deadline` unless an earlier
        version's proof started it already."""
        c = digest_issues.c
        async with self.write() as conn:
            await conn.execute(
                update(digest_issues)
                .where(c.id == issue.id, c.proof_version == issue.version)
                .values(proof_sent_at=now)
            )
            await conn.execute(
                update(digest_issues)
                .where(c.id == issue.id, c.review_deadline.is_(None))
                .values(review_deadline=deadline)
            )

    async def release_proof(self, issue: DigestIssue) -> None:
        """The claimed proofs could not be sent: the next try takes them on at once."""
        c = digest_issues.c
        async with self.write() as conn:
            await conn.execute(
                update(digest_issues)
                .where(
                    c.id == issue.id, c.proof_version == issue.version, c.proof_sent_at.is_(None)
                )
                .values(proof_claimed_at=None)
            )

    async def approve_issue(
        self, issue_id: int, version: int, by: str, now: datetime
    ) -> DigestIssue | None:
        """Approve version `version` of the issue awaiting review; None when that is not
        the issue's version now or it is not awaiting review."""
        c = digest_issues.c
        async with self.write() as conn:
            result = await conn.execute(
                update(digest_issues)
                .where(c.id == issue_id, c.version == version, c.awaiting_review.is_(True))
                .values(awaiting_review=False, approved_at=now, approved_by=by)
            )
            if result.rowcount != 1:
                return None
            row = (await conn.execute(select(digest_issues).where(c.id == issue_id))).first()
        return _issue(row._mapping) if row else None

    async def issues_awaiting_review(self) -> list[DigestIssue]:
        """Issues built with review on and not approved yet, oldest period first (a few)."""
        async with self.read() as conn:
            rows = await conn.execute(
                select(digest_issues)
                .where(digest_issues.c.awaiting_review.is_(True))
                .order_by(digest_issues.c.period)
            )
            return [_issue(row._mapping) for row in rows]

    async def approved_unsent_issues(self) -> list[DigestIssue]:
        """Issues approved after review whose sending has not begun (the web page approved
        them; the worker sends them)."""
        c = digest_issues.c
        async with self.read() as conn:
            rows = await conn.execute(
                select(digest_issues)
                .where(
                    c.approved_at.is_not(None),
                    c.awaiting_review.is_(False),
                    c.snapshot_at.is_(None),
                )
                .order_by(c.period)
            )
            return [_issue(row._mapping) for row in rows]


def _issue(row: object) -> DigestIssue:
    values = dict(row)  # type: ignore[call-overload]
    values["post_ids"] = tuple(values["post_ids"])
    return DigestIssue(**values)
