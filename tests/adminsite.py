"""What the /admin dashboard's tests share: a seeded store, the real server, logging in.

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
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher
from starlette.applications import Starlette

from syndicate.clock import FrozenClock
from syndicate.config import load_settings
from syndicate.models import BounceEvent, BouncePolicy, InboundMail, SourceState
from syndicate.statuses import BounceKind, DeliveryStatus, InboundOutcome
from syndicate.store import Store
from syndicate.store.outcomes import Outcome
from syndicate.web.app import create_app

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
    naming them, and unsubscribes between and after them (the December subject is hostile);
    two sources, one failing."""
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
    await store.sync_sources([("river-blog", "https://river.example/feed"), ("wetlands", "x")])
    await store.save_source_states(
        [
            SourceState(
                "river-blog",
                "https://river.example/feed",
                last_polled_at=NOW,
                last_success_at=NOW,
                last_status=200,
            ),
            SourceState(
                "wetlands",
                "x",
                last_polled_at=NOW,
                consecutive_failures=2,
                last_success_at=NOW - timedelta(hours=2),
                last_status=500,
                last_error="HTTP 500",
            ),
        ]
    )
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


# The fixtures the admin tests import (env, admin_clock, seeded, site) and their helpers.

PASSWORD = "correct horse battery staple"
# Cheap parameters: the tests check many passwords; the stored hash says how to check it.
HASH = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
VARIABLE = "SYNDICATE_TEST_ADMIN_PASSWORD"


def admin_config(project: Path, *, database: str | None = None) -> Path:
    """The bundled config with the dashboard on (and, given, another database)."""
    config = project / "config.toml"
    text = config.read_text()
    text = text.replace(
        '# admin_password_env = "SYNDICATE_ADMIN_PASSWORD"', f'admin_password_env = "{VARIABLE}"'
    )
    assert VARIABLE in text, "the bundled config's [web] section changed"
    if database:
        text = text.replace('database = "sqlite:///var/syndicate.db"', f'database = "{database}"')
        assert database in text
    config.write_text(text)
    return config


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("SYNDICATE_SECRET", "admin-test-secret-" * 3)
    monkeypatch.setenv(VARIABLE, HASH)
    return monkeypatch


@pytest.fixture
def admin_clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def seeded(project: Path, env: pytest.MonkeyPatch) -> Seeded:
    settings = load_settings(admin_config(project))

    async def fill() -> Seeded:
        async with await Store.open(settings.database_url) as store:
            return await seed(store)

    return asyncio.run(fill())


@pytest.fixture
def site(project: Path, seeded: Seeded, admin_clock: FrozenClock) -> Iterator[str]:
    settings = load_settings(project / "config.toml")
    with running(create_app(settings, clock=admin_clock)) as url:
        yield url


def login_form(client: httpx.Client, url: str) -> str:
    """The CSRF token of a freshly fetched login form."""
    page = client.get(f"{url}admin/login")
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def log_in(client: httpx.Client, url: str, password: str, **headers: str) -> httpx.Response:
    token = login_form(client, url)
    return client.post(
        f"{url}admin/login",
        data={"csrf_token": token, "password": password},
        headers={"Origin": url.rstrip("/"), **headers},
    )


def session_of(response: httpx.Response) -> str:
    cookie = response.headers["set-cookie"]
    value = re.match(r"syndicate_admin=([^;]+);", cookie)
    assert value, cookie
    return value.group(1)
