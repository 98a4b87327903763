"""The store on a real SQLite file and a real PostgreSQL database (see conftest)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, select, text

from syndicate.errors import StoreError
from syndicate.models import SourceState
from syndicate.store import Store, migrate
from syndicate.store.tables import job_runs, metadata

TABLES = {"sources", "posts", "subscribers", "digest_issues", "deliveries", "job_runs"}


async def test_open_creates_every_table(store: Store) -> None:
    async with store.engine.connect() as conn:
        names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    assert names >= TABLES | {"alembic_version"}
    assert await store.revision() == migrate.head_revision()


async def test_migrations_match_the_table_definitions(store: Store) -> None:
    def diff(sync: Connection) -> list:
        return compare_metadata(
            MigrationContext.configure(sync, opts={"compare_type": True}), metadata
        )

    async with store.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_reopening_applies_nothing(database_url: str) -> None:
    first = await Store.open(database_url)
    async with first:
        assert await first.upgrade() == (migrate.head_revision(), migrate.head_revision())
    second = await Store.open(database_url, upgrade=False)
    async with second:
        assert await second.revision() == migrate.head_revision()


def test_the_newest_revision_file_is_alembic_s_head() -> None:
    # Opening an up-to-date store compares with the file names alone (no alembic import).
    assert migrate.newest_file_revision() == migrate.head_revision()


def test_opening_an_up_to_date_store_does_not_import_alembic(database_url: str) -> None:
    # Every command opens the store; alembic costs each of them about 11 MiB and time.
    async def migrated() -> None:
        await (await Store.open(database_url)).close()

    asyncio.run(migrated())
    program = (
        "import asyncio, sys\n"
        "from syndicate.store import Store\n"
        "async def main():\n"
        "    store = await Store.open(sys.argv[1])\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'alembic'))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", program, database_url], capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]"


async def test_concurrent_starts_migrate_once(database_url: str) -> None:
    # Two workers starting at the same moment must not both create the tables.
    stores = await asyncio.gather(Store.open(database_url), Store.open(database_url))
    for store in stores:
        assert await store.revision() == migrate.head_revision()
        await store.close()


def test_switching_to_wal_waits_out_a_locked_database() -> None:
    # Two connections switching a new file to WAL at once: SQLite answers one of them
    # "database is locked" at once, without its busy timeout (it would deadlock). The switch
    # is tried again (engine._switch_to_wal); any other error is raised as it is. A real
    # race is test_concurrent_starts_migrate_once, which met this about one run in ten.
    import sqlite3

    from syndicate.store.engine import _switch_to_wal

    class Cursor:
        def __init__(self, failures: list[Exception]) -> None:
            self.failures = failures
            self.calls = 0

        def execute(self, statement: str) -> None:
            assert statement == "PRAGMA journal_mode=WAL"
            self.calls += 1
            if self.failures:
                raise self.failures.pop(0)

    locked = Cursor([sqlite3.OperationalError("database is locked")] * 3)
    _switch_to_wal(locked)
    assert locked.calls == 4
    damaged = Cursor([sqlite3.DatabaseError("file is not a database")])
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        _switch_to_wal(damaged)
    assert damaged.calls == 1


async def test_a_run_key_is_claimed_once(store: Store) -> None:
    now = datetime(2015, 12, 1, 9, tzinfo=UTC)
    assert await store.claim_run("digest:2015-11", "worker-a", now)
    assert not await store.claim_run("digest:2015-11", "worker-b", now)
    await store.finish_run("digest:2015-11", now + timedelta(minutes=3))
    assert not await store.claim_run("digest:2015-11", "worker-b", now)
    run = await store.get_run("digest:2015-11")
    assert run is not None
    assert (run.status, run.owner, run.finished_at) == (
        "done",
        "worker-a",
        now + timedelta(minutes=3),
    )


async def test_a_failed_run_can_be_claimed_again(store: Store) -> None:
    now = datetime(2015, 12, 1, 9, tzinfo=UTC)
    assert await store.claim_run("digest:2015-11", "worker-a", now)
    await store.finish_run("digest:2015-11", now, error="SMTP server down")
    assert (await store.get_run("digest:2015-11")).status == "failed"
    results = await asyncio.gather(
        *(store.claim_run("digest:2015-11", f"w{i}", now) for i in range(5))
    )
    assert results.count(True) == 1


async def test_a_lease_is_held_by_one_owner_until_released_or_expired(store: Store) -> None:
    now = datetime(2015, 12, 1, 9, tzinfo=UTC)
    expired_before = now - timedelta(minutes=5)
    results = await asyncio.gather(
        *(store.lease_run("poll:a", f"w{i}", now, expired_before=expired_before) for i in range(5))
    )
    assert results.count(True) == 1
    holder = f"w{results.index(True)}"
    assert not await store.lease_run("poll:a", "other", now, expired_before=expired_before)
    # A holder known to be dead loses it at once; a live one only when the lease expires.
    assert await store.lease_run(
        "poll:a", "other", now, expired_before=expired_before, dead_owners={holder}
    )
    later = now + timedelta(minutes=6)
    assert await store.lease_run(
        "poll:a", "late", later, expired_before=later - timedelta(minutes=5)
    )
    await store.finish_run("poll:a", later)
    assert await store.lease_run("poll:a", "next", later, expired_before=expired_before)
    assert (await store.get_run("poll:a")).owner == "next"
    await store.lease_run("poll:b", "mine", later, expired_before=expired_before)
    await store.lease_run("poll_x", "other", later, expired_before=expired_before)  # no prefix
    assert await store.running_leases(
        "poll:", exclude_owner="mine", expired_before=later - timedelta(minutes=5)
    ) == {"poll:a": later}


async def test_datetimes_come_back_aware_utc(store: Store) -> None:
    berlin_noon = datetime(2015, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    await store.claim_run("k", "me", berlin_noon)
    run = await store.get_run("k")
    assert run is not None
    assert run.started_at == berlin_noon
    assert run.started_at.tzinfo == UTC
    assert run.started_at.hour == 4 and run.started_at.day == 1  # 2016-01-01 04:30 UTC


async def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        await store.claim_run("k", "me", datetime(2015, 12, 1))


async def test_sync_sources_follows_the_config(store: Store) -> None:
    await store.sync_sources([("a", "https://a.example/feed"), ("b", "https://b.example/")])
    state = await store.source_state("a")
    assert state is not None
    await store.save_source_states(
        [
            SourceState(
                name="a",
                url="https://a.example/feed",
                etag='"v1"',
                consecutive_failures=2,
                last_polled_at=datetime(2015, 12, 1, tzinfo=UTC),
            )
        ]
    )
    await store.sync_sources([("a", "https://a.example/feed"), ("c", "https://c.example/")])
    states = {s.name: s for s in await store.source_states()}
    assert set(states) == {"a", "c"}
    assert states["a"].etag == '"v1"' and states["a"].consecutive_failures == 2
    # A new URL is a new feed: its old validators would be wrong.
    await store.sync_sources([("a", "https://a.example/new-feed")])
    [fresh] = await store.source_states()
    assert (fresh.url, fresh.etag, fresh.consecutive_failures) == (
        "https://a.example/new-feed",
        None,
        0,
    )


async def test_sqlite_uses_wal_and_creates_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "var" / "syndicate.db"
    async with await Store.open(f"sqlite:///{path}") as store, store.engine.connect() as conn:
        mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
        timeout = (await conn.execute(text("PRAGMA busy_timeout"))).scalar()
    assert path.is_file()
    assert (mode, timeout) == ("wal", 10_000)


async def test_unreachable_postgres_is_a_store_error() -> None:
    url = "postgresql+psycopg://nobody:pw@127.0.0.1:1/none?connect_timeout=2"
    with pytest.raises(StoreError) as caught:
        await Store.open(url)
    assert "cannot open database postgresql+psycopg://nobody:***@127.0.0.1:1/none" in str(
        caught.value
    )
    assert "pw@" not in str(caught.value)


async def test_rows_written_by_one_store_are_seen_by_another(database_url: str) -> None:
    async with await Store.open(database_url) as writer, await Store.open(database_url) as reader:
        await writer.claim_run("publish:1", "w", datetime(2015, 12, 1, tzinfo=UTC))
        async with reader.engine.connect() as conn:
            keys = (await conn.execute(select(job_runs.c.key))).scalars().all()
    assert keys == ["publish:1"]


async def test_two_workers_syncing_the_same_new_sources_both_start(database_url: str) -> None:
    """Both read the rows before either inserts (on PostgreSQL the second insert then waits
    for the first one's commit): the second must not fail on the name the first added."""
    first, second = await Store.open(database_url), await Store.open(database_url)
    try:
        for round_ in range(10):
            configured = [(f"source-{round_}-{n}", f"https://{n}.example/feed") for n in range(5)]
            await asyncio.gather(first.sync_sources(configured), second.sync_sources(configured))
            assert [s.name for s in await first.source_states()] == [n for n, _ in configured]
    finally:
        await first.close()
        await second.close()


async def test_the_latest_issue_and_those_awaiting_review_are_read_alone(store: Store) -> None:
    now = datetime(2016, 1, 1, 9, tzinfo=UTC)
    assert await store.latest_issue() is None
    for period in ("2015-11", "2016-01", "2015-12"):  # built out of order
        await store.create_issue(
            period, "s", [], "<p>x</p>", "x", now, awaiting_review=period == "2015-12"
        )
    latest = await store.latest_issue()
    assert latest is not None and latest.period == "2016-01"
    assert [issue.period for issue in await store.issues_awaiting_review()] == ["2015-12"]
