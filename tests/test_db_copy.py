"""`syndicate db copy`: a SQLite database, filled through the store, copied into PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from test_store_deliveries import record_outcomes
from test_store_posts import post

from syndicate.cli import cli
from syndicate.models import BounceEvent, BouncePolicy, InboundMail, SourceState
from syndicate.store import Store, migrate
from syndicate.store.engine import safe_url
from syndicate.store.outcomes import Outcome
from syndicate.store.published import PublishedFile
from syndicate.store.tables import metadata

pytestmark = pytest.mark.postgresql

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2015, 12, 1, 9, tzinfo=UTC)
Dump = dict[str, list[dict[str, Any]]]


async def fill(url: str) -> None:
    """A little of everything, written the way syndicate writes it."""
    async with await Store.open(url) as store:
        await store.sync_sources([("blog", "https://blog.example/feed"), ("partner", "p.atom")])
        await store.save_source_states(
            [
                SourceState(
                    name="blog",
                    url="https://blog.example/feed",
                    etag='"v7"',
                    last_polled_at=NOW,
                    last_success_at=NOW,
                    last_status=200,
                    next_poll_at=NOW + timedelta(minutes=30),
                    feed_title="The Blog",
                )
            ]
        )
        await store.upsert_posts(
            "blog", [post(str(n), published=NOW - timedelta(days=n)) for n in range(10)], NOW
        )
        await store.upsert_posts("partner", [post("p1", "partner", enclosure=None)], NOW)
        ids = []
        for n in range(5):
            added = await store.insert_subscriber(
                {
                    "email": f"reader{n}@example.org",
                    "name": f"Reader {n}",
                    "status": "active" if n else "pending",
                    "categories": ["Rivers"] if n == 3 else [],
                    "consent_source": "test",
                    "consented_at": NOW,
                }
            )
            assert added is not None
            ids.append(added.id)
        await store.forget_subscriber("reader4@example.org", "ab" * 32, NOW)
        issue, _ = await store.create_issue("2015-11", "November", [1, 2], "<p>h</p>", "t", NOW)
        await store.snapshot_deliveries(issue.id, NOW)
        claimed = await store.claim_deliveries(issue.id, "w", NOW, 2, lease_expired_before=NOW)
        await record_outcomes(
            store,
            [Outcome(c.id, c.subscriber.id, "sent", message_id=f"<{c.id}@x>") for c in claimed],
            "w",
            NOW,
            bounce_limit=3,
        )
        await store.record_inbound(
            InboundMail("cd" * 32, "imap", "hard", "applied", "hard bounce 5.1.1", NOW),
            BounceEvent(ids[1], issue.id, "hard", "5.1.1", "smtp; 550 5.1.1 unknown", NOW),
            BouncePolicy(hard_limit=3, soft_limit=3, soft_window=timedelta(days=30)),
            NOW,
        )
        assert await store.claim_run("digest:2015-11", "w", NOW)
        await store.finish_run("digest:2015-11", NOW + timedelta(minutes=2))
        await store.record_published(
            [
                PublishedFile("index.rss", "f1", "s1", NOW, ping_pending=True),
                PublishedFile("index.atom", "f2", "s2", NOW, ping_pending=False),
            ]
        )


async def dump(url: str) -> Dump:
    """Every row of every table, as the store reads them back, in primary-key order."""
    async with await Store.open(url, upgrade=False) as store, store.engine.connect() as conn:
        found: Dump = {}
        for table in metadata.sorted_tables:
            rows = await conn.execute(table.select().order_by(*table.primary_key.columns))
            found[table.name] = [row._asdict() for row in rows]
        return found


def counts(rows: Dump) -> dict[str, int]:
    return {name: len(table) for name, table in rows.items()}


def config_for(project: Path, url: str, name: str = "config.toml") -> Path:
    """The bundled config, in `project` (beside its examples), with `url` as the database."""
    text = (REPO / "config.toml").read_text()
    assert 'database = "sqlite:///var/syndicate.db"' in text
    config = project / name
    config.write_text(text.replace('"sqlite:///var/syndicate.db"', f'"{url}"', 1))
    return config


def copy(config: Path, from_url: str, *options: str) -> Result:
    return CliRunner().invoke(
        cli, ["--config", str(config), "db", "copy", from_url, *options], catch_exceptions=False
    )


@pytest.fixture
def sqlite_source(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'old' / 'syndicate.db'}"
    asyncio.run(fill(url))
    return url


def test_copy_into_postgresql_keeps_every_row(
    project: Path, postgres_url: str, sqlite_source: str
) -> None:
    before = asyncio.run(dump(sqlite_source))
    assert all(before.values()), "the fixture should fill every table"

    result = copy(config_for(project, postgres_url), sqlite_source, "--batch-size", "3")

    assert result.exit_code == 0, result.output
    copied = asyncio.run(dump(postgres_url))
    assert copied == before
    lines = result.stdout.splitlines()
    assert "posts: 11 rows" in lines and "sources: 2 rows" in lines
    assert "suppressions: 1 row" in lines and "deliveries: 3 rows" in lines
    total = sum(counts(before).values())
    assert lines[-1] == (
        f"copied {total} rows in {len(before)} tables from {sqlite_source} to "
        f"{safe_url(postgres_url)} (revision {migrate.head_revision()})"
    )
    # A few values, to see the types survived the trip (aware datetimes, JSON, booleans).
    blog = next(row for row in copied["sources"] if row["name"] == "blog")
    assert (blog["etag"], blog["last_polled_at"]) == ('"v7"', NOW)
    assert copied["posts"][0]["categories"] == ["Rivers", "Events"]
    assert copied["posts"][0]["enclosure"]["type"] == "application/pdf"
    assert [row["ping_pending"] for row in copied["published_files"]] == [False, True]
    assert copied["job_runs"][0]["finished_at"] == NOW + timedelta(minutes=2)

    async def revisions() -> list[str | None]:
        found = []
        for url in (sqlite_source, postgres_url):
            async with await Store.open(url, upgrade=False) as store:
                found.append(await store.revision())
        return found

    assert asyncio.run(revisions()) == [migrate.head_revision()] * 2


def test_new_rows_after_the_copy_get_new_ids(
    project: Path, postgres_url: str, sqlite_source: str
) -> None:
    assert copy(config_for(project, postgres_url), sqlite_source).exit_code == 0
    copied = asyncio.run(dump(postgres_url))

    async def add_more() -> None:
        async with await Store.open(postgres_url) as store:
            new = await store.insert_subscriber(
                {
                    "email": "late@example.org",
                    "status": "active",
                    "categories": [],
                    "consent_source": "test",
                    "consented_at": NOW,
                }
            )
            assert new is not None
            # reader4 had the largest id and was forgotten: it is not handed out again.
            assert max(row["id"] for row in copied["subscribers"]) == 4
            assert new.id == 6
            counted = await store.upsert_posts("blog", [post("new")], NOW)
            assert counted.new == 1
            issue, created = await store.create_issue("2015-12", "December", [], "h", "t", NOW)
            assert created and issue.id == 2
            assert await store.snapshot_deliveries(issue.id, NOW) == 4

    asyncio.run(add_more())
    after = asyncio.run(dump(postgres_url))
    assert max(row["id"] for row in after["posts"]) == max(r["id"] for r in copied["posts"]) + 1
    assert [row["id"] for row in after["deliveries"]] == list(range(1, 3 + 4 + 1))


def test_a_target_with_rows_is_refused_and_left_alone(
    project: Path, postgres_url: str, sqlite_source: str
) -> None:
    config = config_for(project, postgres_url)
    assert copy(config, sqlite_source).exit_code == 0
    before = asyncio.run(dump(postgres_url))

    again = copy(config, sqlite_source)

    assert again.exit_code == 1
    assert again.stderr.splitlines() == [
        f"error: the target database {safe_url(postgres_url)} is not empty (1 row in "
        "digest_issues, 1 row in inbound_mail, 1 row in job_runs, 11 rows in posts, "
        "2 rows in published_files, 2 rows in sources, 4 rows in subscribers, 1 row in "
        "suppressions, 1 row in versions, 1 row in bounce_events, 3 rows in deliveries); "
        "copy into an empty database"
    ]
    assert asyncio.run(dump(postgres_url)) == before


def test_one_row_is_enough_to_refuse(project: Path, postgres_url: str, sqlite_source: str) -> None:
    async def one_source() -> None:
        async with await Store.open(postgres_url) as store:
            await store.sync_sources([("other", "https://other.example/feed")])

    asyncio.run(one_source())
    result = copy(config_for(project, postgres_url), sqlite_source)
    assert result.exit_code == 1
    assert "is not empty (1 row in sources); copy into an empty database" in result.stderr
    assert counts(asyncio.run(dump(postgres_url))) == {
        name: 1 if name == "sources" else 0 for name in counts(asyncio.run(dump(sqlite_source)))
    }


def test_a_row_postgresql_refuses_copies_nothing(project: Path, postgres_url: str) -> None:
    # SQLite does not enforce VARCHAR lengths; PostgreSQL does. Tables copied before
    # "sources" must not stay behind either: the copy is one transaction.
    source = f"sqlite:///{project / 'old.db'}"
    asyncio.run(fill(source))

    async def long_name() -> None:
        async with await Store.open(source) as store:
            await store.sync_sources([("x" * 100, "https://x.example/feed")])

    asyncio.run(long_name())
    result = copy(config_for(project, postgres_url), source)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"error: cannot copy table sources into {safe_url(postgres_url)}, so nothing was copied: "
    )
    assert "value too long" in result.stderr
    assert set(counts(asyncio.run(dump(postgres_url))).values()) == {0}


def test_postgresql_back_into_a_new_sqlite_file(
    project: Path, postgres_url: str, sqlite_source: str, tmp_path: Path
) -> None:
    assert copy(config_for(project, postgres_url), sqlite_source).exit_code == 0
    new_sqlite = f"sqlite:///{tmp_path / 'back' / 'syndicate.db'}"
    result = copy(config_for(project, new_sqlite, "back.toml"), postgres_url)
    assert result.exit_code == 0, result.output
    assert asyncio.run(dump(new_sqlite)) == asyncio.run(dump(sqlite_source))


def test_a_forgotten_subscriber_s_id_stays_used_through_copies_both_ways(
    project: Path, postgres_url: str, sqlite_source: str, tmp_path: Path
) -> None:
    # reader4 (id 5, the largest) was forgotten in the source: links signed for that id are
    # still out there, so no copy may hand it to someone else.
    assert copy(config_for(project, postgres_url), sqlite_source).exit_code == 0
    new_sqlite = f"sqlite:///{tmp_path / 'back' / 'syndicate.db'}"
    assert copy(config_for(project, new_sqlite, "back.toml"), postgres_url).exit_code == 0

    async def add(url: str) -> int:
        async with await Store.open(url) as store:
            new = await store.insert_subscriber(
                {
                    "email": "late@example.org",
                    "status": "active",
                    "categories": [],
                    "consent_source": "test",
                    "consented_at": NOW,
                }
            )
            assert new is not None
            return new.id

    assert asyncio.run(add(new_sqlite)) == 6
    assert asyncio.run(add(postgres_url)) == 6


def test_a_missing_sqlite_file_is_not_created(project: Path, postgres_url: str) -> None:
    missing = project / "nothere" / "syndicate.db"
    result = copy(config_for(project, postgres_url), f"sqlite:///{missing}")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: cannot copy from sqlite:///{missing}: no such file {missing}\n"
    )
    assert not missing.parent.exists()


def test_copying_a_database_into_itself_is_refused(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A relative path in FROM_URL is relative to the current folder, as on any command line.
    monkeypatch.chdir(project)
    result = copy(project / "config.toml", "sqlite:///var/syndicate.db")
    assert result.exit_code == 2
    assert result.stderr == "error: sqlite:///var/syndicate.db is the target database itself\n"


def test_a_source_from_a_newer_syndicate_is_refused(
    project: Path, postgres_url: str, sqlite_source: str
) -> None:
    path = sqlite_source.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.close()
    result = copy(config_for(project, postgres_url), sqlite_source)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: cannot migrate {sqlite_source}: Can't locate revision identified by '9999'; "
        "is it from a newer syndicate?\n"
    )

    async def target_revision() -> str | None:
        async with await Store.open(postgres_url, upgrade=False) as store:
            return await store.revision()

    assert asyncio.run(target_revision()) is None  # not even migrated
