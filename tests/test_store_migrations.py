"""Migration 0006 on databases that hold rows, on SQLite and PostgreSQL: subscriber ids are
never handed out twice, every row, constraint and index survives, and created_at is filled
in from what each row shows of its past."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from syndicate import subscribers as service
from syndicate.store import Store, migrate
from syndicate.store.tables import metadata
from syndicate.store.types import UTCDateTime

JAN = datetime(2015, 1, 1, 9, tzinfo=UTC)

# The two tables as revision 0005 has them (tables.py has moved on).
SUBSCRIBERS_0005 = sa.table(
    "subscribers",
    sa.column("id", sa.Integer),
    sa.column("email", sa.String),
    sa.column("name", sa.Text),
    sa.column("status", sa.String),
    sa.column("categories", sa.JSON),
    sa.column("consent_source", sa.Text),
    sa.column("consented_at", UTCDateTime),
    sa.column("confirmed_at", UTCDateTime),
    sa.column("unsubscribed_at", UTCDateTime),
    sa.column("bounce_count", sa.Integer),
)
ISSUES_0005 = sa.table(
    "digest_issues",
    sa.column("id", sa.Integer),
    sa.column("period", sa.String),
    sa.column("subject", sa.Text),
    sa.column("post_ids", sa.JSON),
    sa.column("html", sa.Text),
    sa.column("text", sa.Text),
    sa.column("created_at", UTCDateTime),
)
DELIVERIES_0005 = sa.table(
    "deliveries",
    sa.column("id", sa.Integer),
    sa.column("issue_id", sa.Integer),
    sa.column("subscriber_id", sa.Integer),
    sa.column("status", sa.String),
    sa.column("attempts", sa.Integer),
    sa.column("message_id", sa.Text),
    sa.column("claimed_at", UTCDateTime),
    sa.column("sent_at", UTCDateTime),
)


def migrate_to(connection: Connection, revision: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", "syndicate.store:migrations")
    config.attributes["connection"] = connection
    (command.downgrade if down else command.upgrade)(config, revision)


def subscriber_row(email: str, consented: datetime, **values: object) -> dict[str, object]:
    return {
        "email": email,
        "name": email.split("@")[0].title(),
        "status": "active",
        "categories": ["News"],
        "consent_source": "cli",
        "consented_at": consented,
        "confirmed_at": consented,
        "unsubscribed_at": None,
        "bounce_count": 0,
        **values,
    }


async def store_at_0005_with_rows(database_url: str) -> Store:
    """A database that 0005 made and syndicate used: four subscribers, the newest of whom
    was forgotten, and a digest delivered to Bob."""
    store = await Store.open(database_url, upgrade=False)
    async with store.write() as conn:
        await conn.run_sync(migrate_to, "0005")
        rows = [
            subscriber_row("ann@example.org", JAN),
            # Re-added by an admin in March; his February digest came before that.
            subscriber_row("bob@example.org", JAN + timedelta(days=59)),
            subscriber_row("carl@example.org", JAN + timedelta(days=90), status="pending"),
            subscriber_row("dave@example.org", JAN + timedelta(days=120)),
        ]
        for row in rows:
            await conn.execute(sa.insert(SUBSCRIBERS_0005).values(row))
        await conn.execute(
            sa.delete(SUBSCRIBERS_0005).where(SUBSCRIBERS_0005.c.email == "dave@example.org")
        )
        await conn.execute(
            sa.insert(ISSUES_0005).values(
                id=1,
                period="2015-01",
                subject="January",
                post_ids=[],
                html="",
                text="",
                created_at=JAN + timedelta(days=31),
            )
        )
        await conn.execute(
            sa.insert(DELIVERIES_0005).values(
                id=1,
                issue_id=1,
                subscriber_id=2,
                status="sent",
                attempts=1,
                message_id="<digest-1-2@example.org>",
                claimed_at=JAN + timedelta(days=31, hours=1),
                sent_at=JAN + timedelta(days=31, hours=1, seconds=2),
            )
        )
    return store


async def test_0006_keeps_every_row_and_fills_in_created_at(database_url: str) -> None:
    store = await store_at_0005_with_rows(database_url)
    async with store:
        async with store.read() as conn:
            before = (await conn.execute(sa.select(SUBSCRIBERS_0005))).all()
            deliveries_before = (await conn.execute(sa.select(DELIVERIES_0005))).all()
        assert await store.upgrade() == ("0005", migrate.head_revision())

        async with store.read() as conn:
            after = (
                await conn.execute(sa.select(SUBSCRIBERS_0005).order_by(SUBSCRIBERS_0005.c.id))
            ).all()
            assert (await conn.execute(sa.select(DELIVERIES_0005))).all() == deliveries_before
        assert [tuple(row) for row in after] == [tuple(row) for row in before]
        assert [row.id for row in after] == [1, 2, 3]

        created = {s.email: s.created_at for s in await store.list_subscribers()}
        assert created == {
            "ann@example.org": JAN,  # consented then
            "bob@example.org": JAN + timedelta(days=31, hours=1),  # his first digest's claim
            "carl@example.org": JAN + timedelta(days=90),
        }

        def schema(sync: Connection) -> dict[str, object]:
            found = sa.inspect(sync)
            return {
                "diff": compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                ),
                "indexes": {
                    index["name"]
                    for table in ("subscribers", "deliveries")
                    for index in found.get_indexes(table)
                    if "duplicates_constraint" not in index  # PostgreSQL: a unique one's
                },
                "unique": {
                    constraint["name"]
                    for table in ("subscribers", "deliveries")
                    for constraint in found.get_unique_constraints(table)
                },
                "foreign keys": {
                    (key["name"], key["referred_table"])
                    for key in found.get_foreign_keys("deliveries")
                },
            }

        async with store.read() as conn:
            found = await conn.run_sync(schema)
        assert found == {
            "diff": [],
            "indexes": {
                "ix_subscribers_status",
                "ix_deliveries_issue_id_status_id",
            },
            "unique": {"uq_subscribers_email", "uq_deliveries_issue_id_subscriber_id"},
            "foreign keys": {
                ("fk_deliveries_issue_id_digest_issues", "digest_issues"),
                ("fk_deliveries_subscriber_id_subscribers", "subscribers"),
            },
        }
        with pytest.raises(IntegrityError):  # the reference to subscribers is still enforced
            async with store.write() as conn:
                await conn.execute(
                    sa.insert(DELIVERIES_0005).values(
                        issue_id=1, subscriber_id=99, status="pending", attempts=0
                    )
                )


async def test_after_0006_a_forgotten_subscriber_s_id_is_never_handed_out_again(
    database_url: str,
) -> None:
    store = await store_at_0005_with_rows(database_url)
    async with store:
        await store.upgrade()
        # Carl has the highest id; SQLite without AUTOINCREMENT gave it to the next one.
        carl = await store.subscriber_by_email("carl@example.org")
        assert carl is not None
        await service.forget(store, "carl@example.org", JAN + timedelta(days=200))
        erin, _ = await service.add(store, "erin@example.org", JAN + timedelta(days=201))
        assert erin.id > carl.id
        await service.forget(store, "erin@example.org", JAN + timedelta(days=202))
        fay, _ = await service.add(store, "fay@example.org", JAN + timedelta(days=203))
        assert fay.id > erin.id
        # Dave's id was freed before 0006, when nothing kept a record of it: SQLite can
        # only start past the largest id left; PostgreSQL's sequence never went back.
        assert erin.id == (4 if database_url.startswith("sqlite") else 5)


async def test_a_fresh_database_never_hands_an_id_out_twice(store: Store) -> None:
    first, _ = await service.add(store, "a@example.org", JAN)
    newest, _ = await service.add(store, "b@example.org", JAN)
    await service.forget(store, "b@example.org", JAN)
    later, _ = await service.add(store, "c@example.org", JAN)
    assert first.id < newest.id < later.id
    if store.engine.dialect.name == "sqlite":
        async with store.read() as conn:
            ddl = (
                await conn.execute(
                    sa.text("SELECT sql FROM sqlite_master WHERE name = 'subscribers'")
                )
            ).scalar_one()
        assert "AUTOINCREMENT" in ddl


async def test_0006_downgrades_keeping_every_row(database_url: str) -> None:
    store = await store_at_0005_with_rows(database_url)
    async with store:
        await store.upgrade()
        async with store.write() as conn:
            await conn.run_sync(migrate_to, "0005", down=True)
        async with store.read() as conn:
            rows = (
                await conn.execute(sa.select(SUBSCRIBERS_0005).order_by(SUBSCRIBERS_0005.c.id))
            ).all()
            columns = await conn.run_sync(
                lambda sync: {c["name"] for c in sa.inspect(sync).get_columns("subscribers")}
            )
            delivered = (await conn.execute(sa.select(DELIVERIES_0005.c.subscriber_id))).all()
        assert [row.email for row in rows] == [
            "ann@example.org",
            "bob@example.org",
            "carl@example.org",
        ]
        assert "created_at" not in columns and delivered == [(2,)]
        assert await store.upgrade() == ("0005", migrate.head_revision())
