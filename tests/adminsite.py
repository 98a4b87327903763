"""What the /admin dashboard's tests share: a seeded store and the real server.

    summary = await seed(store)          # subscribers, two issues, deliveries, bounces
    with running(app) as url:            # uvicorn on 127.0.0.1, in a thread of its own
        httpx.get(f"{url}admin/login")

The server is uvicorn itself serving `create_app(settings, clock=clock)` on a free port of
127.0.0.1, run in a thread with its own event loop (the app opens its own store there), so
a test can hand the app a FrozenClock and move it: session expiry and the lock-out's end
are tested without sleeping. The database is real (SQLite file or PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import uvicorn
from starlette.applications import Starlette

from syndicate.models import BounceEvent, BouncePolicy, InboundMail
from syndicate.statuses import BounceKind, DeliveryStatus, InboundOutcome
from syndicate.store import Store
from syndicate.store.outcomes import Outcome

NOW = datetime(2015, 12, 20, 12, 0, tzinfo=UTC)
HOSTILE = '<script>alert(1)</script>"><svg onload=alert(2)>'
EMAIL_DOMAIN = "reader.example"
POLICY = BouncePolicy(hard_limit=1, soft_limit=3, soft_window=timedelta(days=30))


@dataclass
class Seeded:
    subscriber_emails: list[str]
    november_id: int
    december_id: int


async def seed(store: Store) -> Seeded:
    """Twelve subscribers over three months (pending, active, unsubscribed, bounced), a
    November and a December issue with sent, deferred and failed deliveries, bounce reports
    naming them, and unsubscribes between and after them. The December subject is hostile."""
    emails = []
    base = datetime(2015, 9, 10, 9, 0, tzinfo=UTC)
    ids = []
    for number in range(12):
        consented = base + timedelta(days=7 * number)
        email = f"person{number}@{EMAIL_DOMAIN}"
        emails.append(email)
        row = await store.insert_subscriber(
            {
                "email": email,
                "name": f"Person {number}",
                "status": "pending",
                "categories": [],
                "consent_source": "test",
                "consented_at": consented,
                "created_at": consented,
            }
        )
        assert row is not None
        ids.append(row.id)
        if number % 4 != 3:  # every fourth never confirms
            await store.confirm_pending_subscriber(row.id, consented + timedelta(days=1))

    november, _ = await store.create_issue(
        "2015-11", "November news", [], "<p>n</p>", "n", datetime(2015, 11, 1, tzinfo=UTC)
    )
    await store.snapshot_deliveries(november.id, datetime(2015, 11, 1, 8, tzinfo=UTC))
    await _outcomes(store, november.id, datetime(2015, 11, 1, 9, tzinfo=UTC))
    # Between the issues: one recipient of November unsubscribes, one bounces (a report
    # naming November).
    await store.unsubscribe_subscriber(ids[0], datetime(2015, 11, 10, tzinfo=UTC))
    await _bounce(store, ids[1], november.id, BounceKind.HARD, datetime(2015, 11, 12, tzinfo=UTC))

    december, _ = await store.create_issue(
        "2015-12", HOSTILE, [], "<p>d</p>", "d", datetime(2015, 12, 1, tzinfo=UTC)
    )
    await store.snapshot_deliveries(december.id, datetime(2015, 12, 1, 8, tzinfo=UTC))
    await _outcomes(store, december.id, datetime(2015, 12, 1, 9, tzinfo=UTC))
    await store.unsubscribe_subscriber(ids[2], datetime(2015, 12, 5, tzinfo=UTC))
    await _bounce(store, ids[4], december.id, BounceKind.SOFT, datetime(2015, 12, 6, tzinfo=UTC))
    return Seeded(emails, november.id, december.id)


async def _outcomes(store: Store, issue_id: int, now: datetime) -> None:
    """Of the issue's recipients, in id order: the first deferred, the second failed, the
    rest sent; the deferred one is due again an hour later."""
    claimed = await store.claim_deliveries(
        issue_id, "seed", now, 1000, lease_expired_before=now - timedelta(hours=1)
    )
    outcomes = []
    for index, row in enumerate(claimed):
        if index == 0:
            status, retry = DeliveryStatus.DEFERRED, now + timedelta(hours=1)
        elif index == 1:
            status, retry = DeliveryStatus.FAILED, None
        else:
            status, retry = DeliveryStatus.SENT, None
        outcomes.append(
            Outcome(
                delivery_id=row.id,
                subscriber_id=row.subscriber.id,
                status=status,
                message_id=f"<{row.id}@seed>",
                next_attempt_at=retry,
            )
        )
    writer = store.outcome_writer("seed", bounce_limit=5)
    try:
        await writer.write(outcomes, now)
    finally:
        await writer.close()


async def _bounce(
    store: Store, subscriber_id: int, issue_id: int, kind: BounceKind, at: datetime
) -> None:
    mail = InboundMail(
        sha256=f"{subscriber_id:032x}{issue_id:032x}",
        origin="file",
        kind="dsn",
        outcome=InboundOutcome.APPLIED,
        detail="seeded",
        received_at=at,
    )
    event = BounceEvent(subscriber_id, issue_id, kind, "5.1.1", "no such user", at)
    await store.record_inbound(mail, event, POLICY, at)


@contextlib.contextmanager
def running(app: Starlette) -> Iterator[str]:
    """Serve `app` with uvicorn on a free port of 127.0.0.1 until the block ends; yields
    the base URL ("http://127.0.0.1:PORT/")."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="on", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    for _ in range(300):
        if server.started:
            break
        if not thread.is_alive():
            raise RuntimeError("uvicorn stopped before it started (the log says why)")
        threading.Event().wait(0.05)
    else:
        raise RuntimeError("uvicorn did not start within 15 s")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
