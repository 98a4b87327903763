"""The delivery ledger's queries on a real SQLite file and a real PostgreSQL (see conftest)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from syndicate.models import DigestIssue
from syndicate.store import Store
from syndicate.store.outcomes import Outcome

NOW = datetime(2015, 12, 1, 9, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=1)


async def record_outcomes(
    store: Store, outcomes: list[Outcome], owner: str, now: datetime, bounce_limit: int
) -> None:
    """Outcomes written as a sender writes them: through its own outcome writer."""
    writer = store.outcome_writer(owner, bounce_limit)
    try:
        await writer.write(outcomes, now)
    finally:
        await writer.close()


async def make_issue(store: Store, period: str = "2015-11") -> DigestIssue:
    issue, _ = await store.create_issue(period, "Subject", [1, 2], "<p>h</p>", "t", NOW)
    return issue


async def make_subscribers(store: Store, count: int, status: str = "active") -> list[int]:
    ids = []
    for n in range(count):
        created = await store.insert_subscriber(
            {
                "email": f"{status}{n}@example.org",
                "name": f"Reader {n}",
                "status": status,
                "categories": (),
                "consent_source": "test",
                "consented_at": NOW,
            }
        )
        assert created is not None
        ids.append(created.id)
    return ids


async def claim(store: Store, issue: DigestIssue, owner: str, limit: int = 100, **options):
    options.setdefault("lease_expired_before", LONG_AGO)
    return await store.claim_deliveries(issue.id, owner, NOW, limit, **options)


async def test_snapshot_takes_active_subscribers_once(store: Store) -> None:
    await make_subscribers(store, 3)
    await make_subscribers(store, 2, status="unsubscribed")
    issue = await make_issue(store)
    assert await store.snapshot_deliveries(issue.id, NOW) == 3
    late = await store.insert_subscriber(
        {
            "email": "late@example.org",
            "status": "active",
            "categories": (),
            "consent_source": "test",
            "consented_at": NOW,
        }
    )
    assert late is not None
    # A resumed send snapshots nothing: the late subscriber does not get an old issue.
    assert await store.snapshot_deliveries(issue.id, NOW) == 0
    assert await store.delivery_counts(issue.id) == {"pending": 3}
    stored = await store.issue("2015-11")
    assert stored is not None and stored.snapshot_at == NOW


async def test_concurrent_snapshots_make_one_row_each(database_url: str) -> None:
    stores = [await Store.open(database_url) for _ in range(2)]
    try:
        await make_subscribers(stores[0], 20)
        issue = await make_issue(stores[0])
        created = await asyncio.gather(*(s.snapshot_deliveries(issue.id, NOW) for s in stores))
        assert sorted(created) == [0, 20]
        assert await stores[0].delivery_counts(issue.id) == {"pending": 20}
    finally:
        for opened in stores:
            await opened.close()


async def test_claims_mark_rows_sending_and_count_attempts(store: Store) -> None:
    ids = await make_subscribers(store, 5)
    issue = await make_issue(store)
    await store.snapshot_deliveries(issue.id, NOW)
    first = await claim(store, issue, "a", limit=2)
    assert [c.subscriber.id for c in first] == ids[:2]
    assert all(c.attempts == 1 for c in first)
    assert first[0].subscriber.email == "active0@example.org"
    second = await claim(store, issue, "b")
    assert [c.subscriber.id for c in second] == ids[2:]
    assert await claim(store, issue, "c") == []
    assert await store.delivery_counts(issue.id) == {"sending": 5}
    assert await store.sending_owners(issue.id) == {"a", "b"}


async def test_pending_after_takes_only_pending_rows_past_it(store: Store) -> None:
    ids = await make_subscribers(store, 6)
    issue = await make_issue(store)
    await store.snapshot_deliveries(issue.id, NOW)
    rows = await claim(store, issue, "dead", limit=1)  # the first row: "sending", owner dead
    after = rows[0].id + 2  # past the first three rows
    taken = await claim(store, issue, "a", pending_after=after, dead_owners={"dead"})
    # Pending rows past it, and (not limited by it) the dead owner's row; in id order.
    assert [c.subscriber.id for c in taken] == [ids[0], *ids[3:]]
    rest = await claim(store, issue, "a")
    assert [c.subscriber.id for c in rest] == ids[1:3]


async def test_two_claimers_never_share_a_row(database_url: str) -> None:
    # Separate engines, as two processes would have: on PostgreSQL the claims overlap in
    # time and SKIP LOCKED makes them take different rows; on SQLite they queue.
    stores = [await Store.open(database_url) for _ in range(4)]
    try:
        await make_subscribers(stores[0], 200)
        issue = await make_issue(stores[0])
        await stores[0].snapshot_deliveries(issue.id, NOW)

        async def drain(store: Store, owner: str) -> list[int]:
            taken: list[int] = []
            while batch := await claim(store, issue, owner, limit=7):
                taken.extend(c.id for c in batch)
            return taken

        results = await asyncio.gather(*(drain(s, f"owner{n}") for n, s in enumerate(stores)))
        everything = [row for taken in results for row in taken]
        assert len(everything) == len(set(everything)) == 200
    finally:
        for opened in stores:
            await opened.close()


async def test_dead_owner_and_expired_lease_rows_are_claimable_again(store: Store) -> None:
    await make_subscribers(store, 3)
    issue = await make_issue(store)
    await store.snapshot_deliveries(issue.id, NOW)
    await claim(store, issue, "dead", limit=1)
    await claim(store, issue, "slow", limit=1)
    await claim(store, issue, "alive", limit=1)
    assert await claim(store, issue, "new") == []
    retaken = await claim(store, issue, "new", dead_owners={"dead"})
    assert len(retaken) == 1 and retaken[0].attempts == 2
    # A lease that ran out frees the rows of an owner nobody can ask (another machine): here
    # every row, all claimed at NOW.
    expired = await claim(store, issue, "new", lease_expired_before=NOW + timedelta(seconds=1))
    assert [c.attempts for c in expired] == [3, 2, 2]


async def test_outcomes_are_recorded_for_the_owner_only(store: Store) -> None:
    await make_subscribers(store, 4)
    issue = await make_issue(store)
    await store.snapshot_deliveries(issue.id, NOW)
    rows = await claim(store, issue, "me")
    later = NOW + timedelta(minutes=5)
    outcomes = [
        Outcome(rows[0].id, rows[0].subscriber.id, "sent", message_id="<m0@x>"),
        Outcome(rows[1].id, rows[1].subscriber.id, "deferred", error="451", next_attempt_at=later),
        Outcome(rows[2].id, rows[2].subscriber.id, "failed", error="550", bounced=True),
        Outcome(rows[3].id, rows[3].subscriber.id, "pending"),  # released untried
    ]
    await record_outcomes(store, outcomes[:1], "someone-else", NOW, bounce_limit=3)
    assert await store.delivery_counts(issue.id) == {"sending": 4}
    await record_outcomes(store, outcomes, "me", NOW, bounce_limit=3)
    assert await store.delivery_counts(issue.id) == {
        "sent": 1,
        "deferred": 1,
        "failed": 1,
        "pending": 1,
    }
    assert await store.next_retry_at(issue.id) == later
    # The released row gave its attempt back; the deferred one is not due yet.
    again = await claim(store, issue, "me")
    assert [(c.subscriber.id, c.attempts) for c in again] == [(rows[3].subscriber.id, 1)]
    bounced = await store.subscriber_by_email(rows[2].subscriber.email)
    assert bounced is not None and bounced.bounce_count == 1 and bounced.status == "active"


@pytest.mark.parametrize("limit", [1, 2])
async def test_bounce_limit_marks_the_subscriber_bounced(store: Store, limit: int) -> None:
    [subscriber_id] = await make_subscribers(store, 1)
    statuses = []
    for period in ("2015-10", "2015-11")[:limit]:
        issue = await make_issue(store, period)
        await store.snapshot_deliveries(issue.id, NOW)
        [row] = await claim(store, issue, "me")
        await record_outcomes(
            store,
            [Outcome(row.id, subscriber_id, "failed", error="550", bounced=True)],
            "me",
            NOW,
            bounce_limit=limit,
        )
        subscriber = await store.subscriber_by_email("active0@example.org")
        assert subscriber is not None
        statuses.append((subscriber.status, subscriber.bounce_count))
    assert statuses == [*[("active", n) for n in range(1, limit)], ("bounced", limit)]


async def test_an_outcome_writer_records_on_a_connection_of_its_own(store: Store) -> None:
    await make_subscribers(store, 3)
    issue = await make_issue(store)
    await store.snapshot_deliveries(issue.id, NOW)
    rows = await claim(store, issue, "me")
    writer = store.outcome_writer("me", bounce_limit=1)
    try:
        # Each write is a transaction of its own, visible to the store's other connections.
        await writer.write([Outcome(rows[0].id, rows[0].subscriber.id, "sent", "<m0@x>")], NOW)
        assert await store.delivery_counts(issue.id) == {"sent": 1, "sending": 2}
        await writer.write(
            [Outcome(rows[1].id, rows[1].subscriber.id, "failed", error="550", bounced=True)],
            NOW,
        )
        # Meanwhile the store writes as usual (on SQLite, both queue for the one writer).
        await asyncio.gather(
            writer.write([Outcome(rows[2].id, rows[2].subscriber.id, "sent", "<m2@x>")], NOW),
            make_subscribers(store, 5, status="unsubscribed"),
        )
    finally:
        await writer.close()
    assert await store.delivery_counts(issue.id) == {"sent": 2, "failed": 1}
    bounced = await store.subscriber_by_email(rows[1].subscriber.email)
    assert bounced is not None and bounced.status == "bounced"
    # Only rows this owner holds change.
    other = store.outcome_writer("someone-else", bounce_limit=1)
    try:
        await other.write([Outcome(rows[0].id, rows[0].subscriber.id, "pending")], NOW)
    finally:
        await other.close()
    assert await store.delivery_counts(issue.id) == {"sent": 2, "failed": 1}
