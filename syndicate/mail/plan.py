"""A dry run of `digest send`: what sending a period's issue would do now.

    plan = await plan_period(settings, store, "2015-12")
    plan.recipients, plan.posts, plan.ledger

Nothing is stored, rendered or sent: the issue is read if it is built, else the posts it
would hold are counted; the recipients are the ledger's unsent rows once it has them, else
the active subscribers a snapshot would take.
"""

from __future__ import annotations

from dataclasses import dataclass

from syndicate.config import Settings
from syndicate.digest.build import digest_context, period_of
from syndicate.models import DigestIssue
from syndicate.statuses import UNSENT, SubscriberStatus
from syndicate.store import Store


@dataclass(frozen=True, slots=True)
class SendPlan:
    """What a send would do now (a dry run): nothing is stored, rendered or sent."""

    period: str
    issue: DigestIssue | None  # None: not built yet (or nothing to build)
    posts: int
    recipients: int  # rows still to send, or the active subscribers before the snapshot
    ledger: dict[str, int]


async def plan_period(settings: Settings, store: Store, key: str) -> SendPlan:
    period = period_of(settings, key)
    issue = await store.issue(period.key)
    ledger = await store.delivery_counts(issue.id) if issue else {}
    if issue is not None and issue.snapshot_at is not None:
        recipients = sum(ledger.get(s, 0) for s in UNSENT)
    else:
        recipients = await store.count_subscribers(SubscriberStatus.ACTIVE)
    if issue is not None:
        posts = len(issue.post_ids)
    else:
        _, ids = await digest_context(settings, store, period)
        posts = len(ids)
    return SendPlan(period.key, issue, posts, recipients, ledger)
