"""The status vocabulary (syndicate.statuses): the words stored in the database are the
same strings they were before the enums, on SQLite and PostgreSQL, whichever path writes
them (SQLAlchemy statements, bound parameters, the outcome writer's plain SQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from test_store_deliveries import record_outcomes

from syndicate import subscribers as service
from syndicate.statuses import UNSENT, DeliveryStatus, RunStatus, SubscriberStatus
from syndicate.store import Store
from syndicate.store.outcomes import Outcome
from syndicate.web import ops

NOW = datetime(2015, 12, 1, 9, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=1)


def test_the_words_are_the_ones_in_existing_databases() -> None:
    # Rows written before the enums hold these exact strings; renaming one needs a migration.
    assert [s.value for s in SubscriberStatus] == ["pending", "active", "unsubscribed", "bounced"]
    assert [s.value for s in DeliveryStatus] == [
        "pending",
        "sending",
        "sent",
        "deferred",
        "failed",
        "skipped",
    ]
    # "waiting" (an issue awaiting review) is new with issue review: a word added, none renamed,
    # so the column (plain text, no constraint) needs no migration.
    assert [s.value for s in RunStatus] == ["running", "done", "failed", "waiting"]
    assert [f"{s}" for s in UNSENT] == ["pending", "deferred", "sending"]
    # A member is its string: rows read back as plain text compare equal to it.
    assert SubscriberStatus.ACTIVE == "active" and str(DeliveryStatus.SENT) == "sent"


def test_the_status_lists_are_the_enum_as_plain_strings() -> None:
    for listed in (service.STATUSES, ops.SUBSCRIBER_STATUSES):
        assert listed == ("pending", "active", "unsubscribed", "bounced")
        # Plain strings: click's Choice matches an Enum member by its *name*.
        assert all(type(status) is str for status in listed)


async def _column(store: Store, table: str) -> list[tuple[object, str]]:
    async with store.read() as conn:
        rows = await conn.execute(text(f"SELECT id, status FROM {table} ORDER BY id"))
        return [(row[0], row[1]) for row in rows]


async def _subscriber(store: Store, email: str, status: SubscriberStatus) -> int:
    created = await store.insert_subscriber(
        {
            "email": email,
            "name": "",
            "status": status,
            "categories": (),
            "consent_source": "test",
            "consented_at": NOW,
        }
    )
    assert created is not None
    return created.id


async def test_subscriber_statuses_are_stored_as_their_words(store: Store) -> None:
    pending = await _subscriber(store, "pending@example.org", SubscriberStatus.PENDING)
    confirmed = await _subscriber(store, "confirmed@example.org", SubscriberStatus.PENDING)
    left = await _subscriber(store, "left@example.org", SubscriberStatus.ACTIVE)
    assert await store.confirm_pending_subscriber(confirmed, NOW) is not None
    assert await store.unsubscribe_subscriber(left, NOW) is not None
    added, _ = await service.add(store, "added@example.org", NOW, confirmed=True)
    rows = await _column(store, "subscribers")
    assert rows == [
        (pending, "pending"),
        (confirmed, "active"),
        (left, "unsubscribed"),
        (added.id, "active"),
    ]
    assert all(type(status) is str for _, status in rows)
    assert await store.count_subscribers(SubscriberStatus.ACTIVE) == 2
    read = await store.subscriber_by_id(pending)
    assert read is not None and read.status == SubscriberStatus.PENDING


async def test_delivery_statuses_are_stored_as_their_words(store: Store) -> None:
    ids = [
        await _subscriber(store, f"reader{n}@example.org", SubscriberStatus.ACTIVE)
        for n in range(6)
    ]
    issue, _ = await store.create_issue("2015-11", "Subject", [1], "<p>h</p>", "t", NOW)
    assert await store.snapshot_deliveries(issue.id, NOW) == 6
    assert {status for _, status in await _column(store, "deliveries")} == {"pending"}
    rows = await store.claim_deliveries(issue.id, "me", NOW, 100, lease_expired_before=LONG_AGO)
    assert {status for _, status in await _column(store, "deliveries")} == {"sending"}
    by_subscriber = {row.subscriber.id: row.id for row in rows}

    def outcome(n: int, status: DeliveryStatus, **extra: object) -> Outcome:
        return Outcome(by_subscriber[ids[n]], ids[n], status, **extra)  # type: ignore[arg-type]

    await record_outcomes(
        store,
        [
            outcome(0, DeliveryStatus.SENT, message_id="<m0@x>"),
            outcome(1, DeliveryStatus.DEFERRED, error="451", next_attempt_at=NOW),
            outcome(2, DeliveryStatus.FAILED, error="550", bounced=True),
            outcome(3, DeliveryStatus.SKIPPED, error="no posts"),
        ],
        "me",
        NOW,
        bounce_limit=1,
    )
    # The outcome writer's plain-SQL path for "sent", and its bound-parameter path.
    writer = store.outcome_writer("me", bounce_limit=1)
    try:
        await writer.write([outcome(4, DeliveryStatus.SENT, message_id="<m4@x>")], NOW)
        await writer.write([outcome(5, DeliveryStatus.PENDING)], NOW)
    finally:
        await writer.close()
    stored = dict(await _column(store, "deliveries"))
    assert [stored[by_subscriber[i]] for i in ids] == [
        "sent",
        "deferred",
        "failed",
        "skipped",
        "sent",
        "pending",
    ]
    assert all(type(status) is str for status in stored.values())
    assert await store.delivery_counts(issue.id) == {
        "sent": 2,
        "deferred": 1,
        "failed": 1,
        "skipped": 1,
        "pending": 1,
    }
    bounced = dict(await _column(store, "subscribers"))[ids[2]]
    assert bounced == "bounced"


async def test_run_statuses_are_stored_as_their_words(store: Store) -> None:
    async def stored() -> dict[str, str]:
        async with store.read() as conn:
            rows = await conn.execute(text("SELECT key, status FROM job_runs ORDER BY key"))
            return {row[0]: row[1] for row in rows}

    assert await store.claim_run("digest:2015-11", "me", NOW)
    assert await store.begin_run("publish:1", "me", NOW)
    assert await stored() == {"digest:2015-11": "running", "publish:1": "running"}
    await store.finish_run("digest:2015-11", NOW, error="boom")
    await store.finish_run("publish:1", NOW)
    assert await stored() == {"digest:2015-11": "failed", "publish:1": "done"}
    # A failed run may start again; a done one may not.
    assert await store.claim_run("digest:2015-11", "me", NOW)
    assert not await store.begin_run("publish:1", "me", NOW)
    run = await store.get_run("publish:1")
    assert run is not None and run.status == RunStatus.DONE
