"""digest_issues.content: what an issue is made of (its posts as they were, its templates).

A subscriber who chose categories gets a copy rendered when the issue is sent; this keeps it
the issue's own (syndicate.digest.issue). Issues stored before it have none, and their copies
are made from their post ids (syndicate.digest.build.stored_content).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("digest_issues") as batch:
        batch.add_column(sa.Column("content", sa.JSON, nullable=True))


def downgrade() -> None:
    # In place (SQLite >= 3.35 can): a batch copy would drop the table, which fails while
    # foreign keys are enforced and other rows refer to it.
    op.drop_column("digest_issues", "content")
