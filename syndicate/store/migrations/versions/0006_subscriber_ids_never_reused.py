"""subscribers: ids are never reused (SQLite AUTOINCREMENT), and created_at.

A signed link names a subscriber id. Without AUTOINCREMENT, SQLite gives a new row the
largest id plus one, so after `forget` deleted the newest subscriber the next one got that
id, and the forgotten person's links acted on them. With AUTOINCREMENT, SQLite remembers the
largest id ever handed out (in sqlite_sequence), and copying the rows sets it to the largest
one that still exists: a top id deleted earlier leaves no trace to go further by. PostgreSQL
sequences never go back, so there only created_at is added.

created_at lets links signed before this revision (id only) be checked: such a link counts
only for a row created no later than it was signed (syndicate/tokens.py). Existing rows get
the earliest moment the row is known to have existed: its consent, confirmation or
unsubscribe date, or the first claim or send of one of its deliveries (consent alone would be
too late for someone an admin re-added, whose old digests' links must keep working).

SQLite cannot change a primary key in place, and rebuilding `subscribers` alone is not
possible while foreign keys are enforced and `deliveries` points at it (dropping the old table
would break those references, even deferred). So both tables are rebuilt together: the new
`deliveries` refers to the new `subscribers` under its temporary name, and renaming that to
`subscribers` carries the reference along. Every row, id, constraint name and index is kept.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

from syndicate.store.types import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

NEW_SUBSCRIBERS = "_subscribers_0006"
NEW_DELIVERIES = "_deliveries_0006"

SUBSCRIBER_COLUMNS = (
    "id",
    "email",
    "name",
    "status",
    "categories",
    "consent_source",
    "consented_at",
    "confirmed_at",
    "unsubscribed_at",
    "bounce_count",
)
DELIVERY_COLUMNS = (
    "id",
    "issue_id",
    "subscriber_id",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "message_id",
    "claimed_by",
    "claimed_at",
    "sent_at",
)

# The tables as this revision reads them, with their own types (not tables.py's, which move on).
_subscribers = sa.table(
    "subscribers",
    sa.column("id", sa.Integer),
    sa.column("consented_at", UTCDateTime),
    sa.column("confirmed_at", UTCDateTime),
    sa.column("unsubscribed_at", UTCDateTime),
    sa.column("created_at", UTCDateTime),
)
_deliveries = sa.table(
    "deliveries",
    sa.column("subscriber_id", sa.Integer),
    sa.column("claimed_at", UTCDateTime),
    sa.column("sent_at", UTCDateTime),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(autoincrement=True)
    else:
        op.add_column("subscribers", sa.Column("created_at", UTCDateTime, nullable=True))
    _fill_created_at()
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("subscribers", "created_at", nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(autoincrement=False)
    else:
        op.drop_column("subscribers", "created_at")


def _rebuild_sqlite(*, autoincrement: bool) -> None:
    """Copy subscribers and deliveries into new tables (with or without AUTOINCREMENT and
    created_at), drop the old ones, and give the new ones the old names and indexes."""
    created_at = [sa.Column("created_at", UTCDateTime, nullable=False)] if autoincrement else []
    op.create_table(
        NEW_SUBSCRIBERS,
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("consent_source", sa.Text, nullable=False),
        sa.Column("consented_at", UTCDateTime, nullable=False),
        sa.Column("confirmed_at", UTCDateTime),
        sa.Column("unsubscribed_at", UTCDateTime),
        sa.Column("bounce_count", sa.Integer, nullable=False),
        *created_at,
        sa.PrimaryKeyConstraint("id", name="pk_subscribers"),
        sa.UniqueConstraint("email", name="uq_subscribers_email"),
        sqlite_autoincrement=autoincrement,
    )
    # consented_at stands in for created_at until _fill_created_at finds an earlier moment.
    _copy_rows("subscribers", NEW_SUBSCRIBERS, SUBSCRIBER_COLUMNS, created_at=autoincrement)
    op.create_table(
        NEW_DELIVERIES,
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("issue_id", sa.Integer, nullable=False),
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("message_id", sa.Text),
        sa.Column("claimed_by", sa.Text),
        sa.Column("claimed_at", UTCDateTime),
        sa.Column("sent_at", UTCDateTime),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["digest_issues.id"], name="fk_deliveries_issue_id_digest_issues"
        ),
        # Points at the new table; the rename below makes it "subscribers".
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            [f"{NEW_SUBSCRIBERS}.id"],
            name="fk_deliveries_subscriber_id_subscribers",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.UniqueConstraint(
            "issue_id", "subscriber_id", name="uq_deliveries_issue_id_subscriber_id"
        ),
    )
    _copy_rows("deliveries", NEW_DELIVERIES, DELIVERY_COLUMNS)
    # Inserting explicit ids into an AUTOINCREMENT table moves sqlite_sequence up to the
    # largest, and the rename below carries that row along: the next id is past every one.
    op.drop_table("deliveries")  # with its indexes
    op.drop_table("subscribers")
    op.rename_table(NEW_SUBSCRIBERS, "subscribers")
    op.rename_table(NEW_DELIVERIES, "deliveries")
    op.create_index("ix_subscribers_status", "subscribers", ["status"])
    op.create_index("ix_deliveries_issue_id_status", "deliveries", ["issue_id", "status"])
    op.create_index("ix_deliveries_status", "deliveries", ["status"])


def _copy_rows(
    source: str, target: str, columns: tuple[str, ...], *, created_at: bool = False
) -> None:
    """INSERT INTO target SELECT the columns FROM source (created_at: from consented_at)."""
    selected = [sa.column(name) for name in columns]
    names = list(columns)
    if created_at:
        selected.append(sa.column("consented_at").label("created_at"))
        names.append("created_at")
    query = sa.select(*selected).select_from(sa.table(source))
    op.execute(
        sa.insert(sa.table(target, *(sa.column(name) for name in names))).from_select(names, query)
    )


def _fill_created_at() -> None:
    """created_at := the earliest moment each row is known to have existed (see above)."""
    bind = op.get_bind()
    earliest: dict[int, datetime] = {}

    def seen(subscriber_id: int, *moments: datetime | None) -> None:
        for moment in moments:
            if moment is not None and (
                subscriber_id not in earliest or moment < earliest[subscriber_id]
            ):
                earliest[subscriber_id] = moment

    for row in bind.execute(
        sa.select(
            _subscribers.c.id,
            _subscribers.c.consented_at,
            _subscribers.c.confirmed_at,
            _subscribers.c.unsubscribed_at,
        )
    ):
        seen(row.id, row.consented_at, row.confirmed_at, row.unsubscribed_at)
    for row in bind.execute(
        sa.select(
            _deliveries.c.subscriber_id,
            sa.func.min(_deliveries.c.claimed_at).label("claimed_at"),
            sa.func.min(_deliveries.c.sent_at).label("sent_at"),
        ).group_by(_deliveries.c.subscriber_id)
    ):
        seen(row.subscriber_id, row.claimed_at, row.sent_at)
    if earliest:
        bind.execute(
            sa.update(_subscribers)
            .where(_subscribers.c.id == sa.bindparam("subscriber_id"))
            .values(created_at=sa.bindparam("moment")),
            [{"subscriber_id": key, "moment": value} for key, value in earliest.items()],
        )
