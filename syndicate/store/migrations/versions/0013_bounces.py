"""inbound_mail and bounce_events: what came back to the bounce intake, and what it said
about each subscriber (issue 19: bounces, complaints and the unsubscribe mailbox).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from syndicate.store.types import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_mail",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inbound_mail"),
        sa.UniqueConstraint("sha256", name="uq_inbound_mail_sha256"),
    )
    op.create_index("ix_inbound_mail_received_at", "inbound_mail", ["received_at"])
    op.create_table(
        "bounce_events",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("issue_id", sa.Integer, nullable=True),
        sa.Column("mail_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status_code", sa.String(16), nullable=False),
        sa.Column("diagnostic", sa.Text, nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bounce_events"),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"], name="fk_bounce_events_subscriber_id_subscribers"
        ),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["digest_issues.id"], name="fk_bounce_events_issue_id_digest_issues"
        ),
        sa.ForeignKeyConstraint(
            ["mail_id"], ["inbound_mail.id"], name="fk_bounce_events_mail_id_inbound_mail"
        ),
    )
    op.create_index(
        "ix_bounce_events_subscriber_id_kind_received_at",
        "bounce_events",
        ["subscriber_id", "kind", "received_at"],
    )
    op.create_index("ix_bounce_events_received_at", "bounce_events", ["received_at"])


def downgrade() -> None:
    op.drop_table("bounce_events")
    op.drop_table("inbound_mail")
