"""What returning mail does to subscribers (store/bounces.py), on SQLite and PostgreSQL:
[bounces] policy, one mail acting once, complaints suppressing, forget erasing the events."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

from test_store_deliveries import NOW, make_issue, make_subscribers

from syndicate.models import BounceEvent, BouncePolicy, InboundMail
from syndicate.statuses import BounceKind, InboundOutcome, SubscriberStatus
from syndicate.store import Store

POLICY = BouncePolicy(hard_limit=2, soft_limit=3, soft_window=timedelta(days=30))


def mail(tag: str, at=NOW, outcome: str = InboundOutcome.APPLIED) -> InboundMail:
    return InboundMail(
        sha256=hashlib.sha256(tag.encode()).hexdigest(),
        origin="file",
        kind="hard",
        outcome=outcome,
        detail=f"test {tag}",
        received_at=at,
    )


def event(subscriber_id: int, kind: str, at=NOW, issue_id: int | None = None) -> BounceEvent:
    return BounceEvent(subscriber_id, issue_id, kind, "5.1.1", "smtp; 550 5.1.1 no such user", at)


async def status_of(store: Store, subscriber_id: int) -> str:
    found = await store.subscriber_by_id(subscriber_id)
    assert found is not None
    return found.status


async def test_hard_bounces_mark_bounced_at_the_limit(store: Store) -> None:
    [ann] = await make_subscribers(store, 1)
    issue = await make_issue(store)
    first = await store.record_inbound(
        mail("a"), event(ann, BounceKind.HARD, issue_id=issue.id), POLICY, NOW
    )
    assert (first.duplicate, first.status_before, first.status_after) == (False, "active", "active")
    second = await store.record_inbound(mail("b"), event(ann, BounceKind.HARD), POLICY, NOW)
    assert (second.status_before, second.status_after) == ("active", "bounced")
    assert await status_of(store, ann) == SubscriberStatus.BOUNCED
    found = await store.subscriber_by_id(ann)
    assert found is not None and found.bounce_count == 2
    events = await store.bounce_events_of(ann)
    assert [e.issue_id for e in events] == [None, issue.id]  # newest first
    assert events[0].diagnostic == "smtp; 550 5.1.1 no such user"


async def test_soft_bounces_count_only_within_the_window(store: Store) -> None:
    [ann] = await make_subscribers(store, 1)
    old = NOW - timedelta(days=40)
    await store.record_inbound(mail("old1"), event(ann, BounceKind.SOFT, old), POLICY, old)
    await store.record_inbound(mail("old2"), event(ann, BounceKind.SOFT, old), POLICY, old)
    await store.record_inbound(mail("new1"), event(ann, BounceKind.SOFT), POLICY, NOW)
    await store.record_inbound(mail("new2"), event(ann, BounceKind.SOFT), POLICY, NOW)
    assert await status_of(store, ann) == SubscriberStatus.ACTIVE  # 2 in the window, not 4
    last = await store.record_inbound(mail("new3"), event(ann, BounceKind.SOFT), POLICY, NOW)
    assert last.status_after == SubscriberStatus.BOUNCED
    # Soft bounces do not count as hard ones.
    found = await store.subscriber_by_id(ann)
    assert found is not None and found.bounce_count == 0


async def test_a_complaint_unsubscribes_and_suppresses(store: Store) -> None:
    [ann] = await make_subscribers(store, 1)
    done = await store.record_inbound(mail("c"), event(ann, BounceKind.COMPLAINT), POLICY, NOW)
    assert (done.status_before, done.status_after) == ("active", "unsubscribed")
    found = await store.subscriber_by_id(ann)
    assert found is not None and found.unsubscribed_at == NOW
    assert await store.is_suppressed(hashlib.sha256(found.email.encode()).hexdigest())
    # A second complaint (another mail) keeps the first date and one suppression.
    later = NOW + timedelta(days=1)
    again = await store.record_inbound(mail("c2"), event(ann, BounceKind.COMPLAINT), POLICY, later)
    assert again.status_before == again.status_after == "unsubscribed"
    found = await store.subscriber_by_id(ann)
    assert found is not None and found.unsubscribed_at == NOW


async def test_mail_to_the_unsubscribe_mailbox_unsubscribes_without_suppressing(
    store: Store,
) -> None:
    [ann] = await make_subscribers(store, 1)
    done = await store.record_inbound(mail("u"), event(ann, BounceKind.UNSUBSCRIBE), POLICY, NOW)
    assert done.status_after == SubscriberStatus.UNSUBSCRIBED
    found = await store.subscriber_by_id(ann)
    assert found is not None
    assert not await store.is_suppressed(hashlib.sha256(found.email.encode()).hexdigest())


async def test_only_an_active_subscriber_becomes_bounced(store: Store) -> None:
    [gone] = await make_subscribers(store, 1, status="unsubscribed")
    strict = BouncePolicy(hard_limit=1, soft_limit=1, soft_window=timedelta(days=1))
    done = await store.record_inbound(mail("h"), event(gone, BounceKind.HARD), strict, NOW)
    assert done.status_after == "unsubscribed"
    assert len(await store.bounce_events_of(gone)) == 1  # the evidence is kept all the same


async def test_the_same_mail_acts_once_even_read_twice_at_once(store: Store) -> None:
    [ann] = await make_subscribers(store, 1)
    strict = BouncePolicy(hard_limit=5, soft_limit=1, soft_window=timedelta(days=1))
    results = await asyncio.gather(
        *(
            store.record_inbound(mail("same"), event(ann, BounceKind.HARD), strict, NOW)
            for _ in range(4)
        )
    )
    assert sorted(r.duplicate for r in results) == [False, True, True, True]
    found = await store.subscriber_by_id(ann)
    assert found is not None and found.bounce_count == 1
    assert await store.is_inbound_known(mail("same").sha256)
    assert await store.inbound_counts() == {"applied": 1}


async def test_counts_by_kind_and_outcome_with_a_window(store: Store) -> None:
    ann, bob = await make_subscribers(store, 2)
    old = NOW - timedelta(days=60)
    await store.record_inbound(mail("1", old), event(ann, BounceKind.SOFT, old), POLICY, old)
    await store.record_inbound(mail("2"), event(ann, BounceKind.HARD), POLICY, NOW)
    await store.record_inbound(mail("3"), event(bob, BounceKind.COMPLAINT), POLICY, NOW)
    await store.record_inbound(mail("4", outcome=InboundOutcome.FORGED), None, POLICY, NOW)
    assert await store.bounce_event_counts() == {"soft": 1, "hard": 1, "complaint": 1}
    assert await store.bounce_event_counts(NOW - timedelta(days=30)) == {
        "hard": 1,
        "complaint": 1,
    }
    assert await store.inbound_counts() == {"applied": 3, "forged": 1}
    assert await store.inbound_counts(NOW - timedelta(days=30)) == {"applied": 2, "forged": 1}


async def test_an_event_for_a_deleted_issue_is_kept_without_it(store: Store) -> None:
    [ann] = await make_subscribers(store, 1)
    done = await store.record_inbound(
        mail("x"), event(ann, BounceKind.SOFT, issue_id=999), POLICY, NOW
    )
    assert not done.duplicate
    [stored] = await store.bounce_events_of(ann)
    assert stored.issue_id is None


async def test_forget_erases_the_events(store: Store) -> None:
    [ann] = await make_subscribers(store, 1)
    found = await store.subscriber_by_id(ann)
    assert found is not None
    await store.record_inbound(mail("f"), event(ann, BounceKind.SOFT), POLICY, NOW)
    digest = hashlib.sha256(found.email.encode()).hexdigest()
    assert await store.forget_subscriber(found.email, digest, NOW)
    assert await store.bounce_events_of(ann) == []
    assert await store.bounce_event_counts() == {}
    # The mail's row stays (it holds no address), so the mail is not acted on again.
    assert await store.is_inbound_known(mail("f").sha256)
