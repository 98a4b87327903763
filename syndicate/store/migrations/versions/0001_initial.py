"""The initial schema: sources, posts, subscribers, digest issues, deliveries, job runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from syndicate.store.types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("permanent_url", sa.Text),
        sa.Column("etag", sa.Text),
        sa.Column("last_modified", sa.Text),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("last_polled_at", UTCDateTime),
        sa.Column("last_success_at", UTCDateTime),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("next_poll_at", UTCDateTime),
        sa.Column("disabled_reason", sa.Text),
        sa.Column("feed_title", sa.Text),
        sa.Column("feed_link", sa.Text),
        sa.PrimaryKeyConstraint("name", name="pk_sources"),
    )
    op.create_table(
        "posts",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("guid", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("authors", sa.JSON, nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("published", UTCDateTime, nullable=False),
        sa.Column("updated", UTCDateTime, nullable=False),
        sa.Column("first_seen", UTCDateTime, nullable=False),
        sa.Column("summary_html", sa.Text, nullable=False),
        sa.Column("content_html", sa.Text, nullable=False),
        sa.Column("excerpt", sa.Text, nullable=False),
        sa.Column("image_url", sa.Text),
        sa.Column("enclosure", sa.JSON),
        sa.Column("comments_url", sa.Text),
        sa.Column("language", sa.String(35)),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("discussion_url", sa.Text),
        sa.Column("forum_topic_id", sa.Integer),
        sa.Column("reply_count", sa.Integer),
        sa.Column("forum_checked_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_posts"),
        sa.UniqueConstraint("source", "guid", name="uq_posts_source_guid"),
    )
    op.create_index("ix_posts_url", "posts", ["url"])
    op.create_index("ix_posts_published", "posts", ["published"])
    op.create_table(
        "subscribers",
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
        sa.PrimaryKeyConstraint("id", name="pk_subscribers"),
        sa.UniqueConstraint("email", name="uq_subscribers_email"),
    )
    op.create_index("ix_subscribers_status", "subscribers", ["status"])
    op.create_table(
        "digest_issues",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("post_ids", sa.JSON, nullable=False),
        sa.Column("html", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_digest_issues"),
        sa.UniqueConstraint("period", name="uq_digest_issues_period"),
    )
    op.create_table(
        "deliveries",
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
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"], name="fk_deliveries_subscriber_id_subscribers"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.UniqueConstraint(
            "issue_id", "subscriber_id", name="uq_deliveries_issue_id_subscriber_id"
        ),
    )
    op.create_index("ix_deliveries_issue_id_status", "deliveries", ["issue_id", "status"])
    op.create_table(
        "job_runs",
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("error", sa.Text),
        sa.PrimaryKeyConstraint("key", name="pk_job_runs"),
    )


def downgrade() -> None:
    for table in ("job_runs", "deliveries", "digest_issues", "subscribers", "posts", "sources"):
        op.drop_table(table)
